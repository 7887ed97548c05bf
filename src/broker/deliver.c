/*
 * deliver: from one published message to every subscriber it reaches, and
 * the encoding of the PUBLISH each receives.
 *
 * A client with several matching subscriptions receives the message once,
 * at the highest QoS they grant, with all their subscription identifiers
 * (MQTT 5, 3.3.4); each shared-subscription group adds one copy for the
 * member it picks. QoS 0 goes straight to the connection's output buffer
 * when the client is online; QoS 1/2 goes through the session's queue.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define LOG_TAG "broker"

typedef struct delivery {
    session_t *session;
    uint8_t qos;
    bool retain_as_published;
    size_t sub_id_count;
    size_t sub_id_start; /* in the scratch array */
} delivery_t;

typedef struct {
    broker_t *broker;
    msg_t *msg;
    session_t *from;
} match_ctx_t;

static void collect(void *ctx, sub_t *sub)
{
    match_ctx_t *mc = ctx;
    broker_t *b = mc->broker;
    if (sub->no_local && sub->session == mc->from)
        return;
    sub_t **matched = array_room(b->matched, b->matched_count, &b->matched_cap, sizeof *matched, 64);
    if (!matched) {
        b->stats.msgs_dropped++;
        return;
    }
    b->matched = matched;
    b->matched[b->matched_count++] = sub;
}

/* A shared group's member is picked among those the route reaches: a
 * member it does not reach must not take the message from the others. */
static bool member_reachable(void *ctx, const sub_t *sub)
{
    match_ctx_t *mc = ctx;
    return broker_reaches(mc->broker, mc->msg, sub->session);
}

/* Merge the matched subscriptions into one delivery per session (shared
 * ones stay separate). Returns the number of deliveries. */
static size_t merge_matches(broker_t *b)
{
    if (b->delivery_cap < b->matched_count) {
        size_t cap = b->matched_count;
        delivery_t *d = realloc(b->deliveries, cap * sizeof *d);
        if (d)
            b->deliveries = d;
        uint32_t *ids = realloc(b->sub_id_scratch, cap * sizeof *ids);
        if (ids)
            b->sub_id_scratch = ids;
        uint32_t *slots = realloc(b->match_slots, cap * sizeof *slots);
        if (slots)
            b->match_slots = slots;
        if (!d || !ids || !slots)
            return 0;
        b->delivery_cap = b->sub_id_scratch_cap = cap;
    }
    /* Which delivery each subscription joins, and what they add up to. */
    uint64_t epoch = ++b->match_epoch;
    size_t n = 0;
    for (size_t i = 0; i < b->matched_count; i++) {
        sub_t *sub = b->matched[i];
        session_t *s = sub->session;
        if (sub->group || s->match_epoch != epoch) {
            b->deliveries[n] = (delivery_t){.session = s};
            if (!sub->group) {
                s->match_epoch = epoch;
                s->match_index = n;
            }
            b->match_slots[i] = (uint32_t)n++;
        } else {
            b->match_slots[i] = (uint32_t)s->match_index;
        }
        delivery_t *d = &b->deliveries[b->match_slots[i]];
        if (sub->qos > d->qos)
            d->qos = sub->qos;
        d->retain_as_published |= sub->retain_as_published;
        if (sub->sub_id)
            d->sub_id_count++;
    }
    /* Lay the subscription identifiers out per delivery, then fill them. */
    size_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        b->deliveries[i].sub_id_start = offset;
        offset += b->deliveries[i].sub_id_count;
        b->deliveries[i].sub_id_count = 0;
    }
    for (size_t i = 0; i < b->matched_count; i++) {
        sub_t *sub = b->matched[i];
        delivery_t *d = &b->deliveries[b->match_slots[i]];
        if (sub->sub_id)
            b->sub_id_scratch[d->sub_id_start + d->sub_id_count++] = sub->sub_id;
    }
    return n;
}

size_t deliver_message(broker_t *b, msg_t *m, session_t *from)
{
    match_ctx_t mc = {b, m, from};
    b->matched_count = 0;
    tree_match(&b->tree, m->topic, collect, member_reachable, &mc);
    size_t n = merge_matches(b);
    size_t reached = 0;
    /* A message, once freed, may be followed by another at its address
     * (a borrowed one lives on the stack): nothing encoded outlives the
     * call, and a nested one (a will, $SYS) starts afresh. */
    b->encoded.msg = NULL;
    b->encoded.armed = n > 1;
    client_t *from_client = from ? from->client : NULL;
    for (size_t i = 0; i < n; i++) {
        delivery_t *d = &b->deliveries[i];
        session_t *s = d->session;
        if (!broker_reaches(b, m, s))
            continue;
        uint8_t qos = d->qos < m->qos ? d->qos : m->qos;
        bool retain = d->retain_as_published && m->retain;
        const uint32_t *ids = &b->sub_id_scratch[d->sub_id_start];
        reached++;
        client_t *c = s->client;
        if (qos > 0) {
            session_enqueue(b, s, m, qos, retain, ids, d->sub_id_count);
            if (c)
                flow_block(from_client, c);
            continue;
        }
        if (!c || c->state != CLIENT_CONNECTED) {
            continue; /* QoS 0 is not kept for offline sessions */
        }
        /* A subscriber behind pauses the publisher (flow.c) long before
         * this hard cap; past it (a slow reader, a service publishing)
         * QoS 0 is dropped and counted. */
        if (client_output_pending(c) > b->limits.max_output_bytes ||
            b->buffered_bytes > b->limits.max_buffered_bytes) {
            b->stats.msgs_dropped++;
            continue;
        }
        send_publish(c, m, 0, retain, 0, false, ids, d->sub_id_count);
        flow_block(from_client, c);
    }
    b->encoded.msg = NULL;
    b->encoded.armed = false;
    return reached;
}

/* Our topic alias for this topic on this connection: 0 for none, and
 * `*first_use` when the alias is new and the topic must be sent with it. */
static uint16_t outgoing_alias(client_t *c, bytes_t topic, bool *first_use)
{
    *first_use = false;
    if (!c->topic_alias_max_out)
        return 0;
    topic_aliases_t *a = client_aliases(c);
    if (!a)
        return 0;
    uintptr_t known = (uintptr_t)map_get(&a->out, topic);
    if (known)
        return (uint16_t)known;
    if (a->out_next >= c->topic_alias_max_out)
        return 0; /* all in use: send the topic in full */
    /* The map keeps a view of the key, so the topic is copied for it. */
    char *key = bytes_dup_cstr(topic);
    uint16_t alias = (uint16_t)(a->out_next + 1);
    if (!key || map_put(&a->out, (bytes_t){(uint8_t *)key, topic.len}, (void *)(uintptr_t)alias)) {
        free(key);
        return 0;
    }
    a->out_next = alias;
    *first_use = true;
    return alias;
}

/* May this subscriber's PUBLISH be a copy of another's? Not with anything
 * of its own in it: subscription identifiers, a topic alias, an expiry
 * counted down at sending, the dup flag; nor when the payload is sent from
 * the message rather than copied (conn.c). */
static bool same_for_all(const client_t *c, const msg_t *m, bool dup, size_t sub_id_count)
{
    if (dup || sub_id_count || client_out_shares(c, m->payload.len))
        return false;
    return c->version != MQTT_V5 || (!m->expires_at && !c->topic_alias_max_out);
}

static bool is_encoded(const broker_t *b, const client_t *c, const msg_t *m, uint8_t qos,
                       bool retain)
{
    return b->encoded.msg == m && b->encoded.version == c->version && b->encoded.qos == qos &&
           b->encoded.retain == retain;
}

/* Keep the PUBLISH just encoded at `out` for the next subscribers. */
static void keep_encoded(broker_t *b, const client_t *c, const msg_t *m, uint8_t qos, bool retain,
                         const uint8_t *out, size_t size)
{
    b->encoded.msg = NULL;
    b->encoded.bytes.len = 0;
    if (buf_append(&b->encoded.bytes, out, size))
        return;
    size_t at = 1; /* the remaining length, a variable byte integer */
    while (at < size && out[at] & 0x80)
        at++;
    b->encoded.packet_id_at = at + 1 + 2 + m->topic.len;
    b->encoded.msg = m;
    b->encoded.version = c->version;
    b->encoded.qos = qos;
    b->encoded.retain = retain;
}

static bool send_encoded(client_t *c, uint16_t packet_id)
{
    broker_t *b = c->broker;
    bytes_t bytes = {b->encoded.bytes.data, b->encoded.bytes.len};
    if (bytes.len > c->max_packet_out) {
        b->stats.msgs_dropped++;
        return false;
    }
    uint8_t *out = client_out_reserve(c, bytes.len);
    if (!out) {
        b->stats.msgs_dropped++;
        return false;
    }
    memcpy(out, bytes.data, bytes.len);
    if (b->encoded.qos) {
        out[b->encoded.packet_id_at] = (uint8_t)(packet_id >> 8);
        out[b->encoded.packet_id_at + 1] = (uint8_t)packet_id;
    }
    client_out_commit(c, bytes.len);
    b->stats.msgs_out++;
    return true;
}

bool send_publish(client_t *c, msg_t *m, uint8_t qos, bool retain, uint16_t packet_id, bool dup,
                  const uint32_t *sub_ids, size_t sub_id_count)
{
    broker_t *b = c->broker;
    bool reusable = b->encoded.armed && same_for_all(c, m, dup, sub_id_count);
    if (reusable && is_encoded(b, c, m, qos, retain))
        return send_encoded(c, packet_id);
    mqtt_publish_t pub = {
        .dup = dup,
        .qos = qos,
        .retain = retain,
        .topic = m->topic,
        .packet_id = packet_id,
        .payload = m->payload,
    };
    if (c->version == MQTT_V5) {
        pub.props.user_props = m->props;
        if (m->expires_at) {
            int64_t left = m->expires_at - clock_wall_s();
            pub.props.message_expiry = left > 0 ? (uint32_t)left : 1;
            mqtt_props_set(&pub.props, MQTT_PROP_MESSAGE_EXPIRY);
        }
        if (sub_id_count) {
            pub.props.sub_ids = sub_ids;
            pub.props.sub_id_count = sub_id_count;
        }
    }
    size_t size = mqtt_encode_publish(NULL, 0, c->version, &pub);
    if (size > c->max_packet_out) {
        b->stats.msgs_dropped++;
        LOGD("client '%s': %zu-byte PUBLISH exceeds its maximum packet size, discarded",
             client_name(c).text, size);
        return false;
    }
    if (c->version == MQTT_V5 && !dup) {
        bool first_use;
        uint16_t alias = outgoing_alias(c, m->topic, &first_use);
        if (alias) {
            pub.props.topic_alias = alias;
            mqtt_props_set(&pub.props, MQTT_PROP_TOPIC_ALIAS);
            if (!first_use)
                pub.topic = (bytes_t){NULL, 0};
            size = mqtt_encode_publish(NULL, 0, c->version, &pub);
        }
    }
    /* A big payload is not copied: the output holds the message and sends
     * the payload from it (conn.c), after this subscriber's own header. */
    bool share = client_out_shares(c, m->payload.len);
    size_t head = share ? size - m->payload.len : size;
    uint8_t *out = client_out_reserve(c, head);
    if (!out) {
        b->stats.msgs_dropped++;
        return false;
    }
    if (share) {
        mqtt_encode_publish_head(out, head, c->version, &pub);
        if (!client_out_share(c, head, m)) {
            b->stats.msgs_dropped++;
            return false;
        }
    } else {
        mqtt_encode_publish(out, size, c->version, &pub);
        if (reusable)
            keep_encoded(b, c, m, qos, retain, out, size);
        client_out_commit(c, size);
    }
    b->stats.msgs_out++;
    return true;
}

void retain_message(broker_t *b, msg_t *m, bool durable)
{
    if (durable && store_failing(b->store)) {
        /* The retained message stays as it was while the store cannot
         * commit; the publisher is told (a refusal). */
        b->stats.msgs_dropped++;
        broker_note_refused(b);
        return;
    }
    tree_node_t *n =
        m->payload.len ? tree_ensure(&b->tree, m->topic) : tree_find(&b->tree, m->topic);
    if (!n)
        return;
    if (n->retained) {
        msg_t *old = n->retained;
        n->retained = NULL;
        b->stats.retained--;
        if (old->store_refs && (!m->payload.len || !durable)) {
            store_del_retained(b->store, m->topic);
            broker_note_durable(b);
        }
        msg_store_unref(b, old);
        msg_release(b, old);
    }
    if (!m->payload.len) {
        tree_prune(&b->tree, n);
        return;
    }
    msg_t *held = msg_hold(m);
    if (!held) {
        b->stats.msgs_dropped++;
        tree_prune(&b->tree, n);
        return;
    }
    n->retained = held;
    b->stats.retained++;
    if (durable) {
        msg_store_ref(b, held);
        store_put_retained(b->store, held->topic, held->store_id);
    }
}

static void note_match(void *ctx, sub_t *s)
{
    (void)s;
    *(bool *)ctx = true;
}

bool broker_has_subscribers(broker_t *b, bytes_t topic)
{
    bool found = false;
    tree_match(&b->tree, topic, note_match, NULL, &found);
    return found;
}
