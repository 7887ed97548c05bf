/*
 * spool: the FIFO of messages waiting for the cloud — on disk (SQLite, the
 * default) or in memory — bounded by max_bytes, with a choice when full:
 * drop the oldest or refuse the new. A message leaves only when the cloud
 * has acknowledged it (spool_remove).
 *
 * On disk every message is a row; memory holds a window from the head of
 * the queue (SPOOL_WINDOW_BYTES), refilled from the store as the uplink
 * sends, so a spool of millions of messages costs little RAM. Rows are
 * read only once the batch that wrote them has settled.
 */
#ifndef SEDGE_SPOOL_H
#define SEDGE_SPOOL_H

#include "base/base.h"
#include "store/store.h"

#define SPOOL_WINDOW_BYTES (4u << 20)
#define SPOOL_LOAD_CHUNK 2048

typedef enum { SPOOL_DISK, SPOOL_MEMORY } spool_storage_t;
typedef enum { SPOOL_DROP_OLDEST, SPOOL_REJECT_NEW } spool_when_full_t;

typedef struct spool_entry {
    struct spool_entry *next, *prev;
    uint64_t seq;
    int64_t created_at;
    uint8_t qos;
    bool retain;
    bool sent;          /* handed to the cloud at least once (resend with DUP) */
    uint8_t strikes;    /* links the cloud cut while it was alone in flight */
    uint16_t packet_id; /* while in flight on the current connection */
    uint64_t sent_ms;   /* when it was last sent (monotonic) */
    bytes_t topic;
    bytes_t payload;
    uint8_t data[];
} spool_entry_t;

typedef struct spool spool_t;

typedef struct {
    store_t *store;
    spool_storage_t storage;
    uint64_t max_bytes;
    spool_when_full_t when_full;
    /* Entries became available to send after being loaded. */
    void (*on_ready)(void *ctx);
    /* An entry is about to be dropped (drop_oldest) while it may be in
     * flight: forget it. */
    void (*on_evict)(void *ctx, spool_entry_t *e);
    void *ctx;
} spool_options_t;

typedef struct {
    uint64_t queued;
    uint64_t bytes;
    int64_t oldest_created_at; /* 0 when empty */
    uint64_t appended;
    uint64_t sent_acked;
    uint64_t dropped;      /* drop_oldest evictions and reject_new refusals */
    uint64_t dead_letters; /* moved aside (spool_dead_letter), ever, this store */
} spool_stats_t;

NODISCARD sedge_err spool_open(const spool_options_t *opts, spool_t **out);
void spool_free(spool_t *s);

/* Append a message (copied). SEDGE_ERR_FULL: refused (reject_new), or
 * larger than the whole spool. `*batch` is the store batch the caller's
 * acknowledgement must wait for (0 in memory mode). */
NODISCARD sedge_err spool_append(spool_t *s, bytes_t topic, bytes_t payload, uint8_t qos,
                                 bool retain, uint64_t *batch);

/* The next entry not yet taken since the last rewind, or NULL when none
 * is in memory now (more may come: on_ready). */
spool_entry_t *spool_take(spool_t *s);
/* Take everything again from the head (a new connection). */
void spool_rewind(spool_t *s);
/* The cloud has it: remove and free it. */
void spool_remove(spool_t *s, spool_entry_t *e);
/* The cloud will never take it: move it to the store's dead letters with
 * `reason`, remove and free it. */
void spool_dead_letter(spool_t *s, spool_entry_t *e, const char *reason);
void spool_get_stats(const spool_t *s, spool_stats_t *out);

#endif
