/*
 * shadow: the local device shadow service, compatible with AWS IoT Device
 * Shadow — classic and named shadows, on the topics
 *   $aws/things/THING/shadow[/name/SHADOW]/{update,get,delete}
 * with replies on .../accepted and .../rejected, and .../update/delta and
 * .../update/documents; also callable directly (sedgectl, functions).
 *
 * Documents are versioned and durable: an update's /accepted (and its
 * delta and documents) is published only once the new document is
 * committed to the store, so an acknowledged update survives kill -9.
 * Replies leave in the order requests came in.
 *
 * Owns the shadow documents (their rows in the store) and the requests
 * waiting for their commit.
 */
#ifndef SEDGE_SHADOW_H
#define SEDGE_SHADOW_H

#include "base/base.h"
#include "store/store.h"

#include <jansson.h>

#define SHADOW_DOC_DEFAULT_BYTES 8192
#define SHADOW_DOC_MAX_BYTES 30720

typedef struct shadow_svc shadow_svc_t;

typedef enum { SHADOW_GET, SHADOW_UPDATE, SHADOW_DELETE } shadow_op_t;

typedef struct {
    store_t *store;
    size_t max_doc_bytes; /* desired + reported, as JSON */
    /* Publish a reply on `topic` (views valid during the call). */
    void (*publish)(void *ctx, bytes_t topic, bytes_t payload);
    /* Is anyone subscribed to `topic`? Documents and deltas nobody would
     * receive are not built. */
    bool (*has_listeners)(void *ctx, bytes_t topic);
    /* A change was accepted and is durable: `accepted` is the /accepted
     * document (its "state" is the request's, with its "clientToken"). */
    void (*on_change)(void *ctx, shadow_op_t op, bytes_t thing, bytes_t name, bytes_t accepted);
    void *ctx;
} shadow_options_t;

NODISCARD sedge_err shadow_open(const shadow_options_t *opts, shadow_svc_t **out);
void shadow_free(shadow_svc_t *s);

/* A message on a shadow request topic. Others are ignored. */
void shadow_on_message(shadow_svc_t *s, bytes_t topic, bytes_t payload);

/* A request from inside the core. `code` is 0 when accepted, else the
 * HTTP-like error code (400, 404, 409, 413, 500); `response` is the
 * accepted or rejected document (valid during the call). */
typedef void (*shadow_done_fn)(void *ctx, int code, bytes_t response);
void shadow_request(shadow_svc_t *s, shadow_op_t op, bytes_t thing, bytes_t name, bytes_t payload,
                    shadow_done_fn done, void *ctx);

/* The names of a thing's named shadows (a new JSON array). */
NODISCARD sedge_err shadow_list(shadow_svc_t *s, bytes_t thing, json_t **names);

/* Thing names up to 128 and shadow names up to 64 of [a-zA-Z0-9:_-]. */
bool shadow_valid_thing_name(bytes_t name);
bool shadow_valid_shadow_name(bytes_t name);

#endif
