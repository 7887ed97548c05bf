/*
 * libFuzzer target for the MQTT codec.
 *
 * The input is a byte stream as a socket would deliver it: it is framed
 * with mqtt_frame_parse packet after packet, and each frame goes to the
 * decoder of its type under both protocol levels (3.1.1 and 5). What
 * decodes must be sane (every view inside the frame, user properties and
 * subscription entries walk to exactly their counts) and must survive a
 * round trip: encoded again, framed and decoded, it gives the same fields,
 * and encoding that second decode gives the very same bytes. Encoders are
 * also held to their contract: sizing with no buffer, never writing past
 * `cap`.
 *
 * The property walk below uses the value types of the MQTT 5.0 table 2-4,
 * written out here again so that it checks the codec instead of sharing its
 * mistakes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/mqtt.h"
#include "fuzz_check.h"

/* ---- views and encoders ---- */

static void check_inside(bytes_t v, bytes_t outer)
{
    if (v.len == 0)
        return;
    CHECK(v.data >= outer.data);
    CHECK(v.len <= outer.len);
    CHECK((size_t)(v.data - outer.data) <= outer.len - v.len);
}

/*
 * Run CALL (which writes to enc_buf, enc_cap) to size, into a buffer half
 * as big (nothing may be written past cap) and into exactly the size it
 * asked for. Leaves a malloc'd copy in dst/len.
 */
#define ENCODE(dst, len, CALL)                                                                     \
    do {                                                                                           \
        uint8_t *enc_buf = NULL;                                                                   \
        size_t enc_cap = 0;                                                                        \
        size_t need_ = (CALL);                                                                     \
        CHECK(need_ >= 2);                                                                         \
        enc_buf = malloc(need_ + 1);                                                               \
        CHECK(enc_buf);                                                                            \
        memset(enc_buf, 0xA5, need_ + 1);                                                          \
        enc_cap = need_ / 2;                                                                       \
        CHECK((CALL) == need_);                                                                    \
        for (size_t k_ = enc_cap; k_ <= need_; k_++)                                               \
            CHECK(enc_buf[k_] == 0xA5);                                                            \
        enc_cap = need_;                                                                           \
        CHECK((CALL) == need_);                                                                    \
        CHECK(enc_buf[need_] == 0xA5);                                                             \
        (dst) = enc_buf;                                                                           \
        (len) = need_;                                                                             \
    } while (0)

/* Our own encoding must frame as exactly one whole packet of its type. */
static mqtt_frame_t reframe(const uint8_t *buf, size_t len, uint8_t type)
{
    mqtt_frame_t f;
    const char *why = NULL;
    CHECK(mqtt_frame_parse(buf, len, &f, &why) == SEDGE_OK);
    CHECK(f.size == len);
    CHECK(f.type == type);
    return f;
}

static void check_same_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    CHECK(alen == blen);
    CHECK(memcmp(a, b, alen) == 0);
}

/* ---- properties ---- */

enum { K_BYTE, K_U16, K_U32, K_VBI, K_LEN, K_PAIR };

static int prop_kind(uint32_t id)
{
    switch (id) {
    case 0x01:
    case 0x17:
    case 0x19:
    case 0x24:
    case 0x25:
    case 0x28:
    case 0x29:
    case 0x2A: return K_BYTE;
    case 0x13:
    case 0x21:
    case 0x22:
    case 0x23: return K_U16;
    case 0x02:
    case 0x11:
    case 0x18:
    case 0x27: return K_U32;
    case 0x0B: return K_VBI;
    case 0x03:
    case 0x08:
    case 0x09:
    case 0x12:
    case 0x15:
    case 0x16:
    case 0x1A:
    case 0x1C:
    case 0x1F: return K_LEN;
    case 0x26: return K_PAIR;
    }
    return -1;
}

static bool get_vbi(bytes_t b, size_t *pos, uint32_t *v)
{
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        if (*pos >= b.len)
            return false;
        uint8_t c = b.data[(*pos)++];
        x |= (uint32_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

static bool skip(bytes_t b, size_t *pos, size_t n)
{
    if (b.len - *pos < n)
        return false;
    *pos += n;
    return true;
}

static bool skip_len(bytes_t b, size_t *pos)
{
    if (b.len - *pos < 2)
        return false;
    size_t n = (size_t)b.data[*pos] << 8 | b.data[*pos + 1];
    *pos += 2;
    return skip(b, pos, n);
}

/* Walk a decoded block: every property parses, each is marked present, the
 * block ends exactly, and the counts match. Fills ids[0..max) with the
 * subscription identifiers in order; returns how many there are. */
static size_t walk_props(const mqtt_props_t *p, uint32_t *ids, size_t max)
{
    size_t pos = 0, n_ids = 0, n_users = 0;
    while (pos < p->raw.len) {
        uint32_t id, v;
        CHECK(get_vbi(p->raw, &pos, &id));
        int kind = prop_kind(id);
        CHECK(kind >= 0);
        CHECK(mqtt_props_has(p, (int)id));
        switch (kind) {
        case K_BYTE: CHECK(skip(p->raw, &pos, 1)); break;
        case K_U16: CHECK(skip(p->raw, &pos, 2)); break;
        case K_U32: CHECK(skip(p->raw, &pos, 4)); break;
        case K_VBI:
            CHECK(get_vbi(p->raw, &pos, &v));
            CHECK(v != 0);
            if (n_ids < max)
                ids[n_ids] = v;
            n_ids++;
            break;
        case K_LEN: CHECK(skip_len(p->raw, &pos)); break;
        case K_PAIR:
            CHECK(skip_len(p->raw, &pos));
            CHECK(skip_len(p->raw, &pos));
            n_users++;
            break;
        }
    }
    CHECK(pos == p->raw.len);
    CHECK(n_ids == p->sub_id_count);
    CHECK(n_users == p->user_prop_count);
    CHECK(mqtt_props_has(p, MQTT_PROP_SUBSCRIPTION_ID) == (n_ids > 0));
    CHECK(mqtt_props_has(p, MQTT_PROP_USER_PROPERTY) == (n_users > 0));
    if (n_ids && max)
        CHECK(ids[0] == p->sub_id);
    return n_ids;
}

/* The user properties through the public walker: as many as counted, each
 * a valid UTF-8 pair inside the block, and mqtt_props_copy_user's output
 * walks to the same pairs. */
static void check_user_props(const mqtt_props_t *p)
{
    size_t need = mqtt_props_copy_user(p, NULL, 0);
    uint8_t *copy = malloc(need + 1);
    CHECK(copy);
    CHECK(mqtt_props_copy_user(p, copy, need) == need);
    bytes_t run = {copy, need};
    size_t c1 = 0, c2 = 0, n = 0;
    bytes_t k1, v1, k2, v2;
    while (mqtt_user_prop_next(p->raw, &c1, &k1, &v1)) {
        check_inside(k1, p->raw);
        check_inside(v1, p->raw);
        CHECK(mqtt_utf8_valid(k1.data, k1.len));
        CHECK(mqtt_utf8_valid(v1.data, v1.len));
        CHECK(mqtt_user_prop_next(run, &c2, &k2, &v2));
        CHECK(bytes_eq(k1, k2));
        CHECK(bytes_eq(v1, v2));
        n++;
    }
    CHECK(!mqtt_user_prop_next(run, &c2, &k2, &v2));
    CHECK(c2 == need);
    CHECK(n == p->user_prop_count);
    free(copy);
}

static void check_props(const mqtt_props_t *p, bytes_t body)
{
    check_inside(p->raw, body);
    bytes_t views[] = {p->content_type,       p->response_topic,   p->correlation_data,
                       p->assigned_client_id, p->auth_method,      p->auth_data,
                       p->response_info,      p->server_reference, p->reason_string};
    for (size_t i = 0; i < ARRAY_LEN(views); i++)
        check_inside(views[i], p->raw);
    CHECK(p->user_props.len == 0);
    walk_props(p, NULL, 0);
    check_user_props(p);
}

/* What a decoded block needs to be encoded again: its user properties and
 * all its subscription identifiers in wire form. */
typedef struct {
    uint8_t *users;
    uint32_t *ids;
} scratch_t;

static void props_for_encode(mqtt_props_t *p, scratch_t *s)
{
    size_t n = mqtt_props_copy_user(p, NULL, 0);
    s->users = malloc(n + 1);
    CHECK(s->users);
    CHECK(mqtt_props_copy_user(p, s->users, n) == n);
    p->user_props = (bytes_t){s->users, n};
    size_t max = p->raw.len / 2 + 1;
    s->ids = malloc(max * sizeof *s->ids);
    CHECK(s->ids);
    size_t k = walk_props(p, s->ids, max);
    p->sub_ids = k ? s->ids : NULL;
}

static void scratch_free(scratch_t *s)
{
    free(s->users);
    free(s->ids);
}

static void check_same_props(const mqtt_props_t *a, const mqtt_props_t *b)
{
    CHECK(a->present == b->present);
    CHECK(a->payload_format == b->payload_format);
    CHECK(a->request_problem_info == b->request_problem_info);
    CHECK(a->request_response_info == b->request_response_info);
    CHECK(a->maximum_qos == b->maximum_qos);
    CHECK(a->retain_available == b->retain_available);
    CHECK(a->wildcard_sub_available == b->wildcard_sub_available);
    CHECK(a->sub_id_available == b->sub_id_available);
    CHECK(a->shared_sub_available == b->shared_sub_available);
    CHECK(a->server_keep_alive == b->server_keep_alive);
    CHECK(a->receive_maximum == b->receive_maximum);
    CHECK(a->topic_alias_maximum == b->topic_alias_maximum);
    CHECK(a->topic_alias == b->topic_alias);
    CHECK(a->message_expiry == b->message_expiry);
    CHECK(a->session_expiry == b->session_expiry);
    CHECK(a->will_delay == b->will_delay);
    CHECK(a->maximum_packet_size == b->maximum_packet_size);
    CHECK(a->sub_id == b->sub_id);
    CHECK(a->sub_id_count == b->sub_id_count);
    CHECK(bytes_eq(a->content_type, b->content_type));
    CHECK(bytes_eq(a->response_topic, b->response_topic));
    CHECK(bytes_eq(a->correlation_data, b->correlation_data));
    CHECK(bytes_eq(a->assigned_client_id, b->assigned_client_id));
    CHECK(bytes_eq(a->auth_method, b->auth_method));
    CHECK(bytes_eq(a->auth_data, b->auth_data));
    CHECK(bytes_eq(a->response_info, b->response_info));
    CHECK(bytes_eq(a->server_reference, b->server_reference));
    CHECK(bytes_eq(a->reason_string, b->reason_string));
    CHECK(a->user_prop_count == b->user_prop_count);
    /* The same user properties in the same order, and the same
     * subscription identifiers in the same order. */
    size_t ca = 0, cb = 0;
    bytes_t ka, va, kb, vb;
    while (mqtt_user_prop_next(a->raw, &ca, &ka, &va)) {
        CHECK(mqtt_user_prop_next(b->raw, &cb, &kb, &vb));
        CHECK(bytes_eq(ka, kb));
        CHECK(bytes_eq(va, vb));
    }
    CHECK(!mqtt_user_prop_next(b->raw, &cb, &kb, &vb));
    if (a->sub_id_count) {
        uint32_t *ia = malloc(a->sub_id_count * sizeof *ia);
        uint32_t *ib = malloc(b->sub_id_count * sizeof *ib);
        CHECK(ia && ib);
        walk_props(a, ia, a->sub_id_count);
        walk_props(b, ib, b->sub_id_count);
        CHECK(memcmp(ia, ib, a->sub_id_count * sizeof *ia) == 0);
        free(ia);
        free(ib);
    }
}

/* ---- topics ---- */

/* Valid names and plain filters seen in this input, matched pairwise at its
 * end against the reference matcher below. Views into the input. */
#define SEEN_MAX 16
static bytes_t seen_names[SEEN_MAX], seen_filters[SEEN_MAX];
static size_t n_seen_names, n_seen_filters;

static void remember(bytes_t *list, size_t *n, bytes_t b)
{
    if (*n < SEEN_MAX)
        list[(*n)++] = b;
}

/* MQTT 4.7 written level by level: '#' takes the rest, including the
 * parent level, '+' one level, anything else itself; names starting with
 * '$' are not matched by a leading wildcard. */
static bool reference_match(bytes_t filter, bytes_t topic)
{
    if (topic.len && topic.data[0] == '$' && (filter.data[0] == '+' || filter.data[0] == '#'))
        return false;
    size_t fi = 0, ti = 0;
    for (;;) {
        size_t fe = fi, te = ti;
        while (fe < filter.len && filter.data[fe] != '/')
            fe++;
        while (te < topic.len && topic.data[te] != '/')
            te++;
        bool hash = fe - fi == 1 && filter.data[fi] == '#';
        bool plus = fe - fi == 1 && filter.data[fi] == '+';
        if (hash)
            return true;
        if (!plus && (fe - fi != te - ti || memcmp(filter.data + fi, topic.data + ti, fe - fi)))
            return false;
        bool filter_done = fe == filter.len, topic_done = te == topic.len;
        if (filter_done || topic_done) {
            if (filter_done && topic_done)
                return true;
            /* Only a trailing "/#" also matches the level above it. */
            return topic_done && filter.len - fe == 2 && filter.data[fe + 1] == '#';
        }
        fi = fe + 1;
        ti = te + 1;
    }
}

static void check_seen_topics(void)
{
    for (size_t i = 0; i < n_seen_filters; i++)
        for (size_t j = 0; j < n_seen_names; j++)
            CHECK(mqtt_topic_matches(seen_filters[i], seen_names[j]) ==
                  reference_match(seen_filters[i], seen_names[j]));
}

static void check_topic_name(bytes_t topic)
{
    if (!mqtt_topic_name_valid(topic))
        return;
    CHECK(mqtt_utf8_valid(topic.data, topic.len));
    remember(seen_names, &n_seen_names, topic);
    /* A valid name is a filter without wildcards that matches itself. */
    CHECK(mqtt_topic_matches(topic, topic));
    bool dollar = topic.data[0] == '$';
    CHECK(mqtt_topic_matches(BYTES_LIT("#"), topic) == !dollar);
    bool one_level = memchr(topic.data, '/', topic.len) == NULL;
    CHECK(mqtt_topic_matches(BYTES_LIT("+"), topic) == (!dollar && one_level));
    if (!bytes_has_prefix(topic, "$share/"))
        CHECK(mqtt_topic_filter_valid(topic));
}

static void check_topic_filter(bytes_t filter)
{
    bool valid = mqtt_topic_filter_valid(filter);
    if (valid)
        CHECK(mqtt_utf8_valid(filter.data, filter.len));
    bytes_t group, inner;
    if (mqtt_shared_split(filter, &group, &inner)) {
        check_inside(group, filter);
        check_inside(inner, filter);
        if (valid) {
            CHECK(group.len > 0);
            CHECK(!memchr(group.data, '+', group.len) && !memchr(group.data, '#', group.len));
            /* The inner filter is plain even when it reads "$share/...". */
            if (!bytes_has_prefix(inner, "$share/"))
                CHECK(mqtt_topic_filter_valid(inner));
            remember(seen_filters, &n_seen_filters, inner);
        }
        return;
    }
    if (!valid)
        return;
    remember(seen_filters, &n_seen_filters, filter);
    if (mqtt_topic_name_valid(filter))
        check_topic_name(filter);
}

/* ---- one decoder each ---- */

static void check_connect(const mqtt_frame_t *f)
{
    mqtt_connect_t c;
    const char *why = NULL;
    sedge_err err = mqtt_decode_connect(f, &c, &why);
    if (err) {
        CHECK(why != NULL);
        CHECK(err == SEDGE_ERR_MALFORMED || err == SEDGE_ERR_PROTOCOL ||
              err == SEDGE_ERR_UNSUPPORTED);
        return;
    }
    CHECK(c.version == MQTT_V311 || c.version == MQTT_V5);
    CHECK(c.will_qos <= 2);
    CHECK(c.will || (!c.will_qos && !c.will_retain));
    bytes_t views[] = {c.client_id, c.will_topic, c.will_payload, c.username, c.password};
    for (size_t i = 0; i < ARRAY_LEN(views); i++)
        check_inside(views[i], f->body);
    check_props(&c.props, f->body);
    check_props(&c.will_props, f->body);
    check_topic_name(c.will_topic);

    scratch_t s1, s2;
    props_for_encode(&c.props, &s1);
    props_for_encode(&c.will_props, &s2);
    uint8_t *e1, *e2;
    size_t n1, n2;
    ENCODE(e1, n1, mqtt_encode_connect(enc_buf, enc_cap, &c));
    CHECK(n1 <= f->size);
    mqtt_frame_t g = reframe(e1, n1, MQTT_CONNECT);
    mqtt_connect_t d;
    CHECK(mqtt_decode_connect(&g, &d, NULL) == SEDGE_OK);
    CHECK(d.version == c.version && d.clean_start == c.clean_start);
    CHECK(d.keep_alive == c.keep_alive && d.will == c.will && d.will_qos == c.will_qos);
    CHECK(d.will_retain == c.will_retain && d.has_username == c.has_username);
    CHECK(d.has_password == c.has_password);
    CHECK(bytes_eq(d.client_id, c.client_id) && bytes_eq(d.will_topic, c.will_topic));
    CHECK(bytes_eq(d.will_payload, c.will_payload) && bytes_eq(d.username, c.username));
    CHECK(bytes_eq(d.password, c.password));
    check_same_props(&c.props, &d.props);
    check_same_props(&c.will_props, &d.will_props);
    scratch_t s3, s4;
    props_for_encode(&d.props, &s3);
    props_for_encode(&d.will_props, &s4);
    ENCODE(e2, n2, mqtt_encode_connect(enc_buf, enc_cap, &d));
    check_same_bytes(e1, n1, e2, n2);
    free(e1);
    free(e2);
    scratch_free(&s1);
    scratch_free(&s2);
    scratch_free(&s3);
    scratch_free(&s4);
}

static void check_connack(const mqtt_frame_t *f, uint8_t version)
{
    mqtt_connack_t c;
    const char *why = NULL;
    if (mqtt_decode_connack(f, version, &c, &why)) {
        CHECK(why != NULL);
        return;
    }
    check_props(&c.props, f->body);
    (void)mqtt_reason_name(c.reason);
    scratch_t s1, s2;
    props_for_encode(&c.props, &s1);
    uint8_t *e1, *e2;
    size_t n1, n2;
    ENCODE(e1, n1, mqtt_encode_connack(enc_buf, enc_cap, version, &c));
    CHECK(n1 <= f->size);
    mqtt_frame_t g = reframe(e1, n1, MQTT_CONNACK);
    mqtt_connack_t d;
    CHECK(mqtt_decode_connack(&g, version, &d, NULL) == SEDGE_OK);
    CHECK(d.session_present == c.session_present && d.reason == c.reason);
    check_same_props(&c.props, &d.props);
    props_for_encode(&d.props, &s2);
    ENCODE(e2, n2, mqtt_encode_connack(enc_buf, enc_cap, version, &d));
    check_same_bytes(e1, n1, e2, n2);
    free(e1);
    free(e2);
    scratch_free(&s1);
    scratch_free(&s2);
}

static void check_publish(const mqtt_frame_t *f, uint8_t version)
{
    mqtt_publish_t p;
    const char *why = NULL;
    if (mqtt_decode_publish(f, version, &p, &why)) {
        CHECK(why != NULL);
        return;
    }
    CHECK(p.qos <= 2);
    CHECK(p.qos ? p.packet_id != 0 : (p.packet_id == 0 && !p.dup));
    check_inside(p.topic, f->body);
    check_inside(p.payload, f->body);
    check_props(&p.props, f->body);
    check_topic_name(p.topic);

    scratch_t s1, s2;
    props_for_encode(&p.props, &s1);
    uint8_t *e1, *e2;
    size_t n1, n2;
    ENCODE(e1, n1, mqtt_encode_publish(enc_buf, enc_cap, version, &p));
    CHECK(n1 <= f->size);
    if (p.props.present == 0)
        CHECK(mqtt_publish_size(version, &p) == n1);
    else
        CHECK(mqtt_publish_size(version, &p) < n1);
    mqtt_frame_t g = reframe(e1, n1, MQTT_PUBLISH);
    mqtt_publish_t d;
    CHECK(mqtt_decode_publish(&g, version, &d, NULL) == SEDGE_OK);
    CHECK(d.dup == p.dup && d.qos == p.qos && d.retain == p.retain);
    CHECK(d.packet_id == p.packet_id);
    CHECK(bytes_eq(d.topic, p.topic) && bytes_eq(d.payload, p.payload));
    check_same_props(&p.props, &d.props);
    props_for_encode(&d.props, &s2);
    ENCODE(e2, n2, mqtt_encode_publish(enc_buf, enc_cap, version, &d));
    check_same_bytes(e1, n1, e2, n2);
    free(e1);
    free(e2);
    scratch_free(&s1);
    scratch_free(&s2);
}

static void check_ack(const mqtt_frame_t *f, uint8_t version)
{
    mqtt_ack_t a;
    const char *why = NULL;
    if (mqtt_decode_ack(f, version, &a, &why)) {
        CHECK(why != NULL);
        return;
    }
    CHECK(a.packet_id != 0);
    if (version != MQTT_V5)
        CHECK(f->body.len == 2);
    check_props(&a.props, f->body);
    scratch_t s1, s2;
    props_for_encode(&a.props, &s1);
    uint8_t *e1, *e2;
    size_t n1, n2;
    ENCODE(e1, n1, mqtt_encode_ack(enc_buf, enc_cap, version, f->type, &a));
    CHECK(n1 <= f->size);
    mqtt_frame_t g = reframe(e1, n1, f->type);
    CHECK(g.flags == f->flags);
    mqtt_ack_t d;
    CHECK(mqtt_decode_ack(&g, version, &d, NULL) == SEDGE_OK);
    CHECK(d.packet_id == a.packet_id && d.reason == a.reason);
    check_same_props(&a.props, &d.props);
    props_for_encode(&d.props, &s2);
    ENCODE(e2, n2, mqtt_encode_ack(enc_buf, enc_cap, version, f->type, &d));
    check_same_bytes(e1, n1, e2, n2);
    free(e1);
    free(e2);
    scratch_free(&s1);
    scratch_free(&s2);
}

/* Walk the entries: exactly `count`, ending at the end, each inside. The
 * filters of the input (not of our own encodings, which are freed before
 * the end) go to the topic checks. */
static mqtt_sub_entry_t *collect_entries(const mqtt_subscribe_t *s, uint8_t type, uint8_t version,
                                         bool from_input)
{
    mqtt_sub_entry_t *entries = malloc((s->count + 1) * sizeof *entries);
    CHECK(entries);
    size_t cursor = 0, n = 0;
    mqtt_sub_entry_t e;
    while (mqtt_sub_entry_next(s, type, &cursor, &e)) {
        CHECK(n < s->count);
        check_inside(e.filter, s->entries);
        CHECK(mqtt_utf8_valid(e.filter.data, e.filter.len));
        CHECK(e.qos <= 2 && e.retain_handling <= 2);
        if (version != MQTT_V5 || type == MQTT_UNSUBSCRIBE)
            CHECK(!e.no_local && !e.retain_as_published && !e.retain_handling);
        if (type == MQTT_UNSUBSCRIBE)
            CHECK(e.qos == 0);
        if (from_input)
            check_topic_filter(e.filter);
        entries[n++] = e;
    }
    CHECK(n == s->count);
    CHECK(cursor == s->entries.len);
    return entries;
}

static void check_sub_list(const mqtt_frame_t *f, uint8_t version)
{
    mqtt_subscribe_t s;
    const char *why = NULL;
    sedge_err err = f->type == MQTT_SUBSCRIBE ? mqtt_decode_subscribe(f, version, &s, &why)
                                              : mqtt_decode_unsubscribe(f, version, &s, &why);
    if (err) {
        CHECK(why != NULL);
        return;
    }
    CHECK(s.packet_id != 0 && s.count > 0);
    check_inside(s.entries, f->body);
    check_props(&s.props, f->body);
    mqtt_sub_entry_t *entries = collect_entries(&s, f->type, version, true);

    scratch_t s1, s2;
    props_for_encode(&s.props, &s1);
    uint8_t *e1, *e2;
    size_t n1, n2;
    ENCODE(e1, n1,
           mqtt_encode_subscribe(enc_buf, enc_cap, version, f->type, s.packet_id, &s.props, entries,
                                 s.count));
    CHECK(n1 <= f->size);
    mqtt_frame_t g = reframe(e1, n1, f->type);
    mqtt_subscribe_t d;
    err = f->type == MQTT_SUBSCRIBE ? mqtt_decode_subscribe(&g, version, &d, NULL)
                                    : mqtt_decode_unsubscribe(&g, version, &d, NULL);
    CHECK(err == SEDGE_OK);
    CHECK(d.packet_id == s.packet_id && d.count == s.count);
    check_same_props(&s.props, &d.props);
    mqtt_sub_entry_t *again = collect_entries(&d, f->type, version, false);
    for (size_t i = 0; i < s.count; i++) {
        CHECK(bytes_eq(entries[i].filter, again[i].filter));
        CHECK(entries[i].qos == again[i].qos);
        CHECK(entries[i].no_local == again[i].no_local);
        CHECK(entries[i].retain_as_published == again[i].retain_as_published);
        CHECK(entries[i].retain_handling == again[i].retain_handling);
    }
    props_for_encode(&d.props, &s2);
    ENCODE(e2, n2,
           mqtt_encode_subscribe(enc_buf, enc_cap, version, f->type, d.packet_id, &d.props, again,
                                 d.count));
    check_same_bytes(e1, n1, e2, n2);
    free(entries);
    free(again);
    free(e1);
    free(e2);
    scratch_free(&s1);
    scratch_free(&s2);
}

static void check_suback(const mqtt_frame_t *f, uint8_t version)
{
    mqtt_suback_t s;
    const char *why = NULL;
    if (mqtt_decode_suback(f, version, &s, &why)) {
        CHECK(why != NULL);
        return;
    }
    check_inside(s.reasons, f->body);
    check_props(&s.props, f->body);
    for (size_t i = 0; i < s.reasons.len; i++)
        (void)mqtt_reason_name(s.reasons.data[i]);
    scratch_t s1, s2;
    props_for_encode(&s.props, &s1);
    uint8_t *e1, *e2;
    size_t n1, n2;
    ENCODE(e1, n1,
           mqtt_encode_suback(enc_buf, enc_cap, version, f->type, s.packet_id, &s.props,
                              s.reasons.data, s.reasons.len));
    CHECK(n1 <= f->size);
    mqtt_frame_t g = reframe(e1, n1, f->type);
    mqtt_suback_t d;
    CHECK(mqtt_decode_suback(&g, version, &d, NULL) == SEDGE_OK);
    CHECK(d.packet_id == s.packet_id && bytes_eq(d.reasons, s.reasons));
    check_same_props(&s.props, &d.props);
    props_for_encode(&d.props, &s2);
    ENCODE(e2, n2,
           mqtt_encode_suback(enc_buf, enc_cap, version, f->type, d.packet_id, &d.props,
                              d.reasons.data, d.reasons.len));
    check_same_bytes(e1, n1, e2, n2);
    free(e1);
    free(e2);
    scratch_free(&s1);
    scratch_free(&s2);
}

static size_t encode_reason_packet(uint8_t *out, size_t cap, uint8_t type, uint8_t version,
                                   const mqtt_reason_packet_t *r)
{
    return type == MQTT_AUTH ? mqtt_encode_auth(out, cap, r)
                             : mqtt_encode_disconnect(out, cap, version, r);
}

static sedge_err decode_reason_packet(const mqtt_frame_t *f, uint8_t version,
                                      mqtt_reason_packet_t *out, const char **why)
{
    return f->type == MQTT_AUTH ? mqtt_decode_auth(f, version, out, why)
                                : mqtt_decode_disconnect(f, version, out, why);
}

static void check_reason_packet(const mqtt_frame_t *f, uint8_t version)
{
    mqtt_reason_packet_t r;
    const char *why = NULL;
    if (decode_reason_packet(f, version, &r, &why)) {
        CHECK(why != NULL);
        return;
    }
    CHECK(version == MQTT_V5 || f->type == MQTT_DISCONNECT);
    if (version != MQTT_V5)
        CHECK(f->body.len == 0);
    check_props(&r.props, f->body);
    (void)mqtt_reason_name(r.reason);
    scratch_t s1, s2;
    props_for_encode(&r.props, &s1);
    uint8_t *e1, *e2;
    size_t n1, n2;
    ENCODE(e1, n1, encode_reason_packet(enc_buf, enc_cap, f->type, version, &r));
    CHECK(n1 <= f->size);
    mqtt_frame_t g = reframe(e1, n1, f->type);
    mqtt_reason_packet_t d;
    CHECK(decode_reason_packet(&g, version, &d, NULL) == SEDGE_OK);
    CHECK(d.reason == r.reason);
    check_same_props(&r.props, &d.props);
    props_for_encode(&d.props, &s2);
    ENCODE(e2, n2, encode_reason_packet(enc_buf, enc_cap, f->type, version, &d));
    check_same_bytes(e1, n1, e2, n2);
    free(e1);
    free(e2);
    scratch_free(&s1);
    scratch_free(&s2);
}

static void check_empty(const mqtt_frame_t *f)
{
    const char *why = NULL;
    if (mqtt_decode_empty(f, &why)) {
        CHECK(why != NULL && f->body.len > 0);
        return;
    }
    uint8_t out[2];
    CHECK(mqtt_encode_empty(out, sizeof out, f->type) == 2);
    CHECK(out[0] == (uint8_t)(f->type << 4) && out[1] == 0);
}

static void check_frame(const mqtt_frame_t *f, uint8_t version)
{
    switch (f->type) {
    case MQTT_CONNECT:
        if (version == MQTT_V5) /* the level is in the packet: once is enough */
            check_connect(f);
        break;
    case MQTT_CONNACK: check_connack(f, version); break;
    case MQTT_PUBLISH: check_publish(f, version); break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP: check_ack(f, version); break;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE: check_sub_list(f, version); break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK: check_suback(f, version); break;
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
        if (version == MQTT_V5)
            check_empty(f);
        break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH: check_reason_packet(f, version); break;
    default: CHECK(!"framed a reserved packet type");
    }
}

/* A packet cut short frames as "not yet": with no size while the fixed
 * header is incomplete, with the whole size after. */
static void check_partial_frames(const uint8_t *buf, const mqtt_frame_t *whole)
{
    size_t header = whole->size - whole->body.len;
    size_t cuts[] = {0, 1, header - 1, header, whole->size - 1};
    for (size_t i = 0; i < ARRAY_LEN(cuts); i++) {
        size_t n = cuts[i];
        if (n >= whole->size)
            continue;
        mqtt_frame_t f;
        CHECK(mqtt_frame_parse(buf, n, &f, NULL) == SEDGE_ERR_AGAIN);
        CHECK(f.size == (n >= header ? whole->size : 0));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    n_seen_names = n_seen_filters = 0;
    while (off < size) {
        mqtt_frame_t f;
        const char *why = NULL;
        sedge_err err = mqtt_frame_parse(data + off, size - off, &f, &why);
        if (err == SEDGE_ERR_AGAIN) {
            CHECK(f.size == 0 || f.size > size - off);
            CHECK(f.size <= MQTT_MAX_PACKET_SIZE);
            break;
        }
        if (err) {
            CHECK(err == SEDGE_ERR_MALFORMED && why != NULL);
            break;
        }
        CHECK(f.size >= 2 && f.size <= size - off);
        CHECK(f.type >= MQTT_CONNECT && f.type <= MQTT_AUTH);
        CHECK(f.body.data + f.body.len == data + off + f.size);
        (void)mqtt_packet_name(f.type);
        check_partial_frames(data + off, &f);
        check_frame(&f, MQTT_V311);
        check_frame(&f, MQTT_V5);
        off += f.size;
    }
    check_seen_topics();
    return 0;
}
