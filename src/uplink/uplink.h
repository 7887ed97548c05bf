/*
 * uplink: the core's own connection to a cloud MQTT broker (AWS IoT Core,
 * EMQX, Mosquitto) and the store-and-forward spool behind it.
 *
 * Messages routed to `cloud` go into the spool and are sent from it with a
 * window of unacknowledged QoS 1 publishes, so the drain rate is bounded by
 * bandwidth rather than round trips; a message leaves the spool only when
 * the cloud acknowledges it, and after a reconnect or a restart sending
 * resumes from the oldest, so order per topic holds (duplicates are
 * possible, as QoS 1 allows). Routes with "qos": 0 bypass the spool.
 *
 * The connection is MQTT 3.1.1 or 5 over TLS with a client certificate
 * (ALPN x-amzn-mqtt-ca on port 443, for AWS IoT), with keep alive, a
 * persistent session, and reconnection with exponential backoff and
 * jitter. Filters of routes whose source is `cloud` are subscribed on it and
 * what arrives is delivered locally. Other services (shadow sync, jobs)
 * publish and subscribe on the same connection through uplink_publish and
 * uplink_watch.
 */
#ifndef SEDGE_UPLINK_H
#define SEDGE_UPLINK_H

#include "base/base.h"
#include "spool.h"
#include "store/store.h"

#include <jansson.h>
#include <uv.h>

typedef struct uplink uplink_t;

typedef struct {
    char *endpoint; /* host:port */
    char *ca_file;
    char *cert_file;
    char *key_file;
    char *client_id;
    uint8_t protocol; /* 4 (3.1.1) or 5 */
    uint16_t keepalive_s;
    uint16_t max_inflight;
    uint32_t reconnect_min_ms;
    uint32_t reconnect_max_ms;
    spool_storage_t spool_storage;
    uint64_t spool_max_bytes;
    spool_when_full_t spool_when_full;
} uplink_config_t;

typedef struct {
    uv_loop_t *loop;
    store_t *store;
    const uplink_config_t *cfg; /* copied */
    /* A message from the cloud for local delivery (source "cloud"). */
    void (*deliver)(void *ctx, bytes_t topic, bytes_t payload, uint8_t qos);
    /* The connection came up (true) or went down (false). */
    void (*on_link)(void *ctx, bool up);
    void *ctx;
} uplink_options_t;

NODISCARD sedge_err uplink_start(const uplink_options_t *opts, uplink_t **out);
/* Disconnect cleanly; `done` once the handles are closed. */
void uplink_stop(uplink_t *u, void (*done)(void *ctx), void *ctx);
void uplink_free(uplink_t *u);

/* A message routed to the cloud. route_qos 0: sent now if connected and
 * dropped (counted) if not; otherwise spooled. SEDGE_ERR_FULL when the
 * spool refuses it. `*batch`: the store batch the publisher's
 * acknowledgement must wait for (0: none). */
NODISCARD sedge_err uplink_send(uplink_t *u, bytes_t topic, bytes_t payload, int route_qos,
                                uint64_t *batch);

/* The filters to subscribe to on the cloud (routes whose source is cloud);
 * replaces the previous set and takes effect at once when connected. */
void uplink_set_subscriptions(uplink_t *u, const char *const *filters, size_t count);

/* Services' own traffic: publish directly (not spooled; false when not
 * connected), and receive every message whose topic starts with `prefix`. */
bool uplink_publish(uplink_t *u, bytes_t topic, bytes_t payload, uint8_t qos);
typedef void (*uplink_watch_fn)(void *ctx, bytes_t topic, bytes_t payload);
NODISCARD sedge_err uplink_watch(uplink_t *u, const char *filter, uplink_watch_fn fn, void *ctx);
/* Stop calling fn for `filter` with this ctx (the cloud subscription stays
 * until the next connection). */
void uplink_unwatch(uplink_t *u, const char *filter, void *ctx);
bool uplink_connected(const uplink_t *u);
/* A store batch failed (disk full): what the spool wrote in it is gone. */
void uplink_store_failed(uplink_t *u, uint64_t batch);

/* {"state", "endpoint", "queued", "bytes", "oldest_age_s", "sent",
 *  "dropped", "reconnects", "last_error", ...} (a new reference) */
json_t *uplink_status(uplink_t *u);

#endif
