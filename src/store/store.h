/*
 * store: Sedge's one SQLite database (WAL mode) and the only code that
 * speaks SQL to it.
 *
 * Writes are not executed where they are asked for. Each store_put_* /
 * store_del_* call appends a small record to the open batch (copying what it
 * is given, so the caller keeps ownership of its buffers) and returns the
 * number of that batch. Once per event-loop turn the open batch, if any, is
 * handed to a worker thread that applies it in one transaction — a group
 * commit — while the next batch fills. When a batch is durable the owner's
 * commit callback runs on the loop thread with its number; the broker sends
 * the acknowledgements it held back for that batch. At most one batch is in
 * flight, so batches commit in order.
 *
 * Queued entries and messages are keyed by numbers the broker never
 * reuses, so their deletions can wait for the end of their batch and go to
 * SQLite as ranges: a subscriber acknowledging a run of messages costs two
 * statements per batch, not two per message.
 *
 * Reads happen on the loop thread at start-up, before the first batch: the
 * store_load_* functions hand every stored row to a callback once.
 */
#ifndef SEDGE_STORE_H
#define SEDGE_STORE_H

#include "base/base.h"
#include "base/histogram.h"

#include <uv.h>

typedef struct store store_t;

typedef struct {
    const char *path;         /* database file */
    bool synchronous_full;    /* fsync every commit (power-loss safe) */
    uint32_t busy_timeout_ms; /* wait for another process's lock; 0: 5000 */
} store_options_t;

NODISCARD sedge_err store_open(uv_loop_t *loop, const store_options_t *opts, store_t **out);
/* Commits what is pending (synchronously) and closes. */
void store_close(store_t *s);

/* The batch the next write joins; 0 never names a batch. */
uint64_t store_open_batch(const store_t *s);
/* The batch to wait for so that every write made so far is durable; 0
 * when all of them already are. */
uint64_t store_pending_batch(const store_t *s);
/* The last commit failed and is being retried. Owners refuse new durable
 * work meanwhile (with a reason the sender sees), so that what waits for
 * the retry stays bounded. */
bool store_failing(const store_t *s);
/* The newest batch known durable. */
uint64_t store_committed_batch(const store_t *s);
/* The end of a loop turn (core's before-wait hook): hand the open batch,
 * if it holds writes, to the worker, which commits it while the next one
 * fills. */
void store_before_wait(store_t *s);
/* Commit the open batch now, on the calling thread (start-up, shutdown). */
NODISCARD sedge_err store_flush_sync(store_t *s);

typedef struct {
    uint64_t batches;
    uint64_t writes;
    uint64_t failures;
    uint64_t bytes_on_disk;
    histogram_t commit_latency; /* from a batch handed to the worker to its commit */
} store_stats_t;
void store_get_stats(store_t *s, store_stats_t *out);

/* Broker state. Strings and blobs are copied into the batch. */
typedef struct {
    bytes_t client_id;
    bytes_t owner;            /* identity that created the session */
    uint32_t expiry_interval; /* seconds; UINT32_MAX never expires */
    uint8_t version;
    int64_t disconnected_at; /* wall seconds, 0 while connected */
} store_session_t;

typedef struct {
    bytes_t client_id;
    bytes_t filter;
    uint8_t options; /* the SUBSCRIBE options byte */
    uint32_t sub_id;
} store_sub_t;

typedef struct {
    uint64_t id;
    bytes_t topic;
    bytes_t props; /* forwarded v5 properties, wire form */
    bytes_t payload;
    bytes_t source; /* the endpoint that published it, for routing */
    uint8_t qos;
    bool retain;
    int64_t expires_at; /* wall seconds, 0 = never */
} store_msg_t;

typedef struct {
    bytes_t client_id;
    uint64_t seq; /* unique in the store, never reused; orders a session's entries */
    uint64_t msg_id;
    uint8_t qos;
    uint16_t packet_id; /* 0 until assigned */
    uint8_t state;      /* the broker's outgoing state */
    bool retain;        /* the RETAIN flag to send */
    bytes_t sub_ids;    /* subscription identifiers, 4 bytes each */
} store_queued_t;

uint64_t store_put_session(store_t *s, const store_session_t *v);
/* Deletes the session, its subscriptions and its QoS 2 identifiers (its
 * queued entries are deleted one by one by the broker, which knows them). */
uint64_t store_del_session(store_t *s, bytes_t client_id);
uint64_t store_put_sub(store_t *s, const store_sub_t *v);
uint64_t store_del_sub(store_t *s, bytes_t client_id, bytes_t filter);
uint64_t store_put_msg(store_t *s, const store_msg_t *v);
uint64_t store_del_msg(store_t *s, uint64_t id);
uint64_t store_put_queued(store_t *s, const store_queued_t *v);
uint64_t store_set_queued_state(store_t *s, uint64_t seq, uint16_t packet_id, uint8_t state);
uint64_t store_del_queued(store_t *s, uint64_t seq);
uint64_t store_put_retained(store_t *s, bytes_t topic, uint64_t msg_id);
uint64_t store_del_retained(store_t *s, bytes_t topic);
uint64_t store_put_inbound(store_t *s, bytes_t client_id, uint16_t packet_id);
uint64_t store_del_inbound(store_t *s, bytes_t client_id, uint16_t packet_id);

/* Deployments: each version of the group document, and which is active.
 * The active version is a meta value written in the same batch as the
 * statuses, so a crash leaves either the old or the new one active. */
typedef struct {
    uint64_t version;
    bytes_t group;
    bytes_t checksum;
    int64_t created_at; /* wall seconds */
    bytes_t status;     /* deploying, active, superseded, failed, rolled_back */
    bytes_t reason;     /* why it failed or was rolled back; may be empty */
} store_deployment_t;

uint64_t store_put_deployment(store_t *s, const store_deployment_t *v, bytes_t document);
uint64_t store_set_deployment_status(store_t *s, uint64_t version, const char *status,
                                     const char *reason);
uint64_t store_put_meta(store_t *s, const char *key, int64_t value);

typedef sedge_err (*store_deployment_fn)(void *ctx, const store_deployment_t *v);
/* Oldest first, without documents. */
NODISCARD sedge_err store_load_deployments(store_t *s, store_deployment_fn fn, void *ctx);
/* A version's document, malloc'd (the caller frees it); NOT_FOUND if none. */
NODISCARD sedge_err store_read_deployment_document(store_t *s, uint64_t version, char **text,
                                                   size_t *len);
/* NOT_FOUND when the key was never written. */
NODISCARD sedge_err store_read_meta(store_t *s, const char *key, int64_t *value);

/* Shadows: one row per (thing, shadow name; "" for the classic shadow).
 * A deleted shadow keeps its row (deleted_at > 0) so that a shadow
 * created again within 48 hours continues its version numbers. */
uint64_t store_put_shadow(store_t *s, bytes_t thing, bytes_t name, int64_t version,
                          bytes_t document, int64_t deleted_at);
/* The document is malloc'd (NULL when deleted); NOT_FOUND if no row. */
NODISCARD sedge_err store_read_shadow(store_t *s, bytes_t thing, bytes_t name, int64_t *version,
                                      char **document, int64_t *deleted_at);
typedef sedge_err (*store_name_fn)(void *ctx, bytes_t name);
/* Names of the thing's live named shadows, in order. */
NODISCARD sedge_err store_list_shadows(store_t *s, bytes_t thing, store_name_fn fn, void *ctx);

/* The cloud spool: messages waiting for the cloud, in order of `seq`. */
typedef struct {
    uint64_t seq;
    bytes_t topic;
    bytes_t payload;
    uint8_t qos;
    bool retain;        /* publish to the cloud with RETAIN */
    int64_t created_at; /* wall seconds */
} store_spooled_t;

uint64_t store_put_spooled(store_t *s, const store_spooled_t *v);
uint64_t store_del_spooled(store_t *s, uint64_t seq);

/* Dead letters: spooled messages the cloud will not take, moved out of the
 * spool (in the same write) with the reason; only the newest
 * STORE_DEAD_LETTERS_KEPT are kept. */
#define STORE_DEAD_LETTERS_KEPT 1000
#define STORE_DEAD_LETTERS_KEPT_TEXT "1000"
uint64_t store_put_dead_letter(store_t *s, const store_spooled_t *v, int64_t dead_at,
                               bytes_t reason);
NODISCARD sedge_err store_count_dead_letters(store_t *s, uint64_t *out);

/* AWS IoT Jobs status updates waiting for the cloud's acceptance: the
 * update's JSON payload, one per job. */
uint64_t store_put_job_update(store_t *s, bytes_t job_id, bytes_t payload);
uint64_t store_del_job_update(store_t *s, bytes_t job_id);
typedef sedge_err (*store_job_update_fn)(void *ctx, bytes_t job_id, bytes_t payload);
/* Oldest first. */
NODISCARD sedge_err store_load_job_updates(store_t *s, store_job_update_fn fn, void *ctx);
typedef struct {
    uint64_t count;
    uint64_t bytes; /* topics and payloads */
    uint64_t first_seq, last_seq;
} store_spool_summary_t;
NODISCARD sedge_err store_spool_summary(store_t *s, store_spool_summary_t *out);
typedef sedge_err (*store_spooled_fn)(void *ctx, const store_spooled_t *v);
/* Up to `limit` messages with seq > after, in order. */
NODISCARD sedge_err store_load_spooled(store_t *s, uint64_t after, size_t limit,
                                       store_spooled_fn fn, void *ctx);

/* Call fn(ctx, result) on the loop thread once batch `seq` has committed;
 * at once if it already has. This is how every owner hears of commits.
 * A commit that fails (disk full, a lock held too long, an I/O error) is
 * not reported: its writes are kept and retried, with a growing delay,
 * until they commit, so what waits for them waits longer and nothing is
 * reported durable that is not (see store_failing). `result` is an error
 * only for the last commit, at store_close. */
NODISCARD sedge_err store_when_settled(store_t *s, uint64_t seq,
                                       void (*fn)(void *ctx, sedge_err result), void *ctx);

/* Start-up loading: each callback gets views valid during the call only;
 * returning an error stops the load and is returned. */
typedef sedge_err (*store_session_fn)(void *ctx, const store_session_t *v);
typedef sedge_err (*store_sub_fn)(void *ctx, const store_sub_t *v);
typedef sedge_err (*store_msg_fn)(void *ctx, const store_msg_t *v);
typedef sedge_err (*store_queued_fn)(void *ctx, const store_queued_t *v);
typedef sedge_err (*store_retained_fn)(void *ctx, bytes_t topic, uint64_t msg_id);
typedef sedge_err (*store_inbound_fn)(void *ctx, bytes_t client_id, uint16_t packet_id);

NODISCARD sedge_err store_load_sessions(store_t *s, store_session_fn fn, void *ctx);
NODISCARD sedge_err store_load_subs(store_t *s, store_sub_fn fn, void *ctx);
/* Messages still referenced by a queue or a retained topic; others are
 * removed first. */
NODISCARD sedge_err store_load_msgs(store_t *s, store_msg_fn fn, void *ctx);
NODISCARD sedge_err store_load_queued(store_t *s, store_queued_fn fn, void *ctx);
NODISCARD sedge_err store_load_retained(store_t *s, store_retained_fn fn, void *ctx);
NODISCARD sedge_err store_load_inbound(store_t *s, store_inbound_fn fn, void *ctx);

#endif
