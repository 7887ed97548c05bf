/*
 * batch: the body of one POST from queued messages, each payload kept
 * byte for byte — alone (one message: the body is the payload),
 * multipart/mixed (any bytes: one part per message, its topic in an
 * X-Sedge-Topic header, a boundary found in none of the payloads), or a
 * JSON array of the payloads (each must be JSON; they are spliced in
 * unchanged).
 */
#ifndef SEDGE_HTTP_BATCH_H
#define SEDGE_HTTP_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sink_msg {
    struct sink_msg *next;
    char *topic;
    size_t len;
    uint8_t *data;
} sink_msg_t;

typedef enum { BATCH_MULTIPART, BATCH_JSON_ARRAY } batch_format_t;

typedef struct {
    uint8_t *data;
    size_t len, cap;
    char content_type[128];
} batch_body_t;

/* The body for the first `count` messages from `head` (count >= 1); false
 * when out of memory. `single_type` is the content type of a body of one
 * message. */
bool batch_build(const sink_msg_t *head, size_t count, batch_format_t format,
                 const char *single_type, batch_body_t *out);
void batch_body_free(batch_body_t *b);

/* A topic as a header value: bytes outside printable ASCII, and '%',
 * percent-encoded (an MQTT topic may hold a CR or LF). */
void batch_header_topic(const char *topic, char *out, size_t len);

#endif
