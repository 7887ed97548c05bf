/*
 * uplink: the cloud connection — a small MQTT client on libuv and OpenSSL
 * memory BIOs, using the same codec as the broker.
 *
 * States: idle (waiting to reconnect) -> resolving -> connecting (TCP) ->
 * handshake (TLS) -> connack (CONNECT sent) -> up. Any failure closes the
 * connection, logs why, and schedules the next attempt after an
 * exponential backoff with jitter; the count of failures behind it is
 * forgotten only once a link has stayed up for STABLE_LINK_MS, so a cloud
 * that accepts and then cuts every connection is not hammered either.
 *
 * Spooled messages use packet identifiers 1..window, one slot each, so the
 * acknowledgement finds its entry by index; services' own QoS 1 publishes
 * and SUBSCRIBEs use identifiers above the window and are not tracked.
 *
 * Sending from the spool is paced (pace.h). A message refused with MQTT 5's
 * 0x97 (quota exceeded) keeps its slot and goes again once the pause is
 * over. Acknowledgements that do not come within ack_timeout_ms are taken
 * as throttling too: the link is dropped and the messages go again on the
 * next one (resending on the same connection could match a late PUBACK to
 * the wrong message). After a drop by the cloud with several messages in
 * flight, the window is 1 until the last of them is acknowledged
 * ("probing"), so the next drop points at one message.
 */
#include "uplink.h"

#include "mqtt/mqtt.h"

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "uplink"

#define OUTPUT_HIGH_WATER (1u << 20)
#define CONNECT_TIMEOUT_MS 10000u
#define STABLE_LINK_MS 30000u
#define RECENT_DEAD_LETTERS 8

typedef enum {
    LINK_IDLE,
    LINK_RESOLVING,
    LINK_CONNECTING,
    LINK_HANDSHAKE,
    LINK_CONNACK,
    LINK_UP,
    LINK_STOPPED,
} link_state_t;

static const char *const state_names[] = {"disconnected",  "resolving",    "connecting",
                                          "tls handshake", "mqtt connect", "connected",
                                          "stopped"};

typedef struct watch {
    struct watch *next;
    char *filter;
    uplink_watch_fn fn;
    void *ctx;
} watch_t;

/* A SUBSCRIBE awaiting its SUBACK, to name the filters the cloud refuses. */
typedef struct pending_sub {
    struct pending_sub *next;
    uint16_t packet_id;
    size_t count;
    char *filters[];
} pending_sub_t;

typedef enum { DOWN_LOCAL, DOWN_BY_CLOUD } down_cause_t;

/* One TCP connection; freed when its handle closes. */
typedef struct {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    struct uplink *u; /* NULL once abandoned */
    SSL *ssl;
    BIO *rbio, *wbio;
    buf_t writing;
    bool write_pending;
} conn_t;

struct uplink {
    uv_loop_t *loop;
    uplink_config_t cfg;
    uplink_options_t o;
    char host[256];
    char port[8];
    SSL_CTX *ssl_ctx;
    spool_t *spool;
    link_state_t state;
    conn_t *conn;
    uv_getaddrinfo_t resolve_req;
    bool resolving;
    uv_timer_t retry_timer;
    uv_timer_t keepalive_timer;
    uv_timer_t pace_timer; /* the pace allows sending again */
    uv_timer_t ack_timer;  /* the oldest unacknowledged publish is due */
    int handles;
    void (*stop_done)(void *);
    void *stop_ctx;
    buf_t in;
    buf_t out;
    uint16_t window;          /* slots allocated (max_inflight) */
    uint16_t window_now;      /* usable on this connection (the cloud's receive maximum) */
    spool_entry_t **inflight; /* [1..window] */
    uint16_t *free_slots;
    uint16_t free_count;
    uint16_t *resend; /* slots whose message the cloud throttled (0x97), in order */
    uint16_t resend_count;
    uint16_t service_pid;
    uint32_t attempts; /* failures since the last stable link */
    uint64_t last_tx_ms, ping_sent_ms;
    uint64_t attempt_started_ms;
    uint64_t up_since_ms;
    uint64_t next_attempt_ms, last_delay_ms;
    uint64_t connected_at; /* wall seconds */
    uint64_t probe_upto;   /* probing until this seq is acknowledged; 0: not */
    pace_t pace;
    char **filters;
    size_t filter_count;
    watch_t *watches;
    pending_sub_t *pending_subs;
    char **subscribed; /* filters subscribed on this connection */
    size_t subscribed_count;
    uint64_t reconnects, qos0_dropped, received;
    uint64_t refused_by_cloud;               /* MQTT 5 PUBACK with a failure reason: dead letters */
    uint64_t refused_topic, refused_payload; /* beyond the limits, when routed */
    uint64_t throttled_acks;                 /* 0x97 answers */
    uint64_t dead_lettered;                  /* since start */
    uint64_t ack_timeouts;
    struct {
        char topic[160];
        size_t bytes;
        char reason[200];
        int64_t at;
    } recent_dead[RECENT_DEAD_LETTERS];
    size_t recent_dead_next;
    uint64_t limit_log_ms[2]; /* the last "beyond the limits" warnings: topic, payload */
    char last_error[256];
};

static void link_down_by(uplink_t *u, down_cause_t cause, const char *why);
static void pump(uplink_t *u);

static void link_down(uplink_t *u, const char *why)
{
    link_down_by(u, DOWN_LOCAL, why);
}

/* The cloud ended the link (closed, reset, DISCONNECT). */
static void cloud_cut(uplink_t *u, const char *why)
{
    link_down_by(u, DOWN_BY_CLOUD, why);
}

/* An inflight slot whose entry the spool dropped: busy until its PUBACK. */
static spool_entry_t evicted;

static void set_error(uplink_t *u, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void set_error(uplink_t *u, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->last_error, sizeof u->last_error, fmt, ap);
    va_end(ap);
}

/* Output. */

static void queue_out(uplink_t *u, const uint8_t *data, size_t len)
{
    if (buf_append(&u->out, data, len))
        link_down(u, "out of memory");
    u->last_tx_ms = clock_mono_ms();
}

static void on_written(uv_write_t *req, int status)
{
    conn_t *c = req->data;
    c->write_pending = false;
    buf_free(&c->writing);
    uplink_t *u = c->u;
    if (!u)
        return;
    if (status < 0) {
        set_error(u, "write failed: %s", uv_strerror(status));
        cloud_cut(u, u->last_error);
        return;
    }
    pump(u);
}

static void flush(uplink_t *u)
{
    conn_t *c = u->conn;
    if (!c || c->write_pending)
        return;
    if (c->ssl && u->out.len && SSL_is_init_finished(c->ssl)) {
        int n = SSL_write(c->ssl, u->out.data, (int)u->out.len);
        if (n > 0)
            buf_consume(&u->out, (size_t)n);
    }
    size_t pending;
    while (c->ssl && (pending = BIO_ctrl_pending(c->wbio)) > 0) {
        if (buf_reserve(&c->writing, pending))
            break;
        int n = BIO_read(c->wbio, c->writing.data + c->writing.len, (int)pending);
        if (n <= 0)
            break;
        c->writing.len += (size_t)n;
    }
    if (!c->writing.len)
        return;
    uv_buf_t b = uv_buf_init((char *)c->writing.data, (unsigned)c->writing.len);
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_written)) {
        buf_free(&c->writing);
        link_down(u, "write failed");
        return;
    }
    c->write_pending = true;
}

void uplink_before_wait(uplink_t *u)
{
    flush(u);
}

/* Packets. */

static void send_packet_ack(uplink_t *u, uint8_t type, uint16_t pid)
{
    mqtt_ack_t a = {.packet_id = pid};
    uint8_t pkt[8];
    queue_out(u, pkt, mqtt_encode_ack(pkt, sizeof pkt, u->cfg.protocol, type, &a));
}

static void send_publish(uplink_t *u, bytes_t topic, bytes_t payload, uint8_t qos, bool retain,
                         uint16_t pid, bool dup)
{
    mqtt_publish_t p = {.dup = dup,
                        .qos = qos,
                        .retain = retain,
                        .topic = topic,
                        .packet_id = pid,
                        .payload = payload};
    size_t n = mqtt_encode_publish(NULL, 0, u->cfg.protocol, &p);
    if (buf_reserve(&u->out, n)) {
        link_down(u, "out of memory");
        return;
    }
    mqtt_encode_publish(u->out.data + u->out.len, n, u->cfg.protocol, &p);
    u->out.len += n;
    u->last_tx_ms = clock_mono_ms();
}

static uint16_t next_service_pid(uplink_t *u)
{
    uint16_t pid = u->service_pid++;
    if (u->service_pid == 0 || u->service_pid <= u->window)
        u->service_pid = (uint16_t)(u->window + 1);
    return pid;
}

static void free_pending_subs(uplink_t *u)
{
    while (u->pending_subs) {
        pending_sub_t *p = u->pending_subs;
        u->pending_subs = p->next;
        for (size_t i = 0; i < p->count; i++)
            free(p->filters[i]);
        free(p);
    }
}

/* One SUBSCRIBE for filters[0..n). */
static void send_subscribe(uplink_t *u, char *const *filters, size_t n)
{
    mqtt_sub_entry_t *entries = calloc(n, sizeof *entries);
    pending_sub_t *p = calloc(1, sizeof *p + n * sizeof p->filters[0]);
    if (!entries || !p) {
        free(entries);
        free(p);
        link_down(u, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        entries[i] = (mqtt_sub_entry_t){.filter = bytes_of_cstr(filters[i]), .qos = 1};
        if ((p->filters[i] = strdup(filters[i])))
            p->count = i + 1;
    }
    p->packet_id = next_service_pid(u);
    size_t size = mqtt_encode_subscribe(NULL, 0, u->cfg.protocol, MQTT_SUBSCRIBE, p->packet_id,
                                        NULL, entries, n);
    if (buf_reserve(&u->out, size)) {
        free(entries);
        for (size_t i = 0; i < p->count; i++)
            free(p->filters[i]);
        free(p);
        link_down(u, "out of memory");
        return;
    }
    mqtt_encode_subscribe(u->out.data + u->out.len, size, u->cfg.protocol, MQTT_SUBSCRIBE,
                          p->packet_id, NULL, entries, n);
    u->out.len += size;
    u->last_tx_ms = clock_mono_ms();
    p->next = u->pending_subs;
    u->pending_subs = p;
    free(entries);
}

static bool subscribed(const uplink_t *u, const char *f)
{
    for (size_t i = 0; i < u->subscribed_count; i++)
        if (strcmp(u->subscribed[i], f) == 0)
            return true;
    return false;
}

static void forget_subscribed(uplink_t *u)
{
    for (size_t i = 0; i < u->subscribed_count; i++)
        free(u->subscribed[i]);
    free(u->subscribed);
    u->subscribed = NULL;
    u->subscribed_count = 0;
}

/* Every filter wanted (routes from the cloud, services' watches) that this
 * connection has not subscribed to yet, each once, in SUBSCRIBEs of at
 * most max_filters_per_subscribe (AWS IoT Core takes 8). A filter beyond
 * the cloud's limits is left out and logged. */
static void send_subscriptions(uplink_t *u)
{
    size_t n = u->filter_count;
    for (watch_t *w = u->watches; w; w = w->next)
        n++;
    char **list = calloc(n ? n : 1, sizeof *list);
    char **grown = realloc(u->subscribed, (u->subscribed_count + n + 1) * sizeof *grown);
    if (grown)
        u->subscribed = grown;
    if (!list || !grown) {
        free(list);
        link_down(u, "out of memory");
        return;
    }
    size_t k = 0;
    watch_t *w = u->watches;
    for (size_t i = 0; i < n; i++) {
        const char *f = i < u->filter_count ? u->filters[i] : w->filter;
        if (i >= u->filter_count)
            w = w->next;
        char why[200];
        if (subscribed(u, f))
            continue;
        if (!uplink_topic_fits(&u->cfg.limits, bytes_of_cstr(f), true, why, sizeof why)) {
            LOGW("not subscribing to %s on the cloud: %s", f, why);
            continue;
        }
        char *copy = strdup(f);
        if (!copy)
            continue;
        u->subscribed[u->subscribed_count++] = copy;
        list[k++] = copy;
    }
    size_t per = u->cfg.limits.max_filters_per_subscribe;
    for (size_t i = 0; i < k && u->state == LINK_UP; i += per)
        send_subscribe(u, list + i, k - i < per ? k - i : per);
    free(list);
}

static void send_connect(uplink_t *u)
{
    mqtt_connect_t c = {
        .version = u->cfg.protocol,
        .clean_start = false,
        .keep_alive = u->cfg.keepalive_s,
        .client_id = bytes_of_cstr(u->cfg.client_id),
    };
    if (c.version == MQTT_V5) {
        c.props.session_expiry = 3600;
        mqtt_props_set(&c.props, MQTT_PROP_SESSION_EXPIRY);
        c.props.receive_maximum = 100;
        mqtt_props_set(&c.props, MQTT_PROP_RECEIVE_MAXIMUM);
    }
    uint8_t pkt[600];
    size_t n = mqtt_encode_connect(pkt, sizeof pkt, &c);
    if (n <= sizeof pkt)
        queue_out(u, pkt, n);
    u->state = LINK_CONNACK;
}

static void release_slot(uplink_t *u, uint16_t pid)
{
    u->inflight[pid] = NULL;
    u->free_slots[u->free_count++] = pid;
}

static uint16_t inflight_count(const uplink_t *u)
{
    return (uint16_t)(u->window - u->free_count);
}

static void remember_dead_letter(uplink_t *u, const spool_entry_t *e, const char *reason)
{
    size_t i = u->recent_dead_next++ % RECENT_DEAD_LETTERS;
    snprintf(u->recent_dead[i].topic, sizeof u->recent_dead[i].topic, "%.*s",
             (int)(e->topic.len < 150 ? e->topic.len : 150), (const char *)e->topic.data);
    u->recent_dead[i].bytes = e->payload.len;
    snprintf(u->recent_dead[i].reason, sizeof u->recent_dead[i].reason, "%s", reason);
    u->recent_dead[i].at = clock_wall_s();
}

/* The cloud will not take `e`: out of the spool, into the dead letters. */
static void dead_letter(uplink_t *u, spool_entry_t *e, const char *reason)
{
    LOGW("a message on %.*s (%zu bytes) is moved to the dead letters: %s",
         (int)(e->topic.len < 200 ? e->topic.len : 200), (const char *)e->topic.data,
         e->payload.len, reason);
    remember_dead_letter(u, e, reason);
    u->dead_lettered++;
    if (u->probe_upto && e->seq >= u->probe_upto)
        u->probe_upto = 0;
    spool_dead_letter(u->spool, e, reason);
}

/* A spooled message the limits forbid (spooled under other limits, or
 * before a restart): it goes to the dead letters instead of the cloud. */
static bool beyond_limits(uplink_t *u, spool_entry_t *e)
{
    char why[200], reason[256];
    const uplink_limits_t *l = &u->cfg.limits;
    if (l->max_payload_bytes && e->payload.len > l->max_payload_bytes) {
        snprintf(reason, sizeof reason, "its payload of %zu bytes is over the cloud's %u",
                 e->payload.len, l->max_payload_bytes);
    } else if (!uplink_topic_fits(l, e->topic, false, why, sizeof why)) {
        snprintf(reason, sizeof reason, "its topic: %s", why);
    } else {
        return false;
    }
    dead_letter(u, e, reason);
    return true;
}

static void throttled(uplink_t *u, const char *what)
{
    uint64_t now = clock_mono_ms();
    bool first = u->pace.streak == 0;
    pace_throttled(&u->pace, now, 0);
    u->pace.paused_until_ms = now + uplink_retry_ms(u, u->pace.streak);
    if (first || u->pace.throttles % 100 == 0)
        LOGW("the cloud throttles (%s): sending at %.0f publishes/s, paused for %llu ms "
             "(%llu throttles so far)",
             what, u->pace.rate, (unsigned long long)(u->pace.paused_until_ms - now),
             (unsigned long long)u->pace.throttles);
}

/* Every unacknowledged publish has ack_timeout_ms to be acknowledged;
 * one that is not means throttling (AWS IoT Core answers nothing to a
 * throttled MQTT 3.1.1 publish) or a loss. */
static void ack_cb(uv_timer_t *t)
{
    uplink_t *u = t->data;
    uint64_t timeout = u->cfg.limits.ack_timeout_ms;
    if (u->state != LINK_UP || !timeout)
        return;
    uint64_t now = clock_mono_ms(), due = UINT64_MAX;
    for (uint16_t pid = 1; pid <= u->window; pid++) {
        spool_entry_t *e = u->inflight[pid];
        if (!e || e == &evicted || !e->sent_ms)
            continue;
        if (now - e->sent_ms >= timeout) {
            u->ack_timeouts++;
            throttled(u, "no PUBACK");
            set_error(u, "no PUBACK from the cloud within %llu ms: it throttles or lost it",
                      (unsigned long long)timeout);
            link_down(u, u->last_error);
            return;
        }
        if (e->sent_ms + timeout < due)
            due = e->sent_ms + timeout;
    }
    if (due != UINT64_MAX)
        uv_timer_start(&u->ack_timer, ack_cb, due - now, 0);
}

static void arm_ack_timer(uplink_t *u)
{
    if (u->cfg.limits.ack_timeout_ms && !uv_is_active((uv_handle_t *)&u->ack_timer))
        uv_timer_start(&u->ack_timer, ack_cb, u->cfg.limits.ack_timeout_ms, 0);
}

static void send_entry(uplink_t *u, spool_entry_t *e, uint16_t pid, bool dup, uint64_t now)
{
    pace_spend(&u->pace, e->topic.len + e->payload.len, now);
    e->sent_ms = now;
    send_publish(u, e->topic, e->payload, 1, e->retain, pid, dup);
    e->sent = true;
}

static void pace_cb(uv_timer_t *t)
{
    pump(t->data);
}

/* The pace says wait: come back when it allows. */
static void wait_for_pace(uplink_t *u, uint64_t now)
{
    uint64_t ms = pace_wait_ms(&u->pace, now);
    if (!uv_is_active((uv_handle_t *)&u->pace_timer))
        uv_timer_start(&u->pace_timer, pace_cb, ms ? ms : 1, 0);
}

static void pump(uplink_t *u)
{
    if (u->state != LINK_UP)
        return;
    uint64_t now = clock_mono_ms();
    /* Throttled ones first: they are older than anything not yet sent. */
    while (u->resend_count && u->out.len < OUTPUT_HIGH_WATER) {
        uint16_t pid = u->resend[0];
        spool_entry_t *e = u->inflight[pid];
        if (e && e != &evicted && !pace_may_send(&u->pace, now)) {
            wait_for_pace(u, now);
            return;
        }
        u->resend_count--;
        memmove(u->resend, u->resend + 1, u->resend_count * sizeof *u->resend);
        if (!e || e == &evicted) {
            if (e)
                release_slot(u, pid);
            continue;
        }
        send_entry(u, e, pid, false, now);
        if (u->state != LINK_UP)
            return;
        arm_ack_timer(u);
    }
    uint16_t window = u->probe_upto ? 1 : u->window_now;
    while (u->free_count && inflight_count(u) < window && u->out.len < OUTPUT_HIGH_WATER) {
        if (!pace_may_send(&u->pace, now)) {
            wait_for_pace(u, now);
            break;
        }
        spool_entry_t *e = spool_take(u->spool);
        if (!e)
            break;
        if (beyond_limits(u, e))
            continue;
        if (u->probe_upto && e->seq > u->probe_upto) {
            u->probe_upto = 0; /* what was in flight at the drop is through */
            window = u->window_now;
        }
        uint16_t pid = u->free_slots[--u->free_count];
        u->inflight[pid] = e;
        e->packet_id = pid;
        send_entry(u, e, pid, e->sent, now);
        if (u->state != LINK_UP)
            return;
        arm_ack_timer(u);
    }
}

static bool filter_wanted(uplink_t *u, bytes_t topic)
{
    for (size_t i = 0; i < u->filter_count; i++)
        if (mqtt_topic_matches(bytes_of_cstr(u->filters[i]), topic))
            return true;
    return false;
}

static void incoming_publish(uplink_t *u, const mqtt_frame_t *f)
{
    mqtt_publish_t p;
    const char *why = "malformed PUBLISH";
    if (mqtt_decode_publish(f, u->cfg.protocol, &p, &why) || !mqtt_topic_name_valid(p.topic)) {
        set_error(u, "the cloud sent a bad PUBLISH: %s", why);
        link_down(u, u->last_error);
        return;
    }
    u->received++;
    for (watch_t *w = u->watches; w; w = w->next)
        if (mqtt_topic_matches(bytes_of_cstr(w->filter), p.topic))
            w->fn(w->ctx, p.topic, p.payload);
    if (u->o.deliver && filter_wanted(u, p.topic))
        u->o.deliver(u->o.ctx, p.topic, p.payload, p.qos);
    if (p.qos == 1)
        send_packet_ack(u, MQTT_PUBACK, p.packet_id);
    else if (p.qos == 2)
        send_packet_ack(u, MQTT_PUBREC, p.packet_id);
}

static void handle_packet(uplink_t *u, const mqtt_frame_t *f)
{
    const char *why = "malformed packet";
    if (u->state == LINK_CONNACK) {
        mqtt_connack_t ack;
        if (f->type != MQTT_CONNACK || mqtt_decode_connack(f, u->cfg.protocol, &ack, &why)) {
            set_error(u, "expected CONNACK: %s", why);
            link_down(u, u->last_error);
            return;
        }
        if (ack.reason) {
            set_error(u, "the cloud refused the connection: %s (%u)",
                      u->cfg.protocol == MQTT_V5 ? mqtt_reason_name(ack.reason)
                                                 : "3.1.1 return code",
                      ack.reason);
            link_down(u, u->last_error);
            return;
        }
        uint16_t window = u->window;
        if (mqtt_props_has(&ack.props, MQTT_PROP_RECEIVE_MAXIMUM) &&
            ack.props.receive_maximum < window)
            window = ack.props.receive_maximum;
        u->window_now = window;
        u->free_count = 0;
        for (uint16_t pid = u->window; pid >= 1; pid--)
            u->free_slots[u->free_count++] = pid;
        u->state = LINK_UP;
        u->up_since_ms = clock_mono_ms();
        u->next_attempt_ms = 0;
        u->connected_at = (uint64_t)clock_wall_s();
        u->last_error[0] = '\0';
        LOGI("connected to the cloud at %s as '%s' (session %s, window %u%s)", u->cfg.endpoint,
             u->cfg.client_id, ack.session_present ? "resumed" : "new", window,
             u->probe_upto ? ", one message at a time until those in flight at the drop are "
                             "through"
                           : "");
        send_subscriptions(u);
        spool_rewind(u->spool);
        pump(u);
        if (u->o.on_link)
            u->o.on_link(u->o.ctx, true);
        return;
    }
    mqtt_ack_t a;
    switch (f->type) {
    case MQTT_PUBACK:
        if (mqtt_decode_ack(f, u->cfg.protocol, &a, &why))
            break;
        if (a.packet_id >= 1 && a.packet_id <= u->window && u->inflight[a.packet_id]) {
            spool_entry_t *e = u->inflight[a.packet_id];
            if (e == &evicted) {
                release_slot(u, a.packet_id);
            } else if (a.reason == MQTT_RC_QUOTA_EXCEEDED) {
                /* Throttled: the same message again after the pause. */
                u->throttled_acks++;
                throttled(u, "PUBACK 0x97, quota exceeded");
                e->sent_ms = 0;
                u->resend[u->resend_count++] = a.packet_id;
            } else if (a.reason >= 0x80) {
                /* The cloud will not take it (not authorised, say):
                 * sending it again would fail the same way. */
                release_slot(u, a.packet_id);
                u->refused_by_cloud++;
                char reason[160];
                snprintf(reason, sizeof reason, "the cloud refused it: %s (0x%02x)",
                         mqtt_reason_name(a.reason), a.reason);
                dead_letter(u, e, reason);
            } else {
                release_slot(u, a.packet_id);
                if (u->probe_upto && e->seq >= u->probe_upto)
                    u->probe_upto = 0;
                spool_remove(u->spool, e);
            }
        }
        pump(u);
        break;
    case MQTT_PUBLISH: incoming_publish(u, f); break;
    case MQTT_PUBREL:
        if (!mqtt_decode_ack(f, u->cfg.protocol, &a, &why))
            send_packet_ack(u, MQTT_PUBCOMP, a.packet_id);
        break;
    case MQTT_PUBREC:
        if (!mqtt_decode_ack(f, u->cfg.protocol, &a, &why))
            send_packet_ack(u, MQTT_PUBREL, a.packet_id);
        break;
    case MQTT_SUBACK: {
        mqtt_suback_t s;
        if (mqtt_decode_suback(f, u->cfg.protocol, &s, &why))
            break;
        pending_sub_t **pp = &u->pending_subs;
        while (*pp && (*pp)->packet_id != s.packet_id)
            pp = &(*pp)->next;
        pending_sub_t *p = *pp;
        for (size_t i = 0; i < s.reasons.len; i++)
            if (s.reasons.data[i] >= 0x80)
                LOGW("the cloud refused the subscription to %s (reason 0x%02x)",
                     p && i < p->count ? p->filters[i] : "?", s.reasons.data[i]);
        if (p) {
            *pp = p->next;
            for (size_t i = 0; i < p->count; i++)
                free(p->filters[i]);
            free(p);
        }
        break;
    }
    case MQTT_PINGRESP: u->ping_sent_ms = 0; break;
    case MQTT_DISCONNECT: {
        mqtt_reason_packet_t d = {0};
        bool malformed = mqtt_decode_disconnect(f, u->cfg.protocol, &d, &why) != SEDGE_OK;
        if (malformed) {
            d.reason = MQTT_RC_UNSPECIFIED;
            set_error(u, "the cloud disconnected with a malformed DISCONNECT (%s)", why);
        } else
            set_error(u, "the cloud disconnected: %s (0x%02x)", mqtt_reason_name(d.reason),
                      d.reason);
        if (d.reason == MQTT_RC_MESSAGE_RATE_TOO_HIGH || d.reason == MQTT_RC_QUOTA_EXCEEDED) {
            throttled(u, mqtt_reason_name(d.reason));
            link_down(u, u->last_error);
        } else if (d.reason == MQTT_RC_SERVER_BUSY || d.reason == MQTT_RC_SERVER_SHUTTING_DOWN ||
                   d.reason == MQTT_RC_USE_ANOTHER_SERVER || d.reason == MQTT_RC_SERVER_MOVED ||
                   d.reason == MQTT_RC_SESSION_TAKEN_OVER ||
                   d.reason == MQTT_RC_ADMINISTRATIVE_ACTION) {
            link_down(u, u->last_error); /* not about what was in flight */
        } else {
            cloud_cut(u, u->last_error);
        }
        break;
    }
    default: break;
    }
}

static void take_plaintext(uplink_t *u, const uint8_t *data, size_t len)
{
    if (buf_append(&u->in, data, len)) {
        link_down(u, "out of memory");
        return;
    }
    size_t used = 0;
    while (u->conn && used < u->in.len) {
        mqtt_frame_t f;
        const char *why = "malformed packet";
        sedge_err err = mqtt_frame_parse(u->in.data + used, u->in.len - used, &f, &why);
        if (err == SEDGE_ERR_AGAIN)
            break;
        if (err) {
            set_error(u, "the cloud sent a malformed packet: %s", why);
            link_down(u, u->last_error);
            return;
        }
        used += f.size;
        handle_packet(u, &f);
    }
    if (u->conn)
        buf_consume(&u->in, used);
}

static void tls_failed(uplink_t *u, const char *what, down_cause_t cause)
{
    conn_t *c = u->conn;
    long verify = SSL_get_verify_result(c->ssl);
    char detail[256] = "connection closed";
    unsigned long e = ERR_get_error();
    if (verify != X509_V_OK)
        snprintf(detail, sizeof detail, "server certificate: %s",
                 X509_verify_cert_error_string(verify));
    else if (e)
        ERR_error_string_n(e, detail, sizeof detail);
    ERR_clear_error();
    set_error(u, "TLS %s with %s failed: %s", what, u->cfg.endpoint, detail);
    link_down_by(u, cause, u->last_error);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    static char scratch[65536];
    (void)suggested;
    buf->base = scratch;
    buf->len = sizeof scratch;
}

static void read_cb(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    conn_t *c = stream->data;
    uplink_t *u = c->u;
    if (!u || n == 0)
        return;
    if (n < 0) {
        set_error(u, "connection to %s lost: %s", u->cfg.endpoint, uv_strerror((int)n));
        cloud_cut(u, u->last_error);
        return;
    }
    BIO_write(c->rbio, buf->base, (int)n);
    if (u->state == LINK_HANDSHAKE) {
        int rc = SSL_do_handshake(c->ssl);
        if (rc != 1) {
            int e = SSL_get_error(c->ssl, rc);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                tls_failed(u, "handshake", DOWN_LOCAL);
            else
                flush(u);
            return;
        }
        send_connect(u);
    }
    uint8_t plain[16384];
    for (;;) {
        int r = SSL_read(c->ssl, plain, sizeof plain);
        if (r > 0) {
            take_plaintext(u, plain, (size_t)r);
            if (u->conn != c)
                return;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            set_error(u, "the cloud closed the connection");
            cloud_cut(u, u->last_error);
        } else {
            tls_failed(u, "read", DOWN_BY_CLOUD);
        }
        return;
    }
    flush(u);
}

/* Connecting. */

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (c->ssl)
        SSL_free(c->ssl);
    buf_free(&c->writing);
    free(c);
}

static void start_connect(uplink_t *u);

static void retry_cb(uv_timer_t *t)
{
    start_connect(t->data);
}

/* The link the cloud cut had `e` alone in flight: one more strike. */
static void strike(uplink_t *u, spool_entry_t *e)
{
    if (++e->strikes < u->cfg.limits.dead_letter_after || !u->cfg.limits.dead_letter_after) {
        LOGW("the cloud cut the link while a message on %.*s was alone in flight (%u of %u "
             "times before it is moved to the dead letters)",
             (int)(e->topic.len < 200 ? e->topic.len : 200), (const char *)e->topic.data,
             e->strikes, u->cfg.limits.dead_letter_after);
        return;
    }
    char reason[200];
    snprintf(reason, sizeof reason,
             "the cloud closed the connection each of the %u times it was the only message in "
             "flight",
             e->strikes);
    dead_letter(u, e, reason);
}

static void link_down_by(uplink_t *u, down_cause_t cause, const char *why)
{
    bool was_up = u->state == LINK_UP;
    conn_t *c = u->conn;
    if (c) {
        c->u = NULL;
        u->conn = NULL;
        uv_read_stop((uv_stream_t *)&c->tcp);
        if (!uv_is_closing((uv_handle_t *)&c->tcp))
            uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    }
    u->in.len = 0;
    u->out.len = 0;
    /* What was in flight: one message alone takes a strike when the cloud
     * cut the link; several make the next link probe one at a time. */
    spool_entry_t *alone = NULL;
    uint16_t in_flight = 0;
    uint64_t last_seq = 0;
    for (uint16_t pid = 1; pid <= u->window; pid++) {
        spool_entry_t *e = u->inflight[pid];
        if (!e || e == &evicted)
            continue;
        in_flight++;
        alone = e;
        if (e->seq > last_seq)
            last_seq = e->seq;
        e->packet_id = 0;
    }
    if (was_up && cause == DOWN_BY_CLOUD && in_flight > 1 && last_seq > u->probe_upto)
        u->probe_upto = last_seq;
    memset(u->inflight, 0, ((size_t)u->window + 1) * sizeof *u->inflight);
    u->free_count = 0;
    u->resend_count = 0;
    u->ping_sent_ms = 0;
    free_pending_subs(u);
    forget_subscribed(u);
    uv_timer_stop(&u->pace_timer);
    uv_timer_stop(&u->ack_timer);
    if (u->state == LINK_STOPPED)
        return;
    u->state = LINK_IDLE;
    uint64_t now = clock_mono_ms();
    if (was_up && now - u->up_since_ms >= STABLE_LINK_MS)
        u->attempts = 0;
    u->attempts++;
    if (was_up) {
        u->reconnects++;
        if (cause == DOWN_BY_CLOUD && in_flight == 1)
            strike(u, alone);
        if (u->o.on_link)
            u->o.on_link(u->o.ctx, false);
    }
    uint64_t delay =
        uplink_backoff_ms(u->cfg.reconnect_min_ms, u->cfg.reconnect_max_ms, u->attempts);
    if (u->pace.paused_until_ms > now && u->pace.paused_until_ms - now > delay)
        delay = u->pace.paused_until_ms - now;
    u->last_delay_ms = delay;
    u->next_attempt_ms = now + delay;
    LOGW("cloud %s: %s; reconnecting in %.3f s", u->cfg.endpoint, why, delay / 1000.0);
    uv_timer_start(&u->retry_timer, retry_cb, delay, 0);
}

static void on_tcp_connected(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    uplink_t *u = c->u;
    if (!u)
        return;
    if (status < 0) {
        set_error(u, "cannot connect to %s: %s", u->cfg.endpoint, uv_strerror(status));
        link_down(u, u->last_error);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 60);
    c->ssl = SSL_new(u->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        c->rbio = c->wbio = NULL;
        link_down(u, "out of memory");
        return;
    }
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_connect_state(c->ssl);
    SSL_set_tlsext_host_name(c->ssl, u->host);
    SSL_set1_host(c->ssl, u->host);
    if (strcmp(u->port, "443") == 0) {
        static const unsigned char alpn[] = "\x0ex-amzn-mqtt-ca";
        SSL_set_alpn_protos(c->ssl, alpn, sizeof alpn - 1);
    }
    u->state = LINK_HANDSHAKE;
    SSL_do_handshake(c->ssl);
    flush(u);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    uplink_t *u = req->data;
    u->resolving = false;
    if (u->state == LINK_STOPPED) {
        uv_freeaddrinfo(res);
        if (--u->handles == 0 && u->stop_done)
            u->stop_done(u->stop_ctx);
        return;
    }
    u->handles--;
    if (status < 0 || !res) {
        set_error(u, "cannot resolve %s: %s", u->host, uv_strerror(status));
        uv_freeaddrinfo(res);
        link_down(u, u->last_error);
        return;
    }
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        uv_freeaddrinfo(res);
        link_down(u, "out of memory");
        return;
    }
    c->u = u;
    uv_tcp_init(u->loop, &c->tcp);
    c->tcp.data = c;
    c->connect_req.data = c;
    u->conn = c;
    u->state = LINK_CONNECTING;
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp, res->ai_addr, on_tcp_connected);
    uv_freeaddrinfo(res);
    if (rc) {
        set_error(u, "cannot connect to %s: %s", u->cfg.endpoint, uv_strerror(rc));
        link_down(u, u->last_error);
    }
}

static void start_connect(uplink_t *u)
{
    if (u->state != LINK_IDLE)
        return;
    u->state = LINK_RESOLVING;
    u->attempt_started_ms = clock_mono_ms();
    u->resolve_req.data = u;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    u->handles++;
    u->resolving = true;
    int rc = uv_getaddrinfo(u->loop, &u->resolve_req, on_resolved, u->host, u->port, &hints);
    if (rc) {
        u->handles--;
        u->resolving = false;
        set_error(u, "cannot resolve %s: %s", u->host, uv_strerror(rc));
        link_down(u, u->last_error);
    }
}

static void keepalive_cb(uv_timer_t *t)
{
    uplink_t *u = t->data;
    uint64_t now = clock_mono_ms(), ka = (uint64_t)u->cfg.keepalive_s * 1000u;
    if (u->state == LINK_RESOLVING || u->state == LINK_CONNECTING || u->state == LINK_HANDSHAKE ||
        u->state == LINK_CONNACK) {
        /* A cloud that accepts and then says nothing must not hold the
         * link: each step of connecting has a deadline. */
        uint64_t limit = ka > CONNECT_TIMEOUT_MS ? ka : CONNECT_TIMEOUT_MS;
        if (now - u->attempt_started_ms > limit) {
            static const char *const steps[] = {"", "resolving", "connecting", "the TLS handshake",
                                                "waiting for CONNACK"};
            set_error(u, "no answer from %s after %llu s (%s)", u->cfg.endpoint,
                      (unsigned long long)(limit / 1000), steps[u->state]);
            link_down(u, u->last_error);
        }
        return;
    }
    if (u->state != LINK_UP)
        return;
    if (u->ping_sent_ms && now - u->ping_sent_ms > ka) {
        set_error(u, "no answer from the cloud for %u s", u->cfg.keepalive_s);
        link_down(u, u->last_error);
        return;
    }
    if (u->state == LINK_UP && !u->ping_sent_ms && now - u->last_tx_ms >= ka / 2) {
        uint8_t pkt[2];
        queue_out(u, pkt, mqtt_encode_empty(pkt, sizeof pkt, MQTT_PINGREQ));
        u->ping_sent_ms = now;
    }
}

/* Spool callbacks. */

static void spool_ready(void *ctx)
{
    pump(ctx);
}

static void spool_evict(void *ctx, spool_entry_t *e)
{
    uplink_t *u = ctx;
    if (e->packet_id && e->packet_id <= u->window && u->inflight[e->packet_id] == e)
        u->inflight[e->packet_id] = &evicted; /* the slot frees when its PUBACK comes */
    if (u->probe_upto && e->seq >= u->probe_upto)
        u->probe_upto = 0;
}

static SSL_CTX *client_tls_context(uplink_t *u)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    const char *what = NULL;
    if (u->cfg.ca_file && SSL_CTX_load_verify_locations(ctx, u->cfg.ca_file, NULL) != 1)
        what = u->cfg.ca_file;
    else if (!u->cfg.ca_file && SSL_CTX_set_default_verify_paths(ctx) != 1)
        what = "the system CA store";
    else if (u->cfg.cert_file && SSL_CTX_use_certificate_chain_file(ctx, u->cfg.cert_file) != 1)
        what = u->cfg.cert_file;
    else if (u->cfg.key_file &&
             SSL_CTX_use_PrivateKey_file(ctx, u->cfg.key_file, SSL_FILETYPE_PEM) != 1)
        what = u->cfg.key_file;
    if (what) {
        char detail[256] = "";
        ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
        LOGE("cloud TLS: cannot load %s: %s", what, detail);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

sedge_err uplink_start(const uplink_options_t *opts, uplink_t **out)
{
    uplink_t *u = calloc(1, sizeof *u);
    if (!u)
        return SEDGE_ERR_NOMEM;
    u->loop = opts->loop;
    u->o = *opts;
    u->cfg = *opts->cfg;
    u->cfg.endpoint = dup_or_null(opts->cfg->endpoint);
    u->cfg.ca_file = dup_or_null(opts->cfg->ca_file);
    u->cfg.cert_file = dup_or_null(opts->cfg->cert_file);
    u->cfg.key_file = dup_or_null(opts->cfg->key_file);
    u->cfg.client_id = dup_or_null(opts->cfg->client_id);
    const char *colon = strrchr(u->cfg.endpoint, ':');
    size_t hlen = colon ? (size_t)(colon - u->cfg.endpoint) : 0;
    if (!colon || hlen == 0 || hlen >= sizeof u->host || strlen(colon + 1) >= sizeof u->port) {
        LOGE("cloud endpoint '%s' is not host:port", u->cfg.endpoint);
        uplink_free(u);
        return SEDGE_ERR_INVALID;
    }
    memcpy(u->host, u->cfg.endpoint, hlen);
    snprintf(u->port, sizeof u->port, "%s", colon + 1);
    u->window = u->cfg.max_inflight ? u->cfg.max_inflight : 100;
    u->window_now = u->window;
    u->service_pid = (uint16_t)(u->window + 1);
    if (!u->cfg.limits.max_filters_per_subscribe)
        u->cfg.limits.max_filters_per_subscribe = 8;
    pace_init(&u->pace, u->cfg.limits.publishes_per_s, u->cfg.limits.bytes_per_s, clock_mono_ms());
    u->inflight = calloc((size_t)u->window + 1, sizeof *u->inflight);
    u->free_slots = calloc((size_t)u->window + 1, sizeof *u->free_slots);
    u->resend = calloc((size_t)u->window + 1, sizeof *u->resend);
    if (!u->inflight || !u->free_slots || !u->resend || !(u->ssl_ctx = client_tls_context(u))) {
        uplink_free(u);
        return SEDGE_ERR_TLS;
    }
    spool_options_t so = {.store = opts->store,
                          .storage = u->cfg.spool_storage,
                          .max_bytes = u->cfg.spool_max_bytes,
                          .when_full = u->cfg.spool_when_full,
                          .on_ready = spool_ready,
                          .on_evict = spool_evict,
                          .ctx = u};
    sedge_err err = spool_open(&so, &u->spool);
    if (err) {
        uplink_free(u);
        return err;
    }
    uv_timer_init(u->loop, &u->retry_timer);
    uv_timer_init(u->loop, &u->keepalive_timer);
    uv_timer_init(u->loop, &u->pace_timer);
    uv_timer_init(u->loop, &u->ack_timer);
    u->retry_timer.data = u->keepalive_timer.data = u;
    u->pace_timer.data = u->ack_timer.data = u;
    uint64_t tick = u->cfg.keepalive_s ? (uint64_t)u->cfg.keepalive_s * 250u : 5000u;
    uv_timer_start(&u->keepalive_timer, keepalive_cb, tick, tick);
    u->handles = 4;
    const uplink_limits_t *l = &u->cfg.limits;
    LOGI("cloud uplink to %s, spool %s (max %llu bytes, %s when full); limits %s: topics of %u "
         "bytes and %u slashes, payloads of %u bytes, %u publishes/s, %u bytes/s (0: none)",
         u->cfg.endpoint, u->cfg.spool_storage == SPOOL_DISK ? "on disk" : "in memory",
         (unsigned long long)u->cfg.spool_max_bytes,
         u->cfg.spool_when_full == SPOOL_DROP_OLDEST ? "drop oldest" : "reject new",
         u->cfg.aws ? "of AWS IoT Core" : "of a plain MQTT broker", l->max_topic_bytes,
         l->max_topic_slashes, l->max_payload_bytes, l->publishes_per_s, l->bytes_per_s);
    start_connect(u);
    *out = u;
    return SEDGE_OK;
}

static void handle_closed(uv_handle_t *h)
{
    uplink_t *u = h->data;
    if (--u->handles == 0 && u->stop_done)
        u->stop_done(u->stop_ctx);
}

void uplink_stop(uplink_t *u, void (*done)(void *ctx), void *ctx)
{
    u->stop_done = done;
    u->stop_ctx = ctx;
    if (u->state == LINK_UP) {
        mqtt_reason_packet_t d = {0};
        uint8_t pkt[8];
        queue_out(u, pkt, mqtt_encode_disconnect(pkt, sizeof pkt, u->cfg.protocol, &d));
        flush(u);
    }
    u->state = LINK_STOPPED;
    link_down(u, "stopping");
    if (u->resolving)
        uv_cancel((uv_req_t *)&u->resolve_req);
    uv_close((uv_handle_t *)&u->retry_timer, handle_closed);
    uv_close((uv_handle_t *)&u->keepalive_timer, handle_closed);
    uv_close((uv_handle_t *)&u->pace_timer, handle_closed);
    uv_close((uv_handle_t *)&u->ack_timer, handle_closed);
}

void uplink_free(uplink_t *u)
{
    if (!u)
        return;
    spool_free(u->spool);
    if (u->ssl_ctx)
        SSL_CTX_free(u->ssl_ctx);
    for (size_t i = 0; i < u->filter_count; i++)
        free(u->filters[i]);
    free(u->filters);
    while (u->watches) {
        watch_t *w = u->watches;
        u->watches = w->next;
        free(w->filter);
        free(w);
    }
    free_pending_subs(u);
    forget_subscribed(u);
    free(u->inflight);
    free(u->free_slots);
    free(u->resend);
    buf_free(&u->in);
    buf_free(&u->out);
    free(u->cfg.endpoint);
    free(u->cfg.ca_file);
    free(u->cfg.cert_file);
    free(u->cfg.key_file);
    free(u->cfg.client_id);
    free(u);
}

/* Would the cloud refuse a message on `topic` with `payload`? Counted and
 * logged (each kind at most once a second) when so. */
static sedge_err check_limits(uplink_t *u, bytes_t topic, bytes_t payload)
{
    const uplink_limits_t *l = &u->cfg.limits;
    char why[200];
    sedge_err err = SEDGE_OK;
    if (l->max_payload_bytes && payload.len > l->max_payload_bytes) {
        snprintf(why, sizeof why, "its payload of %zu bytes is over the cloud's %u", payload.len,
                 l->max_payload_bytes);
        u->refused_payload++;
        err = SEDGE_ERR_TOO_LARGE;
    } else if (!uplink_topic_fits(l, topic, false, why, sizeof why)) {
        u->refused_topic++;
        err = SEDGE_ERR_INVALID;
    }
    uint64_t now = clock_mono_ms(), *logged = &u->limit_log_ms[err == SEDGE_ERR_TOO_LARGE];
    if (err && (!*logged || now - *logged >= 1000)) {
        *logged = now;
        LOGW("a message for the cloud on %.*s is refused: %s (%llu refused so far)",
             (int)(topic.len < 200 ? topic.len : 200), (const char *)topic.data, why,
             (unsigned long long)(u->refused_topic + u->refused_payload));
    }
    return err;
}

sedge_err uplink_send(uplink_t *u, bytes_t topic, bytes_t payload, int route_qos, bool retain,
                      uint64_t *batch)
{
    *batch = 0;
    sedge_err err = check_limits(u, topic, payload);
    if (err)
        return err;
    if (route_qos == 0) {
        uint64_t now = clock_mono_ms();
        if (u->state != LINK_UP || !pace_may_send(&u->pace, now)) {
            u->qos0_dropped++;
            return SEDGE_OK;
        }
        pace_spend(&u->pace, topic.len + payload.len, now);
        send_publish(u, topic, payload, 0, retain, 0, false);
        return SEDGE_OK;
    }
    err = spool_append(u->spool, topic, payload, 1, retain, batch);
    if (!err)
        pump(u);
    return err;
}

void uplink_set_subscriptions(uplink_t *u, const char *const *filters, size_t count)
{
    for (size_t i = 0; i < u->filter_count; i++)
        free(u->filters[i]);
    free(u->filters);
    u->filters = calloc(count ? count : 1, sizeof *u->filters);
    u->filter_count = 0;
    for (size_t i = 0; u->filters && i < count; i++)
        if ((u->filters[u->filter_count] = strdup(filters[i])))
            u->filter_count++;
    if (u->state == LINK_UP)
        send_subscriptions(u);
}

bool uplink_publish(uplink_t *u, bytes_t topic, bytes_t payload, uint8_t qos)
{
    if (u->state != LINK_UP || check_limits(u, topic, payload))
        return false;
    /* Services' requests are few and answered: they go at once, and the
     * drain makes up for them. */
    pace_spend(&u->pace, topic.len + payload.len, clock_mono_ms());
    send_publish(u, topic, payload, qos ? 1 : 0, false, qos ? next_service_pid(u) : 0, false);
    return true;
}

sedge_err uplink_watch(uplink_t *u, const char *filter, uplink_watch_fn fn, void *ctx)
{
    watch_t *w = calloc(1, sizeof *w);
    if (!w || !(w->filter = strdup(filter))) {
        free(w);
        return SEDGE_ERR_NOMEM;
    }
    w->fn = fn;
    w->ctx = ctx;
    w->next = u->watches;
    u->watches = w;
    if (u->state == LINK_UP)
        send_subscriptions(u);
    return SEDGE_OK;
}

void uplink_unwatch(uplink_t *u, const char *filter, void *ctx)
{
    for (watch_t **pp = &u->watches; *pp; pp = &(*pp)->next) {
        watch_t *w = *pp;
        if (w->ctx == ctx && strcmp(w->filter, filter) == 0) {
            *pp = w->next;
            free(w->filter);
            free(w);
            return;
        }
    }
}

bool uplink_connected(const uplink_t *u)
{
    return u->state == LINK_UP;
}

const uplink_limits_t *uplink_limits(const uplink_t *u)
{
    return &u->cfg.limits;
}

uint64_t uplink_retry_ms(const uplink_t *u, uint32_t n)
{
    return uplink_backoff_ms(u->cfg.reconnect_min_ms, u->cfg.reconnect_max_ms, n);
}

static json_t *limits_json(const uplink_t *u)
{
    const uplink_limits_t *l = &u->cfg.limits;
    return json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "profile",
        u->cfg.aws ? "aws-iot" : "mqtt", "max_topic_bytes", (json_int_t)l->max_topic_bytes,
        "max_topic_slashes", (json_int_t)l->max_topic_slashes, "max_payload_bytes",
        (json_int_t)l->max_payload_bytes, "max_filters_per_subscribe",
        (json_int_t)l->max_filters_per_subscribe, "publishes_per_s", (json_int_t)l->publishes_per_s,
        "bytes_per_s", (json_int_t)l->bytes_per_s, "shadow_requests_per_s",
        (json_int_t)l->shadow_requests_per_s, "shadow_inflight", (json_int_t)l->shadow_inflight,
        "ack_timeout_ms", (json_int_t)l->ack_timeout_ms, "dead_letter_after",
        (json_int_t)l->dead_letter_after);
}

json_t *uplink_status(uplink_t *u)
{
    spool_stats_t st;
    spool_get_stats(u->spool, &st);
    uint64_t now = clock_mono_ms();
    json_t *o = json_object();
    json_object_set_new(o, "state", json_string(state_names[u->state]));
    json_object_set_new(o, "endpoint", json_string(u->cfg.endpoint));
    json_object_set_new(o, "client_id", json_string(u->cfg.client_id));
    if (u->state == LINK_UP)
        json_object_set_new(o, "connected_since", json_integer((json_int_t)u->connected_at));
    json_object_set_new(o, "queued", json_integer((json_int_t)st.queued));
    json_object_set_new(o, "bytes", json_integer((json_int_t)st.bytes));
    json_object_set_new(
        o, "oldest_age_s",
        json_integer(st.oldest_created_at ? clock_wall_s() - st.oldest_created_at : 0));
    json_object_set_new(o, "sent", json_integer((json_int_t)st.sent_acked));
    json_object_set_new(o, "appended", json_integer((json_int_t)st.appended));
    uint64_t refused = u->refused_topic + u->refused_payload;
    json_object_set_new(
        o, "dropped",
        json_integer((json_int_t)(st.dropped + u->qos0_dropped + refused + u->dead_lettered)));
    json_object_set_new(o, "refused_by_cloud", json_integer((json_int_t)u->refused_by_cloud));
    /* Refused when routed: beyond the cloud's limits, never spooled. */
    json_object_set_new(o, "refused",
                        json_pack("{s:I, s:I, s:I}", "total", (json_int_t)refused, "topic",
                                  (json_int_t)u->refused_topic, "payload",
                                  (json_int_t)u->refused_payload));
    json_t *recent = json_array();
    for (size_t i = 0; i < RECENT_DEAD_LETTERS && i < u->recent_dead_next; i++) {
        size_t k = (u->recent_dead_next - 1 - i) % RECENT_DEAD_LETTERS;
        json_array_append_new(
            recent, json_pack("{s:s, s:I, s:s, s:I}", "topic", u->recent_dead[k].topic, "bytes",
                              (json_int_t)u->recent_dead[k].bytes, "reason",
                              u->recent_dead[k].reason, "at", (json_int_t)u->recent_dead[k].at));
    }
    /* total: since start; kept: in the store (the newest
     * STORE_DEAD_LETTERS_KEPT, across restarts). */
    uint64_t kept =
        st.dead_letters < STORE_DEAD_LETTERS_KEPT ? st.dead_letters : STORE_DEAD_LETTERS_KEPT;
    json_object_set_new(o, "dead_letters",
                        json_pack("{s:I, s:I, s:o}", "total", (json_int_t)u->dead_lettered, "kept",
                                  (json_int_t)kept, "recent", recent));
    json_object_set_new(o, "received", json_integer((json_int_t)u->received));
    json_object_set_new(o, "reconnects", json_integer((json_int_t)u->reconnects));
    json_object_set_new(o, "inflight", json_integer(u->state == LINK_UP ? inflight_count(u) : 0));
    pace_t *p = &u->pace;
    pace_may_send(p, now); /* brings the rates up to date */
    json_object_set_new(
        o, "pace",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "publishes_per_s",
                  (json_int_t)p->rate, "bytes_per_s", (json_int_t)p->byte_rate, "limit_per_s",
                  (json_int_t)p->limit, "limit_bytes_per_s", (json_int_t)p->byte_limit, "paused_ms",
                  (json_int_t)(p->paused_until_ms > now ? p->paused_until_ms - now : 0), "window",
                  (json_int_t)(u->probe_upto ? 1 : u->window_now), "probing_upto_seq",
                  (json_int_t)u->probe_upto, "probing", u->probe_upto != 0));
    json_object_set_new(o, "throttled",
                        json_pack("{s:I, s:I, s:I}", "total", (json_int_t)p->throttles,
                                  "puback_0x97", (json_int_t)u->throttled_acks, "ack_timeouts",
                                  (json_int_t)u->ack_timeouts));
    json_object_set_new(o, "backoff",
                        json_pack("{s:I, s:I, s:I, s:I, s:I}", "failures", (json_int_t)u->attempts,
                                  "last_delay_ms", (json_int_t)u->last_delay_ms,
                                  "next_attempt_in_ms",
                                  (json_int_t)(u->state == LINK_IDLE && u->next_attempt_ms > now
                                                   ? u->next_attempt_ms - now
                                                   : 0),
                                  "min_ms", (json_int_t)u->cfg.reconnect_min_ms, "max_ms",
                                  (json_int_t)u->cfg.reconnect_max_ms));
    json_object_set_new(o, "limits", limits_json(u));
    if (u->last_error[0])
        json_object_set_new(o, "last_error", json_string(u->last_error));
    return o;
}
