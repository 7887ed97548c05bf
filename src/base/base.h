/*
 * base: what every Sedge module shares and nothing else — the one error
 * type, byte views with explicit lengths, a growable byte buffer, logging
 * with a module tag, and clocks.
 *
 * Every fallible function in Sedge returns a sedge_err; SEDGE_OK is 0.
 * Protocol data is never a NUL-terminated string: it travels as a bytes_t
 * (a view the holder does not own) or a buf_t (an owned, growable buffer).
 */
#ifndef SEDGE_BASE_H
#define SEDGE_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NODISCARD __attribute__((warn_unused_result))
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef enum {
    SEDGE_OK = 0,
    SEDGE_ERR_NOMEM,     /* out of memory */
    SEDGE_ERR_INVALID,   /* an argument or document is not valid */
    SEDGE_ERR_AGAIN,     /* not enough data yet; call again with more */
    SEDGE_ERR_MALFORMED, /* bytes that do not parse */
    SEDGE_ERR_PROTOCOL,  /* well-formed but forbidden by the protocol */
    SEDGE_ERR_TOO_LARGE, /* over a configured or protocol limit */
    SEDGE_ERR_NOT_FOUND,
    SEDGE_ERR_EXISTS,
    SEDGE_ERR_DENIED, /* not authorised */
    SEDGE_ERR_IO,     /* an operating-system call failed */
    SEDGE_ERR_STORE,  /* the SQLite store failed */
    SEDGE_ERR_TLS,    /* TLS or certificate failure */
    SEDGE_ERR_FULL,   /* a queue or quota is full */
    SEDGE_ERR_TIMEOUT,
    SEDGE_ERR_BUSY,   /* another operation of the kind is in progress */
    SEDGE_ERR_CLOSED, /* the peer or the service went away */
    SEDGE_ERR_UNSUPPORTED,
    SEDGE_ERR_CONFLICT, /* a version or state conflict */
    SEDGE_ERR_FAILED,   /* the operation ran and reported a failure */
} sedge_err;

/* A human sentence for an error, e.g. "malformed data". Never NULL. */
const char *sedge_strerror(sedge_err err);

/* A view of bytes owned by someone else. */
typedef struct {
    const uint8_t *data;
    size_t len;
} bytes_t;

#define BYTES_LIT(s) ((bytes_t){(const uint8_t *)(s), sizeof(s) - 1})
bytes_t bytes_of_cstr(const char *s);
bool bytes_eq(bytes_t a, bytes_t b);
bool bytes_eq_cstr(bytes_t a, const char *s);
bool bytes_has_prefix(bytes_t a, const char *prefix);
/* A malloc'd NUL-terminated copy; the caller frees it. NULL on NOMEM. */
char *bytes_dup_cstr(bytes_t b);

/* An owned, growable byte buffer. Zero-initialised is empty and valid. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} buf_t;

NODISCARD sedge_err buf_reserve(buf_t *b, size_t extra);
NODISCARD sedge_err buf_append(buf_t *b, const void *data, size_t len);
/* Drop the first n bytes, keeping the rest at the front. */
void buf_consume(buf_t *b, size_t n);
void buf_free(buf_t *b);

/* Room for one more element in an array of `count` elements of `size`
 * bytes with room for *cap: the array itself while there is room, else
 * the array grown to twice its room (`initial` the first time) with *cap
 * updated; NULL on NOMEM, the array and *cap unchanged. */
void *array_room(void *items, size_t count, size_t *cap, size_t size, size_t initial);

/* Base64 (RFC 4648, with padding). encode returns a malloc'd string (NULL
 * on NOMEM); decode appends the bytes to `out`. */
char *base64_encode(bytes_t in);
NODISCARD sedge_err base64_decode(const char *text, buf_t *out);

/* Logging to stderr, one line per call. Each .c file defines LOG_TAG
 * before using the macros. Lines repeated from one call site are
 * rate-limited (a burst, then a count of those left out); debug lines are
 * not. Safe to call from any thread. */
typedef enum { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level_t;
void log_set_level(log_level_t level);
log_level_t log_get_level(void);
/* Is stderr the journal (systemd's JOURNAL_STREAM names it)? Log lines then
 * carry <N> priorities instead of a time. */
bool log_stderr_is_journal(void);
void log_write(log_level_t level, const char *tag, const char *fmt, ...) PRINTF_LIKE(3, 4);

#define LOGE(...) log_write(LOG_ERROR, LOG_TAG, __VA_ARGS__)
#define LOGW(...) log_write(LOG_WARN, LOG_TAG, __VA_ARGS__)
#define LOGI(...) log_write(LOG_INFO, LOG_TAG, __VA_ARGS__)
#define LOGD(...)                                                                                  \
    do {                                                                                           \
        if (log_get_level() >= LOG_DEBUG)                                                          \
            log_write(LOG_DEBUG, LOG_TAG, __VA_ARGS__);                                            \
    } while (0)

/* Clocks: monotonic milliseconds for timers, wall-clock seconds for
 * anything stored or shown to users. */
uint64_t clock_mono_ms(void);
uint64_t clock_mono_us(void);
int64_t clock_wall_s(void);

/* Allocation that aborts the process on failure is not used in Sedge:
 * callers check for NULL and answer with SEDGE_ERR_NOMEM. */

#endif
