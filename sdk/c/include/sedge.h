/*
 * sedge.h — the Sedge function SDK for C.
 *
 * A function is a program the Sedge core starts; it links libsedge, calls
 * sedge_run() with its handler, and the handler is called once per
 * invocation (a message routed to the function, or a direct invoke). From
 * inside a handler (or before sedge_run) the function may publish, use
 * device shadows, invoke other functions, log, and read its configuration.
 * The protocol underneath is docs/function-ipc.md.
 *
 * Every call returns a sedge_err; SEDGE_OK is 0. Strings are
 * NUL-terminated; buffers come with their length. Memory the SDK returns
 * (sedge_buf) belongs to the caller until sedge_buf_free(). The SDK is not
 * thread-safe: call it from the thread that runs sedge_run().
 */
#ifndef SEDGE_SDK_H
#define SEDGE_SDK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SEDGE_OK = 0,
    SEDGE_ERR_NOMEM,   /* out of memory */
    SEDGE_ERR_INVALID, /* a bad argument */
    SEDGE_ERR_AGAIN,
    SEDGE_ERR_MALFORMED, /* the core sent something unreadable */
    SEDGE_ERR_PROTOCOL,
    SEDGE_ERR_TOO_LARGE, /* over a limit (shadow document, frame) */
    SEDGE_ERR_NOT_FOUND, /* no such shadow or function */
    SEDGE_ERR_EXISTS,
    SEDGE_ERR_DENIED, /* no route allows it */
    SEDGE_ERR_IO,     /* the socket failed; not started by sedged? */
    SEDGE_ERR_STORE,
    SEDGE_ERR_TLS,
    SEDGE_ERR_FULL,    /* the target's queue is full */
    SEDGE_ERR_TIMEOUT, /* the invoked function timed out */
    SEDGE_ERR_BUSY,
    SEDGE_ERR_CLOSED, /* the core closed the connection */
    SEDGE_ERR_UNSUPPORTED,
    SEDGE_ERR_CONFLICT, /* shadow version conflict (409) */
    SEDGE_ERR_FAILED,   /* the invoked function failed; see sedge_last_error() */
} sedge_err;

/* A sentence for an error code. */
const char *sedge_strerror(sedge_err err);
/* The core's message for the last failed call, e.g. "timed out"; never
 * NULL. Valid until the next SDK call. */
const char *sedge_last_error(void);

/* One invocation. The pointers are valid during the handler call. */
typedef struct {
    const char *topic; /* the message's topic; "" for a direct invoke */
    const uint8_t *payload;
    size_t payload_len;
} sedge_event;

typedef struct sedge_result sedge_result; /* opaque */

/* Who sent the invocation: "thing:NAME", "function:NAME", "cloud",
 * "shadow" or "sedgectl" ("" when the core did not say). Only for the
 * event a handler was given; valid during the handler call. */
const char *sedge_event_source(const sedge_event *ev);

/* Return SEDGE_OK with an optional result (sedge_result_set), or an error:
 * the invoker then gets a failure with the message given to
 * sedge_result_error() (or the error's sentence). */
typedef sedge_err (*sedge_handler)(const sedge_event *ev, sedge_result *res, void *ctx);

/* Connect to the core and serve invocations until the core stops the
 * function. Returns only on error (SEDGE_ERR_IO when not run by sedged). */
sedge_err sedge_run(sedge_handler handler, void *ctx);

/* For a program with work of its own besides invocations (a connector
 * polling a device, a timer), in place of sedge_run: wait until sedge_fd()
 * is readable, beside its own descriptors (poll), or sedge_pending() is
 * true, then call sedge_serve() to serve one invocation. Between
 * invocations it may publish and use the other calls freely.
 *
 * sedge_fd connects to the core if needed and gives the connection's
 * descriptor (only to wait on: do not read, write or close it). */
sedge_err sedge_fd(int *fd);
/* An invocation arrived while a call waited for the core's reply, and
 * waits to be served: call sedge_serve() without waiting on the fd. */
int sedge_pending(void);
/* Serve one invocation: the pending one, or the next from the socket
 * (blocking until it arrives). Returns what ended the connection, as
 * sedge_run would, or SEDGE_OK. */
sedge_err sedge_serve(sedge_handler handler, void *ctx);

/* The invocation's result payload (copied). */
sedge_err sedge_result_set(sedge_result *res, const void *data, size_t len);
/* A failure message for the invoker (copied). Calling it makes the
 * invocation fail even if the handler then returns SEDGE_OK. */
sedge_err sedge_result_error(sedge_result *res, const char *message);

/* Publish a message as this function; the group's routes from
 * function:NAME decide where it goes (SEDGE_ERR_DENIED when none). */
sedge_err sedge_publish(const char *topic, const void *payload, size_t len, int qos);

/* A buffer the SDK allocated for the caller. data[len] is a NUL byte (not
 * counted in len), so a text reply can be used as a string. */
typedef struct {
    uint8_t *data;
    size_t len;
} sedge_buf;
void sedge_buf_free(sedge_buf *buf);

/* Device shadows (AWS IoT document format). `name` NULL is the classic
 * shadow. On success `*doc` receives the accepted document (free it with
 * sedge_buf_free; may be NULL to ignore). Errors: SEDGE_ERR_NOT_FOUND (404),
 * SEDGE_ERR_CONFLICT (409), SEDGE_ERR_TOO_LARGE (413), SEDGE_ERR_INVALID
 * (400), SEDGE_ERR_DENIED (no route to the shadow); the rejected document's
 * message is in sedge_last_error(). */
sedge_err sedge_shadow_get(const char *thing, const char *name, sedge_buf *doc);
sedge_err sedge_shadow_update(const char *thing, const char *name, const char *update_json,
                              sedge_buf *doc);
sedge_err sedge_shadow_delete(const char *thing, const char *name, sedge_buf *doc);

/* Invoke another function and wait for its result (`result` may be NULL),
 * or (async) only until it is queued. */
sedge_err sedge_invoke(const char *function, const void *payload, size_t len, sedge_buf *result);
sedge_err sedge_invoke_async(const char *function, const void *payload, size_t len);

typedef enum { SEDGE_LOG_DEBUG, SEDGE_LOG_INFO, SEDGE_LOG_WARN, SEDGE_LOG_ERROR } sedge_log_level;
/* Into the function's log (sedgectl logs NAME). */
sedge_err sedge_log(sedge_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The function's "config" object from the group document, as JSON text
 * (free with sedge_buf_free). */
sedge_err sedge_config(sedge_buf *config);

/* The value of a secret resource of the group that the function lists in
 * its resources ({"id": ID}), as deployed (free with sedge_buf_free; wipe
 * it first if it matters). Never in the environment or a file: only this
 * call gives it. SEDGE_ERR_NOT_FOUND when the function does not list it. */
sedge_err sedge_secret_get(const char *id, sedge_buf *value);

#ifdef __cplusplus
}
#endif

#endif
