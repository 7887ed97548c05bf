/* base: errors, byte views and buffers, logging, clocks. */
#include "base.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const char *sedge_strerror(sedge_err err)
{
    switch (err) {
    case SEDGE_OK: return "success";
    case SEDGE_ERR_NOMEM: return "out of memory";
    case SEDGE_ERR_INVALID: return "invalid argument";
    case SEDGE_ERR_AGAIN: return "incomplete data";
    case SEDGE_ERR_MALFORMED: return "malformed data";
    case SEDGE_ERR_PROTOCOL: return "protocol error";
    case SEDGE_ERR_TOO_LARGE: return "too large";
    case SEDGE_ERR_NOT_FOUND: return "not found";
    case SEDGE_ERR_EXISTS: return "already exists";
    case SEDGE_ERR_DENIED: return "not authorized";
    case SEDGE_ERR_IO: return "input/output error";
    case SEDGE_ERR_STORE: return "store error";
    case SEDGE_ERR_TLS: return "TLS error";
    case SEDGE_ERR_FULL: return "quota exceeded";
    case SEDGE_ERR_TIMEOUT: return "timed out";
    case SEDGE_ERR_BUSY: return "busy";
    case SEDGE_ERR_CLOSED: return "closed";
    case SEDGE_ERR_UNSUPPORTED: return "not supported";
    case SEDGE_ERR_CONFLICT: return "conflict";
    case SEDGE_ERR_FAILED: return "failed";
    }
    return "unknown error";
}

bytes_t bytes_of_cstr(const char *s)
{
    return (bytes_t){(const uint8_t *)s, s ? strlen(s) : 0};
}

bool bytes_eq(bytes_t a, bytes_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

bool bytes_eq_cstr(bytes_t a, const char *s)
{
    return bytes_eq(a, bytes_of_cstr(s));
}

bool bytes_has_prefix(bytes_t a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.len >= n && memcmp(a.data, prefix, n) == 0;
}

char *bytes_dup_cstr(bytes_t b)
{
    char *s = malloc(b.len + 1);
    if (!s)
        return NULL;
    if (b.len)
        memcpy(s, b.data, b.len);
    s[b.len] = '\0';
    return s;
}

sedge_err buf_reserve(buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return SEDGE_OK;
    if (extra > SIZE_MAX / 2 - b->len)
        return SEDGE_ERR_NOMEM;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *data = realloc(b->data, cap);
    if (!data)
        return SEDGE_ERR_NOMEM;
    b->data = data;
    b->cap = cap;
    return SEDGE_OK;
}

void *array_room(void *items, size_t count, size_t *cap, size_t size, size_t initial)
{
    if (count < *cap)
        return items;
    size_t grown = *cap ? *cap * 2 : initial;
    if (grown < *cap || grown > SIZE_MAX / size)
        return NULL;
    void *bigger = realloc(items, grown * size);
    if (bigger)
        *cap = grown;
    return bigger;
}

sedge_err buf_append(buf_t *b, const void *data, size_t len)
{
    sedge_err err = buf_reserve(b, len);
    if (err)
        return err;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return SEDGE_OK;
}

void buf_consume(buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void buf_free(buf_t *b)
{
    free(b->data);
    *b = (buf_t){0};
}

static log_level_t current_level = LOG_INFO;

void log_set_level(log_level_t level)
{
    current_level = level;
}
log_level_t log_get_level(void)
{
    return current_level;
}

/* Repeated lines are rate-limited per call site (its format string): at
 * most LOG_BURST lines from one site in a LOG_WINDOW_MS window; the rest
 * are counted, and the count is logged once the window is over. A full
 * disk or a reconnecting fleet then costs a few lines, not a flood. Debug
 * lines, asked for explicitly, are never limited. */
#define LOG_BURST 20u
#define LOG_WINDOW_MS 10000u
#define LOG_SITES 64u

typedef struct {
    const char *fmt; /* the call site; NULL: free */
    const char *tag;
    log_level_t level;
    uint64_t window_start_ms;
    uint32_t lines;      /* in this window */
    uint32_t suppressed; /* in this window, not written */
} log_site_t;

static log_site_t log_sites[LOG_SITES];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* Is stderr the journal? systemd says so with JOURNAL_STREAM=DEV:INODE of
 * the stream it connected; a stderr redirected elsewhere (a shell's 2>,
 * a pipe) does not match it. Decided at the first line. */
bool log_stderr_is_journal(void)
{
    static int journal = -1;
    if (journal < 0) {
        const char *js = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
                  (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
    }
    return journal == 1;
}

static void write_line(log_level_t level, const char *tag, const char *fmt, va_list ap)
{
    static const char letters[] = "EWID";
    char line[1024];
    int n;
    if (log_stderr_is_journal()) {
        /* sd-daemon(3)'s <N> prefixes: journalctl -p filters on them, and
         * the journal keeps its own time. */
        static const int priorities[] = {3, 4, 6, 7}; /* err, warning, info, debug */
        n = snprintf(line, sizeof line, "<%d>%s: ", priorities[level], tag);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %c %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, letters[level], tag);
    }
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

static void write_fmt(log_level_t level, const char *tag, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void write_fmt(log_level_t level, const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line(level, tag, fmt, ap);
    va_end(ap);
}

/* A site's window is over: say how many of its lines were left out. */
static void site_summarise(log_site_t *site)
{
    if (site->suppressed)
        write_fmt(site->level, site->tag, "(%u more lines like \"%.120s\" in %u s, not shown)",
                  site->suppressed, site->fmt, LOG_WINDOW_MS / 1000);
    site->suppressed = 0;
    site->lines = 0;
}

/* Whether a line from `fmt` may be written now; the caller holds log_lock. */
static bool site_admits(log_level_t level, const char *tag, const char *fmt, uint64_t now)
{
    for (size_t i = 0; i < LOG_SITES; i++) /* windows that ended meanwhile */
        if (log_sites[i].fmt && now - log_sites[i].window_start_ms >= LOG_WINDOW_MS &&
            log_sites[i].suppressed)
            site_summarise(&log_sites[i]);
    log_site_t *site = &log_sites[((uintptr_t)fmt >> 3) % LOG_SITES];
    if (site->fmt != fmt || now - site->window_start_ms >= LOG_WINDOW_MS) {
        if (site->fmt != fmt)
            site_summarise(site);
        *site = (log_site_t){fmt, tag, level, now, 0, 0};
    }
    if (site->lines < LOG_BURST) {
        site->lines++;
        return true;
    }
    site->suppressed++;
    return false;
}

void log_write(log_level_t level, const char *tag, const char *fmt, ...)
{
    if (level > current_level)
        return;
    pthread_mutex_lock(&log_lock);
    if (level == LOG_DEBUG || site_admits(level, tag, fmt, clock_mono_ms())) {
        va_list ap;
        va_start(ap, fmt);
        write_line(level, tag, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&log_lock);
}

uint64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t clock_wall_s(void)
{
    return (int64_t)time(NULL);
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(bytes_t in)
{
    size_t n = (in.len + 2) / 3 * 4;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < in.len; i += 3) {
        uint32_t v = (uint32_t)in.data[i] << 16;
        if (i + 1 < in.len)
            v |= (uint32_t)in.data[i + 1] << 8;
        if (i + 2 < in.len)
            v |= in.data[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < in.len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < in.len ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

sedge_err base64_decode(const char *text, buf_t *out)
{
    uint32_t acc = 0;
    int bits = 0;
    for (const char *p = text; *p && *p != '='; p++) {
        const char *at = strchr(b64_alphabet, *p);
        if (!at || !*p)
            return SEDGE_ERR_INVALID;
        acc = acc << 6 | (uint32_t)(at - b64_alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            uint8_t byte = (uint8_t)(acc >> bits);
            if (buf_append(out, &byte, 1))
                return SEDGE_ERR_NOMEM;
        }
    }
    return SEDGE_OK;
}
