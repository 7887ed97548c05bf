/*
 * internal: what the SDK's source files share — a growable buffer, the
 * JSON writer and flat-header reader, frames on the socket, and the one
 * connection to the core.
 *
 * Internal names start with sdk_ so that they cannot collide with a
 * function's own symbols when it links libsedge.a; libsedge.so exports only
 * sedge_* (libsedge.map).
 */
#ifndef SEDGE_SDK_INTERNAL_H
#define SEDGE_SDK_INTERNAL_H

#include "sedge.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SDK_NODISCARD __attribute__((warn_unused_result))

/* A frame on the wire, length prefix included, is at most 16 MiB. We send
 * no more than that; we accept a length field up to 16 MiB, so a core that
 * counts the limit without the prefix is still understood. */
#define SDK_FRAME_MAX (16u << 20)
#define SDK_FRAME_PREFIX 8u
/* A header is small; the longest the core sends is a few hundred bytes. */
#ifndef SDK_HEADER_MAX_FIELDS
#define SDK_HEADER_MAX_FIELDS 32
#endif
#define SDK_JSON_MAX_DEPTH 32
#define SDK_VERSION_STRING "c/0.1"

/* An owned, growable byte buffer. Zero-initialised is empty and valid. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} sdk_buf_t;

SDK_NODISCARD bool sdk_buf_put(sdk_buf_t *b, const void *data, size_t len);
void sdk_buf_release(sdk_buf_t *b);

/* JSON writer for one flat object. Errors are sticky: write every field,
 * then sdk_json_end() says whether the object is complete. */
typedef struct {
    sdk_buf_t out;
    sedge_err err;
    size_t fields;
} sdk_json_t;

void sdk_json_begin(sdk_json_t *j);
/* `value` must be valid UTF-8 (else SEDGE_ERR_INVALID at the end). */
void sdk_json_str(sdk_json_t *j, const char *key, const char *value);
void sdk_json_int(sdk_json_t *j, const char *key, int64_t value);
void sdk_json_bool(sdk_json_t *j, const char *key, bool value);
SDK_NODISCARD sedge_err sdk_json_end(sdk_json_t *j);
void sdk_json_release(sdk_json_t *j);
bool sdk_utf8_valid(const uint8_t *s, size_t len);

/* A flat JSON object as received: strings, integers, booleans and null are
 * kept; numbers with a fraction, nested objects and arrays are skipped
 * (type OTHER), so a core may add fields without breaking old SDKs. */
typedef enum {
    SDK_JSON_STRING,
    SDK_JSON_INT,
    SDK_JSON_BOOL,
    SDK_JSON_NULL,
    SDK_JSON_OTHER
} sdk_json_type_t;

typedef struct {
    const char *key;
    sdk_json_type_t type;
    const char *str; /* NUL-terminated; never contains NUL */
    int64_t num;
    bool boolean;
} sdk_json_field_t;

typedef struct {
    sdk_json_field_t fields[SDK_HEADER_MAX_FIELDS];
    size_t count;
} sdk_header_t;

/* Parse `text` in place: strings are unescaped into the same memory, so it
 * must be writable and outlive the header. SEDGE_ERR_MALFORMED when it is
 * not one JSON object of UTF-8 text, has a duplicated key or more than
 * SDK_HEADER_MAX_FIELDS fields. */
SDK_NODISCARD sedge_err sdk_header_parse(char *text, size_t len, sdk_header_t *h);
const sdk_json_field_t *sdk_header_get(const sdk_header_t *h, const char *key);
/* NULL when absent or not a string. */
const char *sdk_header_str(const sdk_header_t *h, const char *key);
bool sdk_header_int(const sdk_header_t *h, const char *key, int64_t *value);
bool sdk_header_bool(const sdk_header_t *h, const char *key, bool *value);

/* One received frame; owns its memory. */
typedef struct {
    uint8_t *mem;
    sdk_header_t header;
    const char *op;
    const uint8_t *payload;
    size_t payload_len;
} sdk_frame_t;

/* SEDGE_ERR_CLOSED at end of stream, SEDGE_ERR_IO on a socket error,
 * SEDGE_ERR_MALFORMED / SEDGE_ERR_TOO_LARGE for a bad frame; the reason is
 * in sedge_last_error(). */
SDK_NODISCARD sedge_err sdk_frame_read(int fd, sdk_frame_t *f);
SDK_NODISCARD sedge_err sdk_frame_write(int fd, const sdk_buf_t *header, const void *payload,
                                        size_t payload_len);
void sdk_frame_release(sdk_frame_t *f);

/* The connection. Connected lazily by the first call that needs it; once
 * it fails (the core closed it, or broke the protocol) it stays failed and
 * every call returns the error that ended it. */
SDK_NODISCARD sedge_err sdk_connect(void);
/* The next request number and a header started with op and req. */
int64_t sdk_begin_request(sdk_json_t *j, const char *op);
/* Send a request and wait for its reply. SEDGE_OK means a reply with this
 * req arrived (look at its "ok"); anything else ends the connection. */
SDK_NODISCARD sedge_err sdk_request(sdk_json_t *j, int64_t req, const void *payload,
                                    size_t payload_len, sdk_frame_t *reply);
/* A frame that needs no answer (log, result). */
SDK_NODISCARD sedge_err sdk_send(sdk_json_t *j, const void *payload, size_t payload_len);
/* Receive the next frame; errors end the connection. */
SDK_NODISCARD sedge_err sdk_receive(sdk_frame_t *f);
/* The invocation kept by a request that received it while waiting for its
 * reply (sedge_pending); false when none. */
bool sdk_take_waiting(sdk_frame_t *f);
/* Is a handler running (run.c)? */
bool sdk_in_handler(void);
/* End the connection with `err` (kept as the reason for later calls). */
void sdk_fail(sedge_err err);
bool sdk_running(void);
void sdk_set_running(bool running);

/* A failed reply's code and message as a sedge_err; sets the last error. */
SDK_NODISCARD sedge_err sdk_reply_error(const sdk_frame_t *reply);
/* A reply's code word, or the core's error sentence, as a sedge_err;
 * SEDGE_ERR_FAILED when it is none of the known ones. */
SDK_NODISCARD sedge_err sdk_code_from_word(const char *word);
SDK_NODISCARD sedge_err sdk_code_from_number(int64_t code);

/* The last error's message (sedge_last_error). */
void sdk_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Returns err after recording its message. */
SDK_NODISCARD sedge_err sdk_error(sedge_err err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A copy of bytes into a caller-owned sedge_buf, NUL-terminated beyond len. */
SDK_NODISCARD sedge_err sdk_buf_copy_out(sedge_buf *out, const uint8_t *data, size_t len);

#endif
