/*
 * jsonpos: a recursive-descent walk over the text that skips what is off
 * the path and descends into what is on it. A key is compared with its
 * escapes decoded, as jansson reads it ("\/ns" is "/ns").
 */
#include "jsonpos.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bool index; /* [N] rather than a key */
    size_t n;   /* the index */
    const char *key;
    size_t key_len;
} segment_t;

typedef struct {
    const char *p, *end;
    int line;
} scan_t;

static void skip_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n')) {
        if (*s->p == '\n')
            s->line++;
        s->p++;
    }
}

/* A string at s->p: its raw contents into start and len. */
static bool scan_string(scan_t *s, const char **start, size_t *len)
{
    if (s->p >= s->end || *s->p != '"')
        return false;
    s->p++;
    const char *from = s->p;
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\n')
            return false; /* not in valid JSON */
        if (*s->p == '\\' && s->p + 1 < s->end)
            s->p++;
        s->p++;
    }
    if (s->p >= s->end)
        return false;
    *start = from;
    *len = (size_t)(s->p - from);
    s->p++;
    return true;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The code unit of a \u escape (u and four hex digits) at raw[0..len); -1 if
 * malformed. */
static long utf16_unit(const char *raw, size_t len)
{
    if (len < 5)
        return -1;
    long unit = 0;
    for (size_t i = 1; i <= 4; i++) {
        int d = hex_digit(raw[i]);
        if (d < 0)
            return -1;
        unit = unit * 16 + d;
    }
    return unit;
}

/* Decode one character of a raw JSON string at raw[0..len) into
 * out[0..4) as UTF-8: its length there, and in *used the raw bytes it
 * took; 0 if malformed. */
static size_t decode_char(const char *raw, size_t len, char out[4], size_t *used)
{
    if (raw[0] != '\\') {
        out[0] = raw[0];
        *used = 1;
        return 1;
    }
    if (len < 2)
        return 0;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *e = memchr(from, raw[1], sizeof from - 1);
    if (e) {
        out[0] = to[e - from];
        *used = 2;
        return 1;
    }
    long cp = raw[1] == 'u' ? utf16_unit(raw + 1, len - 1) : -1;
    *used = 6;
    if (cp >= 0xD800 && cp < 0xDC00) { /* a surrogate pair */
        long low = len >= 12 && raw[6] == '\\' && raw[7] == 'u' ? utf16_unit(raw + 7, len - 7) : -1;
        if (low < 0xDC00 || low > 0xDFFF)
            return 0;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        *used = 12;
    }
    if (cp < 0)
        return 0;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Is the raw text of a string, escapes decoded, exactly key[0..key_len)? */
static bool raw_equals(const char *raw, size_t raw_len, const char *key, size_t key_len)
{
    size_t at = 0;
    while (raw_len) {
        char c[4];
        size_t used = 0, n = decode_char(raw, raw_len, c, &used);
        if (!n || used > raw_len || n > key_len - at || memcmp(c, key + at, n) != 0)
            return false;
        at += n;
        raw += used;
        raw_len -= used;
    }
    return at == key_len;
}

/* A member's key and its colon: the key's raw text into k and kl. */
static bool scan_key(scan_t *s, const char **k, size_t *kl)
{
    if (!scan_string(s, k, kl))
        return false;
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':')
        return false;
    s->p++;
    skip_ws(s);
    return true;
}

static bool skip_value(scan_t *s, int depth);

/* The members of an object or the elements of an array, s->p past the
 * opening bracket; `each` is called at each one's start (for an object:
 * at its key) and must consume it; it returns 1 to go on, 0 when done
 * (found), -1 on an error. */
typedef int (*member_fn)(scan_t *s, void *ctx, size_t i, int depth);

static int scan_members(scan_t *s, char close, member_fn each, void *ctx, int depth)
{
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 1;
    }
    for (size_t i = 0;; i++) {
        skip_ws(s);
        int r = each(s, ctx, i, depth);
        if (r <= 0)
            return r;
        skip_ws(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == close) {
            s->p++;
            return 1;
        }
        if (*s->p != ',')
            return -1;
        s->p++;
    }
}

static int skip_member(scan_t *s, void *ctx, size_t i, int depth)
{
    (void)i;
    bool object = *(const bool *)ctx;
    const char *k;
    size_t kl;
    if (object && !scan_key(s, &k, &kl))
        return -1;
    return skip_value(s, depth) ? 1 : -1;
}

static bool skip_value(scan_t *s, int depth)
{
    if (s->p >= s->end || depth > JSONPOS_MAX_DEPTH)
        return false;
    char c = *s->p;
    if (c == '{' || c == '[') {
        bool object = c == '{';
        s->p++;
        return scan_members(s, object ? '}' : ']', skip_member, &object, depth + 1) == 1;
    }
    if (c == '"') {
        const char *k;
        size_t kl;
        return scan_string(s, &k, &kl);
    }
    const char *from = s->p;
    while (s->p < s->end && *s->p && !strchr(",}] \t\r\n", *s->p))
        s->p++;
    bool scalar = s->p > from;
    /* jansson drops one NUL byte straight after a number or a literal
     * (it reads the byte to end the token and cannot put a NUL back):
     * the scanner reads such text as jansson does. */
    if (scalar && s->p < s->end && *s->p == '\0')
        s->p++;
    return scalar;
}

typedef struct {
    const segment_t *segs;
    size_t count, at; /* the segment this level looks for */
    int found;        /* the line, once found */
} walk_t;

static int find_in(scan_t *s, walk_t *w, int depth);

static int find_member(scan_t *s, void *ctx, size_t i, int depth)
{
    walk_t *w = ctx;
    const segment_t *seg = &w->segs[w->at];
    int line = s->line;
    bool hit;
    if (!seg->index) {
        const char *k;
        size_t kl;
        if (!scan_key(s, &k, &kl))
            return -1;
        hit = raw_equals(k, kl, seg->key, seg->key_len);
    } else {
        hit = i == seg->n;
    }
    if (!hit)
        return skip_value(s, depth) ? 1 : -1;
    if (w->at + 1 == w->count) {
        w->found = line;
        return 0;
    }
    w->at++;
    return find_in(s, w, depth) == 0 ? 0 : -1;
}

/* At a value: 0 when the rest of the path was found in it, -1 if not. */
static int find_in(scan_t *s, walk_t *w, int depth)
{
    if (s->p >= s->end || depth > JSONPOS_MAX_DEPTH)
        return -1;
    const segment_t *seg = &w->segs[w->at];
    char want = seg->index ? '[' : '{';
    if (*s->p != want)
        return -1;
    s->p++;
    return scan_members(s, seg->index ? ']' : '}', find_member, w, depth + 1) == 0 ? 0 : -1;
}

/* "a.b[2].c" into segments; false when it does not parse or is too deep. */
static bool parse_path(const char *path, segment_t *segs, size_t *count)
{
    size_t n = 0;
    const char *p = path;
    while (*p) {
        if (n == JSONPOS_MAX_DEPTH)
            return false;
        if (*p == '[') {
            char *end;
            unsigned long long v = strtoull(p + 1, &end, 10);
            if (end == p + 1 || *end != ']')
                return false;
            segs[n++] = (segment_t){.index = true, .n = (size_t)v};
            p = end + 1;
        } else {
            size_t len = strcspn(p, ".[");
            if (!len)
                return false;
            segs[n++] = (segment_t){.key = p, .key_len = len};
            p += len;
        }
        if (*p == '.')
            p++;
    }
    *count = n;
    return n > 0;
}

int jsonpos_line(const char *text, size_t len, const char *path)
{
    segment_t segs[JSONPOS_MAX_DEPTH];
    size_t count;
    if (!text || !path || !parse_path(path, segs, &count))
        return 0;
    scan_t s = {text, text + len, 1};
    walk_t w = {segs, count, 0, 0};
    skip_ws(&s);
    return find_in(&s, &w, 0) == 0 ? w.found : 0;
}
