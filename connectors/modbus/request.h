/*
 * request: Greengrass's Modbus-RTU Protocol Adapter messages — the request
 * JSON on modbus/adapter/request parsed and checked (pure: bytes in, a
 * request or a reason out; fuzzed by tests/fuzz/fuzz_modbus_request.c),
 * and the response JSON for modbus/adapter/response built from a result.
 *
 * {"request": {"operation": "ReadCoilsRequest" | 1 | "0x01", "device": 1,
 *              "address": 1, "count": 1, ...}, "id": "..."}
 * {"response": {"status": "success" | "fail", ["error": "Exception" |
 *   "No Response", "error_message": "..."], "device": 1, "operation":
 *   "ReadCoilsRequest", "payload": {...}}, "id": "..."}
 */
#ifndef SEDGE_MODBUS_REQUEST_H
#define SEDGE_MODBUS_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The Modbus protocol's limits per request (the application protocol
 * specification, v1.1b3). */
#define MB_MAX_READ_BITS 2000
#define MB_MAX_READ_REGISTERS 125
#define MB_MAX_WRITE_BITS 1968
#define MB_MAX_WRITE_REGISTERS 123
#define MB_MAX_RW_WRITE_REGISTERS 121
#define MB_MAX_VALUES MB_MAX_READ_BITS
#define MB_MAX_REQUEST_BYTES (64u << 10)

typedef struct {
    int function_code;     /* 1..6, 15, 16, 22, 23; 0 when unknown */
    const char *operation; /* "ReadCoilsRequest"...; NULL when unknown */
    json_t *id;            /* the request's "id" as given (a reference), or NULL */
    int device;            /* -1 when not known */
    int address, count;    /* also read_address / read_count for 23 */
    int write_address;     /* 23 */
    uint16_t value;        /* 5 (0/1), 6 */
    uint16_t and_mask, or_mask;
    uint16_t values[MB_MAX_VALUES]; /* 15, 16; 23: the registers to write */
    size_t value_count;
} modbus_request_t;

/* Parse one request. false: `why` says what is wrong (GG's "No Response"
 * message), and out still holds what could be read (id, device,
 * operation) for the error response. Release with modbus_request_release
 * either way. */
bool modbus_request_parse(const uint8_t *data, size_t len, modbus_request_t *out, char *why,
                          size_t why_len);
void modbus_request_release(modbus_request_t *r);

/* The name of a function code ("ReadCoilsRequest"), NULL for others. */
const char *modbus_operation_name(int function_code);

/* Responses (new references). `result` holds what was read: bits or
 * registers for reads, nothing else for writes (they echo the request). */
json_t *modbus_response_success(const modbus_request_t *r, const uint16_t *result, size_t count);
json_t *modbus_response_exception(const modbus_request_t *r, int exception_code,
                                  const char *message);
json_t *modbus_response_no_response(const modbus_request_t *r, const char *message);

#endif
