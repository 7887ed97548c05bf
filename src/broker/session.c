/*
 * session: the MQTT state that outlives a connection — subscriptions, the
 * queue of QoS 1/2 messages owed to the client with its inflight window,
 * and the incoming QoS 2 identifiers awaiting release.
 *
 * The outgoing queue is one list in order. Entries before `unsent` have
 * been sent and wait for PUBACK/PUBREC/PUBCOMP; `unsent` is the next to
 * go. For a persistent session each entry's row (message, packet
 * identifier) is written through the store and the entry leaves only once
 * that write is committed (`ready_batch`), so a restart resends exactly
 * what the client may have seen, with the same packet identifiers.
 */
#include "internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "broker"

/* The session index: client id -> session, chained through
 * `index_next`, so a session costs one pointer in it plus its share of
 * the bucket array (at most two pointers: it doubles when full). */
static session_t **index_bucket(const session_index_t *ix, bytes_t key)
{
    uint64_t h = hash_bytes(ix->seed, key.data, key.len);
    return &ix->buckets[h & (ix->bucket_count - 1)];
}

bytes_t session_key(const session_t *s)
{
    if (s->owner == s->client_id)
        return (bytes_t){(const uint8_t *)s->client_id, s->client_id_len};
    return (bytes_t){(const uint8_t *)s->owner, (size_t)s->owner_len + 1 + s->client_id_len};
}

bytes_t session_key_of(bytes_t owner, bytes_t client_id, buf_t *scratch)
{
    if (bytes_eq(owner, client_id))
        return client_id;
    scratch->len = 0;
    uint8_t nul = 0;
    if (buf_append(scratch, owner.data, owner.len) || buf_append(scratch, &nul, 1) ||
        buf_append(scratch, client_id.data, client_id.len))
        return (bytes_t){0};
    return (bytes_t){scratch->data, scratch->len};
}

session_t *session_find(broker_t *b, bytes_t key)
{
    if (!b->sessions.bucket_count)
        return NULL;
    session_t *s = *index_bucket(&b->sessions, key);
    while (s && !bytes_eq(session_key(s), key))
        s = s->index_next;
    return s;
}

static sedge_err index_grow(session_index_t *ix)
{
    size_t count = ix->bucket_count ? ix->bucket_count * 2 : 64;
    session_t **buckets = calloc(count, sizeof *buckets);
    if (!buckets)
        return SEDGE_ERR_NOMEM;
    session_index_t bigger = {buckets, count, ix->count, ix->seed};
    for (size_t i = 0; i < ix->bucket_count; i++) {
        for (session_t *s = ix->buckets[i], *next; s; s = next) {
            next = s->index_next;
            session_t **slot = index_bucket(&bigger, session_key(s));
            s->index_next = *slot;
            *slot = s;
        }
    }
    free(ix->buckets);
    *ix = bigger;
    return SEDGE_OK;
}

static sedge_err index_add(session_index_t *ix, session_t *s)
{
    if (ix->count >= ix->bucket_count && index_grow(ix))
        return SEDGE_ERR_NOMEM;
    session_t **slot = index_bucket(ix, session_key(s));
    s->index_next = *slot;
    *slot = s;
    ix->count++;
    return SEDGE_OK;
}

static void index_remove(session_index_t *ix, session_t *s)
{
    session_t **link = index_bucket(ix, session_key(s));
    while (*link && *link != s)
        link = &(*link)->index_next;
    if (*link) {
        *link = s->index_next;
        ix->count--;
    }
    s->index_next = NULL;
}

static void offline_link(broker_t *b, session_t *s)
{
    s->offline_prev = NULL;
    s->offline_next = b->offline;
    if (b->offline)
        b->offline->offline_prev = s;
    b->offline = s;
}

static void offline_unlink(broker_t *b, session_t *s)
{
    if (s->offline_prev)
        s->offline_prev->offline_next = s->offline_next;
    else if (b->offline == s)
        b->offline = s->offline_next;
    if (s->offline_next)
        s->offline_next->offline_prev = s->offline_prev;
    s->offline_next = s->offline_prev = NULL;
}

session_t *session_create(broker_t *b, bytes_t client_id, bytes_t owner)
{
    if (client_id.len > UINT16_MAX || owner.len > UINT16_MAX)
        return NULL;
    /* The text is the session's key: the client id when it is its owner's
     * identity (always so on TCP), else owner NUL client id. */
    bool own_owner = !bytes_eq(owner, client_id);
    size_t text_len = (own_owner ? owner.len + 1 : 0) + client_id.len + 1;
    session_t *s = calloc(1, offsetof(session_t, text) + text_len);
    if (!s)
        return NULL;
    char *id = s->text;
    if (own_owner) {
        memcpy(s->text, owner.data, owner.len);
        id = s->text + owner.len + 1;
    }
    memcpy(id, client_id.data, client_id.len);
    s->client_id = id;
    s->client_id_len = (uint16_t)client_id.len;
    s->owner = s->text;
    s->owner_len = (uint16_t)owner.len;
    if (index_add(&b->sessions, s)) {
        free(s);
        return NULL;
    }
    s->next_packet_id = 1;
    s->disconnected_ms = clock_mono_ms();
    offline_link(b, s);
    b->stats.sessions++;
    return s;
}

/* A session with more subscriptions than this finds them through a hash
 * index instead of a scan, so a SUBSCRIBE of N filters costs O(N), not
 * O(N^2). Small sessions (nearly all) carry no index. */
#define SUB_INDEX_MIN 8

static bytes_t sub_key(const sub_t *sub)
{
    return (bytes_t){(const uint8_t *)sub->filter, sub->filter_len};
}

static void drop_sub_index(session_t *s)
{
    if (!s->sub_index)
        return;
    map_free(s->sub_index);
    free(s->sub_index);
    s->sub_index = NULL;
}

/* Index every subscription; without memory the session scans instead. */
static void build_sub_index(broker_t *b, session_t *s)
{
    s->sub_index = calloc(1, sizeof *s->sub_index);
    if (!s->sub_index)
        return;
    s->sub_index->seed = b->sessions.seed ^ (uint64_t)(uintptr_t)s;
    for (size_t i = 0; i < s->sub_count; i++) {
        if (map_put(s->sub_index, sub_key(s->subs[i]), s->subs[i])) {
            drop_sub_index(s);
            return;
        }
    }
}

static void free_entry(broker_t *b, session_t *s, out_msg_t *o)
{
    if (s->persistent) {
        store_del_queued(b->store, o->seq);
        msg_store_unref(b, o->msg);
    }
    msg_release(b, o->msg);
    free(o);
}

/* A session waiting for a commit is on the broker's list of them; one
 * destroyed before the commit comes (a clean-start takeover, a v5
 * DISCONNECT with expiry 0) must leave it. */
static void leave_commit_wait(broker_t *b, session_t *s)
{
    if (!s->in_commit_wait)
        return;
    session_t **link = &b->commit_waiters;
    while (*link && *link != s)
        link = &(*link)->commit_wait_next;
    if (*link)
        *link = s->commit_wait_next;
    s->in_commit_wait = false;
    s->commit_wait_next = NULL;
}

void session_destroy(broker_t *b, session_t *s)
{
    leave_commit_wait(b, s);
    if (s->client) {
        s->client->session = NULL;
        b->stats.sessions_online--;
    }
    for (size_t i = 0; i < s->sub_count; i++) {
        tree_remove_sub(&b->tree, s->subs[i]);
        free(s->subs[i]->filter);
        free(s->subs[i]);
        b->stats.subscriptions--;
    }
    free(s->subs);
    drop_sub_index(s);
    for (out_msg_t *o = s->head, *next; o; o = next) {
        next = o->next;
        free_entry(b, s, o);
        b->stats.queued--;
    }
    will_free(b, s->will);
    if (s->persistent) {
        store_del_session(b->store, session_key(s));
        b->stats.sessions_persistent--;
    }
    index_remove(&b->sessions, s);
    if (!s->client)
        offline_unlink(b, s);
    b->stats.sessions--;
    free(s->qos2_in);
    free(s);
}

void sessions_free_all(broker_t *b)
{
    session_index_t *ix = &b->sessions;
    for (size_t i = 0; i < ix->bucket_count; i++) {
        while (ix->buckets[i]) {
            session_t *s = ix->buckets[i];
            s->persistent = false; /* they stay in the store */
            will_cancel(b, s);
            session_destroy(b, s);
        }
    }
    free(ix->buckets);
    *ix = (session_index_t){0};
}

void session_save(broker_t *b, session_t *s)
{
    if (!s->persistent)
        return;
    store_session_t row = {
        .client_id = session_key(s),
        .owner = {(const uint8_t *)s->owner, s->owner_len},
        .expiry_interval = s->expiry_interval,
        .version = s->version,
        .disconnected_at = s->client ? 0 : clock_wall_s(),
    };
    store_put_session(b->store, &row);
}

void session_attach(session_t *s, client_t *c)
{
    broker_t *b = c->broker;
    if (!s->client) {
        offline_unlink(b, s);
        b->stats.sessions_online++;
    }
    s->client = c;
    c->session = s;
}

void session_detach(broker_t *b, session_t *s)
{
    if (!s->client)
        return;
    s->client->session = NULL;
    s->client = NULL;
    b->stats.sessions_online--;
    s->disconnected_ms = clock_mono_ms();
    offline_link(b, s);
    session_save(b, s);
    broker_deadline_at(b, session_next_deadline(s));
}

static bool packet_id_in_use(const session_t *s, uint16_t id)
{
    for (const out_msg_t *o = s->head; o && o != s->unsent; o = o->next)
        if (o->packet_id == id)
            return true;
    for (const out_msg_t *o = s->unsent; o && o->packet_id; o = o->next)
        if (o->packet_id == id)
            return true;
    return false;
}

static uint16_t next_packet_id(session_t *s)
{
    for (;;) {
        uint16_t id = s->next_packet_id++;
        if (s->next_packet_id == 0)
            s->next_packet_id = 1;
        if (id && !packet_id_in_use(s, id))
            return id;
    }
}

static size_t send_window(const broker_t *b, const session_t *s)
{
    size_t window = b->limits.max_inflight;
    if (s->client && s->client->receive_max_out < window)
        window = s->client->receive_max_out;
    return window;
}

/* Give packet identifiers to the entries the send window will take next
 * (while connected). A persistent session's QoS 2 entry has its identifier
 * committed before it is sent, so that after a restart it is resent with
 * the same one (exactly once); a QoS 1 entry may come back with a new one,
 * which QoS 1's at-least-once allows, and saves a write per message. */
static void assign_packet_ids(broker_t *b, session_t *s, out_msg_t *persisted_later)
{
    if (!s->client || s->client->state != CLIENT_CONNECTED)
        return;
    size_t window = send_window(b, s);
    size_t room = s->inflight < window ? window - s->inflight : 0;
    for (out_msg_t *o = s->unsent; o && room; o = o->next, room--) {
        if (!o->packet_id) {
            o->packet_id = next_packet_id(s);
            if (s->persistent && o->qos == 2 && o != persisted_later)
                session_persist_state(b, s, o);
        }
    }
}

/* At the end of the session's queue, counted. */
static void append_entry(broker_t *b, session_t *s, out_msg_t *o)
{
    o->next = NULL;
    o->prev = s->tail;
    if (s->tail)
        s->tail->next = o;
    else
        s->head = o;
    s->tail = o;
    s->queued++;
    b->stats.queued++;
}

bool session_enqueue(broker_t *b, session_t *s, msg_t *m, uint8_t qos, bool retain,
                     const uint32_t *sub_ids, size_t sub_id_count)
{
    if (s->persistent && store_failing(b->store)) {
        /* Not kept while the store cannot commit (see handle_publish). */
        b->stats.msgs_dropped++;
        broker_note_refused(b);
        return false;
    }
    if (s->queued >= b->limits.max_queued_messages) {
        b->stats.msgs_dropped++;
        broker_note_refused(b);
        if (!s->queue_full_logged) {
            s->queue_full_logged = true;
            LOGW("session '%s': queue full (max_queued_messages %u): new messages for it are "
                 "dropped and counted until it drains",
                 s->client_id, b->limits.max_queued_messages);
        }
        return false;
    }
    if (s->queue_full_logged && s->queued < b->limits.max_queued_messages / 2)
        s->queue_full_logged = false;
    if (sub_id_count > 255)
        sub_id_count = 255;
    out_msg_t *o = calloc(1, sizeof *o + sub_id_count * sizeof(uint32_t));
    msg_t *held = o ? msg_hold(m) : NULL;
    if (!held) {
        free(o);
        b->stats.msgs_dropped++;
        LOGE("session '%s': out of memory, message dropped", s->client_id);
        return false;
    }
    o->msg = held;
    o->qos = qos;
    o->retain = retain;
    o->seq = b->next_queue_seq++;
    o->sub_id_count = (uint8_t)sub_id_count;
    if (sub_id_count)
        memcpy(o->sub_ids, sub_ids, sub_id_count * sizeof(uint32_t));
    append_entry(b, s, o);
    if (!s->unsent)
        s->unsent = o;
    if (s->persistent) {
        msg_store_ref(b, held);
        /* When the window has room the entry gets its packet identifier
         * now, and one row write covers both. */
        assign_packet_ids(b, s, o);
        session_persist_state(b, s, o);
    }
    session_pump(b, s);
    return true;
}

/* Write (or rewrite) an entry's row: message, packet identifier, state. */
void session_persist_state(broker_t *b, session_t *s, out_msg_t *o)
{
    store_queued_t row = {
        .client_id = session_key(s),
        .seq = o->seq,
        .msg_id = o->msg->store_id,
        .qos = o->qos,
        .packet_id = o->packet_id,
        .state = o->state,
        .retain = o->retain,
        .sub_ids = {(const uint8_t *)o->sub_ids, o->sub_id_count * sizeof(uint32_t)},
    };
    o->ready_batch = store_put_queued(b->store, &row);
}

static void unlink_entry(session_t *s, out_msg_t *o)
{
    if (s->unsent == o)
        s->unsent = o->next;
    if (o->prev)
        o->prev->next = o->next;
    else
        s->head = o->next;
    if (o->next)
        o->next->prev = o->prev;
    else
        s->tail = o->prev;
    s->queued--;
}

/* Drop an entry that will never be sent (expired, too large). */
static void drop_unsent(broker_t *b, session_t *s, out_msg_t *o)
{
    unlink_entry(s, o);
    b->stats.queued--;
    free_entry(b, s, o);
}

void session_pump(broker_t *b, session_t *s)
{
    client_t *c = s->client;
    if (!c || c->state != CLIENT_CONNECTED)
        return;
    size_t window = send_window(b, s);
    if (s->inflight >= window)
        return;
    assign_packet_ids(b, s, NULL);
    int64_t now = clock_wall_s();
    while (s->unsent && s->inflight < window) {
        out_msg_t *o = s->unsent;
        if (s->persistent && !batch_durable(b, o->ready_batch)) {
            broker_wait_commit(b, s, o->ready_batch);
            break;
        }
        if (msg_expired(o->msg, now)) {
            drop_unsent(b, s, o);
            continue;
        }
        s->unsent = o->next;
        o->state = OUT_SENT;
        s->inflight++;
        if (!send_publish(c, o->msg, o->qos, o->retain, o->packet_id, false, o->sub_ids,
                          o->sub_id_count)) {
            /* Too large for this client: as good as delivered (MQTT 5). */
            unlink_entry(s, o);
            s->inflight--;
            b->stats.queued--;
            free_entry(b, s, o);
        }
    }
}

void session_resend_inflight(broker_t *b, session_t *s)
{
    client_t *c = s->client;
    for (out_msg_t *o = s->head; o && o != s->unsent; o = o->next) {
        if (o->state == OUT_RELEASED)
            held_ack(c, MQTT_PUBREL, o->packet_id, 0,
                     batch_durable(b, o->ready_batch) ? 0 : o->ready_batch);
        else
            send_publish(c, o->msg, o->qos, o->retain, o->packet_id, true, o->sub_ids,
                         o->sub_id_count);
    }
}

out_msg_t *session_find_inflight(session_t *s, uint16_t packet_id)
{
    for (out_msg_t *o = s->head; o && o != s->unsent; o = o->next)
        if (o->packet_id == packet_id)
            return o;
    return NULL;
}

void session_complete(broker_t *b, session_t *s, out_msg_t *o)
{
    unlink_entry(s, o);
    s->inflight--;
    b->stats.queued--;
    free_entry(b, s, o);
    session_pump(b, s);
    if (s->client)
        flow_drained(s->client);
}

sub_t *session_find_sub(session_t *s, bytes_t filter)
{
    if (s->sub_index)
        return map_get(s->sub_index, filter);
    for (size_t i = 0; i < s->sub_count; i++) {
        sub_t *sub = s->subs[i];
        if (sub->filter_len == filter.len && memcmp(sub->filter, filter.data, filter.len) == 0)
            return sub;
    }
    return NULL;
}

static uint8_t sub_options_byte(const sub_t *sub)
{
    return (uint8_t)(sub->qos | (sub->no_local ? 0x04 : 0) | (sub->retain_as_published ? 0x08 : 0) |
                     sub->retain_handling << 4);
}

void session_save_sub(broker_t *b, session_t *s, const sub_t *sub)
{
    if (!s->persistent)
        return;
    store_sub_t row = {
        .client_id = session_key(s),
        .filter = {(const uint8_t *)sub->filter, sub->filter_len},
        .options = sub_options_byte(sub),
        .sub_id = sub->sub_id,
    };
    store_put_sub(b->store, &row);
}

sedge_err session_add_sub(broker_t *b, session_t *s, sub_t *sub)
{
    size_t cap = s->sub_cap;
    sub_t **subs = array_room(s->subs, s->sub_count, &cap, sizeof *subs, 4);
    if (!subs)
        return SEDGE_ERR_NOMEM;
    s->subs = subs;
    s->sub_cap = (uint32_t)cap;
    bytes_t filter = {(const uint8_t *)sub->filter, sub->filter_len};
    bytes_t group = {0}, inner = filter;
    if (mqtt_shared_split(filter, &group, &inner) && !inner.len)
        return SEDGE_ERR_INVALID;
    sedge_err err = tree_add_sub(&b->tree, sub, inner, group);
    if (err)
        return err;
    sub->session = s;
    s->subs[s->sub_count++] = sub;
    b->stats.subscriptions++;
    if (s->sub_index && map_put(s->sub_index, sub_key(sub), sub))
        drop_sub_index(s); /* an index missing one would lie: scan instead */
    else if (!s->sub_index && s->sub_count > SUB_INDEX_MIN)
        build_sub_index(b, s);
    session_save_sub(b, s, sub);
    return SEDGE_OK;
}

void session_remove_sub(broker_t *b, session_t *s, sub_t *sub)
{
    for (size_t i = 0; i < s->sub_count; i++) {
        if (s->subs[i] == sub) {
            s->subs[i] = s->subs[--s->sub_count];
            break;
        }
    }
    if (s->sub_index)
        map_del(s->sub_index, sub_key(sub));
    if (s->persistent)
        store_del_sub(b->store, session_key(s), sub_key(sub));
    tree_remove_sub(&b->tree, sub);
    free(sub->filter);
    free(sub);
    b->stats.subscriptions--;
}

bool session_qos2_pending(session_t *s, uint16_t packet_id)
{
    for (uint32_t i = 0; i < s->qos2_in_count; i++)
        if (s->qos2_in[i] == packet_id)
            return true;
    return false;
}

sedge_err session_qos2_add(session_t *s, uint16_t packet_id)
{
    size_t cap = s->qos2_in_cap;
    uint16_t *ids = array_room(s->qos2_in, s->qos2_in_count, &cap, sizeof *ids, 8);
    if (!ids)
        return SEDGE_ERR_NOMEM;
    s->qos2_in = ids;
    s->qos2_in_cap = (uint32_t)cap;
    s->qos2_in[s->qos2_in_count++] = packet_id;
    return SEDGE_OK;
}

void session_qos2_remove(session_t *s, uint16_t packet_id)
{
    for (uint32_t i = 0; i < s->qos2_in_count; i++) {
        if (s->qos2_in[i] == packet_id) {
            s->qos2_in[i] = s->qos2_in[--s->qos2_in_count];
            return;
        }
    }
}

uint64_t session_next_deadline(const session_t *s)
{
    uint64_t next = UINT64_MAX;
    if (s->expiry_interval != UINT32_MAX)
        next = s->disconnected_ms + (uint64_t)s->expiry_interval * 1000u;
    if (s->will && s->will->due_ms < next)
        next = s->will->due_ms;
    return next;
}

uint64_t sessions_run_deadlines(broker_t *b, uint64_t now_ms)
{
    uint64_t next_due = UINT64_MAX;
    session_t *s = b->offline;
    while (s) {
        session_t *next = s->offline_next;
        if (s->will && now_ms >= s->will->due_ms)
            will_publish_now(b, s);
        if (s->expiry_interval != UINT32_MAX &&
            now_ms - s->disconnected_ms >= (uint64_t)s->expiry_interval * 1000u) {
            LOGI("session '%s' expired after %u s offline", s->client_id, s->expiry_interval);
            will_publish_now(b, s);
            session_destroy(b, s);
        } else {
            uint64_t due = session_next_deadline(s);
            if (due < next_due)
                next_due = due;
        }
        s = next;
    }
    return next_due;
}

void session_set_persistent(broker_t *b, session_t *s, bool persistent)
{
    if (s->persistent == persistent)
        return;
    s->persistent = persistent;
    if (!persistent) {
        b->stats.sessions_persistent--;
        store_del_session(b->store, session_key(s));
        for (out_msg_t *o = s->head; o; o = o->next)
            msg_store_unref(b, o->msg);
        return;
    }
    b->stats.sessions_persistent++;
    session_save(b, s);
    for (size_t i = 0; i < s->sub_count; i++)
        session_save_sub(b, s, s->subs[i]);
    for (out_msg_t *o = s->head; o; o = o->next) {
        msg_store_ref(b, o->msg);
        session_persist_state(b, s, o);
    }
    for (uint32_t i = 0; i < s->qos2_in_count; i++)
        store_put_inbound(b->store, session_key(s), s->qos2_in[i]);
}

void session_restore_entry(broker_t *b, session_t *s, out_msg_t *o)
{
    append_entry(b, s, o);
    if (o->state != OUT_QUEUED) {
        s->inflight++;
        if (o->packet_id >= s->next_packet_id)
            s->next_packet_id = (uint16_t)(o->packet_id + 1 ? o->packet_id + 1 : 1);
    }
}

/* The queue keeps the entries in flight first. A QoS 1 entry's packet
 * identifier is not always written (it may come back with a new one), so
 * after a restart an entry with an identifier can follow one without. It
 * keeps its identifier — the client may hold it as pending (QoS 2): sent
 * again with another, it would be a second delivery, and its identifier,
 * free in our eyes, would make the client drop the next message given it —
 * and moves ahead of the entries without one, keeping the order among
 * each. */
void session_restore_done(session_t *s)
{
    out_msg_t *sent_head = NULL, *sent_tail = NULL, *rest_head = NULL, *rest_tail = NULL;
    for (out_msg_t *o = s->head, *next; o; o = next) {
        next = o->next;
        bool in_flight = o->state != OUT_QUEUED;
        out_msg_t **head = in_flight ? &sent_head : &rest_head;
        out_msg_t **tail = in_flight ? &sent_tail : &rest_tail;
        o->prev = *tail;
        o->next = NULL;
        if (*tail)
            (*tail)->next = o;
        else
            *head = o;
        *tail = o;
    }
    if (sent_tail) {
        sent_tail->next = rest_head;
        if (rest_head)
            rest_head->prev = sent_tail;
    }
    s->head = sent_head ? sent_head : rest_head;
    s->tail = rest_tail ? rest_tail : sent_tail;
    s->unsent = rest_head;
}
