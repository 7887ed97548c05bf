/*
 * json: the little JSON the function socket needs, without a library.
 *
 * Headers are flat objects: the writer emits one object of strings,
 * integers and booleans; the reader accepts any valid JSON object but keeps
 * only its top-level strings, integers, booleans and nulls. Documents
 * (shadows, config) travel as payload bytes and are never parsed here.
 * Strings are unescaped in place: an escape never decodes to more bytes
 * than it took, so the decoded text fits where the quoted text was.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool sdk_buf_put(sdk_buf_t *b, const void *data, size_t len)
{
    if (len == 0)
        return true;
    if (b->cap - b->len < len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < len) {
            if (cap > SIZE_MAX / 2)
                return false;
            cap *= 2;
        }
        uint8_t *p = realloc(b->data, cap);
        if (!p)
            return false;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return true;
}

void sdk_buf_release(sdk_buf_t *b)
{
    free(b->data);
    *b = (sdk_buf_t){0};
}

/* Length of the UTF-8 sequence at s (1..4), or 0 when it is not one:
 * overlong forms, surrogates and code points past U+10FFFF are refused. */
static size_t utf8_seq(const uint8_t *s, size_t left)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

bool sdk_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* ---- writer ---- */

static void put(sdk_json_t *j, const void *data, size_t len)
{
    if (j->err == SEDGE_OK && !sdk_buf_put(&j->out, data, len))
        j->err = SEDGE_ERR_NOMEM;
}

static void put_string(sdk_json_t *j, const char *s)
{
    size_t len = strlen(s);
    if (!sdk_utf8_valid((const uint8_t *)s, len)) {
        if (j->err == SEDGE_OK)
            j->err = SEDGE_ERR_INVALID;
        return;
    }
    put(j, "\"", 1);
    size_t run = 0; /* bytes copied as they are, written in one go */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char code[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(code, sizeof code, "\\u%04x", c);
                esc = code;
            }
        }
        if (!esc) {
            run++;
            continue;
        }
        put(j, s + i - run, run);
        run = 0;
        put(j, esc, strlen(esc));
    }
    put(j, s + len - run, run);
    put(j, "\"", 1);
}

static void put_key(sdk_json_t *j, const char *key)
{
    if (j->fields++ > 0)
        put(j, ",", 1);
    put_string(j, key);
    put(j, ":", 1);
}

void sdk_json_begin(sdk_json_t *j)
{
    *j = (sdk_json_t){0};
    put(j, "{", 1);
}

void sdk_json_str(sdk_json_t *j, const char *key, const char *value)
{
    put_key(j, key);
    put_string(j, value);
}

void sdk_json_int(sdk_json_t *j, const char *key, int64_t value)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRId64, value);
    put_key(j, key);
    put(j, num, (size_t)n);
}

void sdk_json_bool(sdk_json_t *j, const char *key, bool value)
{
    put_key(j, key);
    put(j, value ? "true" : "false", value ? 4 : 5);
}

sedge_err sdk_json_end(sdk_json_t *j)
{
    put(j, "}", 1);
    return j->err;
}

void sdk_json_release(sdk_json_t *j)
{
    sdk_buf_release(&j->out);
}

/* ---- reader ---- */

typedef struct {
    char *s;
    size_t len;
    size_t pos;
} cursor_t;

static void skip_ws(cursor_t *c)
{
    while (c->pos < c->len) {
        char ch = c->s[c->pos];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            break;
        c->pos++;
    }
}

static bool hex4(cursor_t *c, uint32_t *v)
{
    if (c->len - c->pos < 4)
        return false;
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) {
        char ch = c->s[c->pos++];
        r <<= 4;
        if (ch >= '0' && ch <= '9')
            r |= (uint32_t)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            r |= (uint32_t)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            r |= (uint32_t)(ch - 'A' + 10);
        else
            return false;
    }
    *v = r;
    return true;
}

static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The string at the cursor (on its opening quote), unescaped to where the
 * quote was and NUL-terminated. Escapes of NUL are refused: the value is
 * handed to C code as a string. */
static bool parse_string(cursor_t *c, const char **out)
{
    char *dst = c->s + c->pos;
    char *w = dst;
    c->pos++; /* the quote */
    for (;;) {
        if (c->pos >= c->len)
            return false;
        unsigned char ch = (unsigned char)c->s[c->pos];
        if (ch == '"') {
            c->pos++;
            *w = '\0';
            *out = dst;
            return true;
        }
        if (ch < 0x20)
            return false;
        if (ch != '\\') {
            size_t n = utf8_seq((const uint8_t *)c->s + c->pos, c->len - c->pos);
            if (n == 0)
                return false;
            memmove(w, c->s + c->pos, n);
            w += n;
            c->pos += n;
            continue;
        }
        if (++c->pos >= c->len)
            return false;
        char e = c->s[c->pos++];
        switch (e) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (!hex4(c, &cp) || cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff))
                return false;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo;
                if (c->len - c->pos < 6 || c->s[c->pos] != '\\' || c->s[c->pos + 1] != 'u')
                    return false;
                c->pos += 2;
                if (!hex4(c, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return false;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            w += put_utf8(w, cp);
            break;
        }
        default: return false;
        }
    }
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* A JSON number; `*integer` says whether it is an integer that fits in
 * int64 (then in *value). */
static bool parse_number(cursor_t *c, bool *integer, int64_t *value)
{
    size_t start = c->pos;
    if (c->pos < c->len && c->s[c->pos] == '-')
        c->pos++;
    if (c->pos >= c->len || !is_digit(c->s[c->pos]))
        return false;
    if (c->s[c->pos] == '0')
        c->pos++;
    else
        while (c->pos < c->len && is_digit(c->s[c->pos]))
            c->pos++;
    bool fraction = false;
    if (c->pos < c->len && c->s[c->pos] == '.') {
        fraction = true;
        c->pos++;
        if (c->pos >= c->len || !is_digit(c->s[c->pos]))
            return false;
        while (c->pos < c->len && is_digit(c->s[c->pos]))
            c->pos++;
    }
    if (c->pos < c->len && (c->s[c->pos] == 'e' || c->s[c->pos] == 'E')) {
        fraction = true;
        c->pos++;
        if (c->pos < c->len && (c->s[c->pos] == '+' || c->s[c->pos] == '-'))
            c->pos++;
        if (c->pos >= c->len || !is_digit(c->s[c->pos]))
            return false;
        while (c->pos < c->len && is_digit(c->s[c->pos]))
            c->pos++;
    }
    *integer = false;
    if (fraction)
        return true;
    bool negative = c->s[start] == '-';
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (size_t i = start + negative; i < c->pos; i++) {
        uint64_t d = (uint64_t)(c->s[i] - '0');
        if (v > (limit - d) / 10)
            return true; /* a valid number, too big to keep */
        v = v * 10 + d;
    }
    *integer = true;
    *value = negative ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static bool literal(cursor_t *c, const char *word)
{
    size_t n = strlen(word);
    if (c->len - c->pos < n || memcmp(c->s + c->pos, word, n) != 0)
        return false;
    c->pos += n;
    return true;
}

/* Any JSON value; at depth 0 its kind and scalar value go to `f`. */
static bool parse_value(cursor_t *c, int depth, sdk_json_field_t *f)
{
    if (depth > SDK_JSON_MAX_DEPTH)
        return false;
    skip_ws(c);
    if (c->pos >= c->len)
        return false;
    sdk_json_field_t ignored;
    if (!f)
        f = &ignored;
    f->type = SDK_JSON_OTHER;
    char ch = c->s[c->pos];
    if (ch == '"') {
        f->type = SDK_JSON_STRING;
        return parse_string(c, &f->str);
    }
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        c->pos++;
        skip_ws(c);
        if (c->pos < c->len && c->s[c->pos] == close) {
            c->pos++;
            return true;
        }
        for (;;) {
            if (ch == '{') {
                const char *key;
                skip_ws(c);
                if (c->pos >= c->len || c->s[c->pos] != '"' || !parse_string(c, &key))
                    return false;
                skip_ws(c);
                if (c->pos >= c->len || c->s[c->pos++] != ':')
                    return false;
            }
            if (!parse_value(c, depth + 1, NULL))
                return false;
            skip_ws(c);
            if (c->pos >= c->len)
                return false;
            char sep = c->s[c->pos++];
            if (sep == close)
                return true;
            if (sep != ',')
                return false;
        }
    }
    if (ch == 't' || ch == 'f') {
        f->type = SDK_JSON_BOOL;
        f->boolean = ch == 't';
        return literal(c, ch == 't' ? "true" : "false");
    }
    if (ch == 'n') {
        f->type = SDK_JSON_NULL;
        return literal(c, "null");
    }
    bool integer = false;
    if (!parse_number(c, &integer, &f->num))
        return false;
    if (integer)
        f->type = SDK_JSON_INT;
    return true;
}

sedge_err sdk_header_parse(char *text, size_t len, sdk_header_t *h)
{
    cursor_t c = {text, len, 0};
    h->count = 0;
    skip_ws(&c);
    if (c.pos >= c.len || c.s[c.pos] != '{')
        return SEDGE_ERR_MALFORMED;
    c.pos++;
    skip_ws(&c);
    if (c.pos < c.len && c.s[c.pos] == '}') {
        c.pos++;
    } else {
        for (;;) {
            skip_ws(&c);
            const char *key;
            if (c.pos >= c.len || c.s[c.pos] != '"' || !parse_string(&c, &key))
                return SEDGE_ERR_MALFORMED;
            if (sdk_header_get(h, key) || h->count == SDK_HEADER_MAX_FIELDS)
                return SEDGE_ERR_MALFORMED;
            skip_ws(&c);
            if (c.pos >= c.len || c.s[c.pos++] != ':')
                return SEDGE_ERR_MALFORMED;
            sdk_json_field_t *f = &h->fields[h->count];
            *f = (sdk_json_field_t){.key = key};
            if (!parse_value(&c, 1, f))
                return SEDGE_ERR_MALFORMED;
            h->count++;
            skip_ws(&c);
            if (c.pos >= c.len)
                return SEDGE_ERR_MALFORMED;
            char sep = c.s[c.pos++];
            if (sep == '}')
                break;
            if (sep != ',')
                return SEDGE_ERR_MALFORMED;
        }
    }
    skip_ws(&c);
    return c.pos == c.len ? SEDGE_OK : SEDGE_ERR_MALFORMED;
}

const sdk_json_field_t *sdk_header_get(const sdk_header_t *h, const char *key)
{
    for (size_t i = 0; i < h->count; i++)
        if (strcmp(h->fields[i].key, key) == 0)
            return &h->fields[i];
    return NULL;
}

const char *sdk_header_str(const sdk_header_t *h, const char *key)
{
    const sdk_json_field_t *f = sdk_header_get(h, key);
    return f && f->type == SDK_JSON_STRING ? f->str : NULL;
}

bool sdk_header_int(const sdk_header_t *h, const char *key, int64_t *value)
{
    const sdk_json_field_t *f = sdk_header_get(h, key);
    if (!f || f->type != SDK_JSON_INT)
        return false;
    *value = f->num;
    return true;
}

bool sdk_header_bool(const sdk_header_t *h, const char *key, bool *value)
{
    const sdk_json_field_t *f = sdk_header_get(h, key);
    if (!f || f->type != SDK_JSON_BOOL)
        return false;
    *value = f->boolean;
    return true;
}
