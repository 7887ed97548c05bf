/*
 * wire: reader and writer primitives, and MQTT 5 property blocks.
 *
 * Properties are table-driven: each identifier has a value type and the set
 * of packets it may appear in, so the decoder rejects misplaced and
 * duplicated properties in one place.
 */
#include "wire.h"

#include <string.h>

bool rd_u8(reader_t *r, uint8_t *v)
{
    if (reader_left(r) < 1)
        return false;
    *v = r->data[r->pos++];
    return true;
}

bool rd_u16(reader_t *r, uint16_t *v)
{
    if (reader_left(r) < 2)
        return false;
    *v = (uint16_t)(r->data[r->pos] << 8 | r->data[r->pos + 1]);
    r->pos += 2;
    return true;
}

bool rd_u32(reader_t *r, uint32_t *v)
{
    if (reader_left(r) < 4)
        return false;
    const uint8_t *p = r->data + r->pos;
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    r->pos += 4;
    return true;
}

bool rd_vbi(reader_t *r, uint32_t *v)
{
    uint32_t value = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t byte;
        if (!rd_u8(r, &byte))
            return false;
        value |= (uint32_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            *v = value;
            return true;
        }
    }
    return false;
}

bool rd_bytes(reader_t *r, size_t n, bytes_t *v)
{
    if (reader_left(r) < n)
        return false;
    *v = (bytes_t){r->data + r->pos, n};
    r->pos += n;
    return true;
}

bool rd_binary(reader_t *r, bytes_t *v)
{
    uint16_t n;
    return rd_u16(r, &n) && rd_bytes(r, n, v);
}

bool rd_string(reader_t *r, bytes_t *v, bool *bad_utf8)
{
    *bad_utf8 = false;
    if (!rd_binary(r, v))
        return false;
    if (!mqtt_utf8_valid(v->data, v->len)) {
        *bad_utf8 = true;
        return false;
    }
    return true;
}

void wr_u8(writer_t *w, uint8_t v)
{
    if (w->pos < w->cap)
        w->out[w->pos] = v;
    w->pos++;
}

void wr_u16(writer_t *w, uint16_t v)
{
    wr_u8(w, (uint8_t)(v >> 8));
    wr_u8(w, (uint8_t)v);
}

void wr_u32(writer_t *w, uint32_t v)
{
    wr_u16(w, (uint16_t)(v >> 16));
    wr_u16(w, (uint16_t)v);
}

void wr_vbi(writer_t *w, uint32_t v)
{
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        wr_u8(w, v ? byte | 0x80 : byte);
    } while (v);
}

size_t vbi_size(uint32_t v)
{
    return v < 128u ? 1 : v < 16384u ? 2 : v < 2097152u ? 3 : 4;
}

void wr_raw(writer_t *w, const uint8_t *data, size_t len)
{
    size_t room = w->pos < w->cap ? w->cap - w->pos : 0;
    size_t fit = len < room ? len : room;
    if (fit)
        memcpy(w->out + w->pos, data, fit);
    w->pos += len;
}

void wr_binary(writer_t *w, bytes_t v)
{
    wr_u16(w, (uint16_t)v.len);
    wr_raw(w, v.data, v.len);
}

/* Property value types. */
enum { T_BYTE, T_U16, T_U32, T_VBI, T_STRING, T_BINARY, T_PAIR };

#define C(x) (1u << (x))
typedef struct {
    uint8_t id;
    uint8_t type;
    uint16_t contexts;
} prop_info_t;

static const prop_info_t prop_table[] = {
    {MQTT_PROP_PAYLOAD_FORMAT, T_BYTE, C(PROPS_PUBLISH) | C(PROPS_WILL)},
    {MQTT_PROP_MESSAGE_EXPIRY, T_U32, C(PROPS_PUBLISH) | C(PROPS_WILL)},
    {MQTT_PROP_CONTENT_TYPE, T_STRING, C(PROPS_PUBLISH) | C(PROPS_WILL)},
    {MQTT_PROP_RESPONSE_TOPIC, T_STRING, C(PROPS_PUBLISH) | C(PROPS_WILL)},
    {MQTT_PROP_CORRELATION_DATA, T_BINARY, C(PROPS_PUBLISH) | C(PROPS_WILL)},
    {MQTT_PROP_SUBSCRIPTION_ID, T_VBI, C(PROPS_PUBLISH) | C(PROPS_SUBSCRIBE)},
    {MQTT_PROP_SESSION_EXPIRY, T_U32, C(PROPS_CONNECT) | C(PROPS_CONNACK) | C(PROPS_DISCONNECT)},
    {MQTT_PROP_ASSIGNED_CLIENT_ID, T_STRING, C(PROPS_CONNACK)},
    {MQTT_PROP_SERVER_KEEP_ALIVE, T_U16, C(PROPS_CONNACK)},
    {MQTT_PROP_AUTH_METHOD, T_STRING, C(PROPS_CONNECT) | C(PROPS_CONNACK) | C(PROPS_AUTH)},
    {MQTT_PROP_AUTH_DATA, T_BINARY, C(PROPS_CONNECT) | C(PROPS_CONNACK) | C(PROPS_AUTH)},
    {MQTT_PROP_REQUEST_PROBLEM_INFO, T_BYTE, C(PROPS_CONNECT)},
    {MQTT_PROP_WILL_DELAY, T_U32, C(PROPS_WILL)},
    {MQTT_PROP_REQUEST_RESPONSE_INFO, T_BYTE, C(PROPS_CONNECT)},
    {MQTT_PROP_RESPONSE_INFO, T_STRING, C(PROPS_CONNACK)},
    {MQTT_PROP_SERVER_REFERENCE, T_STRING, C(PROPS_CONNACK) | C(PROPS_DISCONNECT)},
    {MQTT_PROP_REASON_STRING, T_STRING,
     C(PROPS_CONNACK) | C(PROPS_ACK) | C(PROPS_SUBACK) | C(PROPS_UNSUBACK) | C(PROPS_DISCONNECT) |
         C(PROPS_AUTH)},
    {MQTT_PROP_RECEIVE_MAXIMUM, T_U16, C(PROPS_CONNECT) | C(PROPS_CONNACK)},
    {MQTT_PROP_TOPIC_ALIAS_MAXIMUM, T_U16, C(PROPS_CONNECT) | C(PROPS_CONNACK)},
    {MQTT_PROP_TOPIC_ALIAS, T_U16, C(PROPS_PUBLISH)},
    {MQTT_PROP_MAXIMUM_QOS, T_BYTE, C(PROPS_CONNACK)},
    {MQTT_PROP_RETAIN_AVAILABLE, T_BYTE, C(PROPS_CONNACK)},
    {MQTT_PROP_USER_PROPERTY, T_PAIR, 0xffff},
    {MQTT_PROP_MAXIMUM_PACKET_SIZE, T_U32, C(PROPS_CONNECT) | C(PROPS_CONNACK)},
    {MQTT_PROP_WILDCARD_SUB_AVAILABLE, T_BYTE, C(PROPS_CONNACK)},
    {MQTT_PROP_SUB_ID_AVAILABLE, T_BYTE, C(PROPS_CONNACK)},
    {MQTT_PROP_SHARED_SUB_AVAILABLE, T_BYTE, C(PROPS_CONNACK)},
};

static const prop_info_t *prop_lookup(uint32_t id)
{
    for (size_t i = 0; i < ARRAY_LEN(prop_table); i++)
        if (prop_table[i].id == id)
            return &prop_table[i];
    return NULL;
}

/* Where each property's value lives in mqtt_props_t. */
static uint8_t *byte_field(mqtt_props_t *p, uint8_t id)
{
    switch (id) {
    case MQTT_PROP_PAYLOAD_FORMAT: return &p->payload_format;
    case MQTT_PROP_REQUEST_PROBLEM_INFO: return &p->request_problem_info;
    case MQTT_PROP_REQUEST_RESPONSE_INFO: return &p->request_response_info;
    case MQTT_PROP_MAXIMUM_QOS: return &p->maximum_qos;
    case MQTT_PROP_RETAIN_AVAILABLE: return &p->retain_available;
    case MQTT_PROP_WILDCARD_SUB_AVAILABLE: return &p->wildcard_sub_available;
    case MQTT_PROP_SUB_ID_AVAILABLE: return &p->sub_id_available;
    case MQTT_PROP_SHARED_SUB_AVAILABLE: return &p->shared_sub_available;
    }
    return NULL;
}

static uint16_t *u16_field(mqtt_props_t *p, uint8_t id)
{
    switch (id) {
    case MQTT_PROP_SERVER_KEEP_ALIVE: return &p->server_keep_alive;
    case MQTT_PROP_RECEIVE_MAXIMUM: return &p->receive_maximum;
    case MQTT_PROP_TOPIC_ALIAS_MAXIMUM: return &p->topic_alias_maximum;
    case MQTT_PROP_TOPIC_ALIAS: return &p->topic_alias;
    }
    return NULL;
}

static uint32_t *u32_field(mqtt_props_t *p, uint8_t id)
{
    switch (id) {
    case MQTT_PROP_MESSAGE_EXPIRY: return &p->message_expiry;
    case MQTT_PROP_SESSION_EXPIRY: return &p->session_expiry;
    case MQTT_PROP_WILL_DELAY: return &p->will_delay;
    case MQTT_PROP_MAXIMUM_PACKET_SIZE: return &p->maximum_packet_size;
    case MQTT_PROP_SUBSCRIPTION_ID: return &p->sub_id;
    }
    return NULL;
}

static bytes_t *bytes_field(mqtt_props_t *p, uint8_t id)
{
    switch (id) {
    case MQTT_PROP_CONTENT_TYPE: return &p->content_type;
    case MQTT_PROP_RESPONSE_TOPIC: return &p->response_topic;
    case MQTT_PROP_CORRELATION_DATA: return &p->correlation_data;
    case MQTT_PROP_ASSIGNED_CLIENT_ID: return &p->assigned_client_id;
    case MQTT_PROP_AUTH_METHOD: return &p->auth_method;
    case MQTT_PROP_AUTH_DATA: return &p->auth_data;
    case MQTT_PROP_RESPONSE_INFO: return &p->response_info;
    case MQTT_PROP_SERVER_REFERENCE: return &p->server_reference;
    case MQTT_PROP_REASON_STRING: return &p->reason_string;
    }
    return NULL;
}

/* Values the specification constrains beyond their type. */
static sedge_err prop_value_check(uint8_t id, uint32_t v, const char **why)
{
    switch (id) {
    case MQTT_PROP_PAYLOAD_FORMAT:
    case MQTT_PROP_REQUEST_PROBLEM_INFO:
    case MQTT_PROP_REQUEST_RESPONSE_INFO:
    case MQTT_PROP_MAXIMUM_QOS:
    case MQTT_PROP_RETAIN_AVAILABLE:
    case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
    case MQTT_PROP_SUB_ID_AVAILABLE:
    case MQTT_PROP_SHARED_SUB_AVAILABLE:
        return v <= 1 ? SEDGE_OK : fail(why, SEDGE_ERR_PROTOCOL, "property value out of range");
    case MQTT_PROP_RECEIVE_MAXIMUM:
        return v ? SEDGE_OK : fail(why, SEDGE_ERR_PROTOCOL, "receive maximum of 0");
    case MQTT_PROP_MAXIMUM_PACKET_SIZE:
        return v ? SEDGE_OK : fail(why, SEDGE_ERR_PROTOCOL, "maximum packet size of 0");
    case MQTT_PROP_SUBSCRIPTION_ID:
        return v ? SEDGE_OK : fail(why, SEDGE_ERR_PROTOCOL, "subscription identifier of 0");
    }
    return SEDGE_OK;
}

sedge_err props_read(reader_t *r, props_context_t ctx, mqtt_props_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    uint32_t block_len;
    if (!rd_vbi(r, &block_len))
        return fail(why, SEDGE_ERR_MALFORMED, "bad property length");
    bytes_t block;
    if (!rd_bytes(r, block_len, &block))
        return fail(why, SEDGE_ERR_MALFORMED, "property length past the packet");
    out->raw = block;
    reader_t pr = reader_of(block);
    while (reader_left(&pr)) {
        uint32_t id;
        if (!rd_vbi(&pr, &id))
            return fail(why, SEDGE_ERR_MALFORMED, "bad property identifier");
        const prop_info_t *info = prop_lookup(id);
        if (!info)
            return fail(why, SEDGE_ERR_MALFORMED, "unknown property");
        /* MQTT 5.0 2.2.2.2: an identifier not valid for the packet type is
         * a Malformed Packet, not a Protocol Error. */
        if (!(info->contexts & C(ctx)))
            return fail(why, SEDGE_ERR_MALFORMED, "property not allowed in this packet");
        bool repeatable = id == MQTT_PROP_USER_PROPERTY ||
                          (id == MQTT_PROP_SUBSCRIPTION_ID && ctx == PROPS_PUBLISH);
        if (mqtt_props_has(out, (int)id) && !repeatable)
            return fail(why, SEDGE_ERR_PROTOCOL, "property appears twice");
        uint32_t v = 0;
        bool ok = true, bad_utf8 = false;
        bytes_t b, k;
        switch (info->type) {
        case T_BYTE: {
            uint8_t x = 0;
            ok = rd_u8(&pr, &x);
            v = x;
            if (ok)
                *byte_field(out, info->id) = x;
            break;
        }
        case T_U16: {
            uint16_t x = 0;
            ok = rd_u16(&pr, &x);
            v = x;
            if (ok)
                *u16_field(out, info->id) = x;
            break;
        }
        case T_U32:
            ok = rd_u32(&pr, &v);
            if (ok)
                *u32_field(out, info->id) = v;
            break;
        case T_VBI:
            ok = rd_vbi(&pr, &v);
            if (ok) {
                if (out->sub_id_count++ == 0)
                    out->sub_id = v;
            }
            break;
        case T_STRING:
            ok = rd_string(&pr, &b, &bad_utf8);
            if (ok)
                *bytes_field(out, info->id) = b;
            break;
        case T_BINARY:
            ok = rd_binary(&pr, &b);
            if (ok)
                *bytes_field(out, info->id) = b;
            break;
        case T_PAIR:
            ok = rd_string(&pr, &k, &bad_utf8) && rd_string(&pr, &b, &bad_utf8);
            if (ok)
                out->user_prop_count++;
            break;
        }
        if (!ok)
            return fail(why, SEDGE_ERR_MALFORMED,
                        bad_utf8 ? "invalid UTF-8 in a property" : "truncated property");
        sedge_err err = prop_value_check(info->id, v, why);
        if (err)
            return err;
        mqtt_props_set(out, (int)id);
    }
    return SEDGE_OK;
}

static void props_write_body(writer_t *w, const mqtt_props_t *p)
{
    for (size_t i = 0; i < ARRAY_LEN(prop_table); i++) {
        const prop_info_t *info = &prop_table[i];
        if (info->id == MQTT_PROP_USER_PROPERTY || info->id == MQTT_PROP_SUBSCRIPTION_ID)
            continue;
        if (!mqtt_props_has(p, info->id))
            continue;
        mqtt_props_t *mp = (mqtt_props_t *)p; /* the field lookups do not write */
        wr_u8(w, info->id);
        switch (info->type) {
        case T_BYTE: wr_u8(w, *byte_field(mp, info->id)); break;
        case T_U16: wr_u16(w, *u16_field(mp, info->id)); break;
        case T_U32: wr_u32(w, *u32_field(mp, info->id)); break;
        case T_STRING:
        case T_BINARY: wr_binary(w, *bytes_field(mp, info->id)); break;
        }
    }
    if (p->sub_ids) {
        for (size_t i = 0; i < p->sub_id_count; i++) {
            wr_u8(w, MQTT_PROP_SUBSCRIPTION_ID);
            wr_vbi(w, p->sub_ids[i]);
        }
    } else if (mqtt_props_has(p, MQTT_PROP_SUBSCRIPTION_ID)) {
        wr_u8(w, MQTT_PROP_SUBSCRIPTION_ID);
        wr_vbi(w, p->sub_id);
    }
    wr_raw(w, p->user_props.data, p->user_props.len);
}

size_t props_body_size(const mqtt_props_t *p)
{
    if (!p)
        return 0;
    writer_t w = writer_of(NULL, 0);
    props_write_body(&w, p);
    return w.pos;
}

void props_write(writer_t *w, const mqtt_props_t *p)
{
    size_t n = props_body_size(p);
    wr_vbi(w, (uint32_t)n);
    if (p)
        props_write_body(w, p);
}

size_t props_size(const mqtt_props_t *p)
{
    size_t n = props_body_size(p);
    return vbi_size((uint32_t)n) + n;
}

bool mqtt_user_prop_next(bytes_t block, size_t *cursor, bytes_t *key, bytes_t *value)
{
    reader_t r = reader_of(block);
    r.pos = *cursor;
    while (reader_left(&r)) {
        uint32_t id;
        if (!rd_vbi(&r, &id))
            return false;
        const prop_info_t *info = prop_lookup(id);
        if (!info)
            return false;
        bytes_t b;
        bool ok = true;
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        switch (info->type) {
        case T_BYTE: ok = rd_u8(&r, &u8); break;
        case T_U16: ok = rd_u16(&r, &u16); break;
        case T_U32: ok = rd_u32(&r, &u32); break;
        case T_VBI: ok = rd_vbi(&r, &u32); break;
        case T_STRING:
        case T_BINARY: ok = rd_binary(&r, &b); break;
        case T_PAIR:
            if (!rd_binary(&r, key) || !rd_binary(&r, value))
                return false;
            *cursor = r.pos;
            return true;
        }
        if (!ok)
            return false;
    }
    *cursor = r.pos;
    return false;
}

size_t mqtt_props_encode(uint8_t *out, size_t cap, const mqtt_props_t *p)
{
    writer_t w = writer_of(out, cap);
    props_write_body(&w, p);
    return w.pos;
}

size_t mqtt_user_prop_encode(uint8_t *out, size_t cap, bytes_t key, bytes_t value)
{
    writer_t w = writer_of(out, cap);
    wr_u8(&w, MQTT_PROP_USER_PROPERTY);
    wr_binary(&w, key);
    wr_binary(&w, value);
    return w.pos;
}

size_t mqtt_props_copy_user(const mqtt_props_t *p, uint8_t *out, size_t cap)
{
    if (p->user_props.len) {
        writer_t w = writer_of(out, cap);
        wr_raw(&w, p->user_props.data, p->user_props.len);
        return w.pos;
    }
    size_t cursor = 0, total = 0;
    bytes_t k, v;
    while (mqtt_user_prop_next(p->raw, &cursor, &k, &v)) {
        size_t room = total < cap ? cap - total : 0;
        total += mqtt_user_prop_encode(out ? out + (total < cap ? total : cap) : NULL, room, k, v);
    }
    return total;
}
