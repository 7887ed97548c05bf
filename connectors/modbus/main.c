/*
 * modbus: Greengrass's Modbus-RTU Protocol Adapter, over RTU or TCP, with
 * libmodbus.
 *
 * A request routed to the connector (modbus/adapter/request, or whatever
 * topic its routes bring) is parsed and checked (request.c), sent to the
 * device, and answered on modbus/adapter/response (or "response_topic")
 * with the device's answer, its exception, or "No Response" and why. The
 * line is opened when first needed and again after it failed, so a
 * device that was unplugged or a server that restarted is found again by
 * the next request.
 *
 * Beyond Greengrass, "poll" reads a register map every interval_ms and
 * publishes only what changed since the last read (everything after a
 * failed read, since what the device holds then is unknown).
 */
#include "connector.h"
#include "request.h"

#include <errno.h>
#include <modbus/modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RESPONSE_TOPIC "modbus/adapter/response"
#define DEFAULT_POLL_TOPIC "modbus/adapter/poll"
#define POLL_MAX_RANGES 64

typedef enum { TABLE_COILS, TABLE_DISCRETE, TABLE_HOLDING, TABLE_INPUT } table_t;

typedef struct {
    char name[64];
    table_t table;
    int address, count;
    uint16_t last[MB_MAX_READ_BITS];
    bool known; /* `last` holds the device's values */
} poll_range_t;

typedef struct {
    json_t *params;
    modbus_t *ctx;
    bool connected;
    const char *response_topic;
    uint32_t timeout_ms;
    /* polling */
    bool polling;
    int poll_device;
    uint32_t poll_interval_ms;
    const char *poll_topic;
    uint64_t next_poll_ms;
    poll_range_t ranges[POLL_MAX_RANGES];
    size_t range_count;
    bool poll_failing; /* logged once when it starts failing, once when it recovers */
    conn_limit_t log_limit;
    uint64_t requests, failures;
} modbus_conn_t;

static sedge_err line_create(modbus_conn_t *m)
{
    json_t *p = m->params;
    const char *transport = conn_param_str(p, "transport", "tcp");
    if (strcmp(transport, "rtu") == 0) {
        const char *parity = conn_param_str(p, "parity", "N");
        m->ctx = modbus_new_rtu(conn_param_str(p, "serial_port", ""),
                                (int)conn_param_int(p, "baud_rate", 9600), parity[0],
                                (int)conn_param_int(p, "data_bits", 8),
                                (int)conn_param_int(p, "stop_bits", 1));
    } else {
        char port[16];
        snprintf(port, sizeof port, "%lld", (long long)conn_param_int(p, "port", 502));
        m->ctx = modbus_new_tcp_pi(conn_param_str(p, "host", "127.0.0.1"), port);
    }
    if (!m->ctx) {
        conn_log("error", "cannot set up the Modbus %s line: %s", transport,
                 modbus_strerror(errno));
        return SEDGE_ERR_INVALID;
    }
    modbus_set_response_timeout(m->ctx, m->timeout_ms / 1000, (m->timeout_ms % 1000) * 1000);
    return SEDGE_OK;
}

static bool line_open(modbus_conn_t *m, char *why, size_t why_len)
{
    if (m->connected)
        return true;
    if (modbus_connect(m->ctx) != 0) {
        snprintf(why, why_len, "[Input/Output] cannot open the Modbus line: %s",
                 modbus_strerror(errno));
        return false;
    }
    m->connected = true;
    return true;
}

/* After an error that may have left the line in an unknown state (a
 * timeout, a broken connection, bytes out of step), start afresh. */
static void line_reset(modbus_conn_t *m)
{
    if (!m->connected)
        return;
    modbus_close(m->ctx);
    m->connected = false;
}

static bool is_exception(int e)
{
    return e > MODBUS_ENOBASE && e <= EMBXGTAR;
}

/* An answer that does not fit the request: bytes out of step. */
static bool is_out_of_step(int e)
{
    return e == EMBBADDATA || e == EMBBADCRC || e == EMBMDATA || e == EMBBADSLAVE;
}

/* One transaction; returns the count read (reads), 0 (writes) or -1 with
 * errno. */
static int transact(modbus_conn_t *m, const modbus_request_t *r, uint16_t *out)
{
    uint8_t bits[MB_MAX_VALUES];
    int n = -1;
    switch (r->function_code) {
    case 1:
    case 2:
        n = r->function_code == 1 ? modbus_read_bits(m->ctx, r->address, r->count, bits)
                                  : modbus_read_input_bits(m->ctx, r->address, r->count, bits);
        for (int i = 0; i < n; i++)
            out[i] = bits[i];
        return n;
    case 3: return modbus_read_registers(m->ctx, r->address, r->count, out);
    case 4: return modbus_read_input_registers(m->ctx, r->address, r->count, out);
    case 5: return modbus_write_bit(m->ctx, r->address, r->value) == 1 ? 0 : -1;
    case 6: return modbus_write_register(m->ctx, r->address, r->value) == 1 ? 0 : -1;
    case 15:
        for (size_t i = 0; i < r->value_count; i++)
            bits[i] = (uint8_t)r->values[i];
        return modbus_write_bits(m->ctx, r->address, r->count, bits) == r->count ? 0 : -1;
    case 16:
        return modbus_write_registers(m->ctx, r->address, r->count, r->values) == r->count ? 0
                                                                                          : -1;
    case 22: return modbus_mask_write_register(m->ctx, r->address, r->and_mask, r->or_mask) == 1
                        ? 0
                        : -1;
    case 23:
        return modbus_write_and_read_registers(m->ctx, r->write_address, (int)r->value_count,
                                               r->values, r->address, r->count, out);
    }
    errno = EINVAL;
    return -1;
}

/* Run a parsed request; the response (a new reference) says how it went.
 * *failed: it did not succeed. */
static json_t *execute(modbus_conn_t *m, const modbus_request_t *r, bool *failed)
{
    static uint16_t out[MB_MAX_VALUES];
    char why[300];
    *failed = true;
    if (!line_open(m, why, sizeof why))
        return modbus_response_no_response(r, why);
    modbus_set_slave(m->ctx, r->device);
    int n = transact(m, r, out);
    if (n < 0 && is_out_of_step(errno)) {
        /* A late answer to an earlier request that timed out (an RTU line
         * keeps it): drop what is waiting and ask once more. */
        modbus_flush(m->ctx);
        n = transact(m, r, out);
    }
    if (n >= 0) {
        *failed = false;
        return modbus_response_success(r, out, (size_t)n);
    }
    int e = errno;
    if (is_exception(e)) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", modbus_strerror(e));
        return modbus_response_exception(r, e - MODBUS_ENOBASE, msg);
    }
    line_reset(m);
    if (e == ETIMEDOUT)
        snprintf(why, sizeof why, "[Input/Output] No Response received from the remote unit");
    else
        snprintf(why, sizeof why, "[Input/Output] %s", modbus_strerror(e));
    return modbus_response_no_response(r, why);
}

static sedge_err handle(const sedge_event *ev, sedge_result *res, void *ctx)
{
    modbus_conn_t *m = ctx;
    modbus_request_t r;
    char why[300];
    bool failed = true;
    json_t *response;
    m->requests++;
    if (modbus_request_parse(ev->payload, ev->payload_len, &r, why, sizeof why))
        response = execute(m, &r, &failed);
    else
        response = modbus_response_no_response(&r, why);
    const char *message = NULL;
    if (failed) {
        m->failures++;
        json_t *resp = json_object_get(response, "response");
        message = json_string_value(json_object_get(resp, "error_message"));
        if (conn_limit_allows(&m->log_limit))
            conn_log("warn", "request %s to device %d failed: %s",
                     r.operation ? r.operation : "(unknown)", r.device, message ? message : "");
    }
    sedge_err err = response ? conn_publish_json(m->response_topic, response) : SEDGE_ERR_NOMEM;
    modbus_request_release(&r);
    if (failed)
        (void)sedge_result_error(res, message ? message : "the request failed");
    else if (err)
        (void)sedge_result_error(res, "the response could not be published (no route?)");
    json_decref(response);
    return SEDGE_OK;
}

static sedge_err poll_setup(modbus_conn_t *m)
{
    json_t *poll = json_object_get(m->params, "poll");
    if (!json_is_object(poll))
        return SEDGE_OK;
    m->polling = true;
    m->poll_interval_ms = (uint32_t)conn_param_int(poll, "interval_ms", 1000);
    m->poll_device = (int)conn_param_int(poll, "device", 1);
    m->poll_topic = conn_param_str(poll, "topic", DEFAULT_POLL_TOPIC);
    static const char *const tables[] = {"coils", "discrete_inputs", "holding_registers",
                                         "input_registers"};
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(poll, "registers"), i, r)
    {
        if (m->range_count == POLL_MAX_RANGES)
            break;
        poll_range_t *pr = &m->ranges[m->range_count++];
        const char *table = conn_param_str(r, "table", "holding_registers");
        for (int t = 0; t < 4; t++)
            if (strcmp(table, tables[t]) == 0)
                pr->table = (table_t)t;
        pr->address = (int)conn_param_int(r, "address", 0);
        pr->count = (int)conn_param_int(r, "count", 1);
        snprintf(pr->name, sizeof pr->name, "%s", conn_param_str(r, "name", table));
    }
    m->next_poll_ms = conn_now_ms();
    return SEDGE_OK;
}

static const char *table_name(table_t t)
{
    static const char *const names[] = {"coils", "discrete_inputs", "holding_registers",
                                        "input_registers"};
    return names[t];
}

static void poll_once(modbus_conn_t *m)
{
    json_t *changes = json_array();
    char why[300];
    bool ok = line_open(m, why, sizeof why);
    if (ok)
        modbus_set_slave(m->ctx, m->poll_device);
    for (size_t i = 0; ok && i < m->range_count; i++) {
        poll_range_t *pr = &m->ranges[i];
        modbus_request_t r = {.function_code = (int)pr->table + 1, .address = pr->address,
                              .count = pr->count, .device = m->poll_device};
        static uint16_t values[MB_MAX_VALUES];
        int n = transact(m, &r, values);
        if (n != pr->count) {
            int e = errno;
            snprintf(why, sizeof why, "%s %d+%d: %s", table_name(pr->table), pr->address,
                     pr->count, modbus_strerror(e));
            if (!is_exception(e))
                line_reset(m);
            ok = false;
            break;
        }
        if (pr->known && memcmp(pr->last, values, (size_t)n * sizeof *values) == 0)
            continue;
        memcpy(pr->last, values, (size_t)n * sizeof *values);
        pr->known = true;
        json_t *a = json_array();
        for (int k = 0; k < n; k++)
            json_array_append_new(a, json_integer(values[k]));
        json_array_append_new(changes, json_pack("{s:s, s:s, s:i, s:o}", "name", pr->name,
                                                 "table", table_name(pr->table), "address",
                                                 pr->address, "values", a));
    }
    if (!ok) {
        m->failures++;
        for (size_t i = 0; i < m->range_count; i++)
            m->ranges[i].known = false;
        if (!m->poll_failing)
            conn_log("warn", "poll of device %d failed: %s (logged again when it recovers)",
                     m->poll_device, why);
    } else if (m->poll_failing) {
        conn_log("info", "poll of device %d works again", m->poll_device);
    }
    m->poll_failing = !ok;
    if (json_array_size(changes)) {
        json_t *doc = json_pack("{s:i, s:o}", "device", m->poll_device, "changes", changes);
        (void)conn_publish_json(m->poll_topic, doc);
        json_decref(doc);
    } else {
        json_decref(changes);
    }
}

static int64_t next_ms(void *ctx)
{
    modbus_conn_t *m = ctx;
    if (!m->polling)
        return -1;
    uint64_t now = conn_now_ms();
    return m->next_poll_ms > now ? (int64_t)(m->next_poll_ms - now) : 0;
}

static void tick(void *ctx)
{
    modbus_conn_t *m = ctx;
    poll_once(m);
    m->next_poll_ms += m->poll_interval_ms;
    uint64_t now = conn_now_ms();
    if (m->next_poll_ms < now)
        m->next_poll_ms = now + m->poll_interval_ms; /* behind: skip, do not burst */
}

int main(void)
{
    modbus_conn_t m = {0};
    sedge_err err = conn_parameters(&m.params);
    if (err) {
        conn_log("error", "cannot read the parameters: %s", sedge_last_error());
        return 1;
    }
    m.response_topic = conn_param_str(m.params, "response_topic", DEFAULT_RESPONSE_TOPIC);
    m.timeout_ms = (uint32_t)conn_param_int(m.params, "timeout_ms", 1000);
    if (line_create(&m) || poll_setup(&m))
        return 1;
    char why[300];
    if (!line_open(&m, why, sizeof why))
        conn_log("warn", "%s (tried again at each request)", why);
    conn_ops_t ops = {.handle = handle, .next_ms = next_ms, .tick = tick, .ctx = &m};
    err = conn_run(&ops);
    conn_log(err == SEDGE_ERR_CLOSED ? "info" : "error", "stopping: %s", sedge_last_error());
    line_reset(&m);
    modbus_free(m.ctx);
    json_decref(m.params);
    return err == SEDGE_ERR_CLOSED ? 0 : 1;
}
