/*
 * msg: application messages. A message is built once and shared by every
 * queue, retained slot and in-progress delivery that holds it; the store
 * keeps one row per message however many sessions it is queued for.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define LOG_TAG "broker"

msg_t *msg_new(bytes_t topic, bytes_t props, bytes_t payload, bytes_t source)
{
    size_t size = sizeof(msg_t) + topic.len + source.len + props.len + payload.len;
    msg_t *m = malloc(size);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    m->refs = 1;
    m->heap = true;
    uint8_t *p = m->data;
    bytes_t *fields[] = {&m->topic, &m->source, &m->props, &m->payload};
    bytes_t values[] = {topic, source, props, payload};
    for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
        if (values[i].len)
            memcpy(p, values[i].data, values[i].len);
        *fields[i] = (bytes_t){p, values[i].len};
        p += values[i].len;
    }
    return m;
}

msg_t *msg_hold(msg_t *m)
{
    if (m->heap) {
        m->refs++;
        return m;
    }
    if (!m->copy) {
        m->copy = msg_new(m->topic, m->props, m->payload, m->source);
        if (!m->copy)
            return NULL;
        m->copy->expires_at = m->expires_at;
        m->copy->qos = m->qos;
        m->copy->retain = m->retain;
    }
    m->copy->refs++;
    return m->copy;
}

void msg_release(broker_t *b, msg_t *m)
{
    (void)b;
    if (m && m->heap && --m->refs == 0)
        free(m);
}

void msg_borrowed_done(broker_t *b, msg_t *m)
{
    if (m->copy) {
        msg_release(b, m->copy);
        m->copy = NULL;
    }
}

bool msg_expired(const msg_t *m, int64_t now)
{
    return m->expires_at && now >= m->expires_at;
}

void msg_store_ref(broker_t *b, msg_t *m)
{
    if (!m->store_id) {
        m->store_id = b->next_msg_id++;
        store_msg_t row = {
            .id = m->store_id,
            .topic = m->topic,
            .props = m->props,
            .payload = m->payload,
            .source = m->source,
            .qos = m->qos,
            .retain = m->retain,
            .expires_at = m->expires_at,
        };
        store_put_msg(b->store, &row);
    }
    m->store_refs++;
    broker_note_durable(b);
}

void msg_store_unref(broker_t *b, msg_t *m)
{
    if (m->store_refs && --m->store_refs == 0) {
        store_del_msg(b->store, m->store_id);
        m->store_id = 0;
    }
}
