/*
 * uplink: the cloud connection — a small MQTT client on libuv and OpenSSL
 * memory BIOs, using the same codec as the broker.
 *
 * States: idle (waiting to reconnect) -> resolving -> connecting (TCP) ->
 * handshake (TLS) -> connack (CONNECT sent) -> up. Any failure closes the
 * connection, logs why, and schedules the next attempt after an
 * exponential backoff with jitter.
 *
 * Spooled messages use packet identifiers 1..window, one slot each, so the
 * acknowledgement finds its entry by index; services' own QoS 1 publishes
 * use identifiers above the window and are not tracked.
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
    uv_check_t flush_check;
    int handles;
    void (*stop_done)(void *);
    void *stop_ctx;
    buf_t in;
    buf_t out;
    uint16_t window;
    spool_entry_t **inflight; /* [1..window] */
    uint16_t *free_slots;
    uint16_t free_count;
    uint16_t service_pid;
    uint32_t attempts;
    uint64_t last_tx_ms, ping_sent_ms;
    uint64_t attempt_started_ms;
    uint64_t connected_at; /* wall seconds */
    char **filters;
    size_t filter_count;
    watch_t *watches;
    uint64_t reconnects, qos0_dropped, received;
    uint64_t refused_by_cloud; /* PUBACK with a failure reason: not retried */
    char last_error[256];
};

static void link_down(uplink_t *u, const char *why);
static void pump(uplink_t *u);

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
        link_down(u, u->last_error);
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

static void flush_check_cb(uv_check_t *h)
{
    flush(h->data);
}

/* Packets. */

static void send_packet_ack(uplink_t *u, uint8_t type, uint16_t pid)
{
    mqtt_ack_t a = {.packet_id = pid};
    uint8_t pkt[8];
    queue_out(u, pkt, mqtt_encode_ack(pkt, sizeof pkt, u->cfg.protocol, type, &a));
}

static void send_publish(uplink_t *u, bytes_t topic, bytes_t payload, uint8_t qos, uint16_t pid,
                         bool dup)
{
    mqtt_publish_t p = {
        .dup = dup, .qos = qos, .topic = topic, .packet_id = pid, .payload = payload};
    size_t n = mqtt_encode_publish(NULL, 0, u->cfg.protocol, &p);
    if (buf_reserve(&u->out, n)) {
        link_down(u, "out of memory");
        return;
    }
    mqtt_encode_publish(u->out.data + u->out.len, n, u->cfg.protocol, &p);
    u->out.len += n;
    u->last_tx_ms = clock_mono_ms();
}

static void send_subscriptions(uplink_t *u)
{
    size_t n = u->filter_count;
    for (watch_t *w = u->watches; w; w = w->next)
        n++;
    if (!n)
        return;
    mqtt_sub_entry_t *entries = calloc(n, sizeof *entries);
    if (!entries)
        return;
    size_t k = 0;
    for (size_t i = 0; i < u->filter_count; i++)
        entries[k++] = (mqtt_sub_entry_t){.filter = bytes_of_cstr(u->filters[i]), .qos = 1};
    for (watch_t *w = u->watches; w; w = w->next)
        entries[k++] = (mqtt_sub_entry_t){.filter = bytes_of_cstr(w->filter), .qos = 1};
    uint16_t pid = (uint16_t)(u->window + 1);
    size_t size =
        mqtt_encode_subscribe(NULL, 0, u->cfg.protocol, MQTT_SUBSCRIBE, pid, NULL, entries, k);
    if (!buf_reserve(&u->out, size)) {
        mqtt_encode_subscribe(u->out.data + u->out.len, size, u->cfg.protocol, MQTT_SUBSCRIBE, pid,
                              NULL, entries, k);
        u->out.len += size;
    }
    free(entries);
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

static void pump(uplink_t *u)
{
    if (u->state != LINK_UP)
        return;
    while (u->free_count && u->out.len < OUTPUT_HIGH_WATER) {
        spool_entry_t *e = spool_take(u->spool);
        if (!e)
            break;
        uint16_t pid = u->free_slots[--u->free_count];
        u->inflight[pid] = e;
        e->packet_id = pid;
        send_publish(u, e->topic, e->payload, 1, pid, e->sent);
        e->sent = true;
        if (u->state != LINK_UP)
            return;
    }
}

static void release_slot(uplink_t *u, uint16_t pid)
{
    u->inflight[pid] = NULL;
    u->free_slots[u->free_count++] = pid;
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
        uint16_t window = u->cfg.max_inflight;
        if (mqtt_props_has(&ack.props, MQTT_PROP_RECEIVE_MAXIMUM) &&
            ack.props.receive_maximum < window)
            window = ack.props.receive_maximum;
        u->free_count = 0;
        for (uint16_t pid = window; pid >= 1; pid--)
            u->free_slots[u->free_count++] = pid;
        u->state = LINK_UP;
        u->attempts = 0;
        u->connected_at = (uint64_t)clock_wall_s();
        u->last_error[0] = '\0';
        LOGI("connected to the cloud at %s as '%s' (session %s, window %u)", u->cfg.endpoint,
             u->cfg.client_id, ack.session_present ? "resumed" : "new", window);
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
            release_slot(u, a.packet_id);
            if (a.reason >= 0x80 && e != &evicted) {
                /* The cloud will not take it (not authorised, say):
                 * sending it again would fail the same way. */
                if (u->refused_by_cloud++ % 1000 == 0)
                    LOGW("the cloud refused a message on %.*s (%s); it is dropped, and counted",
                         (int)e->topic.len, (const char *)e->topic.data,
                         mqtt_reason_name(a.reason));
            }
            if (e != &evicted)
                spool_remove(u->spool, e);
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
        if (!mqtt_decode_suback(f, u->cfg.protocol, &s, &why))
            for (size_t i = 0; i < s.reasons.len; i++)
                if (s.reasons.data[i] >= 0x80)
                    LOGW("the cloud refused subscription %zu (reason 0x%02x)", i,
                         s.reasons.data[i]);
        break;
    }
    case MQTT_PINGRESP: u->ping_sent_ms = 0; break;
    case MQTT_DISCONNECT: {
        mqtt_reason_packet_t d = {0};
        if (mqtt_decode_disconnect(f, u->cfg.protocol, &d, &why))
            set_error(u, "the cloud disconnected with a malformed DISCONNECT (%s)", why);
        else
            set_error(u, "the cloud disconnected: %s", mqtt_reason_name(d.reason));
        link_down(u, u->last_error);
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

static void tls_failed(uplink_t *u, const char *what)
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
    link_down(u, u->last_error);
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
        link_down(u, u->last_error);
        return;
    }
    BIO_write(c->rbio, buf->base, (int)n);
    if (u->state == LINK_HANDSHAKE) {
        int rc = SSL_do_handshake(c->ssl);
        if (rc != 1) {
            int e = SSL_get_error(c->ssl, rc);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                tls_failed(u, "handshake");
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
            link_down(u, u->last_error);
        } else {
            tls_failed(u, "read");
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

static uint64_t backoff_ms(uplink_t *u)
{
    uint64_t delay = u->cfg.reconnect_min_ms;
    for (uint32_t i = 1; i < u->attempts && delay < u->cfg.reconnect_max_ms; i++)
        delay *= 2;
    if (delay > u->cfg.reconnect_max_ms)
        delay = u->cfg.reconnect_max_ms;
    uint32_t r = 0;
    RAND_bytes((unsigned char *)&r, sizeof r);
    return delay / 2 + r % (delay / 2 + 1); /* jitter: between half and all of it */
}

static void start_connect(uplink_t *u);

static void retry_cb(uv_timer_t *t)
{
    start_connect(t->data);
}

static void link_down(uplink_t *u, const char *why)
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
    for (uint16_t pid = 1; pid <= u->window; pid++)
        if (u->inflight[pid] && u->inflight[pid] != &evicted)
            u->inflight[pid]->packet_id = 0;
    memset(u->inflight, 0, ((size_t)u->window + 1) * sizeof *u->inflight);
    u->free_count = 0;
    u->ping_sent_ms = 0;
    if (u->state == LINK_STOPPED)
        return;
    u->state = LINK_IDLE;
    u->attempts++;
    if (was_up) {
        u->reconnects++;
        if (u->o.on_link)
            u->o.on_link(u->o.ctx, false);
    }
    uint64_t delay = was_up ? 0 : backoff_ms(u);
    LOGW("cloud %s: %s; reconnecting in %.1f s", u->cfg.endpoint, why, delay / 1000.0);
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
    u->service_pid = (uint16_t)(u->window + 2);
    u->inflight = calloc((size_t)u->window + 1, sizeof *u->inflight);
    u->free_slots = calloc((size_t)u->window + 1, sizeof *u->free_slots);
    if (!u->inflight || !u->free_slots || !(u->ssl_ctx = client_tls_context(u))) {
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
    uv_check_init(u->loop, &u->flush_check);
    u->retry_timer.data = u->keepalive_timer.data = u->flush_check.data = u;
    uv_check_start(&u->flush_check, flush_check_cb);
    uv_unref((uv_handle_t *)&u->flush_check);
    uint64_t tick = u->cfg.keepalive_s ? (uint64_t)u->cfg.keepalive_s * 250u : 5000u;
    uv_timer_start(&u->keepalive_timer, keepalive_cb, tick, tick);
    u->handles = 3;
    LOGI("cloud uplink to %s, spool %s (max %llu bytes, %s when full)", u->cfg.endpoint,
         u->cfg.spool_storage == SPOOL_DISK ? "on disk" : "in memory",
         (unsigned long long)u->cfg.spool_max_bytes,
         u->cfg.spool_when_full == SPOOL_DROP_OLDEST ? "drop oldest" : "reject new");
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
    uv_close((uv_handle_t *)&u->flush_check, handle_closed);
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
    free(u->inflight);
    free(u->free_slots);
    buf_free(&u->in);
    buf_free(&u->out);
    free(u->cfg.endpoint);
    free(u->cfg.ca_file);
    free(u->cfg.cert_file);
    free(u->cfg.key_file);
    free(u->cfg.client_id);
    free(u);
}

sedge_err uplink_send(uplink_t *u, bytes_t topic, bytes_t payload, int route_qos, uint64_t *batch)
{
    *batch = 0;
    if (route_qos == 0) {
        if (u->state != LINK_UP) {
            u->qos0_dropped++;
            return SEDGE_OK;
        }
        send_publish(u, topic, payload, 0, 0, false);
        return SEDGE_OK;
    }
    sedge_err err = spool_append(u->spool, topic, payload, 1, batch);
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
    if (u->state != LINK_UP)
        return false;
    uint16_t pid = 0;
    if (qos) {
        pid = u->service_pid++;
        if (u->service_pid == 0 || u->service_pid <= u->window + 1)
            u->service_pid = (uint16_t)(u->window + 2);
    }
    send_publish(u, topic, payload, qos ? 1 : 0, pid, false);
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

void uplink_store_failed(uplink_t *u, uint64_t batch)
{
    spool_store_failed(u->spool, batch);
}

bool uplink_connected(const uplink_t *u)
{
    return u->state == LINK_UP;
}

json_t *uplink_status(uplink_t *u)
{
    spool_stats_t st;
    spool_get_stats(u->spool, &st);
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
    json_object_set_new(o, "sent", json_integer((json_int_t)(st.sent_acked - u->refused_by_cloud)));
    json_object_set_new(o, "appended", json_integer((json_int_t)st.appended));
    json_object_set_new(
        o, "dropped",
        json_integer((json_int_t)(st.dropped + u->qos0_dropped + u->refused_by_cloud)));
    json_object_set_new(o, "refused_by_cloud", json_integer((json_int_t)u->refused_by_cloud));
    json_object_set_new(o, "received", json_integer((json_int_t)u->received));
    json_object_set_new(o, "reconnects", json_integer((json_int_t)u->reconnects));
    json_object_set_new(o, "inflight",
                        json_integer(u->state == LINK_UP ? u->window - u->free_count : 0));
    if (u->last_error[0])
        json_object_set_new(o, "last_error", json_string(u->last_error));
    return o;
}
