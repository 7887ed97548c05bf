/*
 * spool: the cloud spool's queue, window and paging.
 *
 * Memory holds entries from the head of the queue; `backlog` says more
 * entries exist only on disk, after `loaded_upto`. New entries join memory
 * while there is no backlog and the window has room; otherwise they are
 * written to disk only and read back in order, a chunk at a time, once the
 * batch of the last append has settled (an uncommitted row is invisible).
 */
#include "spool.h"

#include <stdlib.h>
#include <string.h>

#define LOG_TAG "spool"

struct spool {
    spool_options_t o;
    spool_entry_t *head, *tail;
    spool_entry_t *cursor; /* next entry to take; NULL: all in memory taken */
    bool cursor_at_end;    /* every entry in memory was taken */
    size_t mem_bytes;
    uint64_t count, bytes; /* everything queued, in memory or not */
    uint64_t next_seq;
    uint64_t loaded_upto; /* highest seq that has been in memory */
    bool backlog;
    bool loading;
    uint64_t last_append_batch;
    /* What the last batches appended: undone if one of them fails. */
    struct {
        uint64_t batch, count, bytes;
    } appended[2];
    spool_stats_t stats;
};

static size_t entry_size(const spool_entry_t *e)
{
    return e->topic.len + e->payload.len;
}

static spool_entry_t *entry_new(uint64_t seq, bytes_t topic, bytes_t payload, uint8_t qos,
                                int64_t created_at)
{
    spool_entry_t *e = malloc(sizeof *e + topic.len + payload.len);
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    e->seq = seq;
    e->qos = qos;
    e->created_at = created_at;
    memcpy(e->data, topic.data, topic.len);
    e->topic = (bytes_t){e->data, topic.len};
    if (payload.len)
        memcpy(e->data + topic.len, payload.data, payload.len);
    e->payload = (bytes_t){e->data + topic.len, payload.len};
    return e;
}

/* Add at the tail of memory. */
static void push(spool_t *s, spool_entry_t *e)
{
    e->prev = s->tail;
    if (s->tail)
        s->tail->next = e;
    else
        s->head = e;
    s->tail = e;
    s->mem_bytes += entry_size(e);
    s->loaded_upto = e->seq;
    if (s->cursor_at_end) {
        s->cursor = e;
        s->cursor_at_end = false;
    }
}

static void unlink_entry(spool_t *s, spool_entry_t *e)
{
    if (s->cursor == e) {
        s->cursor = e->next;
        if (!s->cursor)
            s->cursor_at_end = true;
    }
    if (e->prev)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    s->mem_bytes -= entry_size(e);
    s->count--;
    s->bytes -= entry_size(e);
}

static sedge_err load_row(void *ctx, const store_spooled_t *v)
{
    spool_t *s = ctx;
    spool_entry_t *e = entry_new(v->seq, v->topic, v->payload, v->qos, v->created_at);
    if (!e)
        return SEDGE_ERR_NOMEM;
    push(s, e);
    return SEDGE_OK;
}

static void load_now(spool_t *s)
{
    uint64_t before = s->loaded_upto;
    sedge_err err = store_load_spooled(s->o.store, s->loaded_upto, SPOOL_LOAD_CHUNK, load_row, s);
    if (err)
        LOGE("cannot read the spool from the store: %s", sedge_strerror(err));
    if (s->loaded_upto + 1 >= s->next_seq || (!err && s->loaded_upto == before))
        s->backlog = false;
    if (s->loaded_upto != before && s->o.on_ready)
        s->o.on_ready(s->o.ctx);
}

static void load_settled(void *ctx, sedge_err result)
{
    spool_t *s = ctx;
    (void)result;
    s->loading = false;
    load_now(s);
}

/* Refill memory from disk when the window has drained below half. */
static void maybe_load(spool_t *s)
{
    if (!s->backlog || s->loading || s->mem_bytes > SPOOL_WINDOW_BYTES / 2)
        return;
    s->loading = true;
    if (store_when_settled(s->o.store, s->last_append_batch, load_settled, s))
        s->loading = false;
}

sedge_err spool_open(const spool_options_t *opts, spool_t **out)
{
    spool_t *s = calloc(1, sizeof *s);
    if (!s)
        return SEDGE_ERR_NOMEM;
    s->o = *opts;
    s->next_seq = 1;
    s->cursor_at_end = true;
    if (s->o.storage == SPOOL_DISK) {
        store_spool_summary_t sum;
        sedge_err err = store_spool_summary(s->o.store, &sum);
        if (err) {
            free(s);
            return err;
        }
        s->count = sum.count;
        s->bytes = sum.bytes;
        s->next_seq = sum.last_seq + 1;
        s->loaded_upto = sum.count ? sum.first_seq - 1 : sum.last_seq;
        s->backlog = sum.count > 0;
        if (s->backlog) {
            load_now(s);
            LOGI("%llu messages (%llu bytes) waiting for the cloud from before the restart",
                 (unsigned long long)sum.count, (unsigned long long)sum.bytes);
        }
    }
    *out = s;
    return SEDGE_OK;
}

void spool_free(spool_t *s)
{
    if (!s)
        return;
    while (s->head) {
        spool_entry_t *e = s->head;
        s->head = e->next;
        free(e);
    }
    free(s);
}

static void drop_oldest(spool_t *s)
{
    spool_entry_t *e = s->head;
    if (!e)
        return;
    if (s->o.on_evict)
        s->o.on_evict(s->o.ctx, e);
    unlink_entry(s, e);
    if (s->o.storage == SPOOL_DISK)
        store_del_spooled(s->o.store, e->seq);
    s->stats.dropped++;
    free(e);
}

sedge_err spool_append(spool_t *s, bytes_t topic, bytes_t payload, uint8_t qos, uint64_t *batch)
{
    uint64_t size = topic.len + payload.len;
    *batch = 0;
    if (s->o.storage == SPOOL_DISK && store_failing(s->o.store)) {
        s->stats.dropped++; /* refused while the store cannot commit */
        return SEDGE_ERR_FULL;
    }
    if (size > s->o.max_bytes) {
        s->stats.dropped++;
        return SEDGE_ERR_FULL;
    }
    while (s->bytes + size > s->o.max_bytes) {
        if (s->o.when_full == SPOOL_REJECT_NEW || !s->head) {
            s->stats.dropped++;
            return SEDGE_ERR_FULL;
        }
        if (s->stats.dropped == 0)
            LOGW("spool full (%llu bytes): dropping the oldest messages",
                 (unsigned long long)s->o.max_bytes);
        drop_oldest(s);
    }
    int64_t now = clock_wall_s();
    uint64_t seq = s->next_seq++;
    bool in_memory =
        s->o.storage == SPOOL_MEMORY || (!s->backlog && s->mem_bytes + size <= SPOOL_WINDOW_BYTES);
    spool_entry_t *e = NULL;
    if (in_memory && !(e = entry_new(seq, topic, payload, qos, now))) {
        s->next_seq--;
        s->stats.dropped++;
        return SEDGE_ERR_NOMEM;
    }
    if (s->o.storage == SPOOL_DISK) {
        store_spooled_t row = {seq, topic, payload, qos, now};
        *batch = s->last_append_batch = store_put_spooled(s->o.store, &row);
        if (e)
            e->batch = *batch;
        int slot = (int)(*batch & 1);
        if (s->appended[slot].batch != *batch) {
            s->appended[slot].batch = *batch;
            s->appended[slot].count = 0;
            s->appended[slot].bytes = 0;
        }
        s->appended[slot].count++;
        s->appended[slot].bytes += size;
    }
    s->count++;
    s->bytes += size;
    s->stats.appended++;
    if (e)
        push(s, e);
    else
        s->backlog = true;
    return SEDGE_OK;
}

spool_entry_t *spool_take(spool_t *s)
{
    spool_entry_t *e = s->cursor_at_end ? NULL : s->cursor;
    if (!e) {
        maybe_load(s);
        return NULL;
    }
    s->cursor = e->next;
    if (!s->cursor)
        s->cursor_at_end = true;
    return e;
}

void spool_rewind(spool_t *s)
{
    s->cursor = s->head;
    s->cursor_at_end = s->head == NULL;
    for (spool_entry_t *e = s->head; e; e = e->next)
        e->packet_id = 0;
}

void spool_remove(spool_t *s, spool_entry_t *e)
{
    unlink_entry(s, e);
    if (s->o.storage == SPOOL_DISK)
        store_del_spooled(s->o.store, e->seq);
    s->stats.sent_acked++;
    free(e);
    maybe_load(s);
}

void spool_store_failed(spool_t *s, uint64_t batch)
{
    int slot = (int)(batch & 1);
    if (s->o.storage != SPOOL_DISK || s->appended[slot].batch != batch)
        return;
    uint64_t lost = s->appended[slot].count;
    uint64_t count = lost, bytes = s->appended[slot].bytes;
    s->appended[slot].count = s->appended[slot].bytes = 0;
    /* Those still in memory go now (unlinking uncounts them); those that
     * were only on disk are uncounted here. None of them is sent. */
    for (spool_entry_t *e = s->head, *next; e; e = next) {
        next = e->next;
        if (e->batch != batch)
            continue;
        if (s->o.on_evict)
            s->o.on_evict(s->o.ctx, e);
        count--;
        bytes -= entry_size(e);
        unlink_entry(s, e);
        free(e);
    }
    s->count -= count < s->count ? count : s->count;
    s->bytes -= bytes < s->bytes ? bytes : s->bytes;
    s->stats.dropped += lost;
    LOGW("the store could not keep %llu messages for the cloud (disk full?): they are dropped, "
         "and counted",
         (unsigned long long)lost);
}

void spool_get_stats(const spool_t *s, spool_stats_t *out)
{
    *out = s->stats;
    out->queued = s->count;
    out->bytes = s->bytes;
    out->oldest_created_at = s->head ? s->head->created_at : 0;
}
