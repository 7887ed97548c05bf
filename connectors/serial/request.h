/*
 * request: Greengrass's Serial Stream messages — a request's topic
 * (serial/THING/read/PORT or serial/THING/write/PORT, PORT the device's
 * path without its leading '/') and its JSON, parsed and checked (pure;
 * fuzzed by tests/fuzz/fuzz_serial_request.c); and the replies' topics and
 * JSON (serial/THING/status/PORT, serial/THING/read_response/PORT).
 *
 *   read:  {"readLength": "30", "type": "ascii" | "hex", "id": "abc123"}
 *   write: {"data": "text" | "base64", "type": "ascii" | "hex", "id": "..."}
 *   status: {"response": {"status": "success" | "fail", ["error_message": "..."]}, "id": "..."}
 *   read_response: {"data": "text" | "base64", "id": "..."}
 *
 * As Greengrass: type "hex" means the data is base64 on the wire.
 */
#ifndef SEDGE_SERIAL_REQUEST_H
#define SEDGE_SERIAL_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERIAL_MAX_READ 63994     /* Greengrass's limits */
#define SERIAL_MAX_WRITE 128000
#define SERIAL_MAX_REQUEST_BYTES (256u << 10)

typedef enum { SERIAL_READ, SERIAL_WRITE } serial_op_t;

typedef struct {
    serial_op_t op;
    char thing[129];
    char port[256];  /* "/dev/ttyUSB0" */
    bool hex;        /* type hex: base64 on the wire */
    size_t read_length;
    uint8_t *data;   /* write: the bytes to write (malloc'ed) */
    size_t data_len;
    json_t *id;      /* as given, a reference; NULL when absent */
} serial_request_t;

/* Which request a topic is: false when it is not serial/+/read/# or
 * serial/+/write/# (then nothing is filled). */
bool serial_topic_parse(const char *topic, serial_request_t *out);
/* The payload of a request whose topic serial_topic_parse took. false:
 * `why` says what is wrong, and out->id holds the id if one could be read. */
bool serial_payload_parse(const uint8_t *data, size_t len, serial_request_t *r, char *why,
                          size_t why_len);
void serial_request_release(serial_request_t *r);

/* "serial/THING/KIND/PORT-without-slash" into buf. */
void serial_reply_topic(const char *thing, const char *kind, const char *port, char *buf,
                        size_t len);
/* Replies (new references). */
json_t *serial_status(json_t *id, const char *error_message);
json_t *serial_read_response(json_t *id, const uint8_t *data, size_t len, bool hex);

#endif
