/*
 * persist: rebuilding the broker's durable state from the store at start —
 * persistent sessions with their subscriptions, queued and inflight
 * messages (with their packet identifiers), incoming QoS 2 identifiers,
 * and retained messages. Nothing is written back while loading.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define LOG_TAG "broker"

typedef struct {
    broker_t *b;
    map_t msgs; /* store id (8 bytes) -> msg_t */
    uint64_t max_id;
    size_t sessions, subs, queued, retained;
} loader_t;

static bytes_t id_key(const uint64_t *id)
{
    return (bytes_t){(const uint8_t *)id, sizeof *id};
}

static sedge_err load_session(void *ctx, const store_session_t *v)
{
    loader_t *l = ctx;
    /* The key is the client id, or owner NUL client id (session.c). */
    bytes_t client_id = v->client_id, owner = v->owner;
    const uint8_t *nul = memchr(v->client_id.data, 0, v->client_id.len);
    if (nul) {
        owner = (bytes_t){v->client_id.data, (size_t)(nul - v->client_id.data)};
        client_id = (bytes_t){nul + 1, v->client_id.len - owner.len - 1};
    } else {
        owner = client_id;
    }
    session_t *s = session_create(l->b, client_id, owner);
    if (!s)
        return SEDGE_ERR_NOMEM;
    s->persistent = true;
    l->b->stats.sessions_persistent++;
    s->version = v->version;
    s->expiry_interval = v->expiry_interval;
    /* Offline since it disconnected, or since the broker stopped. */
    int64_t offline_s = v->disconnected_at ? clock_wall_s() - v->disconnected_at : 0;
    if (offline_s < 0)
        offline_s = 0;
    uint64_t now = clock_mono_ms();
    uint64_t offline_ms = (uint64_t)offline_s * 1000u;
    s->disconnected_ms = offline_ms < now ? now - offline_ms : 0;
    l->sessions++;
    return SEDGE_OK;
}

static sedge_err load_sub(void *ctx, const store_sub_t *v)
{
    loader_t *l = ctx;
    session_t *s = session_find(l->b, v->client_id);
    if (!s)
        return SEDGE_OK; /* its session is gone */
    sub_t *sub = calloc(1, sizeof *sub);
    if (!sub || !(sub->filter = bytes_dup_cstr(v->filter))) {
        free(sub);
        return SEDGE_ERR_NOMEM;
    }
    sub->filter_len = v->filter.len;
    sub->qos = v->options & 3;
    sub->no_local = v->options & 0x04;
    sub->retain_as_published = v->options & 0x08;
    sub->retain_handling = (v->options >> 4) & 3;
    sub->sub_id = v->sub_id;
    /* Not persistent while loading, so that adding writes nothing. */
    s->persistent = false;
    sedge_err err = session_add_sub(l->b, s, sub);
    s->persistent = true;
    if (err) {
        free(sub->filter);
        free(sub);
        return err == SEDGE_ERR_INVALID ? SEDGE_OK : err;
    }
    l->subs++;
    return SEDGE_OK;
}

static sedge_err load_msg(void *ctx, const store_msg_t *v)
{
    loader_t *l = ctx;
    msg_t *m = msg_new(v->topic, v->props, v->payload, v->source);
    if (!m)
        return SEDGE_ERR_NOMEM;
    m->store_id = v->id;
    m->qos = v->qos;
    m->retain = v->retain;
    m->expires_at = v->expires_at;
    if (v->id > l->max_id)
        l->max_id = v->id;
    if (map_put(&l->msgs, id_key(&m->store_id), m)) {
        free(m);
        return SEDGE_ERR_NOMEM;
    }
    return SEDGE_OK;
}

static sedge_err load_queued(void *ctx, const store_queued_t *v)
{
    loader_t *l = ctx;
    broker_t *b = l->b;
    session_t *s = session_find(b, v->client_id);
    msg_t *m = map_get(&l->msgs, id_key(&v->msg_id));
    if (!s || !m)
        return SEDGE_OK;
    size_t ids = v->sub_ids.len / sizeof(uint32_t);
    if (ids > 255)
        ids = 255;
    out_msg_t *o = calloc(1, sizeof *o + ids * sizeof(uint32_t));
    if (!o)
        return SEDGE_ERR_NOMEM;
    o->msg = msg_hold(m);
    m->store_refs++;
    o->seq = v->seq;
    o->qos = v->qos;
    o->packet_id = v->packet_id;
    /* With an identifier it may have been sent: it is in flight and is
     * resent, with its identifier, when the client resumes. */
    o->state = !v->packet_id ? OUT_QUEUED : v->state == OUT_RELEASED ? OUT_RELEASED : OUT_SENT;
    o->retain = v->retain;
    o->sub_id_count = (uint8_t)ids;
    if (ids)
        memcpy(o->sub_ids, v->sub_ids.data, ids * sizeof(uint32_t));
    session_restore_entry(b, s, o);
    if (v->seq >= l->b->next_queue_seq)
        l->b->next_queue_seq = v->seq + 1;
    l->queued++;
    return SEDGE_OK;
}

static sedge_err load_retained(void *ctx, bytes_t topic, uint64_t msg_id)
{
    loader_t *l = ctx;
    msg_t *m = map_get(&l->msgs, id_key(&msg_id));
    if (!m)
        return SEDGE_OK;
    tree_node_t *n = tree_ensure(&l->b->tree, topic);
    if (!n)
        return SEDGE_ERR_NOMEM;
    if (n->retained)
        return SEDGE_OK;
    n->retained = msg_hold(m);
    m->store_refs++;
    l->b->stats.retained++;
    l->retained++;
    return SEDGE_OK;
}

static sedge_err load_inbound(void *ctx, bytes_t client_id, uint16_t packet_id)
{
    loader_t *l = ctx;
    session_t *s = session_find(l->b, client_id);
    return s ? session_qos2_add(s, packet_id) : SEDGE_OK;
}

sedge_err persist_load(broker_t *b)
{
    loader_t l = {.b = b};
    l.msgs.seed = 0x5eed;
    sedge_err err;
    if ((err = store_load_sessions(b->store, load_session, &l)) ||
        (err = store_load_subs(b->store, load_sub, &l)) ||
        (err = store_load_msgs(b->store, load_msg, &l)) ||
        (err = store_load_queued(b->store, load_queued, &l)) ||
        (err = store_load_retained(b->store, load_retained, &l)) ||
        (err = store_load_inbound(b->store, load_inbound, &l))) {
        LOGE("loading the broker's state failed: %s", sedge_strerror(err));
    }
    for (session_t *s = b->offline; s; s = s->offline_next)
        session_restore_done(s);
    size_t pos = 0;
    msg_t *m;
    while ((m = map_next(&l.msgs, &pos)))
        msg_release(b, m); /* the loader's reference */
    map_free(&l.msgs);
    b->next_msg_id = l.max_id + 1;
    if (b->next_queue_seq == 0)
        b->next_queue_seq = 1;
    if (!err)
        LOGI("restored %zu sessions, %zu subscriptions, %zu queued messages, %zu retained",
             l.sessions, l.subs, l.queued, l.retained);
    return err;
}
