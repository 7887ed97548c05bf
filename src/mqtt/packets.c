/*
 * packets: framing, and the decoder and encoder of each MQTT packet, in the
 * order of the specification's chapter 3.
 */
#include "wire.h"

#include <string.h>

const char *mqtt_packet_name(uint8_t type)
{
    static const char *const names[] = {"RESERVED",  "CONNECT",  "CONNACK",     "PUBLISH",
                                        "PUBACK",    "PUBREC",   "PUBREL",      "PUBCOMP",
                                        "SUBSCRIBE", "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
                                        "PINGREQ",   "PINGRESP", "DISCONNECT",  "AUTH"};
    return type < ARRAY_LEN(names) ? names[type] : "UNKNOWN";
}

sedge_err mqtt_frame_parse(const uint8_t *buf, size_t len, mqtt_frame_t *out, const char **why)
{
    out->size = 0;
    if (len < 2)
        return SEDGE_ERR_AGAIN;
    uint8_t type = buf[0] >> 4, flags = buf[0] & 0x0f;
    uint32_t remaining = 0;
    size_t i = 1;
    for (;; i++) {
        if (i > 4)
            return fail(why, SEDGE_ERR_MALFORMED, "remaining length longer than four bytes");
        if (i >= len)
            return SEDGE_ERR_AGAIN;
        remaining |= (uint32_t)(buf[i] & 0x7f) << (7 * (i - 1));
        if (!(buf[i] & 0x80))
            break;
    }
    size_t header = i + 1;
    out->type = type;
    out->flags = flags;
    out->size = header + remaining;
    if (type == 0)
        return fail(why, SEDGE_ERR_MALFORMED, "reserved packet type 0");
    if (type == MQTT_PUBLISH) {
        if (((flags >> 1) & 3) == 3)
            return fail(why, SEDGE_ERR_MALFORMED, "PUBLISH with QoS 3");
    } else {
        uint8_t expected =
            (type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE) ? 2 : 0;
        if (flags != expected)
            return fail(why, SEDGE_ERR_MALFORMED, "reserved fixed-header flags set");
    }
    if (len < out->size)
        return SEDGE_ERR_AGAIN;
    out->body = (bytes_t){buf + header, remaining};
    return SEDGE_OK;
}

/* The fixed header, then `body_size` bytes the caller writes. */
static void wr_fixed(writer_t *w, uint8_t type, uint8_t flags, size_t body_size)
{
    wr_u8(w, (uint8_t)(type << 4 | flags));
    wr_vbi(w, (uint32_t)body_size);
}

static sedge_err must_end(const reader_t *r, const char **why)
{
    return reader_left(r) ? fail(why, SEDGE_ERR_MALFORMED, "bytes after the end of the packet")
                          : SEDGE_OK;
}

static sedge_err read_string(reader_t *r, bytes_t *v, const char **why, const char *what)
{
    bool bad_utf8;
    if (rd_string(r, v, &bad_utf8))
        return SEDGE_OK;
    return fail(why, SEDGE_ERR_MALFORMED, bad_utf8 ? "invalid UTF-8" : what);
}

/* CONNECT */

sedge_err mqtt_decode_connect(const mqtt_frame_t *f, mqtt_connect_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    reader_t r = reader_of(f->body);
    bytes_t name;
    uint8_t level, flags;
    if (!rd_binary(&r, &name) || !rd_u8(&r, &level))
        return fail(why, SEDGE_ERR_MALFORMED, "truncated CONNECT header");
    out->version = level;
    if (bytes_eq_cstr(name, "MQIsdp") && level == MQTT_V31)
        return fail(why, SEDGE_ERR_UNSUPPORTED, "MQTT 3.1 is not supported");
    if (!bytes_eq_cstr(name, "MQTT"))
        return fail(why, SEDGE_ERR_MALFORMED, "protocol name is not MQTT");
    if (level != MQTT_V311 && level != MQTT_V5)
        return fail(why, SEDGE_ERR_UNSUPPORTED, "unsupported protocol level");
    if (!rd_u8(&r, &flags) || !rd_u16(&r, &out->keep_alive))
        return fail(why, SEDGE_ERR_MALFORMED, "truncated CONNECT header");
    if (flags & 0x01)
        return fail(why, SEDGE_ERR_MALFORMED, "reserved CONNECT flag set");
    out->clean_start = flags & 0x02;
    out->will = flags & 0x04;
    out->will_qos = (flags >> 3) & 3;
    out->will_retain = flags & 0x20;
    out->has_password = flags & 0x40;
    out->has_username = flags & 0x80;
    if (!out->will && (out->will_qos || out->will_retain))
        return fail(why, SEDGE_ERR_MALFORMED, "will QoS or retain without a will");
    if (out->will_qos == 3)
        return fail(why, SEDGE_ERR_MALFORMED, "will QoS 3");
    if (level == MQTT_V311 && out->has_password && !out->has_username)
        return fail(why, SEDGE_ERR_MALFORMED, "password without user name");
    sedge_err err;
    if (level == MQTT_V5 && (err = props_read(&r, PROPS_CONNECT, &out->props, why)))
        return err;
    if ((err = read_string(&r, &out->client_id, why, "truncated client identifier")))
        return err;
    if (out->will) {
        if (level == MQTT_V5 && (err = props_read(&r, PROPS_WILL, &out->will_props, why)))
            return err;
        if ((err = read_string(&r, &out->will_topic, why, "truncated will topic")))
            return err;
        if (!rd_binary(&r, &out->will_payload))
            return fail(why, SEDGE_ERR_MALFORMED, "truncated will payload");
    }
    if (out->has_username && (err = read_string(&r, &out->username, why, "truncated user name")))
        return err;
    if (out->has_password && !rd_binary(&r, &out->password))
        return fail(why, SEDGE_ERR_MALFORMED, "truncated password");
    return must_end(&r, why);
}

static void connect_body(writer_t *w, const mqtt_connect_t *c)
{
    wr_binary(w, BYTES_LIT("MQTT"));
    wr_u8(w, c->version);
    uint8_t flags =
        (uint8_t)((c->clean_start ? 0x02 : 0) | (c->will ? 0x04 : 0) |
                  (c->will ? (c->will_qos & 3) << 3 : 0) | (c->will && c->will_retain ? 0x20 : 0) |
                  (c->has_password ? 0x40 : 0) | (c->has_username ? 0x80 : 0));
    wr_u8(w, flags);
    wr_u16(w, c->keep_alive);
    if (c->version == MQTT_V5)
        props_write(w, &c->props);
    wr_binary(w, c->client_id);
    if (c->will) {
        if (c->version == MQTT_V5)
            props_write(w, &c->will_props);
        wr_binary(w, c->will_topic);
        wr_binary(w, c->will_payload);
    }
    if (c->has_username)
        wr_binary(w, c->username);
    if (c->has_password)
        wr_binary(w, c->password);
}

size_t mqtt_encode_connect(uint8_t *out, size_t cap, const mqtt_connect_t *c)
{
    writer_t size = writer_of(NULL, 0);
    connect_body(&size, c);
    writer_t w = writer_of(out, cap);
    wr_fixed(&w, MQTT_CONNECT, 0, size.pos);
    connect_body(&w, c);
    return w.pos;
}

/* CONNACK */

sedge_err mqtt_decode_connack(const mqtt_frame_t *f, uint8_t version, mqtt_connack_t *out,
                              const char **why)
{
    memset(out, 0, sizeof *out);
    reader_t r = reader_of(f->body);
    uint8_t ack_flags;
    if (!rd_u8(&r, &ack_flags) || !rd_u8(&r, &out->reason))
        return fail(why, SEDGE_ERR_MALFORMED, "truncated CONNACK");
    if (ack_flags & 0xfe)
        return fail(why, SEDGE_ERR_MALFORMED, "reserved CONNACK flags set");
    out->session_present = ack_flags & 1;
    sedge_err err;
    if (version == MQTT_V5 && (err = props_read(&r, PROPS_CONNACK, &out->props, why)))
        return err;
    return must_end(&r, why);
}

size_t mqtt_encode_connack(uint8_t *out, size_t cap, uint8_t version, const mqtt_connack_t *c)
{
    size_t body = 2 + (version == MQTT_V5 ? props_size(&c->props) : 0);
    writer_t w = writer_of(out, cap);
    wr_fixed(&w, MQTT_CONNACK, 0, body);
    wr_u8(&w, c->session_present ? 1 : 0);
    wr_u8(&w, c->reason);
    if (version == MQTT_V5)
        props_write(&w, &c->props);
    return w.pos;
}

/* PUBLISH */

sedge_err mqtt_decode_publish(const mqtt_frame_t *f, uint8_t version, mqtt_publish_t *out,
                              const char **why)
{
    out->dup = f->flags & 0x08;
    out->qos = (f->flags >> 1) & 3;
    out->retain = f->flags & 0x01;
    out->packet_id = 0;
    reader_t r = reader_of(f->body);
    sedge_err err = read_string(&r, &out->topic, why, "truncated topic");
    if (err)
        return err;
    if (out->qos > 0) {
        if (!rd_u16(&r, &out->packet_id))
            return fail(why, SEDGE_ERR_MALFORMED, "truncated packet identifier");
        if (out->packet_id == 0)
            return fail(why, SEDGE_ERR_PROTOCOL, "packet identifier 0");
    } else if (out->dup) {
        return fail(why, SEDGE_ERR_PROTOCOL, "DUP set on a QoS 0 PUBLISH");
    }
    if (version == MQTT_V5) {
        if ((err = props_read(&r, PROPS_PUBLISH, &out->props, why)))
            return err;
    } else {
        memset(&out->props, 0, sizeof out->props);
    }
    out->payload = (bytes_t){r.data + r.pos, reader_left(&r)};
    return SEDGE_OK;
}

static size_t publish_body_size(uint8_t version, const mqtt_publish_t *p, bool with_props)
{
    size_t n = 2 + p->topic.len + (p->qos ? 2 : 0) + p->payload.len;
    if (version == MQTT_V5)
        n += with_props ? props_size(&p->props) : 1;
    return n;
}

size_t mqtt_publish_size(uint8_t version, const mqtt_publish_t *p)
{
    size_t body = publish_body_size(version, p, false);
    return 1 + vbi_size((uint32_t)body) + body;
}

static void write_publish_head(writer_t *w, uint8_t version, const mqtt_publish_t *p)
{
    size_t body = publish_body_size(version, p, true);
    uint8_t flags = (uint8_t)((p->dup ? 0x08 : 0) | (p->qos & 3) << 1 | (p->retain ? 1 : 0));
    wr_fixed(w, MQTT_PUBLISH, flags, body);
    wr_binary(w, p->topic);
    if (p->qos)
        wr_u16(w, p->packet_id);
    if (version == MQTT_V5)
        props_write(w, &p->props);
}

size_t mqtt_encode_publish(uint8_t *out, size_t cap, uint8_t version, const mqtt_publish_t *p)
{
    writer_t w = writer_of(out, cap);
    write_publish_head(&w, version, p);
    wr_raw(&w, p->payload.data, p->payload.len);
    return w.pos;
}

size_t mqtt_encode_publish_head(uint8_t *out, size_t cap, uint8_t version, const mqtt_publish_t *p)
{
    writer_t w = writer_of(out, cap);
    write_publish_head(&w, version, p);
    return w.pos;
}

/* What ends a v5 acknowledgement, DISCONNECT or AUTH: a reason code and
 * properties, each optional when nothing follows (0x00, none). */
static sedge_err read_reason_props(reader_t *r, props_context_t ctx, uint8_t *reason,
                                   mqtt_props_t *props, const char **why)
{
    if (reader_left(r) == 0)
        return SEDGE_OK;
    rd_u8(r, reason);
    if (reader_left(r) == 0)
        return SEDGE_OK;
    sedge_err err = props_read(r, ctx, props, why);
    if (err)
        return err;
    return must_end(r, why);
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP */

sedge_err mqtt_decode_ack(const mqtt_frame_t *f, uint8_t version, mqtt_ack_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    reader_t r = reader_of(f->body);
    if (!rd_u16(&r, &out->packet_id))
        return fail(why, SEDGE_ERR_MALFORMED, "truncated packet identifier");
    if (out->packet_id == 0)
        return fail(why, SEDGE_ERR_PROTOCOL, "packet identifier 0");
    if (version != MQTT_V5)
        return must_end(&r, why);
    return read_reason_props(&r, PROPS_ACK, &out->reason, &out->props, why);
}

size_t mqtt_encode_ack(uint8_t *out, size_t cap, uint8_t version, uint8_t type, const mqtt_ack_t *a)
{
    bool with_props = version == MQTT_V5 && (a->props.present != 0 || a->props.user_props.len != 0);
    bool with_reason = version == MQTT_V5 && (a->reason || with_props);
    size_t body = 2 + (with_reason ? 1 : 0) + (with_props ? props_size(&a->props) : 0);
    writer_t w = writer_of(out, cap);
    wr_fixed(&w, type, type == MQTT_PUBREL ? 2 : 0, body);
    wr_u16(&w, a->packet_id);
    if (with_reason)
        wr_u8(&w, a->reason);
    if (with_props)
        props_write(&w, &a->props);
    return w.pos;
}

/* SUBSCRIBE and UNSUBSCRIBE */

static sedge_err decode_sub_list(const mqtt_frame_t *f, uint8_t version, uint8_t type,
                                 mqtt_subscribe_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    reader_t r = reader_of(f->body);
    if (!rd_u16(&r, &out->packet_id))
        return fail(why, SEDGE_ERR_MALFORMED, "truncated packet identifier");
    if (out->packet_id == 0)
        return fail(why, SEDGE_ERR_PROTOCOL, "packet identifier 0");
    sedge_err err;
    props_context_t ctx = type == MQTT_SUBSCRIBE ? PROPS_SUBSCRIBE : PROPS_UNSUBSCRIBE;
    if (version == MQTT_V5 && (err = props_read(&r, ctx, &out->props, why)))
        return err;
    out->entries = (bytes_t){r.data + r.pos, reader_left(&r)};
    while (reader_left(&r)) {
        bytes_t filter;
        if ((err = read_string(&r, &filter, why, "truncated topic filter")))
            return err;
        if (type == MQTT_SUBSCRIBE) {
            uint8_t opts;
            if (!rd_u8(&r, &opts))
                return fail(why, SEDGE_ERR_MALFORMED, "missing subscription options");
            uint8_t reserved = version == MQTT_V5 ? 0xc0 : 0xfc;
            if (opts & reserved)
                return fail(why, SEDGE_ERR_MALFORMED, "reserved subscription option bits set");
            /* Malformed in 3.1.1 [MQTT-3.8.3-4], a Protocol Error in 5.0
             * (3.8.3.1). */
            sedge_err bad = version == MQTT_V5 ? SEDGE_ERR_PROTOCOL : SEDGE_ERR_MALFORMED;
            if ((opts & 3) == 3)
                return fail(why, bad, "subscription QoS 3");
            if (((opts >> 4) & 3) == 3)
                return fail(why, bad, "retain handling 3");
        }
        out->count++;
    }
    if (out->count == 0)
        return fail(why, SEDGE_ERR_PROTOCOL, "no topic filters");
    return SEDGE_OK;
}

sedge_err mqtt_decode_subscribe(const mqtt_frame_t *f, uint8_t version, mqtt_subscribe_t *out,
                                const char **why)
{
    return decode_sub_list(f, version, MQTT_SUBSCRIBE, out, why);
}

sedge_err mqtt_decode_unsubscribe(const mqtt_frame_t *f, uint8_t version, mqtt_subscribe_t *out,
                                  const char **why)
{
    return decode_sub_list(f, version, MQTT_UNSUBSCRIBE, out, why);
}

bool mqtt_sub_entry_next(const mqtt_subscribe_t *s, uint8_t type, size_t *cursor,
                         mqtt_sub_entry_t *out)
{
    reader_t r = reader_of(s->entries);
    r.pos = *cursor;
    memset(out, 0, sizeof *out);
    if (!rd_binary(&r, &out->filter))
        return false;
    if (type == MQTT_SUBSCRIBE) {
        uint8_t opts;
        if (!rd_u8(&r, &opts))
            return false;
        out->qos = opts & 3;
        out->no_local = opts & 0x04;
        out->retain_as_published = opts & 0x08;
        out->retain_handling = (opts >> 4) & 3;
    }
    *cursor = r.pos;
    return true;
}

static void sub_list_body(writer_t *w, uint8_t version, uint8_t type, uint16_t packet_id,
                          const mqtt_props_t *props, const mqtt_sub_entry_t *entries, size_t count)
{
    wr_u16(w, packet_id);
    if (version == MQTT_V5)
        props_write(w, props);
    for (size_t i = 0; i < count; i++) {
        wr_binary(w, entries[i].filter);
        if (type == MQTT_SUBSCRIBE) {
            const mqtt_sub_entry_t *e = &entries[i];
            uint8_t opts = e->qos & 3;
            if (version == MQTT_V5)
                opts |= (uint8_t)((e->no_local ? 0x04 : 0) | (e->retain_as_published ? 0x08 : 0) |
                                  (e->retain_handling & 3) << 4);
            wr_u8(w, opts);
        }
    }
}

size_t mqtt_encode_subscribe(uint8_t *out, size_t cap, uint8_t version, uint8_t type,
                             uint16_t packet_id, const mqtt_props_t *props,
                             const mqtt_sub_entry_t *entries, size_t count)
{
    writer_t size = writer_of(NULL, 0);
    sub_list_body(&size, version, type, packet_id, props, entries, count);
    writer_t w = writer_of(out, cap);
    wr_fixed(&w, type, 2, size.pos);
    sub_list_body(&w, version, type, packet_id, props, entries, count);
    return w.pos;
}

/* SUBACK and UNSUBACK */

sedge_err mqtt_decode_suback(const mqtt_frame_t *f, uint8_t version, mqtt_suback_t *out,
                             const char **why)
{
    memset(out, 0, sizeof *out);
    reader_t r = reader_of(f->body);
    if (!rd_u16(&r, &out->packet_id))
        return fail(why, SEDGE_ERR_MALFORMED, "truncated packet identifier");
    sedge_err err;
    props_context_t ctx = f->type == MQTT_SUBACK ? PROPS_SUBACK : PROPS_UNSUBACK;
    if (version == MQTT_V5 && (err = props_read(&r, ctx, &out->props, why)))
        return err;
    out->reasons = (bytes_t){r.data + r.pos, reader_left(&r)};
    bool has_reasons = f->type == MQTT_SUBACK || version == MQTT_V5;
    if (has_reasons && out->reasons.len == 0)
        return fail(why, SEDGE_ERR_PROTOCOL, "no reason codes");
    if (!has_reasons && out->reasons.len)
        return fail(why, SEDGE_ERR_MALFORMED, "bytes after the end of the packet");
    return SEDGE_OK;
}

size_t mqtt_encode_suback(uint8_t *out, size_t cap, uint8_t version, uint8_t type,
                          uint16_t packet_id, const mqtt_props_t *props, const uint8_t *reasons,
                          size_t count)
{
    bool has_reasons = type == MQTT_SUBACK || version == MQTT_V5;
    size_t body = 2 + (version == MQTT_V5 ? props_size(props) : 0) + (has_reasons ? count : 0);
    writer_t w = writer_of(out, cap);
    wr_fixed(&w, type, 0, body);
    wr_u16(&w, packet_id);
    if (version == MQTT_V5)
        props_write(&w, props);
    if (has_reasons)
        wr_raw(&w, reasons, count);
    return w.pos;
}

/* DISCONNECT and AUTH */

static sedge_err decode_reason_packet(const mqtt_frame_t *f, props_context_t ctx,
                                      mqtt_reason_packet_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    reader_t r = reader_of(f->body);
    return read_reason_props(&r, ctx, &out->reason, &out->props, why);
}

sedge_err mqtt_decode_disconnect(const mqtt_frame_t *f, uint8_t version, mqtt_reason_packet_t *out,
                                 const char **why)
{
    if (version != MQTT_V5) {
        memset(out, 0, sizeof *out);
        return f->body.len ? fail(why, SEDGE_ERR_MALFORMED, "DISCONNECT with a body") : SEDGE_OK;
    }
    return decode_reason_packet(f, PROPS_DISCONNECT, out, why);
}

sedge_err mqtt_decode_auth(const mqtt_frame_t *f, uint8_t version, mqtt_reason_packet_t *out,
                           const char **why)
{
    if (version != MQTT_V5)
        return fail(why, SEDGE_ERR_PROTOCOL, "AUTH before MQTT 5");
    return decode_reason_packet(f, PROPS_AUTH, out, why);
}

static size_t encode_reason_packet(uint8_t *out, size_t cap, uint8_t type,
                                   const mqtt_reason_packet_t *d)
{
    bool with_props = d->props.present != 0 || d->props.user_props.len != 0;
    bool with_reason = d->reason || with_props;
    size_t body = (with_reason ? 1 : 0) + (with_props ? props_size(&d->props) : 0);
    writer_t w = writer_of(out, cap);
    wr_fixed(&w, type, 0, body);
    if (with_reason)
        wr_u8(&w, d->reason);
    if (with_props)
        props_write(&w, &d->props);
    return w.pos;
}

size_t mqtt_encode_disconnect(uint8_t *out, size_t cap, uint8_t version,
                              const mqtt_reason_packet_t *d)
{
    if (version != MQTT_V5)
        return mqtt_encode_empty(out, cap, MQTT_DISCONNECT);
    return encode_reason_packet(out, cap, MQTT_DISCONNECT, d);
}

size_t mqtt_encode_auth(uint8_t *out, size_t cap, const mqtt_reason_packet_t *a)
{
    return encode_reason_packet(out, cap, MQTT_AUTH, a);
}

/* PINGREQ and PINGRESP */

sedge_err mqtt_decode_empty(const mqtt_frame_t *f, const char **why)
{
    return f->body.len ? fail(why, SEDGE_ERR_MALFORMED, "packet must be empty") : SEDGE_OK;
}

size_t mqtt_encode_empty(uint8_t *out, size_t cap, uint8_t type)
{
    writer_t w = writer_of(out, cap);
    wr_fixed(&w, type, 0, 0);
    return w.pos;
}
