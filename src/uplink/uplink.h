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
 * jitter — also after a link that was up drops, so a fleet of cores does
 * not reconnect in step. Filters of routes whose source is `cloud` are
 * subscribed on it (a few per SUBSCRIBE) and what arrives is delivered
 * locally. Other services (shadow sync, jobs) publish and subscribe on the
 * same connection through uplink_publish and uplink_watch.
 *
 * The cloud's limits (uplink_limits_t; AWS IoT Core's documented quotas
 * when the endpoint is AWS's) are kept, not discovered: a message whose
 * topic or payload the cloud would refuse is refused when it is routed
 * (counted, logged); the drain paces itself to the cloud's publish and
 * byte rates and slows down further when the cloud throttles (MQTT 5
 * PUBACK 0x97, or acknowledgements that never come). A message the cloud
 * refuses never holds the queue: an MQTT 5 refusal moves it to the dead
 * letters at once; an MQTT 3.1.1 cloud (AWS IoT Core among them) answers
 * with a disconnection instead, so after a drop with messages in flight
 * the next ones go one at a time, and one that is alone in flight each
 * time the cloud cuts the link, dead_letter_after times, is moved aside.
 */
#ifndef SEDGE_UPLINK_H
#define SEDGE_UPLINK_H

#include "base/base.h"
#include "pace.h"
#include "spool.h"
#include "store/store.h"

#include <jansson.h>
#include <uv.h>

typedef struct uplink uplink_t;

/* What the cloud accepts, and how fast; 0: no limit. */
typedef struct {
    uint32_t max_topic_bytes;
    uint32_t max_topic_slashes; /* not counting a $aws/rules/RULE/ prefix */
    uint32_t max_payload_bytes;
    uint32_t max_filters_per_subscribe; /* at least 1 */
    uint32_t publishes_per_s;           /* the drain's pace, per connection */
    uint32_t bytes_per_s;
    uint32_t shadow_requests_per_s; /* shadow sync, per thing */
    uint32_t shadow_inflight;       /* shadow requests unanswered at once */
    uint32_t ack_timeout_ms;        /* no PUBACK: the cloud throttles or lost it */
    uint32_t dead_letter_after;     /* cuts while alone in flight */
} uplink_limits_t;

/* AWS IoT Core's quotas (aws) or a plain MQTT broker's (none but 8
 * filters a SUBSCRIBE, which every broker takes). */
void uplink_limits_default(bool aws, uplink_limits_t *out);
/* host:port of AWS IoT Core (*.amazonaws.com, *.amazonaws.com.cn)? */
bool uplink_endpoint_is_aws(const char *endpoint);
/* Does `topic` fit the limits — or, with `filter`, every topic the filter
 * matches? When not, `why` says what is wrong (NUL-terminated). */
bool uplink_topic_fits(const uplink_limits_t *l, bytes_t topic, bool filter, char *why,
                       size_t why_len);

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
    bool aws; /* the profile of `limits`: "aws-iot" or "mqtt" */
    uplink_limits_t limits;
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
/* The end of a loop turn (core's before-wait hook): write what was queued. */
void uplink_before_wait(uplink_t *u);

/* A message routed to the cloud, with its RETAIN flag. route_qos 0: sent
 * now if connected and the pace allows, dropped (counted) if not;
 * otherwise spooled. SEDGE_ERR_FULL when the spool refuses it (for now),
 * SEDGE_ERR_TOO_LARGE / SEDGE_ERR_INVALID when its payload / topic is
 * beyond the cloud's limits (for good; counted and logged). `*batch`: the
 * store batch the publisher's acknowledgement must wait for (0: none). */
NODISCARD sedge_err uplink_send(uplink_t *u, bytes_t topic, bytes_t payload, int route_qos,
                                bool retain, uint64_t *batch);

/* The filters to subscribe to on the cloud (routes whose source is cloud);
 * replaces the previous set and takes effect at once when connected. */
void uplink_set_subscriptions(uplink_t *u, const char *const *filters, size_t count);

/* Services' own traffic: publish directly (not spooled; false when not
 * connected or beyond the limits; counted in the pace), and receive every
 * message whose topic matches `filter`. */
bool uplink_publish(uplink_t *u, bytes_t topic, bytes_t payload, uint8_t qos);
typedef void (*uplink_watch_fn)(void *ctx, bytes_t topic, bytes_t payload);
NODISCARD sedge_err uplink_watch(uplink_t *u, const char *filter, uplink_watch_fn fn, void *ctx);
/* Stop calling fn for `filter` with this ctx (the cloud subscription stays
 * until the next connection). */
void uplink_unwatch(uplink_t *u, const char *filter, void *ctx);
bool uplink_connected(const uplink_t *u);
const uplink_limits_t *uplink_limits(const uplink_t *u);
/* Backoff with full jitter: a delay in [min_ms, min(max_ms, min_ms * 2^n)]
 * for the n-th (from 1) consecutive failure. */
uint64_t uplink_backoff_ms(uint32_t min_ms, uint32_t max_ms, uint32_t n);
/* The same with the link's reconnect_min_ms and reconnect_max_ms: how long
 * services on the link wait after the n-th failure in a row. */
uint64_t uplink_retry_ms(const uplink_t *u, uint32_t n);

/* {"state", "endpoint", "queued", "bytes", "oldest_age_s", "sent",
 *  "dropped", "reconnects", "last_error", "refused", "dead_letters",
 *  "throttled", "pace", "backoff", "limits", ...} (a new reference) */
json_t *uplink_status(uplink_t *u);

#endif
