/*
 * handle_connect: CONNECT — who the client is, which session it gets
 * (new, resumed or taken over), the limits both sides announce, its will,
 * and the CONNACK.
 *
 * Identity: on TLS it is the certificate's CN, on TCP and unix sockets the
 * client id. A session belongs to the identity that created it: client ids
 * are namespaced by identity, so another thing using the same client id
 * gets a session of its own and can neither take this one over nor block
 * it.
 */
#include "internal.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "broker"

#define MAX_CLIENT_ID_LEN 256

/* Forwarded properties of a will or a PUBLISH: what the receiver gets. */
#define FORWARDED_PROPS                                                                            \
    ((1ull << MQTT_PROP_PAYLOAD_FORMAT) | (1ull << MQTT_PROP_CONTENT_TYPE) |                       \
     (1ull << MQTT_PROP_RESPONSE_TOPIC) | (1ull << MQTT_PROP_CORRELATION_DATA))

static void send_connack(client_t *c, uint8_t version, const mqtt_connack_t *ack)
{
    uint8_t pkt[512];
    size_t n = mqtt_encode_connack(pkt, sizeof pkt, version, ack);
    if (n <= sizeof pkt)
        client_send(c, pkt, n);
}

/* Refuse the connection: CONNACK with the reason in the client's protocol
 * version's terms, a log line, close. */
static sedge_err refuse(client_t *c, uint8_t version, uint8_t v5_reason, uint8_t v311_code,
                        const char *why)
{
    broker_t *b = c->broker;
    b->stats.refused_connections++;
    LOGW("refused connection from %s%s%s%s: %s", client_peer(c).text, c->identity ? " ('" : "",
         c->identity ? c->identity : "", c->identity ? "')" : "", why);
    mqtt_connack_t ack = {.reason = version == MQTT_V5 ? v5_reason : v311_code};
    if (version == MQTT_V5 && c->request_problem_info) {
        ack.props.reason_string = bytes_of_cstr(why);
        mqtt_props_set(&ack.props, MQTT_PROP_REASON_STRING);
    }
    send_connack(c, version, &ack);
    c->linger = LINGER_WANTED;
    client_close(c);
    return SEDGE_ERR_DENIED;
}

size_t forwarded_props_encode(const mqtt_props_t *in, uint8_t *out, size_t cap)
{
    mqtt_props_t fwd = *in;
    fwd.present &= FORWARDED_PROPS;
    fwd.user_props = (bytes_t){0};
    fwd.sub_ids = NULL;
    size_t n = mqtt_props_encode(out, cap, &fwd);
    n += mqtt_props_copy_user(in, out ? out + (n < cap ? n : cap) : NULL, n < cap ? cap - n : 0);
    return n;
}

/* The will, owned by the client until it is published. */
static sedge_err build_will(client_t *c, const mqtt_connect_t *conn)
{
    will_t *w = calloc(1, sizeof *w);
    if (!w)
        return SEDGE_ERR_NOMEM;
    uint8_t stack[512];
    size_t need = forwarded_props_encode(&conn->will_props, NULL, 0);
    uint8_t *props = need <= sizeof stack ? stack : malloc(need);
    if (!props) {
        free(w);
        return SEDGE_ERR_NOMEM;
    }
    forwarded_props_encode(&conn->will_props, props, need);
    w->msg =
        msg_new(conn->will_topic, (bytes_t){props, need}, conn->will_payload, client_source(c));
    if (props != stack)
        free(props);
    if (!w->msg) {
        free(w);
        return SEDGE_ERR_NOMEM;
    }
    w->msg->qos = conn->will_qos;
    w->msg->retain = conn->will_retain;
    w->delay = conn->will_props.will_delay;
    w->expiry_interval = mqtt_props_has(&conn->will_props, MQTT_PROP_MESSAGE_EXPIRY)
                             ? conn->will_props.message_expiry
                             : 0;
    c->will = w;
    return SEDGE_OK;
}

static bool payload_format_ok(const mqtt_props_t *p, bytes_t payload)
{
    if (!mqtt_props_has(p, MQTT_PROP_PAYLOAD_FORMAT) || p->payload_format != 1)
        return true;
    return mqtt_utf8_valid(payload.data, payload.len);
}

/* "sedge-" and 16 hex digits: an id for a client that sent none. */
#define ASSIGNED_ID_LEN 22

static bool assign_client_id(char out[ASSIGNED_ID_LEN + 1])
{
    uint8_t rnd[8];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return false;
    memcpy(out, "sedge-", 6);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(out + 6 + 2 * i, 3, "%02x", rnd[i]);
    return true;
}

/* Why a CONNECT is refused, in both protocol versions' terms. */
typedef struct {
    uint8_t v5_reason;
    uint8_t v311_code;
    const char *why; /* NULL: not refused */
} refusal_t;

#define ACCEPTED ((refusal_t){0, 0, NULL})
#define OUT_OF_MEMORY                                                                              \
    ((refusal_t){MQTT_RC_SERVER_UNAVAILABLE, MQTT311_CONNACK_SERVER_UNAVAILABLE, "out of memory"})

/* What handling one CONNECT works out on its way. */
typedef struct {
    mqtt_connect_t conn;
    uint8_t version;
    bytes_t client_id; /* as sent, or `assigned` */
    char assigned[ASSIGNED_ID_LEN + 1];
    uint32_t expiry; /* seconds, after the broker's cap */
    bool expiry_capped;
    bool keepalive_override;
    bool session_present;
} connecting_t;

/* The client id (one is assigned when it sent none), the identity it acts
 * as, whether that identity may connect, and its will. */
static refusal_t check_client(client_t *c, connecting_t *cx)
{
    broker_t *b = c->broker;
    const mqtt_connect_t *conn = &cx->conn;
    if (cx->version == MQTT_V5 && mqtt_props_has(&conn->props, MQTT_PROP_AUTH_METHOD))
        return (refusal_t){MQTT_RC_BAD_AUTH_METHOD, 0, "enhanced authentication is not supported"};
    cx->client_id = conn->client_id;
    if (cx->client_id.len > MAX_CLIENT_ID_LEN)
        return (refusal_t){MQTT_RC_CLIENT_ID_INVALID, MQTT311_CONNACK_ID_REJECTED,
                           "client id longer than 256 bytes"};
    if (cx->client_id.len == 0) {
        /* A fresh id even for a certificate's owner: a thing may hold
         * several connections (mosquitto_sub and mosquitto_pub with the
         * same certificate), each with a session of its own. */
        if (cx->version == MQTT_V311 && !conn->clean_start)
            return (refusal_t){0, MQTT311_CONNACK_ID_REJECTED,
                               "empty client id needs clean session"};
        if (!assign_client_id(cx->assigned))
            return OUT_OF_MEMORY;
        cx->client_id = (bytes_t){(const uint8_t *)cx->assigned, ASSIGNED_ID_LEN};
    }
    /* The identity: the certificate's CN on TLS, else the client id. */
    if (!c->identity && client_set_identity(c, cx->client_id))
        return OUT_OF_MEMORY;
    bytes_t identity = {(const uint8_t *)c->identity, c->identity_len};
    if (b->hooks.may_connect && !b->hooks.may_connect(b->hooks_ctx, identity))
        return (refusal_t){MQTT_RC_NOT_AUTHORIZED, MQTT311_CONNACK_NOT_AUTHORIZED,
                           "not a member of the deployed group"};
    if (!conn->will)
        return ACCEPTED;
    if (!mqtt_topic_name_valid(conn->will_topic) || bytes_has_prefix(conn->will_topic, "$SYS"))
        return (refusal_t){MQTT_RC_TOPIC_NAME_INVALID, MQTT311_CONNACK_NOT_AUTHORIZED,
                           "invalid will topic"};
    if (!payload_format_ok(&conn->will_props, conn->will_payload))
        return (refusal_t){MQTT_RC_PAYLOAD_FORMAT_INVALID, MQTT311_CONNACK_NOT_AUTHORIZED,
                           "will payload is not UTF-8 as its format says"};
    return build_will(c, conn) ? OUT_OF_MEMORY : ACCEPTED;
}

/* Session expiry: 3.1.1 clean session 0 keeps the session for ever. */
static void session_expiry(const broker_t *b, connecting_t *cx)
{
    const mqtt_connect_t *conn = &cx->conn;
    if (cx->version == MQTT_V5)
        cx->expiry =
            mqtt_props_has(&conn->props, MQTT_PROP_SESSION_EXPIRY) ? conn->props.session_expiry : 0;
    else
        cx->expiry = conn->clean_start ? 0 : UINT32_MAX;
    if (cx->expiry > b->limits.max_session_expiry) {
        cx->expiry = b->limits.max_session_expiry;
        cx->expiry_capped = cx->version == MQTT_V5;
    }
}

/* The session of this client id for this identity — resumed, taken over
 * from another connection, or new — attached to the client. */
static refusal_t take_session(client_t *c, connecting_t *cx, session_t **out)
{
    broker_t *b = c->broker;
    bytes_t identity = {(const uint8_t *)c->identity, c->identity_len};
    buf_t key_buf = {0};
    bytes_t key = session_key_of(identity, cx->client_id, &key_buf);
    if (!key.data)
        return OUT_OF_MEMORY;
    session_t *s = session_find(b, key);
    if (s && s->client) {
        client_disconnect(s->client, MQTT_RC_SESSION_TAKEN_OVER, "session taken over");
        s = session_find(b, key); /* gone if it expired on that close */
    }
    buf_free(&key_buf);
    if (s && cx->conn.clean_start) {
        will_publish_now(b, s);
        session_destroy(b, s);
        s = NULL;
    }
    cx->session_present = s != NULL;
    if (!s && !(s = session_create(b, cx->client_id, identity)))
        return OUT_OF_MEMORY;
    will_cancel(b, s);
    s->version = cx->version;
    s->expiry_interval = cx->expiry;
    session_attach(s, c);
    session_set_persistent(b, s, cx->expiry > 0);
    session_save(b, s);
    *out = s;
    return ACCEPTED;
}

/* The limits the client announced, and its keep alive. */
static void take_client_limits(client_t *c, connecting_t *cx)
{
    broker_t *b = c->broker;
    const mqtt_connect_t *conn = &cx->conn;
    if (cx->version == MQTT_V5) {
        if (mqtt_props_has(&conn->props, MQTT_PROP_RECEIVE_MAXIMUM))
            c->receive_max_out = conn->props.receive_maximum;
        if (mqtt_props_has(&conn->props, MQTT_PROP_MAXIMUM_PACKET_SIZE))
            c->max_packet_out = conn->props.maximum_packet_size;
        if (mqtt_props_has(&conn->props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM))
            c->topic_alias_max_out = conn->props.topic_alias_maximum;
    }
    if (c->max_packet_out > b->limits.max_packet_bytes)
        c->max_packet_out = b->limits.max_packet_bytes;
    c->keep_alive = conn->keep_alive;
    c->last_rx_ms = clock_mono_ms(); /* keep alive counts from here */
    if (b->limits.max_keepalive && cx->version == MQTT_V5 &&
        (conn->keep_alive == 0 || conn->keep_alive > b->limits.max_keepalive)) {
        c->keep_alive = b->limits.max_keepalive;
        cx->keepalive_override = true;
    }
}

/* The CONNACK, with what a v5 client must know of the broker's limits. */
static mqtt_connack_t connack_for(const client_t *c, const connecting_t *cx)
{
    const broker_t *b = c->broker;
    mqtt_connack_t ack = {.session_present = cx->session_present, .reason = 0};
    if (cx->version != MQTT_V5)
        return ack;
    mqtt_props_t *p = &ack.props;
    if (b->limits.max_inflight < 65535) {
        p->receive_maximum = b->limits.max_inflight;
        mqtt_props_set(p, MQTT_PROP_RECEIVE_MAXIMUM);
    }
    if (b->limits.max_packet_bytes < MQTT_MAX_PACKET_SIZE) {
        p->maximum_packet_size = b->limits.max_packet_bytes;
        mqtt_props_set(p, MQTT_PROP_MAXIMUM_PACKET_SIZE);
    }
    p->topic_alias_maximum = b->limits.topic_alias_maximum;
    mqtt_props_set(p, MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
    if (!cx->conn.client_id.len) {
        p->assigned_client_id = cx->client_id;
        mqtt_props_set(p, MQTT_PROP_ASSIGNED_CLIENT_ID);
    }
    if (cx->keepalive_override) {
        p->server_keep_alive = c->keep_alive;
        mqtt_props_set(p, MQTT_PROP_SERVER_KEEP_ALIVE);
    }
    if (cx->expiry_capped) {
        p->session_expiry = cx->expiry;
        mqtt_props_set(p, MQTT_PROP_SESSION_EXPIRY);
    }
    return ack;
}

sedge_err handle_connect(client_t *c, const mqtt_frame_t *f)
{
    broker_t *b = c->broker;
    connecting_t cx = {0};
    const char *why = "malformed CONNECT";
    sedge_err err = mqtt_decode_connect(f, &cx.conn, &why);
    if (err == SEDGE_ERR_UNSUPPORTED)
        return refuse(c, MQTT_V311, MQTT_RC_UNSUPPORTED_VERSION, MQTT311_CONNACK_BAD_VERSION, why);
    if (err) {
        b->stats.protocol_errors++;
        if (cx.conn.version == MQTT_V5)
            return refuse(c, MQTT_V5,
                          err == SEDGE_ERR_PROTOCOL ? MQTT_RC_PROTOCOL_ERROR : MQTT_RC_MALFORMED, 0,
                          why);
        LOGW("closing %s: %s", client_peer(c).text, why);
        client_close(c);
        return err;
    }
    cx.version = c->version = cx.conn.version;
    c->request_problem_info = cx.version != MQTT_V5 ||
                              !mqtt_props_has(&cx.conn.props, MQTT_PROP_REQUEST_PROBLEM_INFO) ||
                              cx.conn.props.request_problem_info;
    session_t *s = NULL;
    refusal_t no = check_client(c, &cx);
    if (!no.why) {
        session_expiry(b, &cx);
        no = take_session(c, &cx, &s);
    }
    if (no.why)
        return refuse(c, cx.version, no.v5_reason, no.v311_code, no.why);
    take_client_limits(c, &cx);
    mqtt_connack_t ack = connack_for(c, &cx);
    c->send_will = c->will != NULL;
    /* QoS 2 messages of the session still waiting for PUBREL count against
     * this connection's receive maximum. */
    c->inflight_in = (uint32_t)s->qos2_in_count;
    const char *version_name = cx.version == MQTT_V5 ? "5.0" : "3.1.1";
    if (s->persistent && !cx.session_present) {
        /* A new persistent session exists once its row is committed: the
         * CONNACK waits for that, and nothing else flows before it. */
        buf_t pkt = {0};
        size_t n = mqtt_encode_connack(NULL, 0, cx.version, &ack);
        if (buf_reserve(&pkt, n))
            return refuse(c, cx.version, OUT_OF_MEMORY.v5_reason, OUT_OF_MEMORY.v311_code,
                          OUT_OF_MEMORY.why);
        pkt.len = mqtt_encode_connack(pkt.data, n, cx.version, &ack);
        c->state = CLIENT_CONNACK_HELD;
        wheel_refile(b, c, client_deadline(b, c)); /* the keep alive's from now */
        client_pause_reading(c, PAUSE_CONNACK);
        held_packet(c, HELD_CONNACK, &pkt, store_pending_batch(b->store), NULL, 0);
        LOGI("client '%s' connected from %s as '%s' (MQTT %s, new persistent session, keep "
             "alive %u s)",
             s->client_id, client_peer(c).text, c->identity, version_name, c->keep_alive);
        return SEDGE_OK;
    }
    send_connack(c, cx.version, &ack);
    c->state = CLIENT_CONNECTED;
    c->connected_at = (uint32_t)clock_wall_s();
    wheel_refile(b, c, client_deadline(b, c)); /* the keep alive's from now */
    LOGI("client '%s' connected from %s as '%s' (MQTT %s, %s, keep alive %u s)", s->client_id,
         client_peer(c).text, c->identity, version_name,
         cx.session_present ? "session resumed" : "new session", c->keep_alive);
    if (cx.session_present)
        session_resend_inflight(b, s);
    session_pump(b, s);
    return SEDGE_OK;
}
