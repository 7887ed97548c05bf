/*
 * broker: creating and stopping the broker, its once-a-second tick (keep
 * alive, slow readers, $SYS), the deadline timer of delayed wills and
 * session expiry, the flush of output at the end of each loop turn, the
 * store's commit notifications, and messages from services.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define LOG_TAG "broker"

/* At shutdown, clients get this long to read their last output. */
#define SHUTDOWN_GRACE_MS 2000u

/* Deadlines closer together than this are served by one timer firing, so
 * that many sessions expiring one after another cost a bounded number of
 * scans; a will or an expiry is at most this late. */
#define DEADLINE_SLACK_MS 10u

void broker_limits_default(broker_limits_t *l)
{
    *l = (broker_limits_t){
        .max_connections = 10000,
        .max_packet_bytes = 268435455,
        .max_queued_messages = 1000,
        .max_inflight = 32,
        .topic_alias_maximum = 64,
        .max_keepalive = 65535,
        .max_session_expiry = UINT32_MAX,
        .sys_interval_s = 10,
        .max_output_bytes = 4u << 20,
        .slow_reader_timeout_s = 60,
        .connect_timeout_s = 10,
        .max_connect_bytes = 65536,
        .max_buffered_bytes = 256u << 20,
        .max_subscriptions = 10000,
        .max_filters_per_packet = 1000,
    };
}

void broker_before_wait(broker_t *b)
{
    broker_flush_all(b);
}

static void deadline_cb(uv_timer_t *t);

void broker_deadline_at(broker_t *b, uint64_t due_ms)
{
    if (due_ms == UINT64_MAX || b->shutting_down)
        return;
    if (b->deadline_ms && b->deadline_ms <= due_ms)
        return;
    uint64_t now = clock_mono_ms();
    b->deadline_ms = due_ms ? due_ms : 1;
    uv_timer_start(&b->deadline, deadline_cb, due_ms > now ? due_ms - now : 0, 0);
}

/* Serve what is due, then arm the timer for the earliest deadline left. */
static void deadlines_run(broker_t *b)
{
    uint64_t now = clock_mono_ms();
    uint64_t next = sessions_run_deadlines(b, now);
    uv_timer_stop(&b->deadline);
    b->deadline_ms = 0;
    uint64_t soonest = now + DEADLINE_SLACK_MS;
    broker_deadline_at(b, next < soonest ? soonest : next);
}

static void deadline_cb(uv_timer_t *t)
{
    deadlines_run(t->data);
}

uint64_t client_deadline(const broker_t *b, const client_t *c)
{
    uint64_t due = UINT64_MAX;
    if (c->state == CLIENT_AWAIT_CONNECT || c->state == CLIENT_TLS_HANDSHAKE)
        due = c->last_rx_ms + (uint64_t)b->limits.connect_timeout_s * 1000u;
    else if (c->keep_alive)
        due = c->last_rx_ms + (uint64_t)c->keep_alive * 1500u + 1;
    if (c->io && c->io->writing && b->limits.slow_reader_timeout_s && !c->slow) {
        uint64_t slow =
            c->io->last_tx_progress_ms + (uint64_t)b->limits.slow_reader_timeout_s * 1000u + 1;
        if (slow < due)
            due = slow;
    }
    return due;
}

/* A connection whose second has come (wheel.c): closed if its time is up,
 * else filed again for its next deadline. */
static void check_client(broker_t *b, client_t *c, uint64_t now)
{
    if (c->state == CLIENT_CONNECTED && c->keep_alive &&
        now - c->last_rx_ms > (uint64_t)c->keep_alive * 1500u) {
        client_disconnect(c, MQTT_RC_KEEP_ALIVE_TIMEOUT, "keep alive timeout");
    } else if ((c->state == CLIENT_AWAIT_CONNECT || c->state == CLIENT_TLS_HANDSHAKE) &&
               now - c->last_rx_ms >= (uint64_t)b->limits.connect_timeout_s * 1000u) {
        LOGW("closing %s: no CONNECT within %u s of accepting it", client_peer(c).text,
             b->limits.connect_timeout_s);
        client_close(c);
    } else if (c->io && c->io->writing && b->limits.slow_reader_timeout_s && !c->slow &&
               now - c->io->last_tx_progress_ms >
                   (uint64_t)b->limits.slow_reader_timeout_s * 1000u) {
        b->stats.slow_readers++;
        if (b->limits.slow_reader_drop) {
            /* It holds nobody back any more; its QoS 0 is dropped past
             * max_output_bytes until it catches up. */
            LOGW("client '%s': slow reader (nothing read for %u s): its QoS 0 messages are "
                 "dropped, and counted, until it catches up",
                 client_name(c).text, b->limits.slow_reader_timeout_s);
            c->slow = true;
            flow_drained(c);
        } else {
            b->stats.msgs_dropped++;
            client_disconnect(c, MQTT_RC_QUOTA_EXCEEDED,
                              "slow reader: nothing it was sent was read for too long");
        }
    } else {
        client_io_trim(c);
    }
    if (c->state != CLIENT_CLOSING && !c->in_wheel)
        wheel_add(b, c, client_deadline(b, c));
}

static void tick_cb(uv_timer_t *t)
{
    broker_t *b = t->data;
    uint64_t now = clock_mono_ms();
    wheel_advance(b, now, check_client);
    lingering_expire(b, now);
    tls_tune_tick(b);
    if (b->limits.sys_interval_s &&
        now - b->last_sys_ms >= (uint64_t)b->limits.sys_interval_s * 1000u) {
        b->last_sys_ms = now;
        sys_publish(b);
    }
}

sedge_err broker_create(uv_loop_t *loop, const broker_limits_t *limits, store_t *store,
                        broker_t **out)
{
    broker_t *b = calloc(1, sizeof *b);
    if (!b)
        return SEDGE_ERR_NOMEM;
    b->loop = loop;
    b->transport_listener = (listener_t){.broker = b, .type = LISTENER_TCP};
    b->limits = *limits;
    if (b->limits.max_inflight == 0)
        b->limits.max_inflight = 1;
    if (b->limits.connect_timeout_s == 0)
        b->limits.connect_timeout_s = 1;
    b->store = store;
    b->next_msg_id = 1;
    b->next_queue_seq = 1;
    b->read_buf_len = BROKER_READ_BUF;
    b->read_buf = malloc(b->read_buf_len);
    b->tls_plain = malloc(TLS_PLAIN_MAX);
    b->sessions.seed = (uint64_t)(uintptr_t)b ^ clock_mono_ms();
    b->stats.started_at = (uint64_t)clock_wall_s();
    if (!b->read_buf || !b->tls_plain || tree_init(&b->tree)) {
        free(b->read_buf);
        free(b->tls_plain);
        free(b);
        return SEDGE_ERR_NOMEM;
    }
    uv_timer_init(loop, &b->deadline);
    b->deadline.data = b;
    uv_unref((uv_handle_t *)&b->deadline);
    uv_timer_init(loop, &b->tick);
    b->tick.data = b;
    uv_timer_start(&b->tick, tick_cb, 1000, 1000);
    uv_unref((uv_handle_t *)&b->tick);
    b->handles_open = 2;
    b->last_sys_ms = clock_mono_ms() - (uint64_t)b->limits.sys_interval_s * 1000u;
    *out = b;
    return SEDGE_OK;
}

sedge_err broker_load(broker_t *b)
{
    sedge_err rc = persist_load(b);
    /* The loaded sessions' deadlines are served, and the next armed, on
     * the loop's first turns. */
    if (rc == SEDGE_OK && b->offline)
        broker_deadline_at(b, clock_mono_ms() + DEADLINE_SLACK_MS);
    return rc;
}

void broker_set_hooks(broker_t *b, const broker_hooks_t *hooks, void *ctx)
{
    b->hooks = hooks ? *hooks : (broker_hooks_t){0};
    b->hooks_ctx = ctx;
}

void broker_set_limits(broker_t *b, const broker_limits_t *limits)
{
    b->limits = *limits;
    if (b->limits.max_inflight == 0)
        b->limits.max_inflight = 1;
    if (b->limits.connect_timeout_s == 0)
        b->limits.connect_timeout_s = 1;
}

void broker_get_stats(broker_t *b, broker_stats_t *out)
{
    *out = b->stats;
    out->buffered_bytes = b->buffered_bytes;
}

static void wait_for_commit(broker_t *b, session_t *s)
{
    if (s->in_commit_wait)
        return;
    s->in_commit_wait = true;
    s->commit_wait_next = b->commit_waiters;
    b->commit_waiters = s;
}

/* The store committed what the broker waited for (store_when_settled,
 * the one way the store's commits are heard): release what was held. */
static void batch_settled(void *ctx, sedge_err result)
{
    broker_t *b = ctx;
    if (result) /* only the last commit, at store_close: nothing waits any more */
        return;
    broker_release_held(b, store_committed_batch(b->store));
    /* Sessions whose next messages waited for this commit: send them. */
    session_t *list = b->commit_waiters;
    b->commit_waiters = NULL;
    while (list) {
        session_t *s = list;
        list = s->commit_wait_next;
        s->in_commit_wait = false;
        s->commit_wait_next = NULL;
        session_pump(b, s);
    }
}

void broker_await_batch(broker_t *b, uint64_t batch)
{
    if (batch <= b->awaited_batch || batch_durable(b, batch))
        return;
    b->awaited_batch = batch;
    if (store_when_settled(b->store, batch, batch_settled, b))
        LOGE("out of memory waiting for batch %llu: what waits for it is released by the next "
             "commit",
             (unsigned long long)batch);
}

bool batch_durable(const broker_t *b, uint64_t batch)
{
    return batch <= store_committed_batch(b->store);
}

void broker_wait_commit(broker_t *b, session_t *s, uint64_t batch)
{
    wait_for_commit(b, s);
    broker_await_batch(b, batch);
}

sedge_err broker_publish(broker_t *b, const broker_message_t *pm)
{
    if (!mqtt_topic_name_valid(pm->topic) || pm->qos > 2)
        return SEDGE_ERR_INVALID;
    msg_t m = {
        .qos = pm->qos,
        .retain = pm->retain,
        .topic = pm->topic,
        .payload = pm->payload,
        .source = pm->source,
    };
    bool routed = broker_route(b, &m, NULL).routed;
    msg_borrowed_done(b, &m);
    return routed ? SEDGE_OK : SEDGE_ERR_DENIED;
}

size_t broker_recheck_connections(broker_t *b)
{
    if (!b->hooks.may_connect)
        return 0;
    size_t n = 0;
    client_t **all;
    size_t count = broker_clients(b, &all);
    for (size_t i = 0; i < count; i++) {
        client_t *c = all[i];
        const char *why = NULL;
        if (c->state == CLIENT_CONNECTED &&
            !b->hooks.may_connect(b->hooks_ctx,
                                  (bytes_t){(const uint8_t *)c->identity, c->identity_len}))
            why = "no longer a member of the group";
        else if (c->state != CLIENT_TLS_HANDSHAKE && client_certificate_revoked(c))
            why = "certificate revoked by the group";
        if (why) {
            c->send_will = false; /* its words are not to be trusted any more */
            client_disconnect(c, MQTT_RC_NOT_AUTHORIZED, why);
            n++;
        }
    }
    free(all);
    /* Delayed wills of offline sessions whose owners lost the right. */
    for (session_t *s = b->offline; s; s = s->offline_next)
        if (s->will && !b->hooks.may_connect(b->hooks_ctx,
                                             (bytes_t){(const uint8_t *)s->owner, s->owner_len})) {
            LOGI("will of '%s' dropped: '%s' is no longer allowed to connect", s->client_id,
                 s->owner);
            will_cancel(b, s);
        }
    return n;
}

static void on_timer_closed(uv_handle_t *h)
{
    broker_handle_closed(h->data);
}

void broker_handle_closed(broker_t *b)
{
    if (b->handles_open)
        b->handles_open--;
    /* Every client is gone before the grace period ended: stop waiting. */
    if (b->shutting_down && b->handles_open == 1 && uv_is_active((uv_handle_t *)&b->shutdown_timer))
        uv_close((uv_handle_t *)&b->shutdown_timer, on_timer_closed);
    if (b->shutting_down && b->handles_open == 0 && b->shutdown_done) {
        void (*done)(void *) = b->shutdown_done;
        b->shutdown_done = NULL;
        done(b->shutdown_ctx);
    }
}

/* The grace period is over: clients that have not read their last words
 * are cut off, so that a peer that stops reading cannot hold the stop. */
static void shutdown_grace_cb(uv_timer_t *t)
{
    broker_t *b = t->data;
    if (b->closing)
        LOGW("stopping: closing connections whose peers did not read their last output");
    closing_cut_all(b);
    lingering_close_all(b);
    uv_close((uv_handle_t *)t, on_timer_closed);
}

void broker_shutdown(broker_t *b, void (*done)(void *ctx), void *ctx)
{
    if (b->shutting_down)
        return;
    b->shutting_down = true;
    b->shutdown_done = done;
    b->shutdown_ctx = ctx;
    listeners_close(b);
    client_t **all;
    size_t count = broker_clients(b, &all);
    for (size_t i = 0; i < count; i++) {
        all[i]->send_will = false; /* the broker is stopping, not the client failing */
        client_disconnect(all[i], MQTT_RC_SERVER_SHUTTING_DOWN, "server shutting down");
    }
    free(all);
    broker_flush_all(b);
    lingering_close_all(b);
    uv_timer_stop(&b->tick);
    uv_timer_stop(&b->deadline);
    uv_close((uv_handle_t *)&b->tick, on_timer_closed);
    uv_close((uv_handle_t *)&b->deadline, on_timer_closed);
    if (b->closing) {
        uv_timer_init(b->loop, &b->shutdown_timer);
        b->shutdown_timer.data = b;
        b->handles_open++;
        uv_timer_start(&b->shutdown_timer, shutdown_grace_cb, SHUTDOWN_GRACE_MS, 0);
    }
}

void broker_free(broker_t *b)
{
    if (!b)
        return;
    while (b->watches)
        broker_unwatch(b, b->watches);
    sessions_free_all(b);
    tree_free(b, &b->tree);
    free(b->matched);
    buf_free(&b->encoded.bytes);
    free(b->deliveries);
    free(b->sub_id_scratch);
    free(b->match_slots);
    free(b->read_buf);
    free(b->tls_plain);
    free(b);
}

struct broker_watch {
    struct broker_watch *next;
    broker_watch_fn fn;
    void *ctx;
    size_t filter_len;
    char filter[];
};

broker_watch_t *broker_watch(broker_t *b, const char *filter, broker_watch_fn fn, void *ctx)
{
    size_t n = strlen(filter);
    if (!mqtt_topic_filter_valid((bytes_t){(const uint8_t *)filter, n}))
        return NULL;
    broker_watch_t *w = malloc(sizeof *w + n + 1);
    if (!w)
        return NULL;
    w->fn = fn;
    w->ctx = ctx;
    w->filter_len = n;
    memcpy(w->filter, filter, n + 1);
    w->next = b->watches;
    b->watches = w;
    return w;
}

void broker_unwatch(broker_t *b, broker_watch_t *w)
{
    for (broker_watch_t **link = &b->watches; *link; link = &(*link)->next) {
        if (*link == w) {
            *link = w->next;
            free(w);
            return;
        }
    }
}

void broker_notify_watches(broker_t *b, const msg_t *m)
{
    broker_message_t view = {m->source, m->topic, m->payload, m->qos, m->retain};
    for (broker_watch_t *w = b->watches, *next; w; w = next) {
        next = w->next; /* a watcher may remove itself */
        if (mqtt_topic_matches((bytes_t){(const uint8_t *)w->filter, w->filter_len}, m->topic))
            w->fn(w->ctx, &view);
    }
}
