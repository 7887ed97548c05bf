/*
 * libFuzzer target: Greengrass's Serial Stream requests
 * (connectors/serial/request.c). The input's first line is the topic, the
 * rest the payload; replies are built from what was read.
 */
#include "request.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t tlen = nl ? (size_t)(nl - data) : size;
    char topic[512];
    if (tlen >= sizeof topic)
        return 0;
    memcpy(topic, data, tlen);
    topic[tlen] = '\0';
    const uint8_t *payload = nl ? nl + 1 : data + size;
    size_t plen = (size_t)(data + size - payload);
    serial_request_t r;
    if (!serial_topic_parse(topic, &r))
        return 0;
    char why[400], reply[600];
    bool ok = serial_payload_parse(payload, plen, &r, why, sizeof why);
    serial_reply_topic(r.thing, "status", r.port, reply, sizeof reply);
    json_t *doc = ok && r.op == SERIAL_WRITE
                      ? serial_read_response(r.id, r.data, r.data_len, !r.hex)
                      : serial_status(r.id, ok ? NULL : why);
    char *text = json_dumps(doc, JSON_COMPACT);
    if (!text)
        abort();
    free(text);
    json_decref(doc);
    serial_request_release(&r);
    return 0;
}
