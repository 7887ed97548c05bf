/*
 * flow: backpressure instead of loss. When a connected subscriber falls
 * behind — more than FLOW_HIGH bytes waiting to be written to it, or half
 * of max_queued_messages waiting in its session — the connection that
 * published the message is paused (it is not read, so TCP pushes back on
 * the publisher) and waits on that subscriber. When the subscriber has
 * drained below FLOW_LOW bytes and a quarter of its queue, the publishers
 * waiting on it are resumed, in the order they were paused.
 *
 * Only publishers feeding a slow subscriber wait: one that publishes to
 * fast subscribers only is never paused. A subscriber that makes no
 * progress for slow_reader_timeout_s is dealt with by the configured
 * policy (broker.c): disconnected, or marked `slow` — then it no longer
 * holds publishers back and its QoS 0 is dropped past max_output_bytes,
 * until it catches up.
 *
 * The links are in the clients' busy state: a waiting publisher's
 * `blocked_on`, and the waiting list of the subscriber it waits on. A
 * client that goes away leaves them first (flow_forget).
 */
#include "internal.h"

#define FLOW_HIGH (256u * 1024u)
#define FLOW_LOW (64u * 1024u)

static bool behind(const client_t *s, size_t bytes, uint32_t queued)
{
    return client_output_pending(s) > bytes || (s->session && s->session->queued > queued);
}

bool flow_congested(const client_t *s)
{
    return s->state == CLIENT_CONNECTED && !s->slow &&
           behind(s, FLOW_HIGH, s->broker->limits.max_queued_messages / 2);
}

static void unlink_waiter(client_t *p)
{
    client_io_t *io = p->io;
    client_t *s = io->blocked_on;
    if (io->blocked_prev)
        io->blocked_prev->io->blocked_next = io->blocked_next;
    else
        s->io->waiters = io->blocked_next;
    if (io->blocked_next)
        io->blocked_next->io->blocked_prev = io->blocked_prev;
    else
        s->io->waiters_tail = io->blocked_prev;
    io->blocked_on = io->blocked_next = io->blocked_prev = NULL;
}

void flow_block(client_t *publisher, client_t *subscriber)
{
    if (!publisher || publisher->state == CLIENT_CLOSING || !flow_congested(subscriber))
        return;
    client_io_t *pio = client_io(publisher), *sio = client_io(subscriber);
    if (!pio || !sio)
        return; /* without memory to wait, it is not paused: nothing is lost */
    bool paused = pio->blocked_on != NULL;
    if (paused) {
        /* One message reaches many: wait on the one furthest behind, or
         * the publisher resumes while that one is still filling up (big
         * payloads to many subscribers) and its QoS 0 overflows. */
        if (pio->blocked_on == subscriber ||
            client_output_pending(subscriber) <= client_output_pending(pio->blocked_on))
            return;
        unlink_waiter(publisher);
    }
    pio->blocked_on = subscriber;
    pio->blocked_prev = sio->waiters_tail;
    pio->blocked_next = NULL;
    if (sio->waiters_tail)
        sio->waiters_tail->io->blocked_next = publisher;
    else
        sio->waiters = publisher;
    sio->waiters_tail = publisher;
    if (paused)
        return;
    publisher->broker->stats.flow_pauses++;
    client_pause_reading(publisher, PAUSE_FLOW);
}

/* Resume the publishers waiting on `s`, one at a time: each may publish
 * to `s` again at once and, if `s` falls behind again, wait anew at the
 * end of the line, which keeps the turns fair. */
static void release_waiters(client_t *s)
{
    while (s->io && s->io->waiters && !flow_congested(s)) {
        client_t *p = s->io->waiters;
        unlink_waiter(p);
        client_resume_reading(p, PAUSE_FLOW);
    }
}

void flow_drained(client_t *s)
{
    if (!s->io || !s->io->waiters)
        return;
    const broker_t *b = s->broker;
    if (s->state == CLIENT_CONNECTED && !s->slow &&
        behind(s, FLOW_LOW, b->limits.max_queued_messages / 4))
        return;
    release_waiters(s);
}

void flow_forget(client_t *c)
{
    if (!c->io)
        return;
    if (c->io->blocked_on)
        unlink_waiter(c);
    while (c->io->waiters) {
        client_t *p = c->io->waiters;
        unlink_waiter(p);
        client_resume_reading(p, PAUSE_FLOW);
    }
}

bool flow_busy(const client_t *c)
{
    return c->io && (c->io->blocked_on || c->io->waiters);
}
