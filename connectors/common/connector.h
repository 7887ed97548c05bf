/*
 * connector: what every connector program shares — its parameters (the
 * group document's "parameters", its config), the loop that serves the
 * core's invocations while it waits on its own devices and timers, log
 * lines, and small codecs (base64, numbers in JSON).
 *
 * A connector is a long-lived function (docs/function-ipc.md): messages
 * routed to connector:NAME arrive as invocations, one at a time; what it
 * publishes goes out as connector:NAME, where the group's routes allow.
 * A request that fails (a device that does not answer, a malformed
 * request) is answered on the connector's topics in Greengrass's words
 * and also fails its invocation, so that `sedgectl functions` counts it.
 */
#ifndef SEDGE_CONNECTOR_H
#define SEDGE_CONNECTOR_H

#include "sedge.h"

#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONN_NODISCARD __attribute__((warn_unused_result))
#define CONN_MAX_FDS 64

/* What a connector's main loop is made of. */
typedef struct {
    sedge_handler handle; /* one invocation */
    /* Descriptors to wait on besides the core's; returns how many it
     * filled (at most cap). NULL: none. */
    size_t (*fds)(void *ctx, struct pollfd *fds, size_t cap);
    /* After each wait, with the descriptors fds() gave and their revents. */
    void (*ready)(void *ctx, const struct pollfd *fds, size_t n);
    /* Milliseconds until the connector's next timed work (0: now, -1:
     * none); tick() runs it. NULL: none. */
    int64_t (*next_ms)(void *ctx);
    void (*tick)(void *ctx);
    void *ctx;
} conn_ops_t;

/* The connector's parameters (its config from the core, a JSON object; a
 * new reference). Without a core (a program started by hand) it fails
 * with the SDK's reason. */
CONN_NODISCARD sedge_err conn_parameters(json_t **params);

/* Serve invocations and run `ops` until the core ends the connection;
 * returns the reason. */
sedge_err conn_run(const conn_ops_t *ops);

/* The core's thing name (SEDGE_THING_NAME), "" when not given. */
const char *conn_thing_name(void);

/* Log lines go to stderr, which the core keeps in the connector's log
 * (sedgectl logs connector:NAME). At most `burst` lines from one place
 * per 10 s when called through CONN_LOG_LIMITED. */
void conn_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
typedef struct {
    uint64_t window_start_ms;
    unsigned count;
    unsigned skipped;
} conn_limit_t;
bool conn_limit_allows(conn_limit_t *l);

/* Monotonic milliseconds. */
uint64_t conn_now_ms(void);

/* Publish a JSON document (compact) or raw bytes as this connector; a
 * refusal (no route) is logged once per 10 s and returned. */
sedge_err conn_publish_json(const char *topic, json_t *doc);
sedge_err conn_publish(const char *topic, const void *data, size_t len);

/* A request's payload as a JSON object (the caller owns it), at most
 * `max` bytes and without duplicate keys; NULL with the reason in `why`,
 * as the connectors answer it ("Request of N bytes, over the limit of M",
 * "Invalid request: ..."). */
json_t *conn_request_load(const uint8_t *data, size_t len, size_t max, char *why, size_t why_len);

/* Parameters with defaults. */
const char *conn_param_str(json_t *params, const char *key, const char *dflt);
int64_t conn_param_int(json_t *params, const char *key, int64_t dflt);
bool conn_param_bool(json_t *params, const char *key, bool dflt);

/* Base64 (RFC 4648, with padding). conn_base64_decode is strict: only the
 * alphabet, whole groups of four, padding only at the end; false for
 * anything else. *out is malloc'ed (free it), also on success with 0
 * bytes. */
char *conn_base64_encode(const uint8_t *data, size_t len);
CONN_NODISCARD bool conn_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len);

#endif
