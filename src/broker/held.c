/*
 * held: replies that wait for the store — a PUBACK or PUBREC whose message
 * had to be written first, the SUBACK of a persistent session's new
 * subscription, the CONNACK of a new persistent session — kept per client
 * in one FIFO so that they leave in the order their requests came in.
 *
 * An entry names the batch it needs (0: none, it only waits its turn).
 * When a batch commits, every client that holds something is looked at
 * once (the broker keeps a list of them), and entries at the head whose
 * batch has committed are sent. A commit that fails is retried by the
 * store until it succeeds, so a reply here only ever waits longer: nothing
 * leaves before what it promises is durable.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define LOG_TAG "broker"

static void send_ack(client_t *c, uint8_t type, uint16_t packet_id, uint8_t reason)
{
    mqtt_ack_t a = {.packet_id = packet_id, .reason = reason};
    uint8_t pkt[8];
    size_t n = mqtt_encode_ack(pkt, sizeof pkt, c->version, type, &a);
    client_send(c, pkt, n);
    if ((type == MQTT_PUBACK || (type == MQTT_PUBREC && reason >= 0x80)) && c->inflight_in)
        c->inflight_in--;
}

static void wait_for_commit(client_t *c)
{
    if (c->in_ack_wait)
        return;
    c->in_ack_wait = true;
    c->ack_wait_next = c->broker->ack_waiters;
    c->broker->ack_waiters = c;
}

static held_t *first_held(const client_t *c)
{
    return c->io ? c->io->held_head : NULL;
}

/* Queue `h` behind the client's other held replies; NOMEM leaves it the
 * caller's. */
static sedge_err append(client_t *c, held_t *h)
{
    client_io_t *io = client_io(c);
    if (!io)
        return SEDGE_ERR_NOMEM;
    if (io->held_tail)
        io->held_tail->next = h;
    else
        io->held_head = h;
    io->held_tail = h;
    wait_for_commit(c);
    if (h->batch)
        broker_await_batch(c->broker, h->batch);
    return SEDGE_OK;
}

static void held_free(held_t *h)
{
    buf_free(&h->packet);
    for (size_t i = 0; i < h->filter_count; i++)
        free(h->filters[i]);
    free(h->filters);
    free(h);
}

void held_ack(client_t *c, uint8_t type, uint16_t packet_id, uint8_t reason, uint64_t batch)
{
    if (batch && batch_durable(c->broker, batch))
        batch = 0;
    if (!batch && !first_held(c)) {
        send_ack(c, type, packet_id, reason);
        return;
    }
    held_t *h = calloc(1, sizeof *h);
    if (h) {
        h->kind = HELD_ACK;
        h->batch = batch;
        h->type = type;
        h->packet_id = packet_id;
        h->reason = reason;
    }
    if (!h || append(c, h)) {
        /* Without memory to wait, no answer: answering now could promise
         * what is not durable yet. The client resends after reconnecting. */
        free(h);
        client_disconnect(c, MQTT_RC_IMPLEMENTATION_ERROR, "out of memory holding a reply");
        return;
    }
    if (c->version == MQTT_V311 && c->inflight_in >= c->broker->limits.max_inflight)
        client_pause_reading(c, PAUSE_ACKS); /* 3.1.1 has no receive maximum: push back */
}

/* What happens once a SUBACK or CONNACK is out. */
static void after_packet(client_t *c, held_t *h)
{
    if (h->kind == HELD_CONNACK) {
        c->state = CLIENT_CONNECTED;
        c->connected_at = (uint32_t)clock_wall_s();
        client_resume_reading(c, PAUSE_CONNACK);
        if (c->session)
            session_pump(c->broker, c->session);
        return;
    }
    for (size_t i = 0; i < h->filter_count && c->session; i++) {
        sub_t *sub = session_find_sub(c->session, bytes_of_cstr(h->filters[i]));
        if (sub)
            send_retained_for(c, sub);
    }
}

void held_packet(client_t *c, held_kind_t kind, buf_t *packet, uint64_t batch, char **filters,
                 size_t filter_count)
{
    if (batch && batch_durable(c->broker, batch))
        batch = 0;
    held_t *h = calloc(1, sizeof *h);
    if (!h) {
        client_disconnect(c, MQTT_RC_IMPLEMENTATION_ERROR, "out of memory");
        buf_free(packet);
        for (size_t i = 0; i < filter_count; i++)
            free(filters[i]);
        free(filters);
        return;
    }
    h->kind = kind;
    h->batch = batch;
    h->packet = *packet;
    *packet = (buf_t){0};
    h->filters = filters;
    h->filter_count = filter_count;
    if (!batch && !first_held(c)) {
        /* Nothing to wait for: now. */
        client_send(c, h->packet.data, h->packet.len);
        after_packet(c, h);
        held_free(h);
        return;
    }
    if (append(c, h)) {
        held_free(h);
        client_disconnect(c, MQTT_RC_IMPLEMENTATION_ERROR, "out of memory");
    }
}

/* Send what is due at the head of one client's FIFO. */
static void release(client_t *c, uint64_t committed)
{
    held_t *h;
    while ((h = first_held(c)) && h->batch <= committed && c->state != CLIENT_CLOSING) {
        c->io->held_head = h->next;
        if (!h->next)
            c->io->held_tail = NULL;
        if (h->kind == HELD_ACK) {
            send_ack(c, h->type, h->packet_id, h->reason);
        } else {
            client_send(c, h->packet.data, h->packet.len);
            after_packet(c, h);
        }
        held_free(h);
    }
    if (first_held(c))
        wait_for_commit(c);
    else if (c->state == CLIENT_CONNECTED)
        client_resume_reading(c, PAUSE_ACKS);
}

void broker_release_held(broker_t *b, uint64_t committed)
{
    client_t *list = b->ack_waiters;
    b->ack_waiters = NULL;
    while (list) {
        client_t *c = list;
        list = c->ack_wait_next;
        c->in_ack_wait = false;
        c->ack_wait_next = NULL;
        if (c->state != CLIENT_CLOSING)
            release(c, committed);
    }
}

void held_free_all(client_t *c)
{
    held_t *h;
    while ((h = first_held(c))) {
        c->io->held_head = h->next;
        held_free(h);
    }
    if (c->io)
        c->io->held_tail = NULL;
    if (c->in_ack_wait) { /* the client is going away: out of the list */
        client_t **link = &c->broker->ack_waiters;
        while (*link && *link != c)
            link = &(*link)->ack_wait_next;
        if (*link)
            *link = c->ack_wait_next;
        c->in_ack_wait = false;
        c->ack_wait_next = NULL;
    }
}
