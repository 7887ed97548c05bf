/*
 * handle_ack: PUBACK, PUBREC, PUBREL and PUBCOMP — the rest of the QoS 1
 * and QoS 2 exchanges, in both directions. The replies (PUBREL, PUBCOMP)
 * go through held.c: each leaves only once the state it announces is
 * committed, and in the order of the requests.
 */
#include "internal.h"

#define LOG_TAG "broker"

sedge_err handle_ack(client_t *c, const mqtt_frame_t *f)
{
    broker_t *b = c->broker;
    session_t *s = c->session;
    mqtt_ack_t a;
    const char *why = "malformed acknowledgement";
    sedge_err err = mqtt_decode_ack(f, c->version, &a, &why);
    if (err)
        return protocol_violation(
            c, err == SEDGE_ERR_PROTOCOL ? MQTT_RC_PROTOCOL_ERROR : MQTT_RC_MALFORMED, why);
    if (f->type == MQTT_PUBREL) {
        /* The client releases a QoS 2 message it sent us. PUBCOMP frees
         * the packet identifier for a new message, so it waits until the
         * identifier's deletion is durable: else, after a crash, a new
         * message reusing it would be taken for a resend and dropped. An
         * unknown identifier waits too: an earlier PUBREL's deletion may
         * still be committing. */
        bool known = session_qos2_pending(s, a.packet_id);
        if (known) {
            session_qos2_remove(s, a.packet_id);
            if (s->persistent)
                store_del_inbound(b->store, session_key(s),
                                  a.packet_id);
            c->inflight_in--;
        }
        held_ack(c, MQTT_PUBCOMP, a.packet_id, known ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND,
                 s->persistent ? store_pending_batch(b->store) : 0);
        return SEDGE_OK;
    }

    out_msg_t *o = session_find_inflight(s, a.packet_id);
    switch (f->type) {
    case MQTT_PUBACK:
        if (o && o->qos == 1)
            session_complete(b, s, o);
        else
            LOGD("client '%s': PUBACK for unknown packet %u", c->identity, a.packet_id);
        break;
    case MQTT_PUBREC:
        if (!o || o->qos != 2) {
            held_ack(c, MQTT_PUBREL, a.packet_id, MQTT_RC_PACKET_ID_NOT_FOUND, 0);
            break;
        }
        if (a.reason >= 0x80) {
            session_complete(b, s, o); /* the receiver refused it */
            break;
        }
        /* PUBREL only once "released" is durable: after a crash before
         * that, the message would be sent again to a client that has
         * completed it, and delivered twice. */
        if (o->state != OUT_RELEASED) {
            o->state = OUT_RELEASED;
            if (s->persistent)
                o->ready_batch = store_set_queued_state(b->store, o->seq, o->packet_id, OUT_RELEASED);
        }
        held_ack(c, MQTT_PUBREL, a.packet_id, 0,
                 batch_durable(b, o->ready_batch) ? 0 : o->ready_batch);
        break;
    case MQTT_PUBCOMP:
        if (o && o->state == OUT_RELEASED)
            session_complete(b, s, o);
        else
            LOGD("client '%s': PUBCOMP for unknown packet %u", c->identity, a.packet_id);
        break;
    }
    return SEDGE_OK;
}
