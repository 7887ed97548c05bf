/*
 * libFuzzer target: Greengrass's Modbus request JSON
 * (connectors/modbus/request.c), and the response built from whatever it
 * accepted or refused.
 */
#include "request.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static modbus_request_t r;
    static uint16_t values[MB_MAX_VALUES];
    char why[300];
    json_t *resp;
    if (modbus_request_parse(data, size, &r, why, sizeof why))
        resp = modbus_response_success(&r, values, (size_t)r.count);
    else
        resp = modbus_response_no_response(&r, why);
    char *text = json_dumps(resp, JSON_COMPACT);
    if (!text)
        abort(); /* a response must always be writable */
    free(text);
    json_decref(resp);
    modbus_request_release(&r);
    return 0;
}
