/*
 * handle_publish: a PUBLISH from a client — validation, topic aliases,
 * flow control, authorisation, then retain and delivery — and the
 * acknowledgement it is owed.
 *
 * Acknowledgements go out in the order the PUBLISHes came in (MQTT 4.6);
 * one whose message was written through the store (for a persistent
 * subscriber, or retained) waits for that batch's commit (held.c).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "broker"

/* Resolve the topic through the client's aliases (MQTT 5, 3.3.2.3.4). */
static sedge_err resolve_alias(client_t *c, mqtt_publish_t *p)
{
    broker_t *b = c->broker;
    if (!mqtt_props_has(&p->props, MQTT_PROP_TOPIC_ALIAS)) {
        if (!p->topic.len)
            return protocol_violation(c, MQTT_RC_PROTOCOL_ERROR, "empty topic without an alias");
        return SEDGE_OK;
    }
    uint16_t alias = p->props.topic_alias;
    if (alias == 0 || alias > b->limits.topic_alias_maximum)
        return protocol_violation(c, MQTT_RC_TOPIC_ALIAS_INVALID, "topic alias out of range");
    topic_aliases_t *a = client_aliases(c);
    if (a && !a->in)
        a->in = calloc((size_t)b->limits.topic_alias_maximum + 1, sizeof *a->in);
    if (!a || !a->in)
        return protocol_violation(c, MQTT_RC_IMPLEMENTATION_ERROR, "out of memory");
    if (p->topic.len) {
        char *copy = bytes_dup_cstr(p->topic);
        if (!copy)
            return protocol_violation(c, MQTT_RC_IMPLEMENTATION_ERROR, "out of memory");
        free((void *)a->in[alias].data);
        a->in[alias] = (bytes_t){(const uint8_t *)copy, p->topic.len};
        return SEDGE_OK;
    }
    if (!a->in[alias].data)
        return protocol_violation(c, MQTT_RC_PROTOCOL_ERROR, "unknown topic alias");
    p->topic = a->in[alias];
    return SEDGE_OK;
}

/* Answer a QoS 1/2 PUBLISH that is refused without being delivered. */
static void refuse_publish(client_t *c, const mqtt_publish_t *p, uint8_t reason)
{
    broker_t *b = c->broker;
    b->stats.msgs_dropped++;
    if (p->qos == 0)
        return;
    c->inflight_in++;
    uint8_t type = p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC;
    /* 3.1.1 has no negative acknowledgement: the message is acknowledged
     * and dropped (and counted), and the connection stays up. */
    held_ack(c, type, p->packet_id, c->version == MQTT_V5 ? reason : 0, 0);
    /* The 3.1.1 exchange goes on to PUBREL; without memory to remember the
     * identifier, its resend is simply refused again. */
    if (p->qos == 2 && c->version != MQTT_V5 && c->session &&
        session_qos2_add(c->session, p->packet_id))
        LOGW("client '%s': out of memory remembering QoS 2 packet %u", c->identity, p->packet_id);
}

/* A QoS 1/2 message that could not be kept: a v5 publisher gets 0x97;
 * MQTT 3.1.1 has no negative acknowledgement, and what was not kept must
 * not be acknowledged as kept, so a 3.1.1 publisher is disconnected
 * without one and resends after reconnecting. */
static sedge_err refuse_unkept(client_t *c, const mqtt_publish_t *p, const char *why)
{
    if (c->version == MQTT_V5) {
        refuse_publish(c, p, MQTT_RC_QUOTA_EXCEEDED);
        return SEDGE_OK;
    }
    c->broker->stats.msgs_dropped++;
    char text[256];
    snprintf(text, sizeof text,
             "%s: the message was not acknowledged (MQTT 3.1.1 has no negative PUBACK); it is "
             "resent on reconnection",
             why);
    client_disconnect(c, MQTT_RC_QUOTA_EXCEEDED, text);
    return SEDGE_ERR_FULL;
}

route_outcome_t broker_route(broker_t *b, msg_t *m, session_t *from)
{
    route_outcome_t outcome = {0};
    m->route = NULL;
    if (b->hooks.route && !(m->route = b->hooks.route(b->hooks_ctx, m->source, m->topic)))
        return outcome;
    outcome.routed = true;
    /* What retaining and delivering do is noted in `outcome`; a service
     * publishing in turn routes with an outcome of its own. */
    route_outcome_t *outer = b->outcome;
    b->outcome = &outcome;
    b->stats.msgs_in++;
    if (m->retain)
        retain_message(b, m, true);
    deliver_message(b, m, from);
    if (b->watches)
        broker_notify_watches(b, m);
    if (b->hooks.on_routed) {
        broker_message_t view = {m->source, m->topic, m->payload, m->qos, m->retain};
        int taken = b->hooks.on_routed(b->hooks_ctx, m->route, &view);
        outcome.durable |= (taken & BROKER_ROUTED_DURABLE) != 0;
        outcome.refused |= (taken & BROKER_ROUTED_REFUSED) != 0;
        outcome.invalid |= (taken & BROKER_ROUTED_INVALID) != 0;
        if (taken & (BROKER_ROUTED_REFUSED | BROKER_ROUTED_INVALID))
            b->stats.msgs_dropped++;
    }
    b->outcome = outer;
    m->route = NULL;
    return outcome;
}

bool broker_reaches(broker_t *b, msg_t *m, const session_t *s)
{
    if (!b->hooks.route || !b->hooks.reaches)
        return true;
    if (!m->route && !(m->route = b->hooks.route(b->hooks_ctx, m->source, m->topic)))
        return false;
    return b->hooks.reaches(b->hooks_ctx, m->route,
                            (bytes_t){(const uint8_t *)s->owner, s->owner_len});
}

sedge_err handle_publish(client_t *c, const mqtt_frame_t *f)
{
    broker_t *b = c->broker;
    session_t *s = c->session;
    mqtt_publish_t p;
    const char *why = "malformed PUBLISH";
    sedge_err err = mqtt_decode_publish(f, c->version, &p, &why);
    if (err)
        return protocol_violation(
            c, err == SEDGE_ERR_PROTOCOL ? MQTT_RC_PROTOCOL_ERROR : MQTT_RC_MALFORMED, why);
    if (c->version == MQTT_V5) {
        if (mqtt_props_has(&p.props, MQTT_PROP_SUBSCRIPTION_ID))
            return protocol_violation(c, MQTT_RC_PROTOCOL_ERROR,
                                      "subscription identifier in a client's PUBLISH");
        if ((err = resolve_alias(c, &p)))
            return err;
    }
    if (!mqtt_topic_name_valid(p.topic))
        return protocol_violation(c, MQTT_RC_TOPIC_NAME_INVALID,
                                  "invalid topic name (empty, or with a wildcard)");

    if (p.qos == 2 && session_qos2_pending(s, p.packet_id)) {
        /* A resend of one we have: acknowledge again, deliver nothing —
         * once what the first one wrote is durable (its PUBREC may have
         * been held by a connection that is gone). */
        held_ack(c, MQTT_PUBREC, p.packet_id, 0,
                 s->persistent ? store_pending_batch(b->store) : 0);
        return SEDGE_OK;
    }
    if (p.qos > 0 && c->inflight_in >= b->limits.max_inflight && c->version == MQTT_V5)
        return protocol_violation(c, MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED,
                                  "more unacknowledged QoS 1/2 PUBLISHes than receive maximum");

    if (bytes_has_prefix(p.topic, "$SYS")) {
        LOGD("client '%s': publish to %.*s refused ($SYS is the broker's)", c->identity,
             (int)p.topic.len, (const char *)p.topic.data);
        refuse_publish(c, &p, MQTT_RC_NOT_AUTHORIZED);
        return SEDGE_OK;
    }
    if (c->version == MQTT_V5 && mqtt_props_has(&p.props, MQTT_PROP_PAYLOAD_FORMAT) &&
        p.props.payload_format == 1 && !mqtt_utf8_valid(p.payload.data, p.payload.len)) {
        refuse_publish(c, &p, MQTT_RC_PAYLOAD_FORMAT_INVALID);
        return SEDGE_OK;
    }
    /* While the store cannot commit, nothing new is taken that may need
     * it: what it holds already waits for the retry, and that stays
     * bounded. QoS 0 flows on. */
    if (p.qos > 0 && store_failing(b->store))
        return refuse_unkept(c, &p, "the store cannot commit (disk full?)");

    /* The message, borrowed from the receive buffer. */
    uint8_t props_stack[256];
    uint8_t *props = props_stack;
    size_t props_len = 0;
    if (p.props.present || p.props.user_prop_count) {
        props_len = forwarded_props_encode(&p.props, NULL, 0);
        if (props_len > sizeof props_stack && !(props = malloc(props_len)))
            return protocol_violation(c, MQTT_RC_IMPLEMENTATION_ERROR, "out of memory");
        forwarded_props_encode(&p.props, props, props_len);
    }
    msg_t m = {
        .qos = p.qos,
        .retain = p.retain,
        .topic = p.topic,
        .props = {props, props_len},
        .payload = p.payload,
        .source = client_source(c),
    };
    if (c->version == MQTT_V5 && mqtt_props_has(&p.props, MQTT_PROP_MESSAGE_EXPIRY))
        m.expires_at = clock_wall_s() + p.props.message_expiry;

    route_outcome_t outcome = broker_route(b, &m, s);
    msg_borrowed_done(b, &m);
    if (props != props_stack)
        free(props);
    if (!outcome.routed) {
        LOGI("client '%s': publish to %.*s not authorized: no route", c->identity, (int)p.topic.len,
             (const char *)p.topic.data);
        refuse_publish(c, &p, MQTT_RC_NOT_AUTHORIZED);
        return SEDGE_OK;
    }

    if (p.qos == 0)
        return SEDGE_OK;
    if (outcome.refused && c->version != MQTT_V5)
        return refuse_unkept(c, &p, "a subscriber's queue or a service is full");
    c->inflight_in++;
    if (p.qos == 2) {
        if (session_qos2_add(s, p.packet_id))
            return protocol_violation(c, MQTT_RC_IMPLEMENTATION_ERROR, "out of memory");
        if (s->persistent)
            store_put_inbound(b->store, session_key(s),
                              p.packet_id);
    }
    bool durable = outcome.durable || (p.qos == 2 && s->persistent);
    /* A subscriber's full queue (or a service out of room) refused it, or
     * a service its payload: a v5 publisher is told, and the exchange ends
     * at this PUBREC. */
    uint8_t reason = c->version != MQTT_V5                   ? MQTT_RC_SUCCESS
                     : outcome.invalid ? MQTT_RC_PAYLOAD_FORMAT_INVALID
                     : outcome.refused ? MQTT_RC_QUOTA_EXCEEDED
                                                             : MQTT_RC_SUCCESS;
    if (reason && p.qos == 2) {
        session_qos2_remove(s, p.packet_id);
        if (s->persistent)
            store_del_inbound(b->store, session_key(s),
                              p.packet_id);
    }
    held_ack(c, p.qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p.packet_id, reason,
             durable ? store_pending_batch(b->store) : 0);
    return SEDGE_OK;
}
