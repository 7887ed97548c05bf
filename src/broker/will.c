/*
 * will: will messages — published when a connection ends without a normal
 * DISCONNECT, after the will delay (MQTT 5) or when the session ends,
 * whichever comes first, and never if the session reconnects in between.
 */
#include "internal.h"

#include <stdlib.h>

#define LOG_TAG "broker"

/* May the will's author still speak? A thing revoked or removed from the
 * group since it connected may not: its will is dropped. */
static bool author_allowed(broker_t *b, const session_t *from)
{
    return !from || !b->hooks.may_connect ||
           b->hooks.may_connect(b->hooks_ctx, (bytes_t){(const uint8_t *)from->owner, from->owner_len});
}

/* Publishes and frees the will. */
static void publish_will(broker_t *b, will_t *w, session_t *from)
{
    msg_t *m = w->msg;
    uint32_t expiry_interval = w->expiry_interval;
    free(w);
    if (!author_allowed(b, from)) {
        LOGI("will of '%s' on %.*s dropped: '%s' is no longer allowed to connect", from->client_id,
             (int)m->topic.len, (const char *)m->topic.data, from->owner);
        msg_release(b, m);
        return;
    }
    if (expiry_interval)
        m->expires_at = clock_wall_s() + expiry_interval;
    LOGD("publishing will on %.*s", (int)m->topic.len, (const char *)m->topic.data);
    if (!broker_route(b, m, from).routed)
        LOGI("will on %.*s refused: no route", (int)m->topic.len, (const char *)m->topic.data);
    msg_release(b, m);
}

void will_free(broker_t *b, will_t *w)
{
    if (!w)
        return;
    msg_release(b, w->msg);
    free(w);
}

void will_on_close(broker_t *b, client_t *c)
{
    will_t *w = c->will;
    if (!w)
        return;
    c->will = NULL;
    if (!c->send_will) {
        will_free(b, w);
        return;
    }
    session_t *s = c->session;
    if (!s || w->delay == 0 || s->expiry_interval == 0) {
        publish_will(b, w, s);
        return;
    }
    will_publish_now(b, s); /* an older pending will goes first */
    uint32_t delay = w->delay < s->expiry_interval ? w->delay : s->expiry_interval;
    w->due_ms = clock_mono_ms() + (uint64_t)delay * 1000u;
    s->will = w;
    broker_deadline_at(b, w->due_ms);
}

void will_publish_now(broker_t *b, session_t *s)
{
    will_t *w = s->will;
    if (!w)
        return;
    s->will = NULL;
    publish_will(b, w, s);
}

void will_cancel(broker_t *b, session_t *s)
{
    will_free(b, s->will);
    s->will = NULL;
}
