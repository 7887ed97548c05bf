/*
 * will: will messages — published when a connection ends without a normal
 * DISCONNECT, after the will delay (MQTT 5) or when the session ends,
 * whichever comes first, and never if the session reconnects in between.
 */
#include "internal.h"

#define LOG_TAG "broker"

static void publish_will(broker_t *b, msg_t *m, uint32_t expiry_interval, session_t *from)
{
    if (expiry_interval)
        m->expires_at = clock_wall_s() + expiry_interval;
    LOGD("publishing will on %.*s", (int)m->topic.len, (const char *)m->topic.data);
    if (!broker_route(b, m, from))
        LOGD("will on %.*s refused: no route", (int)m->topic.len, (const char *)m->topic.data);
    msg_release(b, m);
}

void will_on_close(broker_t *b, client_t *c)
{
    msg_t *m = c->will;
    if (!m)
        return;
    c->will = NULL;
    if (!c->send_will) {
        msg_release(b, m);
        return;
    }
    session_t *s = c->session;
    if (!s || c->will_delay == 0 || s->expiry_interval == 0) {
        publish_will(b, m, c->will_expiry, s);
        return;
    }
    will_publish_now(b, s); /* an older pending will goes first */
    uint32_t delay = c->will_delay < s->expiry_interval ? c->will_delay : s->expiry_interval;
    s->will = (pending_will_t){m, clock_mono_ms() + (uint64_t)delay * 1000u, c->will_expiry};
}

void will_publish_now(broker_t *b, session_t *s)
{
    if (!s->will.msg)
        return;
    pending_will_t w = s->will;
    s->will = (pending_will_t){0};
    publish_will(b, w.msg, w.expiry_interval, s);
}

void will_cancel(broker_t *b, session_t *s)
{
    if (s->will.msg)
        msg_release(b, s->will.msg);
    s->will = (pending_will_t){0};
}

void wills_due(broker_t *b, uint64_t now_ms)
{
    for (session_t *s = b->offline; s; s = s->offline_next)
        if (s->will.msg && now_ms >= s->will.due_ms)
            will_publish_now(b, s);
}
