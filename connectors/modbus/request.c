/*
 * request: parsing and checking Greengrass's Modbus request JSON, and
 * building its responses. Everything a request may carry is bounded here
 * before libmodbus sees it: the device (0-247), addresses (0-65535), the
 * counts the protocol allows per function, and a range that would run
 * past address 65535.
 */
#include "request.h"

#include "connector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    int code;
    const char *name;
} operations[] = {
    {1, "ReadCoilsRequest"},
    {2, "ReadDiscreteInputsRequest"},
    {3, "ReadHoldingRegistersRequest"},
    {4, "ReadInputRegistersRequest"},
    {5, "WriteSingleCoilRequest"},
    {6, "WriteSingleRegisterRequest"},
    {15, "WriteMultipleCoilsRequest"},
    {16, "WriteMultipleRegistersRequest"},
    {22, "MaskWriteRegisterRequest"},
    {23, "ReadWriteMultipleRegistersRequest"},
};

const char *modbus_operation_name(int function_code)
{
    for (size_t i = 0; i < sizeof operations / sizeof operations[0]; i++)
        if (operations[i].code == function_code)
            return operations[i].name;
    return NULL;
}

/* "ReadCoilsRequest", 1, "1", "01" or "0x01". */
static int parse_operation(json_t *v)
{
    long long code = -1;
    if (json_is_integer(v)) {
        code = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (size_t i = 0; i < sizeof operations / sizeof operations[0]; i++)
            if (strcmp(s, operations[i].name) == 0)
                return operations[i].code;
        char *end = NULL;
        bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
        if (*s && strlen(s) <= 6 && (hex ? s[2] != '\0' : true)) {
            code = strtoll(hex ? s + 2 : s, &end, hex ? 16 : 10);
            if (*end || end == s || s[hex ? 2 : 0] == '-' || s[hex ? 2 : 0] == '+')
                code = -1;
        }
    }
    return code > 0 && code < 256 && modbus_operation_name((int)code) ? (int)code : 0;
}

static const char *type_name(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "value";
}

/* An integer member from min to max; false (with `why`) if absent or
 * wrong. */
static bool int_field(json_t *obj, const char *key, long long min, long long max, int *out,
                      char *why, size_t why_len)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        snprintf(why, why_len, "Missing %s field", key);
        return false;
    }
    if (!json_is_integer(v)) {
        snprintf(why, why_len, "Invalid %s field. Expected int, got %s", key, type_name(v));
        return false;
    }
    long long n = json_integer_value(v);
    if (n < min || n > max) {
        snprintf(why, why_len, "Invalid %s field. %lld is out of range %lld to %lld", key, n,
                 min, max);
        return false;
    }
    *out = (int)n;
    return true;
}

/* An array of 1..max integers from 0 to vmax. */
static bool values_field(json_t *obj, const char *key, size_t max, long long vmax,
                         modbus_request_t *r, char *why, size_t why_len)
{
    json_t *a = json_object_get(obj, key);
    if (!a) {
        snprintf(why, why_len, "Missing %s field", key);
        return false;
    }
    if (!json_is_array(a)) {
        snprintf(why, why_len, "Invalid %s field. Expected list, got %s", key, type_name(a));
        return false;
    }
    size_t n = json_array_size(a);
    if (n == 0 || n > max) {
        snprintf(why, why_len, "Invalid %s field. Expected 1 to %zu values, got %zu", key, max, n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        long long x = json_is_integer(v) ? json_integer_value(v)
                      : json_is_boolean(v) && vmax == 1 ? (json_is_true(v) ? 1 : 0)
                                                         : -1;
        if (x < 0 || x > vmax) {
            snprintf(why, why_len, "Invalid %s field. Value %zu is not an integer from 0 to %lld",
                     key, i, vmax);
            return false;
        }
        r->values[i] = (uint16_t)x;
    }
    r->value_count = n;
    return true;
}

static bool range_fits(int address, int count, char *why, size_t why_len)
{
    if ((long)address + count <= 65536)
        return true;
    snprintf(why, why_len, "Invalid address field. %d values from address %d run past 65535",
             count, address);
    return false;
}

static bool parse_fields(json_t *q, modbus_request_t *r, char *why, size_t n)
{
    int tmp;
    switch (r->function_code) {
    case 1:
    case 2:
    case 3:
    case 4: {
        int max = r->function_code <= 2 ? MB_MAX_READ_BITS : MB_MAX_READ_REGISTERS;
        return int_field(q, "address", 0, 65535, &r->address, why, n) &&
               int_field(q, "count", 1, max, &r->count, why, n) &&
               range_fits(r->address, r->count, why, n);
    }
    case 5: {
        json_t *v = json_object_get(q, "value");
        if (json_is_boolean(v)) {
            r->value = json_is_true(v);
            return int_field(q, "address", 0, 65535, &r->address, why, n);
        }
        if (!int_field(q, "address", 0, 65535, &r->address, why, n) ||
            !int_field(q, "value", 0, 1, &tmp, why, n))
            return false;
        r->value = (uint16_t)tmp;
        return true;
    }
    case 6:
        if (!int_field(q, "address", 0, 65535, &r->address, why, n) ||
            !int_field(q, "value", 0, 65535, &tmp, why, n))
            return false;
        r->value = (uint16_t)tmp;
        return true;
    case 15:
    case 16:
        if (!int_field(q, "address", 0, 65535, &r->address, why, n) ||
            !values_field(q, "values", r->function_code == 15 ? MB_MAX_WRITE_BITS
                                                              : MB_MAX_WRITE_REGISTERS,
                          r->function_code == 15 ? 1 : 65535, r, why, n))
            return false;
        r->count = (int)r->value_count;
        return range_fits(r->address, r->count, why, n);
    case 22: {
        int and_mask, or_mask;
        if (!int_field(q, "address", 0, 65535, &r->address, why, n) ||
            !int_field(q, "and_mask", 0, 65535, &and_mask, why, n) ||
            !int_field(q, "or_mask", 0, 65535, &or_mask, why, n))
            return false;
        r->and_mask = (uint16_t)and_mask;
        r->or_mask = (uint16_t)or_mask;
        return true;
    }
    case 23:
        return int_field(q, "read_address", 0, 65535, &r->address, why, n) &&
               int_field(q, "read_count", 1, MB_MAX_READ_REGISTERS, &r->count, why, n) &&
               range_fits(r->address, r->count, why, n) &&
               int_field(q, "write_address", 0, 65535, &r->write_address, why, n) &&
               values_field(q, "write_registers", MB_MAX_RW_WRITE_REGISTERS, 65535, r, why, n) &&
               range_fits(r->write_address, (int)r->value_count, why, n);
    }
    return false;
}

bool modbus_request_parse(const uint8_t *data, size_t len, modbus_request_t *r, char *why,
                          size_t why_len)
{
    memset(r, 0, sizeof *r);
    r->device = -1;
    json_t *doc = conn_request_load(data, len, MB_MAX_REQUEST_BYTES, why, why_len);
    if (!doc)
        return false;
    json_t *id = json_object_get(doc, "id");
    r->id = id ? json_incref(id) : NULL;
    json_t *q = json_object_get(doc, "request");
    bool ok = false;
    int device;
    if (!json_is_object(q)) {
        snprintf(why, why_len, "Invalid request: missing the request object");
    } else if (!(r->function_code = parse_operation(json_object_get(q, "operation")))) {
        snprintf(why, why_len, "Invalid operation field: not one of the supported operations");
        json_t *d = json_object_get(q, "device");
        if (json_is_integer(d) && json_integer_value(d) >= 0 && json_integer_value(d) <= 247)
            r->device = (int)json_integer_value(d);
    } else {
        r->operation = modbus_operation_name(r->function_code);
        if (int_field(q, "device", 0, 247, &device, why, why_len)) {
            r->device = device;
            ok = parse_fields(q, r, why, why_len);
        }
    }
    if (ok && id && !json_is_string(id)) {
        snprintf(why, why_len, "Invalid id field. Expected str, got %s", type_name(id));
        ok = false;
    } else if (ok && !id) {
        snprintf(why, why_len, "Missing id field");
        ok = false;
    }
    json_decref(doc);
    return ok;
}

void modbus_request_release(modbus_request_t *r)
{
    json_decref(r->id);
    r->id = NULL;
}

/* A response in Greengrass's order: status, error, error_message,
 * device, operation, payload; then the id. */
static json_t *envelope(const modbus_request_t *r, const char *error, const char *message,
                        json_t *payload)
{
    json_t *response = json_object();
    json_object_set_new(response, "status", json_string(error ? "fail" : "success"));
    if (error) {
        json_object_set_new(response, "error_message", json_string(message));
        json_object_set_new(response, "error", json_string(error));
    }
    json_object_set_new(response, "device", r->device >= 0 ? json_integer(r->device) : json_null());
    json_object_set_new(response, "operation",
                        r->operation ? json_string(r->operation) : json_null());
    json_object_set_new(response, "payload", payload);
    json_t *doc = json_object();
    json_object_set_new(doc, "response", response);
    json_object_set(doc, "id", r->id ? r->id : json_null());
    return doc;
}

static json_t *int_array(const uint16_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

json_t *modbus_response_success(const modbus_request_t *r, const uint16_t *result, size_t count)
{
    json_t *payload = json_object();
    json_object_set_new(payload, "function_code", json_integer(r->function_code));
    switch (r->function_code) {
    case 1:
    case 2: json_object_set_new(payload, "bits", int_array(result, count)); break;
    case 3:
    case 4:
    case 23: json_object_set_new(payload, "registers", int_array(result, count)); break;
    case 5:
        json_object_set_new(payload, "address", json_integer(r->address));
        json_object_set_new(payload, "value", json_boolean(r->value));
        break;
    case 6:
        json_object_set_new(payload, "address", json_integer(r->address));
        json_object_set_new(payload, "value", json_integer(r->value));
        break;
    case 15:
    case 16:
        json_object_set_new(payload, "address", json_integer(r->address));
        json_object_set_new(payload, "count", json_integer(r->count));
        break;
    case 22:
        json_object_set_new(payload, "address", json_integer(r->address));
        json_object_set_new(payload, "and_mask", json_integer(r->and_mask));
        json_object_set_new(payload, "or_mask", json_integer(r->or_mask));
        break;
    }
    return envelope(r, NULL, NULL, payload);
}

json_t *modbus_response_exception(const modbus_request_t *r, int exception_code,
                                  const char *message)
{
    json_t *payload = json_object();
    json_object_set_new(payload, "function_code", json_integer(r->function_code + 128));
    json_object_set_new(payload, "exception_code", json_integer(exception_code));
    return envelope(r, "Exception", message, payload);
}

json_t *modbus_response_no_response(const modbus_request_t *r, const char *message)
{
    json_t *payload = json_object();
    json_object_set_new(payload, "error", json_string(message));
    return envelope(r, "No Response", message, payload);
}
