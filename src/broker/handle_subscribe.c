/*
 * handle_subscribe: SUBSCRIBE and UNSUBSCRIBE, the retained messages a new
 * subscription receives, and the end-of-connection packets DISCONNECT and
 * AUTH.
 *
 * Each filter gets its own reason code: an invalid or unauthorised filter
 * fails alone (SUBACK 0x8F / 0x87, or 0x80 in 3.1.1) and the rest of the
 * packet is still served.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define LOG_TAG "broker"

typedef struct {
    broker_t *broker;
    session_t *session;
    sub_t *sub;
} retained_ctx_t;

static void send_retained_one(void *ctx, msg_t *m)
{
    retained_ctx_t *rc = ctx;
    broker_t *b = rc->broker;
    session_t *s = rc->session;
    if (msg_expired(m, clock_wall_s()))
        return;
    m->route = NULL;
    if (!broker_reaches(b, m, s))
        return;
    uint8_t qos = m->qos < rc->sub->qos ? m->qos : rc->sub->qos;
    const uint32_t *ids = rc->sub->sub_id ? &rc->sub->sub_id : NULL;
    size_t n = rc->sub->sub_id ? 1 : 0;
    if (qos == 0) {
        if (s->client)
            send_publish(s->client, m, 0, true, 0, false, ids, n);
    } else {
        session_enqueue(b, s, m, qos, true, ids, n);
    }
}

/* One filter of a SUBSCRIBE: the reason code to answer with, and
 * `*send_retained_for` set when retained messages are due. */
void send_retained_for(client_t *c, sub_t *sub)
{
    if (!c->session)
        return;
    retained_ctx_t rc = {c->broker, c->session, sub};
    tree_match_retained(&c->broker->tree, (bytes_t){(const uint8_t *)sub->filter, sub->filter_len},
                        send_retained_one, &rc);
}

static uint8_t subscribe_one(client_t *c, const mqtt_sub_entry_t *e, uint32_t sub_id,
                             sub_t **send_retained_for, sedge_err *fatal)
{
    broker_t *b = c->broker;
    session_t *s = c->session;
    bool v5 = c->version == MQTT_V5;
    *send_retained_for = NULL;
    bytes_t group, inner;
    bool shared = mqtt_shared_split(e->filter, &group, &inner);
    if (!mqtt_topic_filter_valid(e->filter) || mqtt_topic_levels(e->filter) > MQTT_MAX_FILTER_LEVELS) {
        LOGD("client '%s': invalid topic filter '%.*s'", c->identity, (int)e->filter.len,
             (const char *)e->filter.data);
        return v5 ? MQTT_RC_TOPIC_FILTER_INVALID : MQTT311_SUBACK_FAILURE;
    }
    if (shared && e->no_local) {
        *fatal = protocol_violation(c, MQTT_RC_PROTOCOL_ERROR, "no local on a shared subscription");
        return 0;
    }
    bytes_t identity = {(const uint8_t *)c->identity, c->identity_len};
    if (b->hooks.may_subscribe && !b->hooks.may_subscribe(b->hooks_ctx, identity, e->filter)) {
        LOGI("client '%s': subscription to '%.*s' not authorized", c->identity, (int)e->filter.len,
             (const char *)e->filter.data);
        return v5 ? MQTT_RC_NOT_AUTHORIZED : MQTT311_SUBACK_FAILURE;
    }
    sub_t *sub = session_find_sub(s, e->filter);
    bool existed = sub != NULL;
    if (!existed && s->sub_count >= b->limits.max_subscriptions) {
        LOGW("client '%s': subscription to '%.*s' refused: the session has max_subscriptions "
             "(%u)",
             c->identity, (int)e->filter.len, (const char *)e->filter.data,
             b->limits.max_subscriptions);
        return v5 ? MQTT_RC_QUOTA_EXCEEDED : MQTT311_SUBACK_FAILURE;
    }
    if (existed) {
        /* Replaces the old subscription's options (MQTT 3.8.4). */
        sub->qos = e->qos;
        sub->no_local = e->no_local;
        sub->retain_as_published = e->retain_as_published;
        sub->retain_handling = e->retain_handling;
        sub->sub_id = sub_id;
        session_save_sub(b, s, sub);
    } else {
        sub = calloc(1, sizeof *sub);
        if (!sub || !(sub->filter = bytes_dup_cstr(e->filter))) {
            free(sub);
            return v5 ? MQTT_RC_IMPLEMENTATION_ERROR : MQTT311_SUBACK_FAILURE;
        }
        sub->filter_len = e->filter.len;
        sub->qos = e->qos;
        sub->no_local = e->no_local;
        sub->retain_as_published = e->retain_as_published;
        sub->retain_handling = e->retain_handling;
        sub->sub_id = sub_id;
        if (session_add_sub(b, s, sub)) {
            free(sub->filter);
            free(sub);
            return v5 ? MQTT_RC_IMPLEMENTATION_ERROR : MQTT311_SUBACK_FAILURE;
        }
    }
    if (!shared && (e->retain_handling == 0 || (e->retain_handling == 1 && !existed)))
        *send_retained_for = sub;
    return e->qos;
}

sedge_err handle_subscribe(client_t *c, const mqtt_frame_t *f)
{
    broker_t *b = c->broker;
    mqtt_subscribe_t sp;
    const char *why = "malformed SUBSCRIBE";
    sedge_err err = mqtt_decode_subscribe(f, c->version, &sp, &why);
    if (err)
        return protocol_violation(
            c, err == SEDGE_ERR_PROTOCOL ? MQTT_RC_PROTOCOL_ERROR : MQTT_RC_MALFORMED, why);
    uint32_t sub_id = mqtt_props_has(&sp.props, MQTT_PROP_SUBSCRIPTION_ID) ? sp.props.sub_id : 0;
    uint8_t reasons_stack[64];
    sub_t *retained_stack[64];
    uint8_t *reasons = reasons_stack;
    sub_t **retained_for = retained_stack;
    if (sp.count > ARRAY_LEN(reasons_stack)) {
        reasons = malloc(sp.count);
        retained_for = malloc(sp.count * sizeof *retained_for);
        if (!reasons || !retained_for) {
            free(reasons);
            free(retained_for);
            return protocol_violation(c, MQTT_RC_IMPLEMENTATION_ERROR, "out of memory");
        }
    }
    size_t cursor = 0, i = 0;
    mqtt_sub_entry_t e;
    err = SEDGE_OK;
    /* Past max_filters_per_packet each filter is refused on its own, so
     * that one packet cannot hold the loop for long. */
    while (!err && mqtt_sub_entry_next(&sp, MQTT_SUBSCRIBE, &cursor, &e)) {
        retained_for[i] = NULL;
        if (i < b->limits.max_filters_per_packet)
            reasons[i] = subscribe_one(c, &e, sub_id, &retained_for[i], &err);
        else
            reasons[i] = c->version == MQTT_V5 ? MQTT_RC_QUOTA_EXCEEDED : MQTT311_SUBACK_FAILURE;
        i++;
    }
    if (i > b->limits.max_filters_per_packet)
        LOGW("client '%s': %zu filters in one SUBSCRIBE; those past max_filters_per_packet (%u) "
             "refused",
             c->identity, i, b->limits.max_filters_per_packet);
    if (!err) {
        /* The SUBACK, then the retained messages (MQTT 3.8.4); for a
         * persistent session, once the subscriptions are committed. */
        buf_t pkt = {0};
        size_t n = mqtt_encode_suback(NULL, 0, c->version, MQTT_SUBACK, sp.packet_id, NULL, reasons,
                                      sp.count);
        char **filters = calloc(sp.count, sizeof *filters);
        size_t nf = 0;
        for (size_t k = 0; filters && k < sp.count; k++)
            if (retained_for[k] &&
                (filters[nf] = strndup(retained_for[k]->filter, retained_for[k]->filter_len)))
                nf++;
        if (!filters || buf_reserve(&pkt, n)) {
            free(filters);
            err = protocol_violation(c, MQTT_RC_IMPLEMENTATION_ERROR, "out of memory");
        } else {
            pkt.len = mqtt_encode_suback(pkt.data, n, c->version, MQTT_SUBACK, sp.packet_id, NULL,
                                         reasons, sp.count);
            uint64_t batch = c->session->persistent ? store_pending_batch(b->store) : 0;
            held_packet(c, HELD_SUBACK, &pkt, batch, filters, nf);
        }
    }
    if (reasons != reasons_stack) {
        free(reasons);
        free(retained_for);
    }
    return err;
}

sedge_err handle_unsubscribe(client_t *c, const mqtt_frame_t *f)
{
    broker_t *b = c->broker;
    mqtt_subscribe_t up;
    const char *why = "malformed UNSUBSCRIBE";
    sedge_err err = mqtt_decode_unsubscribe(f, c->version, &up, &why);
    if (err)
        return protocol_violation(
            c, err == SEDGE_ERR_PROTOCOL ? MQTT_RC_PROTOCOL_ERROR : MQTT_RC_MALFORMED, why);
    uint8_t reasons_stack[64];
    uint8_t *reasons = up.count <= sizeof reasons_stack ? reasons_stack : malloc(up.count);
    if (!reasons)
        return protocol_violation(c, MQTT_RC_IMPLEMENTATION_ERROR, "out of memory");
    size_t cursor = 0, i = 0;
    mqtt_sub_entry_t e;
    while (mqtt_sub_entry_next(&up, MQTT_UNSUBSCRIBE, &cursor, &e)) {
        if (i >= b->limits.max_filters_per_packet) {
            reasons[i++] = MQTT_RC_UNSPECIFIED; /* past max_filters_per_packet */
            continue;
        }
        sub_t *sub = session_find_sub(c->session, e.filter);
        if (sub)
            session_remove_sub(b, c->session, sub);
        reasons[i++] = sub ? MQTT_RC_SUCCESS : MQTT_RC_NO_SUBSCRIPTION_EXISTED;
    }
    /* For a persistent session, UNSUBACK once the removals are committed:
     * else the subscription could come back after a crash. */
    buf_t pkt = {0};
    size_t n = mqtt_encode_suback(NULL, 0, c->version, MQTT_UNSUBACK, up.packet_id, NULL, reasons,
                                  up.count);
    if (buf_reserve(&pkt, n)) {
        err = protocol_violation(c, MQTT_RC_IMPLEMENTATION_ERROR, "out of memory");
    } else {
        pkt.len = mqtt_encode_suback(pkt.data, n, c->version, MQTT_UNSUBACK, up.packet_id, NULL,
                                     reasons, up.count);
        uint64_t batch = c->session->persistent ? store_pending_batch(b->store) : 0;
        held_packet(c, HELD_SUBACK, &pkt, batch, NULL, 0);
    }
    if (reasons != reasons_stack)
        free(reasons);
    return err;
}

sedge_err handle_disconnect(client_t *c, const mqtt_frame_t *f)
{
    broker_t *b = c->broker;
    mqtt_reason_packet_t d;
    const char *why = "malformed DISCONNECT";
    sedge_err err = mqtt_decode_disconnect(f, c->version, &d, &why);
    if (err)
        return protocol_violation(
            c, err == SEDGE_ERR_PROTOCOL ? MQTT_RC_PROTOCOL_ERROR : MQTT_RC_MALFORMED, why);
    session_t *s = c->session;
    if (mqtt_props_has(&d.props, MQTT_PROP_SESSION_EXPIRY)) {
        if (s->expiry_interval == 0 && d.props.session_expiry != 0)
            return protocol_violation(c, MQTT_RC_PROTOCOL_ERROR,
                                      "session expiry set at DISCONNECT after 0 at CONNECT");
        uint32_t expiry = d.props.session_expiry;
        if (expiry > b->limits.max_session_expiry)
            expiry = b->limits.max_session_expiry;
        s->expiry_interval = expiry;
        session_set_persistent(b, s, expiry > 0);
    }
    /* A normal disconnection discards the will; 0x04 asks for it. */
    c->send_will = d.reason == MQTT_RC_DISCONNECT_WITH_WILL && c->will;
    if (d.reason >= 0x80)
        LOGI("client '%s' disconnected with an error: %s", c->identity,
             mqtt_reason_name(d.reason));
    else
        LOGD("client '%s' disconnected (%s)", c->identity, mqtt_reason_name(d.reason));
    client_close(c);
    return SEDGE_ERR_CLOSED;
}

sedge_err handle_auth(client_t *c, const mqtt_frame_t *f)
{
    (void)f;
    return protocol_violation(c, MQTT_RC_PROTOCOL_ERROR,
                              "AUTH without an authentication method at CONNECT");
}
