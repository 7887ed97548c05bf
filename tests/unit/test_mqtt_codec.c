/*
 * The MQTT codec against the bytes of the specifications (3.1.1 = level 4,
 * 5.0 = level 5): framing, every packet decoded and encoded back to the same
 * bytes, every MQTT 5 property, and the malformed and forbidden inputs a
 * server must refuse with the right error (MALFORMED -> reason 0x81,
 * PROTOCOL -> 0x82, UNSUPPORTED -> CONNACK "unsupported protocol version").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/mqtt.h"

/* ---- helpers ---- */

/* Frame a buffer that must hold exactly one whole packet. */
static mqtt_frame_t frame_whole(const uint8_t *buf, size_t len)
{
    mqtt_frame_t f;
    const char *why = NULL;
    assert_int_equal(mqtt_frame_parse(buf, len, &f, &why), SEDGE_OK);
    assert_int_equal(f.size, len);
    return f;
}

/* A frame over a hand-made body, for bodies the frame parser would accept
 * anyway; lets a test cut a body short without rewriting its header. */
static mqtt_frame_t frame_of_body(uint8_t type, uint8_t flags, const uint8_t *body, size_t len)
{
    return (mqtt_frame_t){type, flags, {body, len}, len + 2};
}

static bytes_t lit(const char *s)
{
    return bytes_of_cstr(s);
}

/*
 * Run an encoder three ways: sizing (out NULL), into a buffer one byte too
 * small (nothing may be written past cap), and into room enough, which must
 * give exactly `want`. CALL uses the names enc_out and enc_cap.
 */
#define ASSERT_ENCODES(want, want_len, CALL)                                                       \
    do {                                                                                           \
        uint8_t *enc_out = NULL;                                                                   \
        size_t enc_cap = 0;                                                                        \
        assert_int_equal((CALL), (want_len));                                                      \
        uint8_t enc_buf[2048];                                                                     \
        assert_true((want_len) < sizeof enc_buf);                                                  \
        memset(enc_buf, 0xA5, sizeof enc_buf);                                                     \
        enc_out = enc_buf;                                                                         \
        enc_cap = (want_len)-1;                                                                    \
        assert_int_equal((CALL), (want_len));                                                      \
        for (size_t k_ = enc_cap; k_ < sizeof enc_buf; k_++)                                       \
            assert_int_equal(enc_buf[k_], 0xA5);                                                   \
        enc_cap = sizeof enc_buf;                                                                  \
        assert_int_equal((CALL), (want_len));                                                      \
        assert_memory_equal(enc_buf, (want), (want_len));                                          \
        assert_int_equal(enc_buf[(want_len)], 0xA5);                                               \
    } while (0)

static void assert_bytes_eq(bytes_t got, const char *want)
{
    assert_int_equal(got.len, strlen(want));
    if (got.len)
        assert_memory_equal(got.data, want, got.len);
}

/* Give decoded properties their user properties back in wire form, so the
 * struct can be encoded again. */
static void keep_user_props(mqtt_props_t *p, uint8_t *buf, size_t cap)
{
    size_t n = mqtt_props_copy_user(p, buf, cap);
    assert_true(n <= cap);
    p->user_props = (bytes_t){buf, n};
}

/* The nth user property of a block, or fail. */
static void assert_user_prop(bytes_t block, size_t nth, const char *key, const char *value)
{
    size_t cursor = 0;
    bytes_t k, v;
    for (size_t i = 0; i <= nth; i++)
        assert_true(mqtt_user_prop_next(block, &cursor, &k, &v));
    assert_bytes_eq(k, key);
    assert_bytes_eq(v, value);
}

static size_t count_user_props(bytes_t block)
{
    size_t cursor = 0, n = 0;
    bytes_t k, v;
    while (mqtt_user_prop_next(block, &cursor, &k, &v))
        n++;
    return n;
}

/* ---- framing ---- */

static void test_frame_remaining_length_spec_examples(void **state)
{
    (void)state;
    /* MQTT 3.1.1 table 2.4 / MQTT 5.0 table 1-1: the edges of each length. */
    static const struct {
        uint32_t value;
        uint8_t bytes[4];
        size_t n;
    } cases[] = {
        {0, {0x00}, 1},
        {127, {0x7F}, 1},
        {128, {0x80, 0x01}, 2},
        {16383, {0xFF, 0x7F}, 2},
        {16384, {0x80, 0x80, 0x01}, 3},
        {2097151, {0xFF, 0xFF, 0x7F}, 3},
        {2097152, {0x80, 0x80, 0x80, 0x01}, 4},
        {268435455, {0xFF, 0xFF, 0xFF, 0x7F}, 4},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint8_t buf[5] = {0x30};
        memcpy(buf + 1, cases[i].bytes, cases[i].n);
        mqtt_frame_t f;
        sedge_err err = mqtt_frame_parse(buf, 1 + cases[i].n, &f, NULL);
        size_t want = 1 + cases[i].n + cases[i].value;
        assert_int_equal(f.size, want);
        assert_int_equal(err, cases[i].value == 0 ? SEDGE_OK : SEDGE_ERR_AGAIN);
        /* The encoder writes the same minimal form. */
        mqtt_publish_t p = {.topic = lit("t")};
        if (cases[i].value >= 3) {
            size_t payload = cases[i].value - 3;
            if (payload <= 4096) {
                static uint8_t big[4096];
                p.payload = (bytes_t){big, payload};
                static uint8_t out[4200];
                size_t n = mqtt_encode_publish(out, sizeof out, MQTT_V311, &p);
                assert_int_equal(n, want);
                assert_memory_equal(out + 1, cases[i].bytes, cases[i].n);
            }
        }
    }
}

static void test_frame_five_byte_remaining_length_is_malformed(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    mqtt_frame_t f;
    const char *why = NULL;
    assert_int_equal(mqtt_frame_parse(pkt, sizeof pkt, &f, &why), SEDGE_ERR_MALFORMED);
    assert_non_null(why);
    /* Refused as soon as the fifth length byte arrives, not later. */
    assert_int_equal(mqtt_frame_parse(pkt, 5, &f, NULL), SEDGE_ERR_MALFORMED);
    assert_int_equal(mqtt_frame_parse(pkt, 4, &f, NULL), SEDGE_ERR_AGAIN);
    assert_int_equal(f.size, 0);
}

static void test_frame_asks_for_more_until_the_packet_is_whole(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x40, 0x02, 0x00, 0x0A};
    mqtt_frame_t f;
    assert_int_equal(mqtt_frame_parse(pkt, 0, &f, NULL), SEDGE_ERR_AGAIN);
    assert_int_equal(f.size, 0);
    assert_int_equal(mqtt_frame_parse(pkt, 1, &f, NULL), SEDGE_ERR_AGAIN);
    assert_int_equal(f.size, 0);
    /* Once the fixed header is complete the whole size is known. */
    assert_int_equal(mqtt_frame_parse(pkt, 2, &f, NULL), SEDGE_ERR_AGAIN);
    assert_int_equal(f.size, 4);
    assert_int_equal(mqtt_frame_parse(pkt, 3, &f, NULL), SEDGE_ERR_AGAIN);
    assert_int_equal(f.size, 4);
    f = frame_whole(pkt, sizeof pkt);
    assert_int_equal(f.type, MQTT_PUBACK);
    assert_int_equal(f.flags, 0);
    assert_ptr_equal(f.body.data, pkt + 2);
    assert_int_equal(f.body.len, 2);
}

static void test_frame_incomplete_multibyte_length_has_no_size_yet(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x30, 0x80, 0x80};
    mqtt_frame_t f;
    assert_int_equal(mqtt_frame_parse(pkt, sizeof pkt, &f, NULL), SEDGE_ERR_AGAIN);
    assert_int_equal(f.size, 0);
}

static void test_frame_finds_back_to_back_packets(void **state)
{
    (void)state;
    static const uint8_t stream[] = {0xC0, 0x00, 0x40, 0x02, 0x00, 0x01, 0xE0, 0x00, 0x30};
    size_t off = 0;
    uint8_t types[3];
    for (int i = 0; i < 3; i++) {
        mqtt_frame_t f;
        assert_int_equal(mqtt_frame_parse(stream + off, sizeof stream - off, &f, NULL), SEDGE_OK);
        types[i] = f.type;
        off += f.size;
    }
    assert_int_equal(types[0], MQTT_PINGREQ);
    assert_int_equal(types[1], MQTT_PUBACK);
    assert_int_equal(types[2], MQTT_DISCONNECT);
    mqtt_frame_t f;
    assert_int_equal(mqtt_frame_parse(stream + off, sizeof stream - off, &f, NULL),
                     SEDGE_ERR_AGAIN);
}

static void test_frame_reserved_packet_type_0_is_malformed(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x00, 0x00};
    mqtt_frame_t f;
    assert_int_equal(mqtt_frame_parse(pkt, sizeof pkt, &f, NULL), SEDGE_ERR_MALFORMED);
}

static void test_frame_reserved_flags_are_malformed(void **state)
{
    (void)state;
    /* Every type but PUBLISH has fixed flags: 0010 for PUBREL, SUBSCRIBE and
     * UNSUBSCRIBE, 0000 for the rest. Any other value is malformed. */
    for (uint8_t type = MQTT_CONNECT; type <= MQTT_AUTH; type++) {
        if (type == MQTT_PUBLISH)
            continue;
        uint8_t fixed =
            (type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE) ? 2 : 0;
        for (uint8_t flags = 0; flags < 16; flags++) {
            uint8_t pkt[2] = {(uint8_t)(type << 4 | flags), 0x00};
            mqtt_frame_t f;
            const char *why = NULL;
            sedge_err err = mqtt_frame_parse(pkt, sizeof pkt, &f, &why);
            if (flags == fixed) {
                assert_int_equal(err, SEDGE_OK);
            } else {
                assert_int_equal(err, SEDGE_ERR_MALFORMED);
                assert_non_null(why);
            }
        }
    }
}

static void test_publish_qos3_is_malformed(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01};
    mqtt_frame_t f;
    assert_int_equal(mqtt_frame_parse(pkt, sizeof pkt, &f, NULL), SEDGE_ERR_MALFORMED);
    /* Every other PUBLISH flag combination frames. */
    for (uint8_t flags = 0; flags < 16; flags++) {
        uint8_t b[2] = {(uint8_t)(0x30 | flags), 0x00};
        sedge_err want = ((flags >> 1) & 3) == 3 ? SEDGE_ERR_MALFORMED : SEDGE_OK;
        assert_int_equal(mqtt_frame_parse(b, sizeof b, &f, NULL), want);
    }
}

static void test_packet_and_reason_names(void **state)
{
    (void)state;
    assert_string_equal(mqtt_packet_name(MQTT_PUBLISH), "PUBLISH");
    assert_string_equal(mqtt_packet_name(MQTT_AUTH), "AUTH");
    assert_string_equal(mqtt_packet_name(16), "UNKNOWN");
    assert_string_equal(mqtt_reason_name(MQTT_RC_MALFORMED), "malformed packet");
    assert_string_equal(mqtt_reason_name(0x03), "unknown reason");
}

/* ---- CONNECT ---- */

/* 3.1.1, flags 0xCE as in the spec's example: user name, password, will
 * QoS 1, will, clean session; keep alive 10. */
static const uint8_t connect_v311[] = {
    0x10, 0x1F,                                               /* CONNECT, 31 */
    0x00, 0x04, 'M',  'Q',  'T', 'T', 0x04, 0xCE, 0x00, 0x0A, /* header */
    0x00, 0x02, 'c',  '1',                                    /* client id */
    0x00, 0x03, 'w',  '/',  't',                              /* will topic */
    0x00, 0x03, 'b',  'y',  'e',                              /* will payload */
    0x00, 0x01, 'u',                                          /* user name */
    0x00, 0x02, 0x00, 0xFF,                                   /* password: binary */
};

/* 5.0, the spec's example header (session expiry 10) with a will delay. */
static const uint8_t connect_v5[] = {
    0x10, 0x2B,                                                 /* CONNECT, 43 */
    0x00, 0x04, 'M',  'Q',  'T',  'T',  0x05, 0xCE, 0x00, 0x0A, /* header */
    0x05, 0x11, 0x00, 0x00, 0x00, 0x0A,                         /* session expiry 10 */
    0x00, 0x02, 'c',  '1',                                      /* client id */
    0x05, 0x18, 0x00, 0x00, 0x00, 0x1E,                         /* will delay 30 */
    0x00, 0x03, 'w',  '/',  't',                                /* will topic */
    0x00, 0x03, 'b',  'y',  'e',                                /* will payload */
    0x00, 0x01, 'u',                                            /* user name */
    0x00, 0x02, 0x00, 0xFF,                                     /* password */
};

static void assert_spec_connect_fields(const mqtt_connect_t *c)
{
    assert_true(c->clean_start);
    assert_int_equal(c->keep_alive, 10);
    assert_bytes_eq(c->client_id, "c1");
    assert_true(c->will);
    assert_int_equal(c->will_qos, 1);
    assert_false(c->will_retain);
    assert_bytes_eq(c->will_topic, "w/t");
    assert_bytes_eq(c->will_payload, "bye");
    assert_true(c->has_username);
    assert_bytes_eq(c->username, "u");
    assert_true(c->has_password);
    assert_int_equal(c->password.len, 2);
    assert_int_equal(c->password.data[0], 0x00);
    assert_int_equal(c->password.data[1], 0xFF);
}

static void test_connect_v311_spec_example_round_trips(void **state)
{
    (void)state;
    mqtt_frame_t f = frame_whole(connect_v311, sizeof connect_v311);
    mqtt_connect_t c;
    assert_int_equal(mqtt_decode_connect(&f, &c, NULL), SEDGE_OK);
    assert_int_equal(c.version, MQTT_V311);
    assert_spec_connect_fields(&c);
    ASSERT_ENCODES(connect_v311, sizeof connect_v311, mqtt_encode_connect(enc_out, enc_cap, &c));
}

static void test_connect_v5_spec_example_round_trips(void **state)
{
    (void)state;
    mqtt_frame_t f = frame_whole(connect_v5, sizeof connect_v5);
    mqtt_connect_t c;
    assert_int_equal(mqtt_decode_connect(&f, &c, NULL), SEDGE_OK);
    assert_int_equal(c.version, MQTT_V5);
    assert_spec_connect_fields(&c);
    assert_int_equal(c.props.present, 1ull << MQTT_PROP_SESSION_EXPIRY);
    assert_int_equal(c.props.session_expiry, 10);
    assert_int_equal(c.will_props.present, 1ull << MQTT_PROP_WILL_DELAY);
    assert_int_equal(c.will_props.will_delay, 30);
    ASSERT_ENCODES(connect_v5, sizeof connect_v5, mqtt_encode_connect(enc_out, enc_cap, &c));
}

static void test_connect_minimal_without_will_or_credentials(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x10, 0x0C, 0x00, 0x04, 'M',  'Q',  'T',
                                  'T',  0x04, 0x00, 0x00, 0x00, 0x00, 0x00};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_connect_t c;
    assert_int_equal(mqtt_decode_connect(&f, &c, NULL), SEDGE_OK);
    assert_false(c.clean_start);
    assert_false(c.will);
    assert_false(c.has_username);
    assert_false(c.has_password);
    assert_int_equal(c.client_id.len, 0);
    assert_int_equal(c.keep_alive, 0);
    ASSERT_ENCODES(pkt, sizeof pkt, mqtt_encode_connect(enc_out, enc_cap, &c));
}

static void test_connect_v5_every_property_round_trips(void **state)
{
    (void)state;
    uint8_t users[64], will_users[32];
    size_t nu = mqtt_user_prop_encode(users, sizeof users, lit("region"), lit("eu"));
    nu += mqtt_user_prop_encode(users + nu, sizeof users - nu, lit("region"), lit("us"));
    size_t nw = mqtt_user_prop_encode(will_users, sizeof will_users, lit("k"), lit(""));
    mqtt_connect_t c = {.version = MQTT_V5,
                        .clean_start = true,
                        .keep_alive = 60,
                        .client_id = lit("dev-1"),
                        .will = true,
                        .will_qos = 2,
                        .will_retain = true,
                        .will_topic = lit("dev/1/status"),
                        .will_payload = lit("offline"),
                        .has_password = true,
                        .password = lit("pw")};
    mqtt_props_t *p = &c.props;
    p->session_expiry = 3600;
    p->receive_maximum = 20;
    p->maximum_packet_size = 65536;
    p->topic_alias_maximum = 8;
    p->request_response_info = 1;
    p->request_problem_info = 0;
    p->auth_method = lit("SCRAM-SHA-1");
    p->auth_data = lit("\x01\x02");
    p->user_props = (bytes_t){users, nu};
    int ids[] = {MQTT_PROP_SESSION_EXPIRY,        MQTT_PROP_RECEIVE_MAXIMUM,
                 MQTT_PROP_MAXIMUM_PACKET_SIZE,   MQTT_PROP_TOPIC_ALIAS_MAXIMUM,
                 MQTT_PROP_REQUEST_RESPONSE_INFO, MQTT_PROP_REQUEST_PROBLEM_INFO,
                 MQTT_PROP_AUTH_METHOD,           MQTT_PROP_AUTH_DATA};
    for (size_t i = 0; i < ARRAY_LEN(ids); i++)
        mqtt_props_set(p, ids[i]);
    mqtt_props_t *w = &c.will_props;
    w->will_delay = 5;
    w->payload_format = 1;
    w->message_expiry = 120;
    w->content_type = lit("text/plain");
    w->response_topic = lit("dev/1/reply");
    w->correlation_data = lit("\x00\x01\x02");
    w->correlation_data.len = 3;
    w->user_props = (bytes_t){will_users, nw};
    int wids[] = {MQTT_PROP_WILL_DELAY,   MQTT_PROP_PAYLOAD_FORMAT, MQTT_PROP_MESSAGE_EXPIRY,
                  MQTT_PROP_CONTENT_TYPE, MQTT_PROP_RESPONSE_TOPIC, MQTT_PROP_CORRELATION_DATA};
    for (size_t i = 0; i < ARRAY_LEN(wids); i++)
        mqtt_props_set(w, wids[i]);

    uint8_t buf[512];
    size_t n = mqtt_encode_connect(buf, sizeof buf, &c);
    assert_true(n <= sizeof buf);
    mqtt_frame_t f = frame_whole(buf, n);
    mqtt_connect_t d;
    assert_int_equal(mqtt_decode_connect(&f, &d, NULL), SEDGE_OK);
    assert_int_equal(d.version, MQTT_V5);
    assert_true(d.clean_start);
    assert_int_equal(d.keep_alive, 60);
    assert_bytes_eq(d.client_id, "dev-1");
    assert_int_equal(d.will_qos, 2);
    assert_true(d.will_retain);
    assert_bytes_eq(d.will_topic, "dev/1/status");
    assert_bytes_eq(d.will_payload, "offline");
    assert_false(d.has_username); /* a v5 password may come alone */
    assert_true(d.has_password);
    assert_bytes_eq(d.password, "pw");

    assert_int_equal(d.props.present, p->present | 1ull << MQTT_PROP_USER_PROPERTY);
    assert_int_equal(d.props.session_expiry, 3600);
    assert_int_equal(d.props.receive_maximum, 20);
    assert_int_equal(d.props.maximum_packet_size, 65536);
    assert_int_equal(d.props.topic_alias_maximum, 8);
    assert_int_equal(d.props.request_response_info, 1);
    assert_int_equal(d.props.request_problem_info, 0);
    assert_bytes_eq(d.props.auth_method, "SCRAM-SHA-1");
    assert_int_equal(d.props.auth_data.len, 2);
    assert_int_equal(d.props.user_prop_count, 2);
    assert_user_prop(d.props.raw, 0, "region", "eu");
    assert_user_prop(d.props.raw, 1, "region", "us");

    assert_int_equal(d.will_props.present, w->present | 1ull << MQTT_PROP_USER_PROPERTY);
    assert_int_equal(d.will_props.will_delay, 5);
    assert_int_equal(d.will_props.payload_format, 1);
    assert_int_equal(d.will_props.message_expiry, 120);
    assert_bytes_eq(d.will_props.content_type, "text/plain");
    assert_bytes_eq(d.will_props.response_topic, "dev/1/reply");
    assert_int_equal(d.will_props.correlation_data.len, 3);
    assert_memory_equal(d.will_props.correlation_data.data, "\x00\x01\x02", 3);
    assert_int_equal(d.will_props.user_prop_count, 1);
    assert_user_prop(d.will_props.raw, 0, "k", "");

    /* The decoded struct, its user properties copied out, encodes to the
     * same bytes. */
    uint8_t ub[64], wb[64];
    keep_user_props(&d.props, ub, sizeof ub);
    keep_user_props(&d.will_props, wb, sizeof wb);
    ASSERT_ENCODES(buf, n, mqtt_encode_connect(enc_out, enc_cap, &d));
}

static void test_connect_mqtt31_is_unsupported(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x10, 0x10, 0x00, 0x06, 'M',  'Q',  'I',  's', 'd',
                                  'p',  0x03, 0x02, 0x00, 0x3C, 0x00, 0x02, 'c', '1'};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_connect_t c;
    const char *why = NULL;
    assert_int_equal(mqtt_decode_connect(&f, &c, &why), SEDGE_ERR_UNSUPPORTED);
    assert_int_equal(c.version, MQTT_V31);
    assert_non_null(why);
}

static void test_connect_unknown_level_is_unsupported_and_reports_it(void **state)
{
    (void)state;
    for (uint8_t level = 0; level < 10; level++) {
        uint8_t pkt[] = {0x10, 0x0C,  0x00, 0x04, 'M',  'Q',  'T',
                         'T',  level, 0x02, 0x00, 0x3C, 0x00, 0x00};
        mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
        mqtt_connect_t c;
        sedge_err err = mqtt_decode_connect(&f, &c, NULL);
        if (level == MQTT_V311) {
            assert_int_equal(err, SEDGE_OK);
        } else if (level == MQTT_V5) {
            assert_int_equal(err, SEDGE_ERR_MALFORMED); /* no property length */
        } else {
            assert_int_equal(err, SEDGE_ERR_UNSUPPORTED);
            assert_int_equal(c.version, level);
        }
    }
}

static void test_connect_wrong_protocol_name_is_malformed(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x10, 0x0C, 0x00, 0x04, 'M',  'Q',  'T',
                                  't',  0x04, 0x02, 0x00, 0x3C, 0x00, 0x00};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_connect_t c;
    assert_int_equal(mqtt_decode_connect(&f, &c, NULL), SEDGE_ERR_MALFORMED);
}

/* A v3.1.1 CONNECT with no payload but the empty client id, flags given. */
static sedge_err decode_connect_flags(uint8_t level, uint8_t flags, const uint8_t *tail,
                                      size_t tail_len)
{
    uint8_t body[64] = {0x00, 0x04, 'M', 'Q', 'T', 'T', level, flags, 0x00, 0x3C};
    size_t n = 10;
    memcpy(body + n, tail, tail_len);
    n += tail_len;
    mqtt_frame_t f = frame_of_body(MQTT_CONNECT, 0, body, n);
    mqtt_connect_t c;
    return mqtt_decode_connect(&f, &c, NULL);
}

static void test_connect_reserved_flag_is_malformed(void **state)
{
    (void)state;
    static const uint8_t id[] = {0x00, 0x00};
    assert_int_equal(decode_connect_flags(4, 0x02, id, sizeof id), SEDGE_OK);
    assert_int_equal(decode_connect_flags(4, 0x03, id, sizeof id), SEDGE_ERR_MALFORMED);
}

static void test_connect_will_qos3_is_malformed(void **state)
{
    (void)state;
    static const uint8_t will[] = {0x00, 0x00, 0x00, 0x01, 't', 0x00, 0x00};
    assert_int_equal(decode_connect_flags(4, 0x14, will, sizeof will), SEDGE_OK); /* QoS 2 */
    assert_int_equal(decode_connect_flags(4, 0x1C, will, sizeof will), SEDGE_ERR_MALFORMED);
}

static void test_connect_will_qos_or_retain_without_will_is_malformed(void **state)
{
    (void)state;
    static const uint8_t id[] = {0x00, 0x00};
    assert_int_equal(decode_connect_flags(4, 0x08, id, sizeof id), SEDGE_ERR_MALFORMED);
    assert_int_equal(decode_connect_flags(4, 0x20, id, sizeof id), SEDGE_ERR_MALFORMED);
}

static void test_connect_v311_password_without_user_name_is_malformed(void **state)
{
    (void)state;
    static const uint8_t id_pw[] = {0x00, 0x00, 0x00, 0x01, 'p'};
    static const uint8_t v5_id_pw[] = {0x00, 0x00, 0x00, 0x00, 0x01, 'p'};
    assert_int_equal(decode_connect_flags(4, 0x40, id_pw, sizeof id_pw), SEDGE_ERR_MALFORMED);
    assert_int_equal(decode_connect_flags(5, 0x40, v5_id_pw, sizeof v5_id_pw), SEDGE_OK);
}

static void test_connect_invalid_utf8_in_strings_is_malformed(void **state)
{
    (void)state;
    /* client id U+0000; will topic a surrogate; user name overlong '/'. */
    static const uint8_t nul_id[] = {0x00, 0x01, 0x00};
    static const uint8_t sur_topic[] = {0x00, 0x00, 0x00, 0x03, 0xED, 0xA0, 0x80, 0x00, 0x00};
    static const uint8_t overlong_user[] = {0x00, 0x00, 0x00, 0x02, 0xC0, 0xAF};
    assert_int_equal(decode_connect_flags(4, 0x02, nul_id, sizeof nul_id), SEDGE_ERR_MALFORMED);
    assert_int_equal(decode_connect_flags(4, 0x06, sur_topic, sizeof sur_topic),
                     SEDGE_ERR_MALFORMED);
    assert_int_equal(decode_connect_flags(4, 0x82, overlong_user, sizeof overlong_user),
                     SEDGE_ERR_MALFORMED);
}

static void test_connect_truncated_anywhere_is_malformed(void **state)
{
    (void)state;
    const uint8_t *pkts[] = {connect_v311, connect_v5};
    size_t lens[] = {sizeof connect_v311, sizeof connect_v5};
    for (size_t i = 0; i < 2; i++) {
        for (size_t cut = 0; cut < lens[i] - 2; cut++) {
            mqtt_frame_t f = frame_of_body(MQTT_CONNECT, 0, pkts[i] + 2, cut);
            mqtt_connect_t c;
            const char *why = NULL;
            assert_int_equal(mqtt_decode_connect(&f, &c, &why), SEDGE_ERR_MALFORMED);
            assert_non_null(why);
        }
    }
}

static void test_connect_trailing_bytes_are_malformed(void **state)
{
    (void)state;
    uint8_t body[64];
    memcpy(body, connect_v311 + 2, sizeof connect_v311 - 2);
    body[sizeof connect_v311 - 2] = 0x00;
    mqtt_frame_t f = frame_of_body(MQTT_CONNECT, 0, body, sizeof connect_v311 - 1);
    mqtt_connect_t c;
    assert_int_equal(mqtt_decode_connect(&f, &c, NULL), SEDGE_ERR_MALFORMED);
}

/* ---- MQTT 5 properties, through a CONNECT ---- */

/* A v5 CONNECT, empty client id, with this property block (without its
 * length). The decoded views point into a static buffer, valid until the
 * next call. */
static sedge_err decode_connect_props(const uint8_t *props, size_t len, mqtt_connect_t *c)
{
    static uint8_t body[128];
    static const uint8_t header[] = {0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C};
    memcpy(body, header, sizeof header);
    size_t n = sizeof header;
    body[n++] = (uint8_t)len;
    memcpy(body + n, props, len);
    n += len;
    body[n++] = 0x00;
    body[n++] = 0x00;
    mqtt_frame_t f = frame_of_body(MQTT_CONNECT, 0, body, n);
    return mqtt_decode_connect(&f, c, NULL);
}

static void test_props_duplicate_property_is_protocol_error(void **state)
{
    (void)state;
    mqtt_connect_t c;
    static const uint8_t twice[] = {0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2};
    assert_int_equal(decode_connect_props(twice, sizeof twice, &c), SEDGE_ERR_PROTOCOL);
    static const uint8_t rm_twice[] = {0x21, 0, 5, 0x22, 0, 1, 0x21, 0, 5};
    assert_int_equal(decode_connect_props(rm_twice, sizeof rm_twice, &c), SEDGE_ERR_PROTOCOL);
    static const uint8_t am_twice[] = {0x15, 0, 1, 'x', 0x15, 0, 1, 'x'};
    assert_int_equal(decode_connect_props(am_twice, sizeof am_twice, &c), SEDGE_ERR_PROTOCOL);
}

static void test_props_user_property_may_repeat(void **state)
{
    (void)state;
    mqtt_connect_t c;
    static const uint8_t users[] = {0x26, 0, 1, 'a', 0, 1, '1', 0x11, 0, 0, 0, 9,
                                    0x26, 0, 1, 'a', 0, 1, '2', 0x26, 0, 0, 0, 0};
    assert_int_equal(decode_connect_props(users, sizeof users, &c), SEDGE_OK);
    assert_int_equal(c.props.user_prop_count, 3);
    assert_int_equal(c.props.session_expiry, 9);
    assert_int_equal(count_user_props(c.props.raw), 3);
    assert_user_prop(c.props.raw, 0, "a", "1");
    assert_user_prop(c.props.raw, 1, "a", "2");
    assert_user_prop(c.props.raw, 2, "", "");
}

static void test_props_not_allowed_in_the_packet_is_malformed(void **state)
{
    (void)state;
    /* MQTT 5.0 2.2.2.2: an identifier not valid for its packet type makes a
     * Malformed Packet. Topic alias, will delay, reason string and
     * subscription identifier have no place in CONNECT's properties. */
    mqtt_connect_t c;
    static const uint8_t alias[] = {0x23, 0x00, 0x01};
    static const uint8_t will_delay[] = {0x18, 0, 0, 0, 1};
    static const uint8_t reason[] = {0x1F, 0x00, 0x00};
    static const uint8_t sub_id[] = {0x0B, 0x01};
    assert_int_equal(decode_connect_props(alias, sizeof alias, &c), SEDGE_ERR_MALFORMED);
    assert_int_equal(decode_connect_props(will_delay, sizeof will_delay, &c), SEDGE_ERR_MALFORMED);
    assert_int_equal(decode_connect_props(reason, sizeof reason, &c), SEDGE_ERR_MALFORMED);
    assert_int_equal(decode_connect_props(sub_id, sizeof sub_id, &c), SEDGE_ERR_MALFORMED);
}

static void test_props_unknown_identifier_is_malformed(void **state)
{
    (void)state;
    mqtt_connect_t c;
    static const uint8_t unknown[] = {0x04, 0x00};
    static const uint8_t big[] = {0x80, 0x01, 0x00}; /* identifier 128 */
    assert_int_equal(decode_connect_props(unknown, sizeof unknown, &c), SEDGE_ERR_MALFORMED);
    assert_int_equal(decode_connect_props(big, sizeof big, &c), SEDGE_ERR_MALFORMED);
}

static void test_props_receive_maximum_zero_is_protocol_error(void **state)
{
    (void)state;
    mqtt_connect_t c;
    static const uint8_t zero[] = {0x21, 0x00, 0x00};
    static const uint8_t one[] = {0x21, 0x00, 0x01};
    assert_int_equal(decode_connect_props(zero, sizeof zero, &c), SEDGE_ERR_PROTOCOL);
    assert_int_equal(decode_connect_props(one, sizeof one, &c), SEDGE_OK);
    assert_int_equal(c.props.receive_maximum, 1);
}

static void test_props_maximum_packet_size_zero_is_protocol_error(void **state)
{
    (void)state;
    mqtt_connect_t c;
    static const uint8_t zero[] = {0x27, 0, 0, 0, 0};
    assert_int_equal(decode_connect_props(zero, sizeof zero, &c), SEDGE_ERR_PROTOCOL);
}

static void test_props_boolean_out_of_range_is_protocol_error(void **state)
{
    (void)state;
    mqtt_connect_t c;
    static const uint8_t rri[] = {0x19, 0x02};
    static const uint8_t rpi[] = {0x17, 0x02};
    assert_int_equal(decode_connect_props(rri, sizeof rri, &c), SEDGE_ERR_PROTOCOL);
    assert_int_equal(decode_connect_props(rpi, sizeof rpi, &c), SEDGE_ERR_PROTOCOL);
}

static void test_props_truncated_value_is_malformed(void **state)
{
    (void)state;
    mqtt_connect_t c;
    static const uint8_t u32[] = {0x11, 0x00, 0x00, 0x00};
    static const uint8_t u16[] = {0x21, 0x00};
    static const uint8_t str[] = {0x15, 0x00, 0x05, 'a'};
    static const uint8_t pair[] = {0x26, 0x00, 0x01, 'k', 0x00};
    assert_int_equal(decode_connect_props(u32, sizeof u32, &c), SEDGE_ERR_MALFORMED);
    assert_int_equal(decode_connect_props(u16, sizeof u16, &c), SEDGE_ERR_MALFORMED);
    assert_int_equal(decode_connect_props(str, sizeof str, &c), SEDGE_ERR_MALFORMED);
    assert_int_equal(decode_connect_props(pair, sizeof pair, &c), SEDGE_ERR_MALFORMED);
}

static void test_props_invalid_utf8_in_user_property_is_malformed(void **state)
{
    (void)state;
    mqtt_connect_t c;
    static const uint8_t key[] = {0x26, 0x00, 0x01, 0x00, 0x00, 0x00};
    static const uint8_t value[] = {0x26, 0x00, 0x00, 0x00, 0x03, 0xED, 0xBF, 0xBF};
    static const uint8_t method[] = {0x15, 0x00, 0x01, 0xFF};
    assert_int_equal(decode_connect_props(key, sizeof key, &c), SEDGE_ERR_MALFORMED);
    assert_int_equal(decode_connect_props(value, sizeof value, &c), SEDGE_ERR_MALFORMED);
    assert_int_equal(decode_connect_props(method, sizeof method, &c), SEDGE_ERR_MALFORMED);
}

static void test_props_binary_data_may_hold_any_bytes(void **state)
{
    (void)state;
    mqtt_connect_t c;
    static const uint8_t data[] = {0x16, 0x00, 0x03, 0x00, 0xFF, 0xED};
    assert_int_equal(decode_connect_props(data, sizeof data, &c), SEDGE_OK);
    assert_int_equal(c.props.auth_data.len, 3);
}

static void test_props_length_past_the_packet_is_malformed(void **state)
{
    (void)state;
    /* Property length 3 with two bytes of packet left. */
    static const uint8_t body[] = {0x00, 0x04, 'M',  'Q',  'T',  'T', 0x05,
                                   0x02, 0x00, 0x3C, 0x03, 0x00, 0x00};
    mqtt_frame_t f = frame_of_body(MQTT_CONNECT, 0, body, sizeof body);
    mqtt_connect_t c;
    assert_int_equal(mqtt_decode_connect(&f, &c, NULL), SEDGE_ERR_MALFORMED);
}

static void test_props_five_byte_property_length_is_malformed(void **state)
{
    (void)state;
    /* PUBACK: packet id, reason, then a property length of five bytes. */
    static const uint8_t body[] = {0x00, 0x0A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    mqtt_frame_t f = frame_of_body(MQTT_PUBACK, 0, body, sizeof body);
    mqtt_ack_t a;
    assert_int_equal(mqtt_decode_ack(&f, MQTT_V5, &a, NULL), SEDGE_ERR_MALFORMED);
}

/* Where MQTT 5.0 table 2-4 allows each property. */
enum {
    IN_CONNECT,
    IN_WILL,
    IN_CONNACK,
    IN_PUBLISH,
    IN_ACK,
    IN_SUBSCRIBE,
    IN_SUBACK,
    IN_UNSUBSCRIBE,
    IN_UNSUBACK,
    IN_DISCONNECT,
    IN_AUTH,
    IN_COUNT
};
#define IN(x) (1u << (x))

/* A v5 packet of each context around one property block; the decoded
 * views are not used. */
static sedge_err decode_in(int where, const uint8_t *props, size_t len)
{
    uint8_t body[128];
    size_t n = 0;
    static const uint8_t connect_head[] = {0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05};
#define PUT(...)                                                                                   \
    do {                                                                                           \
        const uint8_t b_[] = {__VA_ARGS__};                                                        \
        memcpy(body + n, b_, sizeof b_);                                                           \
        n += sizeof b_;                                                                            \
    } while (0)
#define PUT_PROPS()                                                                                \
    do {                                                                                           \
        body[n++] = (uint8_t)len;                                                                  \
        memcpy(body + n, props, len);                                                              \
        n += len;                                                                                  \
    } while (0)
    union {
        mqtt_connect_t c;
        mqtt_connack_t ca;
        mqtt_publish_t p;
        mqtt_ack_t a;
        mqtt_subscribe_t s;
        mqtt_suback_t sa;
        mqtt_reason_packet_t r;
    } u;
    mqtt_frame_t f;
    switch (where) {
    case IN_CONNECT:
    case IN_WILL:
        memcpy(body, connect_head, sizeof connect_head);
        n = sizeof connect_head;
        if (where == IN_CONNECT) {
            PUT(0x02, 0x00, 0x3C);
            PUT_PROPS();
            PUT(0x00, 0x00);
        } else {
            PUT(0x06, 0x00, 0x3C, 0x00, 0x00, 0x00);
            PUT_PROPS();
            PUT(0x00, 0x01, 't', 0x00, 0x00);
        }
        f = frame_of_body(MQTT_CONNECT, 0, body, n);
        return mqtt_decode_connect(&f, &u.c, NULL);
    case IN_CONNACK:
        PUT(0x00, 0x00);
        PUT_PROPS();
        f = frame_of_body(MQTT_CONNACK, 0, body, n);
        return mqtt_decode_connack(&f, MQTT_V5, &u.ca, NULL);
    case IN_PUBLISH:
        PUT(0x00, 0x01, 't');
        PUT_PROPS();
        f = frame_of_body(MQTT_PUBLISH, 0, body, n);
        return mqtt_decode_publish(&f, MQTT_V5, &u.p, NULL);
    case IN_ACK:
        PUT(0x00, 0x0A, 0x00);
        PUT_PROPS();
        f = frame_of_body(MQTT_PUBACK, 0, body, n);
        return mqtt_decode_ack(&f, MQTT_V5, &u.a, NULL);
    case IN_SUBSCRIBE:
    case IN_UNSUBSCRIBE:
        PUT(0x00, 0x0A);
        PUT_PROPS();
        PUT(0x00, 0x01, 't');
        if (where == IN_SUBSCRIBE) {
            PUT(0x00);
            f = frame_of_body(MQTT_SUBSCRIBE, 2, body, n);
            return mqtt_decode_subscribe(&f, MQTT_V5, &u.s, NULL);
        }
        f = frame_of_body(MQTT_UNSUBSCRIBE, 2, body, n);
        return mqtt_decode_unsubscribe(&f, MQTT_V5, &u.s, NULL);
    case IN_SUBACK:
    case IN_UNSUBACK:
        PUT(0x00, 0x0A);
        PUT_PROPS();
        PUT(0x00);
        f = frame_of_body(where == IN_SUBACK ? MQTT_SUBACK : MQTT_UNSUBACK, 0, body, n);
        return mqtt_decode_suback(&f, MQTT_V5, &u.sa, NULL);
    case IN_DISCONNECT:
    case IN_AUTH:
        PUT(0x00);
        PUT_PROPS();
        f = frame_of_body(where == IN_AUTH ? MQTT_AUTH : MQTT_DISCONNECT, 0, body, n);
        return where == IN_AUTH ? mqtt_decode_auth(&f, MQTT_V5, &u.r, NULL)
                                : mqtt_decode_disconnect(&f, MQTT_V5, &u.r, NULL);
    }
#undef PUT
#undef PUT_PROPS
    fail();
    return SEDGE_OK;
}

static void test_props_allowed_exactly_where_table_2_4_says(void **state)
{
    (void)state;
    static const uint8_t byte1[] = {0x01}, u16[] = {0x00, 0x01}, u32[] = {0, 0, 0, 1},
                         vbi1[] = {0x01}, str[] = {0x00, 0x01, 'a'},
                         pair[] = {0x00, 0x01, 'k', 0x00, 0x01, 'v'};
    static const struct {
        uint8_t id;
        const uint8_t *value;
        size_t len;
        unsigned where;
    } table[] = {
        {0x01, byte1, 1, IN(IN_PUBLISH) | IN(IN_WILL)},
        {0x02, u32, 4, IN(IN_PUBLISH) | IN(IN_WILL)},
        {0x03, str, 3, IN(IN_PUBLISH) | IN(IN_WILL)},
        {0x08, str, 3, IN(IN_PUBLISH) | IN(IN_WILL)},
        {0x09, str, 3, IN(IN_PUBLISH) | IN(IN_WILL)},
        {0x0B, vbi1, 1, IN(IN_PUBLISH) | IN(IN_SUBSCRIBE)},
        {0x11, u32, 4, IN(IN_CONNECT) | IN(IN_CONNACK) | IN(IN_DISCONNECT)},
        {0x12, str, 3, IN(IN_CONNACK)},
        {0x13, u16, 2, IN(IN_CONNACK)},
        {0x15, str, 3, IN(IN_CONNECT) | IN(IN_CONNACK) | IN(IN_AUTH)},
        {0x16, str, 3, IN(IN_CONNECT) | IN(IN_CONNACK) | IN(IN_AUTH)},
        {0x17, byte1, 1, IN(IN_CONNECT)},
        {0x18, u32, 4, IN(IN_WILL)},
        {0x19, byte1, 1, IN(IN_CONNECT)},
        {0x1A, str, 3, IN(IN_CONNACK)},
        {0x1C, str, 3, IN(IN_CONNACK) | IN(IN_DISCONNECT)},
        {0x1F, str, 3,
         IN(IN_CONNACK) | IN(IN_ACK) | IN(IN_SUBACK) | IN(IN_UNSUBACK) | IN(IN_DISCONNECT) |
             IN(IN_AUTH)},
        {0x21, u16, 2, IN(IN_CONNECT) | IN(IN_CONNACK)},
        {0x22, u16, 2, IN(IN_CONNECT) | IN(IN_CONNACK)},
        {0x23, u16, 2, IN(IN_PUBLISH)},
        {0x24, byte1, 1, IN(IN_CONNACK)},
        {0x25, byte1, 1, IN(IN_CONNACK)},
        {0x26, pair, 6, (1u << IN_COUNT) - 1},
        {0x27, u32, 4, IN(IN_CONNECT) | IN(IN_CONNACK)},
        {0x28, byte1, 1, IN(IN_CONNACK)},
        {0x29, byte1, 1, IN(IN_CONNACK)},
        {0x2A, byte1, 1, IN(IN_CONNACK)},
    };
    /* Every context decodes with no properties at all. */
    static const uint8_t none[1];
    for (int where = 0; where < IN_COUNT; where++)
        assert_int_equal(decode_in(where, none, 0), SEDGE_OK);
    for (size_t i = 0; i < ARRAY_LEN(table); i++) {
        uint8_t block[8] = {table[i].id};
        memcpy(block + 1, table[i].value, table[i].len);
        for (int where = 0; where < IN_COUNT; where++) {
            sedge_err want = table[i].where & IN(where) ? SEDGE_OK : SEDGE_ERR_MALFORMED;
            sedge_err got = decode_in(where, block, 1 + table[i].len);
            if (got != want)
                fail_msg("property 0x%02X in context %d: got %d, want %d", table[i].id, where, got,
                         want);
        }
    }
}

static void test_user_prop_copy_reports_size_and_stays_in_bounds(void **state)
{
    (void)state;
    mqtt_connect_t c;
    static const uint8_t users[] = {0x26, 0, 1,    'a', 0, 1,   '1', 0x11, 0, 0,
                                    0,    9, 0x26, 0,   2, 'b', 'b', 0,    0};
    assert_int_equal(decode_connect_props(users, sizeof users, &c), SEDGE_OK);
    static const uint8_t want[] = {0x26, 0, 1, 'a', 0, 1, '1', 0x26, 0, 2, 'b', 'b', 0, 0};
    assert_int_equal(mqtt_props_copy_user(&c.props, NULL, 0), sizeof want);
    uint8_t out[32];
    for (size_t cap = 0; cap <= sizeof want; cap++) {
        memset(out, 0xA5, sizeof out);
        assert_int_equal(mqtt_props_copy_user(&c.props, out, cap), sizeof want);
        for (size_t k = cap; k < sizeof out; k++)
            assert_int_equal(out[k], 0xA5);
    }
    assert_memory_equal(out, want, sizeof want);
    /* The copy is itself a block mqtt_user_prop_next walks. */
    assert_int_equal(count_user_props((bytes_t){out, sizeof want}), 2);
    assert_user_prop((bytes_t){out, sizeof want}, 1, "bb", "");
}

static void test_user_prop_encode_writes_wire_form(void **state)
{
    (void)state;
    static const uint8_t want[] = {0x26, 0x00, 0x03, 'k', 'e', 'y', 0x00, 0x01, 'v'};
    ASSERT_ENCODES(want, sizeof want,
                   mqtt_user_prop_encode(enc_out, enc_cap, lit("key"), lit("v")));
}

static void test_props_encode_writes_the_block_body_user_properties_last(void **state)
{
    (void)state;
    uint8_t users[16];
    size_t nu = mqtt_user_prop_encode(users, sizeof users, lit("k"), lit("v"));
    mqtt_props_t p = {.receive_maximum = 10, .topic_alias_maximum = 5, .maximum_qos = 1};
    p.user_props = (bytes_t){users, nu};
    mqtt_props_set(&p, MQTT_PROP_RETAIN_AVAILABLE);
    mqtt_props_set(&p, MQTT_PROP_MAXIMUM_QOS);
    mqtt_props_set(&p, MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
    mqtt_props_set(&p, MQTT_PROP_RECEIVE_MAXIMUM);
    static const uint8_t want[] = {0x21, 0x00, 0x0A, 0x22, 0x00, 0x05, 0x24, 0x01, 0x25,
                                   0x00, 0x26, 0x00, 0x01, 'k',  0x00, 0x01, 'v'};
    ASSERT_ENCODES(want, sizeof want, mqtt_props_encode(enc_out, enc_cap, &p));
    /* An encoder-side set copies its user properties out as they are. */
    uint8_t out[16];
    assert_int_equal(mqtt_props_copy_user(&p, out, sizeof out), nu);
    assert_memory_equal(out, users, nu);
    mqtt_props_t none = {0};
    assert_int_equal(mqtt_props_encode(NULL, 0, &none), 0);
}

/* ---- CONNACK ---- */

static void test_connack_v311_spec_bytes_round_trip(void **state)
{
    (void)state;
    static const uint8_t accepted[] = {0x20, 0x02, 0x00, 0x00};
    static const uint8_t present[] = {0x20, 0x02, 0x01, 0x00};
    static const uint8_t refused[] = {0x20, 0x02, 0x00, 0x05};
    const uint8_t *pkts[] = {accepted, present, refused};
    bool sp[] = {false, true, false};
    uint8_t rc[] = {MQTT311_CONNACK_ACCEPTED, MQTT311_CONNACK_ACCEPTED,
                    MQTT311_CONNACK_NOT_AUTHORIZED};
    for (size_t i = 0; i < 3; i++) {
        mqtt_frame_t f = frame_whole(pkts[i], 4);
        mqtt_connack_t c;
        assert_int_equal(mqtt_decode_connack(&f, MQTT_V311, &c, NULL), SEDGE_OK);
        assert_int_equal(c.session_present, sp[i]);
        assert_int_equal(c.reason, rc[i]);
        ASSERT_ENCODES(pkts[i], 4, mqtt_encode_connack(enc_out, enc_cap, MQTT_V311, &c));
    }
}

static void test_connack_v5_properties_round_trip(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x20, 0x0D, 0x00, 0x00, 0x0A, 0x21, 0x00, 0x0A,
                                  0x22, 0x00, 0x05, 0x24, 0x01, 0x25, 0x00};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_connack_t c;
    assert_int_equal(mqtt_decode_connack(&f, MQTT_V5, &c, NULL), SEDGE_OK);
    assert_false(c.session_present);
    assert_int_equal(c.reason, MQTT_RC_SUCCESS);
    assert_int_equal(c.props.receive_maximum, 10);
    assert_int_equal(c.props.topic_alias_maximum, 5);
    assert_int_equal(c.props.maximum_qos, 1);
    assert_int_equal(c.props.retain_available, 0);
    assert_true(mqtt_props_has(&c.props, MQTT_PROP_RETAIN_AVAILABLE));
    assert_false(mqtt_props_has(&c.props, MQTT_PROP_SESSION_EXPIRY));
    ASSERT_ENCODES(pkt, sizeof pkt, mqtt_encode_connack(enc_out, enc_cap, MQTT_V5, &c));
}

static void test_connack_v5_every_property_round_trips(void **state)
{
    (void)state;
    uint8_t users[32];
    size_t nu = mqtt_user_prop_encode(users, sizeof users, lit("node"), lit("edge-1"));
    mqtt_connack_t c = {.session_present = true, .reason = MQTT_RC_SUCCESS};
    mqtt_props_t *p = &c.props;
    p->session_expiry = 7200;
    p->receive_maximum = 100;
    p->maximum_qos = 1;
    p->retain_available = 1;
    p->maximum_packet_size = 1u << 20;
    p->assigned_client_id = lit("auto-42");
    p->topic_alias_maximum = 16;
    p->reason_string = lit("welcome");
    p->wildcard_sub_available = 1;
    p->sub_id_available = 0;
    p->shared_sub_available = 1;
    p->server_keep_alive = 30;
    p->response_info = lit("resp/");
    p->server_reference = lit("other:1883");
    p->auth_method = lit("PLAIN");
    p->auth_data = lit("xyz");
    p->user_props = (bytes_t){users, nu};
    int ids[] = {MQTT_PROP_SESSION_EXPIRY,
                 MQTT_PROP_RECEIVE_MAXIMUM,
                 MQTT_PROP_MAXIMUM_QOS,
                 MQTT_PROP_RETAIN_AVAILABLE,
                 MQTT_PROP_MAXIMUM_PACKET_SIZE,
                 MQTT_PROP_ASSIGNED_CLIENT_ID,
                 MQTT_PROP_TOPIC_ALIAS_MAXIMUM,
                 MQTT_PROP_REASON_STRING,
                 MQTT_PROP_WILDCARD_SUB_AVAILABLE,
                 MQTT_PROP_SUB_ID_AVAILABLE,
                 MQTT_PROP_SHARED_SUB_AVAILABLE,
                 MQTT_PROP_SERVER_KEEP_ALIVE,
                 MQTT_PROP_RESPONSE_INFO,
                 MQTT_PROP_SERVER_REFERENCE,
                 MQTT_PROP_AUTH_METHOD,
                 MQTT_PROP_AUTH_DATA};
    for (size_t i = 0; i < ARRAY_LEN(ids); i++)
        mqtt_props_set(p, ids[i]);
    uint8_t buf[256];
    size_t n = mqtt_encode_connack(buf, sizeof buf, MQTT_V5, &c);
    mqtt_frame_t f = frame_whole(buf, n);
    mqtt_connack_t d;
    assert_int_equal(mqtt_decode_connack(&f, MQTT_V5, &d, NULL), SEDGE_OK);
    assert_true(d.session_present);
    assert_int_equal(d.props.present, p->present | 1ull << MQTT_PROP_USER_PROPERTY);
    assert_int_equal(d.props.session_expiry, 7200);
    assert_int_equal(d.props.receive_maximum, 100);
    assert_int_equal(d.props.maximum_qos, 1);
    assert_int_equal(d.props.retain_available, 1);
    assert_int_equal(d.props.maximum_packet_size, 1u << 20);
    assert_bytes_eq(d.props.assigned_client_id, "auto-42");
    assert_int_equal(d.props.topic_alias_maximum, 16);
    assert_bytes_eq(d.props.reason_string, "welcome");
    assert_int_equal(d.props.wildcard_sub_available, 1);
    assert_int_equal(d.props.sub_id_available, 0);
    assert_int_equal(d.props.shared_sub_available, 1);
    assert_int_equal(d.props.server_keep_alive, 30);
    assert_bytes_eq(d.props.response_info, "resp/");
    assert_bytes_eq(d.props.server_reference, "other:1883");
    assert_bytes_eq(d.props.auth_method, "PLAIN");
    assert_bytes_eq(d.props.auth_data, "xyz");
    assert_user_prop(d.props.raw, 0, "node", "edge-1");
    uint8_t ub[32];
    keep_user_props(&d.props, ub, sizeof ub);
    ASSERT_ENCODES(buf, n, mqtt_encode_connack(enc_out, enc_cap, MQTT_V5, &d));
}

static void test_connack_reserved_flags_are_malformed(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x02, 0x00};
    mqtt_frame_t f = frame_of_body(MQTT_CONNACK, 0, body, sizeof body);
    mqtt_connack_t c;
    assert_int_equal(mqtt_decode_connack(&f, MQTT_V311, &c, NULL), SEDGE_ERR_MALFORMED);
}

static void test_connack_truncated_or_long_is_malformed(void **state)
{
    (void)state;
    static const uint8_t v5[] = {0x00, 0x00, 0x02, 0x24, 0x01, 0x00};
    mqtt_connack_t c;
    for (size_t cut = 0; cut < 5; cut++) {
        mqtt_frame_t f = frame_of_body(MQTT_CONNACK, 0, v5, cut);
        assert_int_equal(mqtt_decode_connack(&f, MQTT_V5, &c, NULL), SEDGE_ERR_MALFORMED);
    }
    /* v5: one byte after the properties; v3.1.1: a third byte. */
    mqtt_frame_t f = frame_of_body(MQTT_CONNACK, 0, v5, 6);
    assert_int_equal(mqtt_decode_connack(&f, MQTT_V5, &c, NULL), SEDGE_ERR_MALFORMED);
    f = frame_of_body(MQTT_CONNACK, 0, v5, 3);
    assert_int_equal(mqtt_decode_connack(&f, MQTT_V311, &c, NULL), SEDGE_ERR_MALFORMED);
}

static void test_connack_v5_maximum_qos_2_is_protocol_error(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x00, 0x02, 0x24, 0x02};
    mqtt_frame_t f = frame_of_body(MQTT_CONNACK, 0, body, sizeof body);
    mqtt_connack_t c;
    assert_int_equal(mqtt_decode_connack(&f, MQTT_V5, &c, NULL), SEDGE_ERR_PROTOCOL);
}

/* ---- PUBLISH ---- */

static void test_publish_v311_qos1_spec_example_round_trips(void **state)
{
    (void)state;
    /* Topic "a/b", packet identifier 10 (spec 3.3.2.3 example). */
    static const uint8_t pkt[] = {0x33, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'e', 'y'};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_publish_t p;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V311, &p, NULL), SEDGE_OK);
    assert_false(p.dup);
    assert_int_equal(p.qos, 1);
    assert_true(p.retain);
    assert_bytes_eq(p.topic, "a/b");
    assert_int_equal(p.packet_id, 10);
    assert_bytes_eq(p.payload, "hey");
    assert_int_equal(p.props.present, 0);
    ASSERT_ENCODES(pkt, sizeof pkt, mqtt_encode_publish(enc_out, enc_cap, MQTT_V311, &p));
    assert_int_equal(mqtt_publish_size(MQTT_V311, &p), sizeof pkt);
}

static void test_publish_qos0_has_no_packet_id_and_may_be_empty(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x30, 0x03, 0x00, 0x01, 't'};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_publish_t p;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V311, &p, NULL), SEDGE_OK);
    assert_int_equal(p.qos, 0);
    assert_int_equal(p.packet_id, 0);
    assert_int_equal(p.payload.len, 0);
    ASSERT_ENCODES(pkt, sizeof pkt, mqtt_encode_publish(enc_out, enc_cap, MQTT_V311, &p));
    static const uint8_t v5[] = {0x30, 0x04, 0x00, 0x01, 't', 0x00};
    f = frame_whole(v5, sizeof v5);
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V5, &p, NULL), SEDGE_OK);
    ASSERT_ENCODES(v5, sizeof v5, mqtt_encode_publish(enc_out, enc_cap, MQTT_V5, &p));
}

static void test_publish_qos2_dup_round_trips(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x3C, 0x06, 0x00, 0x01, 'x', 0xFF, 0xFF, 0x00};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_publish_t p;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V5, &p, NULL), SEDGE_OK);
    assert_true(p.dup);
    assert_int_equal(p.qos, 2);
    assert_false(p.retain);
    assert_int_equal(p.packet_id, 0xFFFF);
    ASSERT_ENCODES(pkt, sizeof pkt, mqtt_encode_publish(enc_out, enc_cap, MQTT_V5, &p));
}

/* Every PUBLISH property, in an order the encoder would not use, with two
 * subscription identifiers and two user properties with the same key. */
static const uint8_t publish_v5_all[] = {
    0x32, 0x3A,                                    /* PUBLISH QoS 1, 58 */
    0x00, 0x03, 'a',  '/',  'b',  0x00, 0x0A,      /* topic, packet id 10 */
    0x30,                                          /* properties: 48 */
    0x01, 0x01,                                    /* payload format UTF-8 */
    0x02, 0x00, 0x00, 0x00, 0x3C,                  /* message expiry 60 */
    0x23, 0x00, 0x05,                              /* topic alias 5 */
    0x08, 0x00, 0x03, 'r',  '/',  't',             /* response topic */
    0x09, 0x00, 0x02, 0xDE, 0xAD,                  /* correlation data */
    0x26, 0x00, 0x01, 'k',  0x00, 0x01, 'v',       /* user property */
    0x0B, 0x07,                                    /* subscription id 7 */
    0x03, 0x00, 0x04, 't',  'e',  'x',  't',       /* content type */
    0x0B, 0x80, 0x01,                              /* subscription id 128 */
    0x26, 0x00, 0x01, 'k',  0x00, 0x02, 'v',  '2', /* user property */
    'h',  'i',                                     /* payload */
};

static void assert_publish_v5_all_fields(const mqtt_publish_t *p)
{
    assert_int_equal(p->qos, 1);
    assert_bytes_eq(p->topic, "a/b");
    assert_int_equal(p->packet_id, 10);
    assert_bytes_eq(p->payload, "hi");
    const mqtt_props_t *q = &p->props;
    assert_int_equal(q->payload_format, 1);
    assert_int_equal(q->message_expiry, 60);
    assert_int_equal(q->topic_alias, 5);
    assert_bytes_eq(q->response_topic, "r/t");
    assert_int_equal(q->correlation_data.len, 2);
    assert_int_equal(q->correlation_data.data[0], 0xDE);
    assert_bytes_eq(q->content_type, "text");
    assert_int_equal(q->sub_id, 7);
    assert_int_equal(q->sub_id_count, 2);
    assert_int_equal(q->user_prop_count, 2);
    assert_user_prop(q->raw, 0, "k", "v");
    assert_user_prop(q->raw, 1, "k", "v2");
    assert_int_equal(q->present,
                     1ull << MQTT_PROP_PAYLOAD_FORMAT | 1ull << MQTT_PROP_MESSAGE_EXPIRY |
                         1ull << MQTT_PROP_TOPIC_ALIAS | 1ull << MQTT_PROP_RESPONSE_TOPIC |
                         1ull << MQTT_PROP_CORRELATION_DATA | 1ull << MQTT_PROP_USER_PROPERTY |
                         1ull << MQTT_PROP_SUBSCRIPTION_ID | 1ull << MQTT_PROP_CONTENT_TYPE);
}

static void test_publish_v5_every_property_decodes_and_round_trips(void **state)
{
    (void)state;
    mqtt_frame_t f = frame_whole(publish_v5_all, sizeof publish_v5_all);
    mqtt_publish_t p;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V5, &p, NULL), SEDGE_OK);
    assert_publish_v5_all_fields(&p);
    /* Encode again, both subscription identifiers and user properties kept,
     * and decode that: the same fields in the encoder's order. */
    static const uint32_t ids[] = {7, 128};
    p.props.sub_ids = ids;
    uint8_t ub[32];
    keep_user_props(&p.props, ub, sizeof ub);
    uint8_t buf[128];
    size_t n = mqtt_encode_publish(buf, sizeof buf, MQTT_V5, &p);
    assert_int_equal(n, sizeof publish_v5_all);
    f = frame_whole(buf, n);
    mqtt_publish_t q;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V5, &q, NULL), SEDGE_OK);
    assert_publish_v5_all_fields(&q);
    /* mqtt_publish_size leaves the properties out (an empty block). */
    assert_int_equal(mqtt_publish_size(MQTT_V5, &p), sizeof publish_v5_all - 48);
}

static void test_publish_v5_encodes_several_subscription_identifiers(void **state)
{
    (void)state;
    static const uint32_t ids[] = {1, 300, 268435455};
    mqtt_publish_t p = {.topic = lit("s")};
    p.props.sub_ids = ids;
    p.props.sub_id_count = 3;
    mqtt_props_set(&p.props, MQTT_PROP_SUBSCRIPTION_ID);
    static const uint8_t want[] = {0x30, 0x0E, 0x00, 0x01, 's',  0x0A, 0x0B, 0x01,
                                   0x0B, 0xAC, 0x02, 0x0B, 0xFF, 0xFF, 0xFF, 0x7F};
    ASSERT_ENCODES(want, sizeof want, mqtt_encode_publish(enc_out, enc_cap, MQTT_V5, &p));
    mqtt_frame_t f = frame_whole(want, sizeof want);
    mqtt_publish_t d;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V5, &d, NULL), SEDGE_OK);
    assert_int_equal(d.props.sub_id, 1);
    assert_int_equal(d.props.sub_id_count, 3);
}

static void test_publish_v5_empty_topic_with_alias_decodes(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x02, 'p'};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_publish_t p;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V5, &p, NULL), SEDGE_OK);
    assert_int_equal(p.topic.len, 0);
    assert_int_equal(p.props.topic_alias, 2);
    assert_bytes_eq(p.payload, "p");
}

static void test_publish_packet_id_0_is_protocol_error(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x01, 't', 0x00, 0x00};
    mqtt_frame_t f = frame_of_body(MQTT_PUBLISH, 0x02, body, sizeof body);
    mqtt_publish_t p;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V311, &p, NULL), SEDGE_ERR_PROTOCOL);
    f.flags = 0x04;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V311, &p, NULL), SEDGE_ERR_PROTOCOL);
}

static void test_publish_qos0_with_dup_is_protocol_error(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x38, 0x03, 0x00, 0x01, 't'};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_publish_t p;
    const char *why = NULL;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V311, &p, &why), SEDGE_ERR_PROTOCOL);
    assert_non_null(why);
}

static void test_publish_truncated_is_malformed(void **state)
{
    (void)state;
    /* Cut inside the topic, the packet id or the v5 property block. */
    for (size_t cut = 0; cut < 5 + 2 + 1 + 48; cut++) {
        mqtt_frame_t f = frame_of_body(MQTT_PUBLISH, 0x02, publish_v5_all + 2, cut);
        mqtt_publish_t p;
        assert_int_equal(mqtt_decode_publish(&f, MQTT_V5, &p, NULL), SEDGE_ERR_MALFORMED);
    }
    static const uint8_t v311[] = {0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A};
    for (size_t cut = 0; cut < sizeof v311; cut++) {
        mqtt_frame_t f = frame_of_body(MQTT_PUBLISH, 0x02, v311, cut);
        mqtt_publish_t p;
        assert_int_equal(mqtt_decode_publish(&f, MQTT_V311, &p, NULL), SEDGE_ERR_MALFORMED);
    }
}

static void test_publish_invalid_utf8_topic_is_malformed(void **state)
{
    (void)state;
    static const struct {
        uint8_t bytes[4];
        size_t n;
    } bad[] = {
        {{0x00}, 1},                   /* U+0000 */
        {{'a', 0x00}, 2},              /* U+0000 inside */
        {{0xED, 0xA0, 0x80}, 3},       /* U+D800 */
        {{0xED, 0xBF, 0xBF}, 3},       /* U+DFFF */
        {{0xC0, 0xAF}, 2},             /* overlong '/' */
        {{0xC1, 0xBF}, 2},             /* overlong U+007F */
        {{0xE0, 0x80, 0xAF}, 3},       /* overlong, three bytes */
        {{0xF0, 0x80, 0x80, 0xAF}, 4}, /* overlong, four bytes */
        {{0xF4, 0x90, 0x80, 0x80}, 4}, /* U+110000 */
        {{0x80}, 1},                   /* lone continuation byte */
        {{0xE2, 0x82}, 2},             /* truncated sequence */
        {{0xFF}, 1},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        uint8_t body[8] = {0x00, (uint8_t)bad[i].n};
        memcpy(body + 2, bad[i].bytes, bad[i].n);
        mqtt_frame_t f = frame_of_body(MQTT_PUBLISH, 0, body, 2 + bad[i].n);
        mqtt_publish_t p;
        assert_int_equal(mqtt_decode_publish(&f, MQTT_V311, &p, NULL), SEDGE_ERR_MALFORMED);
    }
    /* The spec's own example, "A" U+2A6D4, is fine. */
    static const uint8_t ok[] = {0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94};
    mqtt_frame_t f = frame_of_body(MQTT_PUBLISH, 0, ok, sizeof ok);
    mqtt_publish_t p;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V311, &p, NULL), SEDGE_OK);
}

static void test_publish_payload_is_not_checked_as_utf8(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x01, 't', 0x00, 0xFF, 0xED, 0xA0, 0x80};
    mqtt_frame_t f = frame_of_body(MQTT_PUBLISH, 0, body, sizeof body);
    mqtt_publish_t p;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V311, &p, NULL), SEDGE_OK);
    assert_int_equal(p.payload.len, 5);
}

static void test_publish_v5_subscription_id_0_is_protocol_error(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x01, 't', 0x02, 0x0B, 0x00};
    mqtt_frame_t f = frame_of_body(MQTT_PUBLISH, 0, body, sizeof body);
    mqtt_publish_t p;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V5, &p, NULL), SEDGE_ERR_PROTOCOL);
}

static void test_publish_v5_five_byte_subscription_id_is_malformed(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x01, 't', 0x06, 0x0B, 0x80, 0x80, 0x80, 0x80, 0x01};
    mqtt_frame_t f = frame_of_body(MQTT_PUBLISH, 0, body, sizeof body);
    mqtt_publish_t p;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V5, &p, NULL), SEDGE_ERR_MALFORMED);
}

static void test_publish_v5_property_not_allowed_is_malformed(void **state)
{
    (void)state;
    /* Session expiry and receive maximum belong to CONNECT/CONNACK. */
    static const uint8_t se[] = {0x00, 0x01, 't', 0x05, 0x11, 0, 0, 0, 1};
    static const uint8_t rm[] = {0x00, 0x01, 't', 0x03, 0x21, 0, 1};
    mqtt_publish_t p;
    mqtt_frame_t f = frame_of_body(MQTT_PUBLISH, 0, se, sizeof se);
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V5, &p, NULL), SEDGE_ERR_MALFORMED);
    f = frame_of_body(MQTT_PUBLISH, 0, rm, sizeof rm);
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V5, &p, NULL), SEDGE_ERR_MALFORMED);
}

static void test_publish_v5_duplicate_topic_alias_is_protocol_error(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x01, 't', 0x06, 0x23, 0, 1, 0x23, 0, 2};
    mqtt_frame_t f = frame_of_body(MQTT_PUBLISH, 0, body, sizeof body);
    mqtt_publish_t p;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V5, &p, NULL), SEDGE_ERR_PROTOCOL);
}

static void test_publish_v5_payload_format_2_is_protocol_error(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x01, 't', 0x02, 0x01, 0x02};
    mqtt_frame_t f = frame_of_body(MQTT_PUBLISH, 0, body, sizeof body);
    mqtt_publish_t p;
    assert_int_equal(mqtt_decode_publish(&f, MQTT_V5, &p, NULL), SEDGE_ERR_PROTOCOL);
}

/* ---- PUBACK, PUBREC, PUBREL, PUBCOMP ---- */

static void test_ack_v311_each_type_round_trips(void **state)
{
    (void)state;
    static const uint8_t first[] = {0x40, 0x50, 0x62, 0x70};
    static const uint8_t types[] = {MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP};
    for (size_t i = 0; i < 4; i++) {
        uint8_t pkt[] = {first[i], 0x02, 0x00, 0x0A};
        mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
        assert_int_equal(f.type, types[i]);
        mqtt_ack_t a;
        assert_int_equal(mqtt_decode_ack(&f, MQTT_V311, &a, NULL), SEDGE_OK);
        assert_int_equal(a.packet_id, 10);
        assert_int_equal(a.reason, 0);
        ASSERT_ENCODES(pkt, sizeof pkt, mqtt_encode_ack(enc_out, enc_cap, MQTT_V311, types[i], &a));
        /* The same success ack in v5 has the same short form. */
        assert_int_equal(mqtt_decode_ack(&f, MQTT_V5, &a, NULL), SEDGE_OK);
        ASSERT_ENCODES(pkt, sizeof pkt, mqtt_encode_ack(enc_out, enc_cap, MQTT_V5, types[i], &a));
    }
}

static void test_ack_v5_reason_code_only_short_form(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x40, 0x03, 0x00, 0x0A, 0x10};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_ack_t a;
    assert_int_equal(mqtt_decode_ack(&f, MQTT_V5, &a, NULL), SEDGE_OK);
    assert_int_equal(a.packet_id, 10);
    assert_int_equal(a.reason, MQTT_RC_NO_MATCHING_SUBSCRIBERS);
    assert_int_equal(a.props.present, 0);
    ASSERT_ENCODES(pkt, sizeof pkt, mqtt_encode_ack(enc_out, enc_cap, MQTT_V5, MQTT_PUBACK, &a));
    static const uint8_t pubrel[] = {0x62, 0x03, 0x00, 0x0A, 0x92};
    f = frame_whole(pubrel, sizeof pubrel);
    assert_int_equal(mqtt_decode_ack(&f, MQTT_V5, &a, NULL), SEDGE_OK);
    assert_int_equal(a.reason, MQTT_RC_PACKET_ID_NOT_FOUND);
    ASSERT_ENCODES(pubrel, sizeof pubrel,
                   mqtt_encode_ack(enc_out, enc_cap, MQTT_V5, MQTT_PUBREL, &a));
}

static void test_ack_v5_empty_property_block_is_accepted(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x40, 0x04, 0x00, 0x0A, 0x00, 0x00};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_ack_t a;
    assert_int_equal(mqtt_decode_ack(&f, MQTT_V5, &a, NULL), SEDGE_OK);
    assert_int_equal(a.reason, 0);
    /* Encoded again it takes the shortest form. */
    static const uint8_t shortest[] = {0x40, 0x02, 0x00, 0x0A};
    ASSERT_ENCODES(shortest, sizeof shortest,
                   mqtt_encode_ack(enc_out, enc_cap, MQTT_V5, MQTT_PUBACK, &a));
}

static void test_ack_v5_reason_string_and_user_property_round_trip(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x50, 0x11, 0x00, 0x0A, 0x80, 0x0D, 0x1F, 0x00, 0x03, 'b',
                                  'a',  'd',  0x26, 0x00, 0x01, 'k',  0x00, 0x01, 'v'};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_ack_t a;
    assert_int_equal(mqtt_decode_ack(&f, MQTT_V5, &a, NULL), SEDGE_OK);
    assert_int_equal(f.type, MQTT_PUBREC);
    assert_int_equal(a.reason, MQTT_RC_UNSPECIFIED);
    assert_bytes_eq(a.props.reason_string, "bad");
    assert_int_equal(a.props.user_prop_count, 1);
    assert_user_prop(a.props.raw, 0, "k", "v");
    uint8_t ub[16];
    keep_user_props(&a.props, ub, sizeof ub);
    ASSERT_ENCODES(pkt, sizeof pkt, mqtt_encode_ack(enc_out, enc_cap, MQTT_V5, MQTT_PUBREC, &a));
    /* A byte after the properties is malformed. */
    uint8_t body[32];
    memcpy(body, pkt + 2, sizeof pkt - 2);
    body[sizeof pkt - 2] = 0x00;
    f = frame_of_body(MQTT_PUBREC, 0, body, sizeof pkt - 1);
    assert_int_equal(mqtt_decode_ack(&f, MQTT_V5, &a, NULL), SEDGE_ERR_MALFORMED);
}

static void test_ack_packet_id_0_is_protocol_error(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x40, 0x02, 0x00, 0x00};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_ack_t a;
    assert_int_equal(mqtt_decode_ack(&f, MQTT_V311, &a, NULL), SEDGE_ERR_PROTOCOL);
    assert_int_equal(mqtt_decode_ack(&f, MQTT_V5, &a, NULL), SEDGE_ERR_PROTOCOL);
}

static void test_ack_truncated_or_long_is_malformed(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x0A, 0x00};
    mqtt_ack_t a;
    for (size_t cut = 0; cut < 2; cut++) {
        mqtt_frame_t f = frame_of_body(MQTT_PUBACK, 0, body, cut);
        assert_int_equal(mqtt_decode_ack(&f, MQTT_V311, &a, NULL), SEDGE_ERR_MALFORMED);
        assert_int_equal(mqtt_decode_ack(&f, MQTT_V5, &a, NULL), SEDGE_ERR_MALFORMED);
    }
    mqtt_frame_t f = frame_of_body(MQTT_PUBACK, 0, body, 3);
    assert_int_equal(mqtt_decode_ack(&f, MQTT_V311, &a, NULL), SEDGE_ERR_MALFORMED);
}

static void test_ack_v5_property_not_allowed_is_malformed(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x0A, 0x00, 0x02, 0x0B, 0x01};
    mqtt_frame_t f = frame_of_body(MQTT_PUBACK, 0, body, sizeof body);
    mqtt_ack_t a;
    assert_int_equal(mqtt_decode_ack(&f, MQTT_V5, &a, NULL), SEDGE_ERR_MALFORMED);
}

/* ---- SUBSCRIBE and UNSUBSCRIBE ---- */

static void test_subscribe_v311_spec_example_round_trips(void **state)
{
    (void)state;
    /* Spec 3.8.3 example: "a/b" QoS 1, "c/d" QoS 2, packet identifier 10. */
    static const uint8_t pkt[] = {0x82, 0x0E, 0x00, 0x0A, 0x00, 0x03, 'a', '/',
                                  'b',  0x01, 0x00, 0x03, 'c',  '/',  'd', 0x02};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_subscribe_t s;
    assert_int_equal(mqtt_decode_subscribe(&f, MQTT_V311, &s, NULL), SEDGE_OK);
    assert_int_equal(s.packet_id, 10);
    assert_int_equal(s.count, 2);
    mqtt_sub_entry_t e[3];
    size_t cursor = 0;
    assert_true(mqtt_sub_entry_next(&s, MQTT_SUBSCRIBE, &cursor, &e[0]));
    assert_true(mqtt_sub_entry_next(&s, MQTT_SUBSCRIBE, &cursor, &e[1]));
    assert_false(mqtt_sub_entry_next(&s, MQTT_SUBSCRIBE, &cursor, &e[2]));
    assert_bytes_eq(e[0].filter, "a/b");
    assert_int_equal(e[0].qos, 1);
    assert_bytes_eq(e[1].filter, "c/d");
    assert_int_equal(e[1].qos, 2);
    assert_false(e[1].no_local);
    ASSERT_ENCODES(
        pkt, sizeof pkt,
        mqtt_encode_subscribe(enc_out, enc_cap, MQTT_V311, MQTT_SUBSCRIBE, 10, NULL, e, 2));
}

static void test_subscribe_v5_options_and_properties_round_trip(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {
        0x82, 0x16, 0x00, 0x0A,                                   /* SUBSCRIBE, 22, id 10 */
        0x09, 0x0B, 0x05, 0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', /* sub id 5, user */
        0x00, 0x03, 'a',  '/',  '#',  0x2D,                       /* RH 2, RAP, NL, QoS 1 */
        0x00, 0x01, '+',  0x02,                                   /* QoS 2 */
    };
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_subscribe_t s;
    assert_int_equal(mqtt_decode_subscribe(&f, MQTT_V5, &s, NULL), SEDGE_OK);
    assert_int_equal(s.count, 2);
    assert_int_equal(s.props.sub_id, 5);
    assert_int_equal(s.props.sub_id_count, 1);
    assert_int_equal(s.props.user_prop_count, 1);
    mqtt_sub_entry_t e[2];
    size_t cursor = 0;
    assert_true(mqtt_sub_entry_next(&s, MQTT_SUBSCRIBE, &cursor, &e[0]));
    assert_true(mqtt_sub_entry_next(&s, MQTT_SUBSCRIBE, &cursor, &e[1]));
    assert_bytes_eq(e[0].filter, "a/#");
    assert_int_equal(e[0].qos, 1);
    assert_true(e[0].no_local);
    assert_true(e[0].retain_as_published);
    assert_int_equal(e[0].retain_handling, 2);
    assert_bytes_eq(e[1].filter, "+");
    assert_int_equal(e[1].qos, 2);
    assert_false(e[1].no_local);
    assert_false(e[1].retain_as_published);
    assert_int_equal(e[1].retain_handling, 0);
    uint8_t ub[16];
    keep_user_props(&s.props, ub, sizeof ub);
    ASSERT_ENCODES(
        pkt, sizeof pkt,
        mqtt_encode_subscribe(enc_out, enc_cap, MQTT_V5, MQTT_SUBSCRIBE, 10, &s.props, e, 2));
}

static sedge_err decode_sub(uint8_t version, const uint8_t *body, size_t len)
{
    mqtt_frame_t f = frame_of_body(MQTT_SUBSCRIBE, 2, body, len);
    mqtt_subscribe_t s;
    return mqtt_decode_subscribe(&f, version, &s, NULL);
}

static void test_subscribe_with_no_filters_is_protocol_error(void **state)
{
    (void)state;
    static const uint8_t v311[] = {0x00, 0x0A};
    static const uint8_t v5[] = {0x00, 0x0A, 0x00};
    assert_int_equal(decode_sub(MQTT_V311, v311, sizeof v311), SEDGE_ERR_PROTOCOL);
    assert_int_equal(decode_sub(MQTT_V5, v5, sizeof v5), SEDGE_ERR_PROTOCOL);
}

static void test_subscribe_bad_option_bits_are_refused(void **state)
{
    (void)state;
    /* 3.1.1: any of bits 2-7 set, or QoS 3, is malformed [MQTT-3.8.3-4]. */
    for (unsigned opts = 0; opts < 256; opts++) {
        uint8_t body[] = {0x00, 0x0A, 0x00, 0x01, 't', (uint8_t)opts};
        sedge_err want = opts <= 2 ? SEDGE_OK : SEDGE_ERR_MALFORMED;
        assert_int_equal(decode_sub(MQTT_V311, body, sizeof body), want);
    }
    /* 5.0: reserved bits 6-7 are malformed [MQTT-3.8.3-5]; QoS 3 and retain
     * handling 3 are protocol errors (3.8.3.1). */
    for (unsigned opts = 0; opts < 256; opts++) {
        uint8_t body[] = {0x00, 0x0A, 0x00, 0x00, 0x01, 't', (uint8_t)opts};
        sedge_err want = SEDGE_OK;
        if (opts & 0xC0)
            want = SEDGE_ERR_MALFORMED;
        else if ((opts & 3) == 3 || ((opts >> 4) & 3) == 3)
            want = SEDGE_ERR_PROTOCOL;
        assert_int_equal(decode_sub(MQTT_V5, body, sizeof body), want);
    }
}

static void test_subscribe_missing_options_byte_is_malformed(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x0A, 0x00, 0x01, 't'};
    assert_int_equal(decode_sub(MQTT_V311, body, sizeof body), SEDGE_ERR_MALFORMED);
    static const uint8_t cut_filter[] = {0x00, 0x0A, 0x00, 0x03, 't'};
    assert_int_equal(decode_sub(MQTT_V311, cut_filter, sizeof cut_filter), SEDGE_ERR_MALFORMED);
}

static void test_subscribe_packet_id_0_is_protocol_error(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x00, 0x00, 0x01, 't', 0x00};
    assert_int_equal(decode_sub(MQTT_V311, body, sizeof body), SEDGE_ERR_PROTOCOL);
}

static void test_subscribe_invalid_utf8_filter_is_malformed(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x0A, 0x00, 0x02, 'a', 0x00, 0x00};
    assert_int_equal(decode_sub(MQTT_V311, body, sizeof body), SEDGE_ERR_MALFORMED);
}

static void test_subscribe_v5_subscription_id_rules(void **state)
{
    (void)state;
    /* One identifier only in a SUBSCRIBE, and not 0. */
    static const uint8_t twice[] = {0x00, 0x0A, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, 't', 0};
    static const uint8_t zero[] = {0x00, 0x0A, 0x02, 0x0B, 0x00, 0x00, 0x01, 't', 0};
    static const uint8_t max[] = {0x00, 0x0A, 0x05, 0x0B, 0xFF, 0xFF,
                                  0xFF, 0x7F, 0x00, 0x01, 't',  0};
    assert_int_equal(decode_sub(MQTT_V5, twice, sizeof twice), SEDGE_ERR_PROTOCOL);
    assert_int_equal(decode_sub(MQTT_V5, zero, sizeof zero), SEDGE_ERR_PROTOCOL);
    assert_int_equal(decode_sub(MQTT_V5, max, sizeof max), SEDGE_OK);
}

static void test_unsubscribe_v311_round_trips(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0xA2, 0x0C, 0x00, 0x0A, 0x00, 0x03, 'a',
                                  '/',  'b',  0x00, 0x03, 'c',  '/',  'd'};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_subscribe_t s;
    assert_int_equal(mqtt_decode_unsubscribe(&f, MQTT_V311, &s, NULL), SEDGE_OK);
    assert_int_equal(s.count, 2);
    mqtt_sub_entry_t e[3];
    size_t cursor = 0;
    assert_true(mqtt_sub_entry_next(&s, MQTT_UNSUBSCRIBE, &cursor, &e[0]));
    assert_true(mqtt_sub_entry_next(&s, MQTT_UNSUBSCRIBE, &cursor, &e[1]));
    assert_false(mqtt_sub_entry_next(&s, MQTT_UNSUBSCRIBE, &cursor, &e[2]));
    assert_bytes_eq(e[0].filter, "a/b");
    assert_bytes_eq(e[1].filter, "c/d");
    ASSERT_ENCODES(
        pkt, sizeof pkt,
        mqtt_encode_subscribe(enc_out, enc_cap, MQTT_V311, MQTT_UNSUBSCRIBE, 10, NULL, e, 2));
}

static void test_unsubscribe_v5_round_trips(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0xA2, 0x0D, 0x00, 0x0A, 0x00, 0x00, 0x03, 'a',
                                  '/',  'b',  0x00, 0x03, 'c',  '/',  'd'};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_subscribe_t s;
    assert_int_equal(mqtt_decode_unsubscribe(&f, MQTT_V5, &s, NULL), SEDGE_OK);
    assert_int_equal(s.count, 2);
    mqtt_sub_entry_t e[2];
    size_t cursor = 0;
    assert_true(mqtt_sub_entry_next(&s, MQTT_UNSUBSCRIBE, &cursor, &e[0]));
    assert_true(mqtt_sub_entry_next(&s, MQTT_UNSUBSCRIBE, &cursor, &e[1]));
    ASSERT_ENCODES(
        pkt, sizeof pkt,
        mqtt_encode_subscribe(enc_out, enc_cap, MQTT_V5, MQTT_UNSUBSCRIBE, 10, &s.props, e, 2));
}

static void test_unsubscribe_with_no_filters_is_protocol_error(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x0A, 0x00};
    mqtt_frame_t f = frame_of_body(MQTT_UNSUBSCRIBE, 2, body, 2);
    mqtt_subscribe_t s;
    assert_int_equal(mqtt_decode_unsubscribe(&f, MQTT_V311, &s, NULL), SEDGE_ERR_PROTOCOL);
    f = frame_of_body(MQTT_UNSUBSCRIBE, 2, body, 3);
    assert_int_equal(mqtt_decode_unsubscribe(&f, MQTT_V5, &s, NULL), SEDGE_ERR_PROTOCOL);
}

static void test_unsubscribe_v5_subscription_id_is_malformed(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x0A, 0x02, 0x0B, 0x01, 0x00, 0x01, 't'};
    mqtt_frame_t f = frame_of_body(MQTT_UNSUBSCRIBE, 2, body, sizeof body);
    mqtt_subscribe_t s;
    assert_int_equal(mqtt_decode_unsubscribe(&f, MQTT_V5, &s, NULL), SEDGE_ERR_MALFORMED);
}

/* ---- SUBACK and UNSUBACK ---- */

static void test_suback_v311_round_trips(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_suback_t s;
    assert_int_equal(mqtt_decode_suback(&f, MQTT_V311, &s, NULL), SEDGE_OK);
    assert_int_equal(s.packet_id, 10);
    assert_int_equal(s.reasons.len, 3);
    assert_int_equal(s.reasons.data[2], MQTT311_SUBACK_FAILURE);
    ASSERT_ENCODES(pkt, sizeof pkt,
                   mqtt_encode_suback(enc_out, enc_cap, MQTT_V311, MQTT_SUBACK, 10, NULL,
                                      s.reasons.data, s.reasons.len));
}

static void test_suback_v5_round_trips(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0x90, 0x0D, 0x00, 0x0A, 0x05, 0x1F, 0x00, 0x02,
                                  'n',  'o',  0x00, 0x01, 0x02, 0x80, 0x87};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_suback_t s;
    assert_int_equal(mqtt_decode_suback(&f, MQTT_V5, &s, NULL), SEDGE_OK);
    assert_bytes_eq(s.props.reason_string, "no");
    assert_int_equal(s.reasons.len, 5);
    assert_int_equal(s.reasons.data[4], MQTT_RC_NOT_AUTHORIZED);
    ASSERT_ENCODES(pkt, sizeof pkt,
                   mqtt_encode_suback(enc_out, enc_cap, MQTT_V5, MQTT_SUBACK, 10, &s.props,
                                      s.reasons.data, s.reasons.len));
}

static void test_suback_without_reason_codes_is_protocol_error(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x0A, 0x00};
    mqtt_frame_t f = frame_of_body(MQTT_SUBACK, 0, body, 2);
    mqtt_suback_t s;
    assert_int_equal(mqtt_decode_suback(&f, MQTT_V311, &s, NULL), SEDGE_ERR_PROTOCOL);
    f = frame_of_body(MQTT_SUBACK, 0, body, 3);
    assert_int_equal(mqtt_decode_suback(&f, MQTT_V5, &s, NULL), SEDGE_ERR_PROTOCOL);
    f = frame_of_body(MQTT_SUBACK, 0, body, 1);
    assert_int_equal(mqtt_decode_suback(&f, MQTT_V311, &s, NULL), SEDGE_ERR_MALFORMED);
}

static void test_unsuback_v311_has_no_reason_codes(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0xB0, 0x02, 0x00, 0x0A};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_suback_t s;
    assert_int_equal(mqtt_decode_suback(&f, MQTT_V311, &s, NULL), SEDGE_OK);
    assert_int_equal(s.reasons.len, 0);
    static const uint8_t reasons[] = {0x00};
    ASSERT_ENCODES(
        pkt, sizeof pkt,
        mqtt_encode_suback(enc_out, enc_cap, MQTT_V311, MQTT_UNSUBACK, 10, NULL, reasons, 1));
    static const uint8_t body[] = {0x00, 0x0A, 0x00};
    f = frame_of_body(MQTT_UNSUBACK, 0, body, sizeof body);
    assert_int_equal(mqtt_decode_suback(&f, MQTT_V311, &s, NULL), SEDGE_ERR_MALFORMED);
}

static void test_unsuback_v5_round_trips(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0xB0, 0x05, 0x00, 0x0A, 0x00, 0x00, 0x11};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_suback_t s;
    assert_int_equal(mqtt_decode_suback(&f, MQTT_V5, &s, NULL), SEDGE_OK);
    assert_int_equal(s.reasons.len, 2);
    assert_int_equal(s.reasons.data[1], MQTT_RC_NO_SUBSCRIPTION_EXISTED);
    ASSERT_ENCODES(pkt, sizeof pkt,
                   mqtt_encode_suback(enc_out, enc_cap, MQTT_V5, MQTT_UNSUBACK, 10, &s.props,
                                      s.reasons.data, s.reasons.len));
    /* SUBACK-only reason string is allowed; a subscription id is not. */
    static const uint8_t bad[] = {0x00, 0x0A, 0x02, 0x0B, 0x01, 0x00};
    f = frame_of_body(MQTT_UNSUBACK, 0, bad, sizeof bad);
    assert_int_equal(mqtt_decode_suback(&f, MQTT_V5, &s, NULL), SEDGE_ERR_MALFORMED);
}

/* ---- DISCONNECT and AUTH ---- */

static void test_disconnect_v311_is_empty(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0xE0, 0x00};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_reason_packet_t d;
    assert_int_equal(mqtt_decode_disconnect(&f, MQTT_V311, &d, NULL), SEDGE_OK);
    d.reason = MQTT_RC_SERVER_SHUTTING_DOWN; /* 3.1.1 has no reason to send */
    ASSERT_ENCODES(pkt, sizeof pkt, mqtt_encode_disconnect(enc_out, enc_cap, MQTT_V311, &d));
    static const uint8_t body[] = {0x00};
    f = frame_of_body(MQTT_DISCONNECT, 0, body, 1);
    assert_int_equal(mqtt_decode_disconnect(&f, MQTT_V311, &d, NULL), SEDGE_ERR_MALFORMED);
}

static void test_disconnect_v5_short_forms(void **state)
{
    (void)state;
    static const uint8_t empty[] = {0xE0, 0x00};
    static const uint8_t reason_only[] = {0xE0, 0x01, 0x04};
    static const uint8_t reason_empty_props[] = {0xE0, 0x02, 0x8E, 0x00};
    mqtt_reason_packet_t d;
    mqtt_frame_t f = frame_whole(empty, sizeof empty);
    assert_int_equal(mqtt_decode_disconnect(&f, MQTT_V5, &d, NULL), SEDGE_OK);
    assert_int_equal(d.reason, MQTT_RC_SUCCESS);
    ASSERT_ENCODES(empty, sizeof empty, mqtt_encode_disconnect(enc_out, enc_cap, MQTT_V5, &d));
    f = frame_whole(reason_only, sizeof reason_only);
    assert_int_equal(mqtt_decode_disconnect(&f, MQTT_V5, &d, NULL), SEDGE_OK);
    assert_int_equal(d.reason, MQTT_RC_DISCONNECT_WITH_WILL);
    ASSERT_ENCODES(reason_only, sizeof reason_only,
                   mqtt_encode_disconnect(enc_out, enc_cap, MQTT_V5, &d));
    f = frame_whole(reason_empty_props, sizeof reason_empty_props);
    assert_int_equal(mqtt_decode_disconnect(&f, MQTT_V5, &d, NULL), SEDGE_OK);
    assert_int_equal(d.reason, MQTT_RC_SESSION_TAKEN_OVER);
    assert_int_equal(d.props.present, 0);
}

static void test_disconnect_v5_properties_round_trip(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0xE0, 0x12, 0x9C, 0x10, 0x11, 0x00, 0x00, 0x00, 0x00, 0x1C,
                                  0x00, 0x01, 'x',  0x1F, 0x00, 0x04, 'b',  'y',  'e',  '!'};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_reason_packet_t d;
    assert_int_equal(mqtt_decode_disconnect(&f, MQTT_V5, &d, NULL), SEDGE_OK);
    assert_int_equal(d.reason, MQTT_RC_USE_ANOTHER_SERVER);
    assert_true(mqtt_props_has(&d.props, MQTT_PROP_SESSION_EXPIRY));
    assert_int_equal(d.props.session_expiry, 0);
    assert_bytes_eq(d.props.reason_string, "bye!");
    assert_bytes_eq(d.props.server_reference, "x");
    ASSERT_ENCODES(pkt, sizeof pkt, mqtt_encode_disconnect(enc_out, enc_cap, MQTT_V5, &d));
}

static void test_disconnect_v5_property_not_allowed_is_malformed(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x03, 0x21, 0x00, 0x01};
    mqtt_frame_t f = frame_of_body(MQTT_DISCONNECT, 0, body, sizeof body);
    mqtt_reason_packet_t d;
    assert_int_equal(mqtt_decode_disconnect(&f, MQTT_V5, &d, NULL), SEDGE_ERR_MALFORMED);
}

static void test_disconnect_v5_trailing_bytes_are_malformed(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x00, 0x00, 0x00};
    mqtt_frame_t f = frame_of_body(MQTT_DISCONNECT, 0, body, sizeof body);
    mqtt_reason_packet_t d;
    assert_int_equal(mqtt_decode_disconnect(&f, MQTT_V5, &d, NULL), SEDGE_ERR_MALFORMED);
}

static void test_auth_v5_round_trips(void **state)
{
    (void)state;
    static const uint8_t empty[] = {0xF0, 0x00};
    static const uint8_t pkt[] = {0xF0, 0x0F, 0x18, 0x0D, 0x15, 0x00, 0x05, 'S', 'C',
                                  'R',  'A',  'M',  0x16, 0x00, 0x02, 0x01, 0x02};
    mqtt_reason_packet_t a;
    mqtt_frame_t f = frame_whole(empty, sizeof empty);
    assert_int_equal(mqtt_decode_auth(&f, MQTT_V5, &a, NULL), SEDGE_OK);
    assert_int_equal(a.reason, MQTT_RC_SUCCESS);
    ASSERT_ENCODES(empty, sizeof empty, mqtt_encode_auth(enc_out, enc_cap, &a));
    f = frame_whole(pkt, sizeof pkt);
    assert_int_equal(mqtt_decode_auth(&f, MQTT_V5, &a, NULL), SEDGE_OK);
    assert_int_equal(a.reason, MQTT_RC_CONTINUE_AUTHENTICATION);
    assert_bytes_eq(a.props.auth_method, "SCRAM");
    assert_int_equal(a.props.auth_data.len, 2);
    ASSERT_ENCODES(pkt, sizeof pkt, mqtt_encode_auth(enc_out, enc_cap, &a));
}

static void test_auth_in_v311_is_protocol_error(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0xF0, 0x00};
    mqtt_frame_t f = frame_whole(pkt, sizeof pkt);
    mqtt_reason_packet_t a;
    assert_int_equal(mqtt_decode_auth(&f, MQTT_V311, &a, NULL), SEDGE_ERR_PROTOCOL);
}

static void test_auth_v5_property_not_allowed_is_malformed(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x18, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01};
    mqtt_frame_t f = frame_of_body(MQTT_AUTH, 0, body, sizeof body);
    mqtt_reason_packet_t a;
    assert_int_equal(mqtt_decode_auth(&f, MQTT_V5, &a, NULL), SEDGE_ERR_MALFORMED);
}

/* ---- PINGREQ and PINGRESP ---- */

static void test_ping_round_trips_and_must_be_empty(void **state)
{
    (void)state;
    static const uint8_t req[] = {0xC0, 0x00};
    static const uint8_t resp[] = {0xD0, 0x00};
    mqtt_frame_t f = frame_whole(req, sizeof req);
    assert_int_equal(f.type, MQTT_PINGREQ);
    assert_int_equal(mqtt_decode_empty(&f, NULL), SEDGE_OK);
    f = frame_whole(resp, sizeof resp);
    assert_int_equal(f.type, MQTT_PINGRESP);
    assert_int_equal(mqtt_decode_empty(&f, NULL), SEDGE_OK);
    ASSERT_ENCODES(req, sizeof req, mqtt_encode_empty(enc_out, enc_cap, MQTT_PINGREQ));
    ASSERT_ENCODES(resp, sizeof resp, mqtt_encode_empty(enc_out, enc_cap, MQTT_PINGRESP));
    static const uint8_t body[] = {0x00};
    f = frame_of_body(MQTT_PINGREQ, 0, body, 1);
    assert_int_equal(mqtt_decode_empty(&f, NULL), SEDGE_ERR_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_remaining_length_spec_examples),
        cmocka_unit_test(test_frame_five_byte_remaining_length_is_malformed),
        cmocka_unit_test(test_frame_asks_for_more_until_the_packet_is_whole),
        cmocka_unit_test(test_frame_incomplete_multibyte_length_has_no_size_yet),
        cmocka_unit_test(test_frame_finds_back_to_back_packets),
        cmocka_unit_test(test_frame_reserved_packet_type_0_is_malformed),
        cmocka_unit_test(test_frame_reserved_flags_are_malformed),
        cmocka_unit_test(test_publish_qos3_is_malformed),
        cmocka_unit_test(test_packet_and_reason_names),
        cmocka_unit_test(test_connect_v311_spec_example_round_trips),
        cmocka_unit_test(test_connect_v5_spec_example_round_trips),
        cmocka_unit_test(test_connect_minimal_without_will_or_credentials),
        cmocka_unit_test(test_connect_v5_every_property_round_trips),
        cmocka_unit_test(test_connect_mqtt31_is_unsupported),
        cmocka_unit_test(test_connect_unknown_level_is_unsupported_and_reports_it),
        cmocka_unit_test(test_connect_wrong_protocol_name_is_malformed),
        cmocka_unit_test(test_connect_reserved_flag_is_malformed),
        cmocka_unit_test(test_connect_will_qos3_is_malformed),
        cmocka_unit_test(test_connect_will_qos_or_retain_without_will_is_malformed),
        cmocka_unit_test(test_connect_v311_password_without_user_name_is_malformed),
        cmocka_unit_test(test_connect_invalid_utf8_in_strings_is_malformed),
        cmocka_unit_test(test_connect_truncated_anywhere_is_malformed),
        cmocka_unit_test(test_connect_trailing_bytes_are_malformed),
        cmocka_unit_test(test_props_duplicate_property_is_protocol_error),
        cmocka_unit_test(test_props_user_property_may_repeat),
        cmocka_unit_test(test_props_not_allowed_in_the_packet_is_malformed),
        cmocka_unit_test(test_props_unknown_identifier_is_malformed),
        cmocka_unit_test(test_props_receive_maximum_zero_is_protocol_error),
        cmocka_unit_test(test_props_maximum_packet_size_zero_is_protocol_error),
        cmocka_unit_test(test_props_boolean_out_of_range_is_protocol_error),
        cmocka_unit_test(test_props_truncated_value_is_malformed),
        cmocka_unit_test(test_props_invalid_utf8_in_user_property_is_malformed),
        cmocka_unit_test(test_props_binary_data_may_hold_any_bytes),
        cmocka_unit_test(test_props_length_past_the_packet_is_malformed),
        cmocka_unit_test(test_props_five_byte_property_length_is_malformed),
        cmocka_unit_test(test_props_allowed_exactly_where_table_2_4_says),
        cmocka_unit_test(test_user_prop_copy_reports_size_and_stays_in_bounds),
        cmocka_unit_test(test_user_prop_encode_writes_wire_form),
        cmocka_unit_test(test_props_encode_writes_the_block_body_user_properties_last),
        cmocka_unit_test(test_connack_v311_spec_bytes_round_trip),
        cmocka_unit_test(test_connack_v5_properties_round_trip),
        cmocka_unit_test(test_connack_v5_every_property_round_trips),
        cmocka_unit_test(test_connack_reserved_flags_are_malformed),
        cmocka_unit_test(test_connack_truncated_or_long_is_malformed),
        cmocka_unit_test(test_connack_v5_maximum_qos_2_is_protocol_error),
        cmocka_unit_test(test_publish_v311_qos1_spec_example_round_trips),
        cmocka_unit_test(test_publish_qos0_has_no_packet_id_and_may_be_empty),
        cmocka_unit_test(test_publish_qos2_dup_round_trips),
        cmocka_unit_test(test_publish_v5_every_property_decodes_and_round_trips),
        cmocka_unit_test(test_publish_v5_encodes_several_subscription_identifiers),
        cmocka_unit_test(test_publish_v5_empty_topic_with_alias_decodes),
        cmocka_unit_test(test_publish_packet_id_0_is_protocol_error),
        cmocka_unit_test(test_publish_qos0_with_dup_is_protocol_error),
        cmocka_unit_test(test_publish_truncated_is_malformed),
        cmocka_unit_test(test_publish_invalid_utf8_topic_is_malformed),
        cmocka_unit_test(test_publish_payload_is_not_checked_as_utf8),
        cmocka_unit_test(test_publish_v5_subscription_id_0_is_protocol_error),
        cmocka_unit_test(test_publish_v5_five_byte_subscription_id_is_malformed),
        cmocka_unit_test(test_publish_v5_property_not_allowed_is_malformed),
        cmocka_unit_test(test_publish_v5_duplicate_topic_alias_is_protocol_error),
        cmocka_unit_test(test_publish_v5_payload_format_2_is_protocol_error),
        cmocka_unit_test(test_ack_v311_each_type_round_trips),
        cmocka_unit_test(test_ack_v5_reason_code_only_short_form),
        cmocka_unit_test(test_ack_v5_empty_property_block_is_accepted),
        cmocka_unit_test(test_ack_v5_reason_string_and_user_property_round_trip),
        cmocka_unit_test(test_ack_packet_id_0_is_protocol_error),
        cmocka_unit_test(test_ack_truncated_or_long_is_malformed),
        cmocka_unit_test(test_ack_v5_property_not_allowed_is_malformed),
        cmocka_unit_test(test_subscribe_v311_spec_example_round_trips),
        cmocka_unit_test(test_subscribe_v5_options_and_properties_round_trip),
        cmocka_unit_test(test_subscribe_with_no_filters_is_protocol_error),
        cmocka_unit_test(test_subscribe_bad_option_bits_are_refused),
        cmocka_unit_test(test_subscribe_missing_options_byte_is_malformed),
        cmocka_unit_test(test_subscribe_packet_id_0_is_protocol_error),
        cmocka_unit_test(test_subscribe_invalid_utf8_filter_is_malformed),
        cmocka_unit_test(test_subscribe_v5_subscription_id_rules),
        cmocka_unit_test(test_unsubscribe_v311_round_trips),
        cmocka_unit_test(test_unsubscribe_v5_round_trips),
        cmocka_unit_test(test_unsubscribe_with_no_filters_is_protocol_error),
        cmocka_unit_test(test_unsubscribe_v5_subscription_id_is_malformed),
        cmocka_unit_test(test_suback_v311_round_trips),
        cmocka_unit_test(test_suback_v5_round_trips),
        cmocka_unit_test(test_suback_without_reason_codes_is_protocol_error),
        cmocka_unit_test(test_unsuback_v311_has_no_reason_codes),
        cmocka_unit_test(test_unsuback_v5_round_trips),
        cmocka_unit_test(test_disconnect_v311_is_empty),
        cmocka_unit_test(test_disconnect_v5_short_forms),
        cmocka_unit_test(test_disconnect_v5_properties_round_trip),
        cmocka_unit_test(test_disconnect_v5_property_not_allowed_is_malformed),
        cmocka_unit_test(test_disconnect_v5_trailing_bytes_are_malformed),
        cmocka_unit_test(test_auth_v5_round_trips),
        cmocka_unit_test(test_auth_in_v311_is_protocol_error),
        cmocka_unit_test(test_auth_v5_property_not_allowed_is_malformed),
        cmocka_unit_test(test_ping_round_trips_and_must_be_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
