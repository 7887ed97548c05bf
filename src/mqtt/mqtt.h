/*
 * mqtt: the MQTT 3.1.1 and 5.0 packet codec and the topic rules, shared by
 * the broker (server side) and the uplink (client side).
 *
 * Pure functions over caller-owned buffers. Decoding never copies: the
 * structs it fills hold views (bytes_t) into the input buffer, valid as long
 * as that buffer is. Encoding writes into a caller buffer: every
 * mqtt_encode_* returns the number of bytes the packet needs; the packet
 * is complete in `out` only when that is at most `cap` (otherwise `out`
 * holds a partial write), so a caller may size first (out = NULL) or
 * encode straight into spare room and retry with more. No I/O, no
 * allocation, every length checked before it is trusted.
 *
 * Decoders return SEDGE_ERR_MALFORMED for bytes that do not parse (reason
 * 0x81), SEDGE_ERR_PROTOCOL for well-formed packets the protocol forbids
 * (0x82) and, through `why` when not NULL, a short static phrase for logs.
 */
#ifndef SEDGE_MQTT_H
#define SEDGE_MQTT_H

#include "base/base.h"

enum {
    MQTT_V31 = 3, /* recognised only to refuse it */
    MQTT_V311 = 4,
    MQTT_V5 = 5,
};

typedef enum {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14,
    MQTT_AUTH = 15,
} mqtt_packet_type_t;

const char *mqtt_packet_name(uint8_t type);

/* MQTT 5 reason codes. 3.1.1 CONNACK return codes are listed after. */
enum {
    MQTT_RC_SUCCESS = 0x00,
    MQTT_RC_GRANTED_QOS1 = 0x01,
    MQTT_RC_GRANTED_QOS2 = 0x02,
    MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
    MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
    MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
    MQTT_RC_CONTINUE_AUTHENTICATION = 0x18,
    MQTT_RC_REAUTHENTICATE = 0x19,
    MQTT_RC_UNSPECIFIED = 0x80,
    MQTT_RC_MALFORMED = 0x81,
    MQTT_RC_PROTOCOL_ERROR = 0x82,
    MQTT_RC_IMPLEMENTATION_ERROR = 0x83,
    MQTT_RC_UNSUPPORTED_VERSION = 0x84,
    MQTT_RC_CLIENT_ID_INVALID = 0x85,
    MQTT_RC_BAD_USERNAME_PASSWORD = 0x86,
    MQTT_RC_NOT_AUTHORIZED = 0x87,
    MQTT_RC_SERVER_UNAVAILABLE = 0x88,
    MQTT_RC_SERVER_BUSY = 0x89,
    MQTT_RC_BANNED = 0x8A,
    MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
    MQTT_RC_BAD_AUTH_METHOD = 0x8C,
    MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
    MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
    MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
    MQTT_RC_TOPIC_NAME_INVALID = 0x90,
    MQTT_RC_PACKET_ID_IN_USE = 0x91,
    MQTT_RC_PACKET_ID_NOT_FOUND = 0x92,
    MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93,
    MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
    MQTT_RC_PACKET_TOO_LARGE = 0x95,
    MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
    MQTT_RC_QUOTA_EXCEEDED = 0x97,
    MQTT_RC_ADMINISTRATIVE_ACTION = 0x98,
    MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
    MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
    MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
    MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
    MQTT_RC_SERVER_MOVED = 0x9D,
    MQTT_RC_SHARED_SUBS_NOT_SUPPORTED = 0x9E,
    MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
    MQTT_RC_MAXIMUM_CONNECT_TIME = 0xA0,
    MQTT_RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
    MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2,
};

enum {
    MQTT311_CONNACK_ACCEPTED = 0,
    MQTT311_CONNACK_BAD_VERSION = 1,
    MQTT311_CONNACK_ID_REJECTED = 2,
    MQTT311_CONNACK_SERVER_UNAVAILABLE = 3,
    MQTT311_CONNACK_BAD_USERNAME_PASSWORD = 4,
    MQTT311_CONNACK_NOT_AUTHORIZED = 5,
    MQTT311_SUBACK_FAILURE = 0x80,
};

const char *mqtt_reason_name(uint8_t reason);

/* MQTT 5 property identifiers. */
enum {
    MQTT_PROP_PAYLOAD_FORMAT = 0x01,
    MQTT_PROP_MESSAGE_EXPIRY = 0x02,
    MQTT_PROP_CONTENT_TYPE = 0x03,
    MQTT_PROP_RESPONSE_TOPIC = 0x08,
    MQTT_PROP_CORRELATION_DATA = 0x09,
    MQTT_PROP_SUBSCRIPTION_ID = 0x0B,
    MQTT_PROP_SESSION_EXPIRY = 0x11,
    MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
    MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
    MQTT_PROP_AUTH_METHOD = 0x15,
    MQTT_PROP_AUTH_DATA = 0x16,
    MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
    MQTT_PROP_WILL_DELAY = 0x18,
    MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
    MQTT_PROP_RESPONSE_INFO = 0x1A,
    MQTT_PROP_SERVER_REFERENCE = 0x1C,
    MQTT_PROP_REASON_STRING = 0x1F,
    MQTT_PROP_RECEIVE_MAXIMUM = 0x21,
    MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
    MQTT_PROP_TOPIC_ALIAS = 0x23,
    MQTT_PROP_MAXIMUM_QOS = 0x24,
    MQTT_PROP_RETAIN_AVAILABLE = 0x25,
    MQTT_PROP_USER_PROPERTY = 0x26,
    MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
    MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
    MQTT_PROP_SUB_ID_AVAILABLE = 0x29,
    MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,
};

#define MQTT_MAX_VBI 268435455u /* largest variable byte integer */
#define MQTT_MAX_PACKET_SIZE (MQTT_MAX_VBI + 5u)

/*
 * The properties of one packet (or of a will). `present` has bit N set when
 * property N is present; only those fields are meaningful. User properties
 * are kept in wire form (a run of 0x26 key value entries): `user_props`
 * points at such a run when encoding; when decoding it is empty and
 * `user_prop_count` counts them — walk them with mqtt_user_prop_next over
 * `raw`, or copy them out with mqtt_props_copy_user.
 * A PUBLISH sent to a client may carry several subscription identifiers:
 * encoders emit `sub_ids[0..sub_id_count)` when sub_ids is set; decoders
 * store the first in `sub_id` and count them in `sub_id_count`.
 */
typedef struct {
    uint64_t present;
    uint8_t payload_format;
    uint8_t request_problem_info;
    uint8_t request_response_info;
    uint8_t maximum_qos;
    uint8_t retain_available;
    uint8_t wildcard_sub_available;
    uint8_t sub_id_available;
    uint8_t shared_sub_available;
    uint16_t server_keep_alive;
    uint16_t receive_maximum;
    uint16_t topic_alias_maximum;
    uint16_t topic_alias;
    uint32_t message_expiry;
    uint32_t session_expiry;
    uint32_t will_delay;
    uint32_t maximum_packet_size;
    uint32_t sub_id;
    size_t sub_id_count;
    const uint32_t *sub_ids;
    bytes_t content_type;
    bytes_t response_topic;
    bytes_t correlation_data;
    bytes_t assigned_client_id;
    bytes_t auth_method;
    bytes_t auth_data;
    bytes_t response_info;
    bytes_t server_reference;
    bytes_t reason_string;
    bytes_t user_props; /* wire form, emitted verbatim after the others */
    size_t user_prop_count;
    bytes_t raw; /* decoded: the whole property block, without its length */
} mqtt_props_t;

static inline bool mqtt_props_has(const mqtt_props_t *p, int id)
{
    return p && (p->present & (1ull << id));
}
static inline void mqtt_props_set(mqtt_props_t *p, int id)
{
    p->present |= 1ull << id;
}

/* Walk the user properties of a property block in wire form (`raw` of a
 * decoded mqtt_props_t, or a `user_props` run). `*cursor` starts at 0.
 * Returns false when there are no more. The block must have been validated
 * by a decoder or built by mqtt_user_prop_encode. */
bool mqtt_user_prop_next(bytes_t block, size_t *cursor, bytes_t *key, bytes_t *value);
/* Copy the user properties of a decoded block out in wire form; returns the
 * bytes needed (writes only when they fit in cap). */
size_t mqtt_props_copy_user(const mqtt_props_t *p, uint8_t *out, size_t cap);
/* The property block's body (no length prefix) in wire form; returns the
 * bytes needed. User properties come from `user_props` only. */
size_t mqtt_props_encode(uint8_t *out, size_t cap, const mqtt_props_t *p);
/* Append one user property in wire form; returns the bytes needed. */
size_t mqtt_user_prop_encode(uint8_t *out, size_t cap, bytes_t key, bytes_t value);

/* One framed packet inside a receive buffer. */
typedef struct {
    uint8_t type;  /* mqtt_packet_type_t */
    uint8_t flags; /* low nibble of the first byte */
    bytes_t body;  /* variable header and payload */
    size_t size;   /* fixed header + body */
} mqtt_frame_t;

/*
 * Find the first packet in buf[0..len). SEDGE_OK: a whole packet is there.
 * SEDGE_ERR_AGAIN: not yet; out->size is the whole packet's size once the
 * fixed header is complete (0 before), so a caller can refuse an oversized
 * packet before buffering it. SEDGE_ERR_MALFORMED: a bad length encoding, a
 * reserved packet type, or fixed-header flags the protocol forbids
 * (including PUBLISH QoS 3).
 */
NODISCARD sedge_err mqtt_frame_parse(const uint8_t *buf, size_t len, mqtt_frame_t *out, const char **why);

typedef struct {
    uint8_t version; /* MQTT_V311 or MQTT_V5 (or MQTT_V31 on refusal) */
    bool clean_start;
    uint16_t keep_alive;
    mqtt_props_t props;
    bytes_t client_id;
    bool will;
    uint8_t will_qos;
    bool will_retain;
    mqtt_props_t will_props;
    bytes_t will_topic;
    bytes_t will_payload;
    bool has_username;
    bytes_t username;
    bool has_password;
    bytes_t password;
} mqtt_connect_t;

/* SEDGE_ERR_UNSUPPORTED: a protocol name/level this codec does not speak;
 * out->version holds the level asked for so the server can refuse it. */
NODISCARD sedge_err mqtt_decode_connect(const mqtt_frame_t *f, mqtt_connect_t *out, const char **why);
size_t mqtt_encode_connect(uint8_t *out, size_t cap, const mqtt_connect_t *c);

typedef struct {
    bool session_present;
    uint8_t reason; /* v5 reason code or 3.1.1 return code */
    mqtt_props_t props;
} mqtt_connack_t;

NODISCARD sedge_err mqtt_decode_connack(const mqtt_frame_t *f, uint8_t version, mqtt_connack_t *out,
                              const char **why);
size_t mqtt_encode_connack(uint8_t *out, size_t cap, uint8_t version, const mqtt_connack_t *c);

typedef struct {
    bool dup;
    uint8_t qos;
    bool retain;
    bytes_t topic;      /* may be empty in v5 when a topic alias is used */
    uint16_t packet_id; /* QoS 1 and 2 only */
    mqtt_props_t props;
    bytes_t payload;
} mqtt_publish_t;

NODISCARD sedge_err mqtt_decode_publish(const mqtt_frame_t *f, uint8_t version, mqtt_publish_t *out,
                              const char **why);
size_t mqtt_encode_publish(uint8_t *out, size_t cap, uint8_t version, const mqtt_publish_t *p);
/* The PUBLISH up to its payload (the remaining length counts the
 * payload): for a writer that sends the payload from where it lies. */
size_t mqtt_encode_publish_head(uint8_t *out, size_t cap, uint8_t version,
                                const mqtt_publish_t *p);
/* Bytes the PUBLISH takes without its properties, for size limits. */
size_t mqtt_publish_size(uint8_t version, const mqtt_publish_t *p);

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
typedef struct {
    uint16_t packet_id;
    uint8_t reason;
    mqtt_props_t props;
} mqtt_ack_t;

NODISCARD sedge_err mqtt_decode_ack(const mqtt_frame_t *f, uint8_t version, mqtt_ack_t *out,
                          const char **why);
size_t mqtt_encode_ack(uint8_t *out, size_t cap, uint8_t version, uint8_t type,
                       const mqtt_ack_t *a);

/* A SUBSCRIBE or UNSUBSCRIBE: the entries are validated by the decoder and
 * walked with mqtt_sub_entry_next. */
typedef struct {
    uint16_t packet_id;
    mqtt_props_t props;
    bytes_t entries;
    size_t count;
} mqtt_subscribe_t;

typedef struct {
    bytes_t filter;
    uint8_t qos;
    bool no_local;
    bool retain_as_published;
    uint8_t retain_handling;
} mqtt_sub_entry_t;

NODISCARD sedge_err mqtt_decode_subscribe(const mqtt_frame_t *f, uint8_t version, mqtt_subscribe_t *out,
                                const char **why);
NODISCARD sedge_err mqtt_decode_unsubscribe(const mqtt_frame_t *f, uint8_t version, mqtt_subscribe_t *out,
                                  const char **why);
/* `*cursor` starts at 0; false when there are no more entries. For an
 * UNSUBSCRIBE only `filter` is set. */
bool mqtt_sub_entry_next(const mqtt_subscribe_t *s, uint8_t type, size_t *cursor,
                         mqtt_sub_entry_t *out);
size_t mqtt_encode_subscribe(uint8_t *out, size_t cap, uint8_t version, uint8_t type,
                             uint16_t packet_id, const mqtt_props_t *props,
                             const mqtt_sub_entry_t *entries, size_t count);

/* SUBACK and UNSUBACK (a 3.1.1 UNSUBACK has no reason codes). */
typedef struct {
    uint16_t packet_id;
    mqtt_props_t props;
    bytes_t reasons;
} mqtt_suback_t;

NODISCARD sedge_err mqtt_decode_suback(const mqtt_frame_t *f, uint8_t version, mqtt_suback_t *out,
                             const char **why);
size_t mqtt_encode_suback(uint8_t *out, size_t cap, uint8_t version, uint8_t type,
                          uint16_t packet_id, const mqtt_props_t *props, const uint8_t *reasons,
                          size_t count);

/* DISCONNECT and AUTH: a reason code and properties (v5); in 3.1.1 a
 * DISCONNECT is empty and there is no AUTH. */
typedef struct {
    uint8_t reason;
    mqtt_props_t props;
} mqtt_reason_packet_t;

NODISCARD sedge_err mqtt_decode_disconnect(const mqtt_frame_t *f, uint8_t version, mqtt_reason_packet_t *out,
                                 const char **why);
NODISCARD sedge_err mqtt_decode_auth(const mqtt_frame_t *f, uint8_t version, mqtt_reason_packet_t *out,
                           const char **why);
size_t mqtt_encode_disconnect(uint8_t *out, size_t cap, uint8_t version,
                              const mqtt_reason_packet_t *d);
size_t mqtt_encode_auth(uint8_t *out, size_t cap, const mqtt_reason_packet_t *a);

/* PINGREQ and PINGRESP (2 bytes). A PINGREQ/PINGRESP body must be empty;
 * mqtt_decode_empty checks that. */
NODISCARD sedge_err mqtt_decode_empty(const mqtt_frame_t *f, const char **why);
size_t mqtt_encode_empty(uint8_t *out, size_t cap, uint8_t type);

/* Topics. */
#define MQTT_MAX_TOPIC_LEN 65535u

/* Well-formed UTF-8 as MQTT requires: no U+0000, no surrogates, no
 * overlong forms, nothing past U+10FFFF. */
bool mqtt_utf8_valid(const uint8_t *s, size_t len);
/* A topic name a PUBLISH may carry: non-empty, no wildcards. */
bool mqtt_topic_name_valid(bytes_t topic);
/* A topic filter: `+` fills a whole level, `#` is last and fills one. A
 * `$share/GROUP/FILTER` is valid when GROUP is non-empty without wildcards
 * or `/` and FILTER is a valid filter. */
bool mqtt_topic_filter_valid(bytes_t filter);
/* Filters (subscriptions and routes) have at most this many levels, which
 * bounds the recursion of matching over '+' levels. Topic names are not
 * limited this way: they are walked without recursion. */
#define MQTT_MAX_FILTER_LEVELS 256
/* The number of levels of a topic or filter ("a/b" has 2, "" has 1). */
size_t mqtt_topic_levels(bytes_t topic);
/* Split `$share/GROUP/FILTER`; false when `filter` is not a shared one. */
bool mqtt_shared_split(bytes_t filter, bytes_t *group, bytes_t *inner);
/* Does `filter` (not shared) match `topic`? Topics starting with `$` are
 * not matched by a filter starting with a wildcard. */
bool mqtt_topic_matches(bytes_t filter, bytes_t topic);

#endif
