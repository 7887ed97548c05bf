/*
 * wire: the codec's private primitives — a bounds-checked reader over a
 * received body and a writer that counts every byte but stores only what
 * fits, so one encoding routine serves both to size and to write a packet.
 */
#ifndef SEDGE_MQTT_WIRE_H
#define SEDGE_MQTT_WIRE_H

#include "mqtt.h"

typedef struct {
    const uint8_t *data;
    size_t len;
    size_t pos;
} reader_t;

static inline reader_t reader_of(bytes_t b)
{
    return (reader_t){b.data, b.len, 0};
}
static inline size_t reader_left(const reader_t *r)
{
    return r->len - r->pos;
}

bool rd_u8(reader_t *r, uint8_t *v);
bool rd_u16(reader_t *r, uint16_t *v);
bool rd_u32(reader_t *r, uint32_t *v);
/* Variable byte integer: false when truncated or longer than four bytes. */
bool rd_vbi(reader_t *r, uint32_t *v);
/* Two-byte length then the bytes. */
bool rd_binary(reader_t *r, bytes_t *v);
/* rd_binary plus the UTF-8 rules; `*bad_utf8` tells the two failures apart. */
bool rd_string(reader_t *r, bytes_t *v, bool *bad_utf8);
bool rd_bytes(reader_t *r, size_t n, bytes_t *v);

typedef struct {
    uint8_t *out;
    size_t cap;
    size_t pos; /* bytes the encoding needs so far, stored or not */
} writer_t;

static inline writer_t writer_of(uint8_t *out, size_t cap)
{
    return (writer_t){out, out ? cap : 0, 0};
}

void wr_u8(writer_t *w, uint8_t v);
void wr_u16(writer_t *w, uint16_t v);
void wr_u32(writer_t *w, uint32_t v);
void wr_vbi(writer_t *w, uint32_t v);
void wr_raw(writer_t *w, const uint8_t *data, size_t len);
void wr_binary(writer_t *w, bytes_t v);
size_t vbi_size(uint32_t v);

/* Property blocks. Contexts say where a property may appear. */
typedef enum {
    PROPS_CONNECT,
    PROPS_WILL,
    PROPS_CONNACK,
    PROPS_PUBLISH,
    PROPS_ACK,
    PROPS_SUBSCRIBE,
    PROPS_SUBACK,
    PROPS_UNSUBSCRIBE,
    PROPS_UNSUBACK,
    PROPS_DISCONNECT,
    PROPS_AUTH,
} props_context_t;

/* Read a length-prefixed property block. */
NODISCARD sedge_err props_read(reader_t *r, props_context_t ctx, mqtt_props_t *out, const char **why);
/* Bytes of the property block without its length prefix. */
size_t props_body_size(const mqtt_props_t *p);
/* Length prefix and block; an absent (NULL) set is an empty block. */
void props_write(writer_t *w, const mqtt_props_t *p);
size_t props_size(const mqtt_props_t *p);

static inline sedge_err fail(const char **why, sedge_err err, const char *what)
{
    if (why)
        *why = what;
    return err;
}

#endif
