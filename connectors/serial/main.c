/*
 * serial: Greengrass's Serial Stream connector, with libserialport.
 *
 * Read-on-demand: a request on serial/THING/read/PORT reads readLength
 * bytes (waiting up to timeout_ms) and publishes them on
 * serial/THING/read_response/PORT; one on serial/THING/write/PORT writes
 * its data. Each gets its status on serial/THING/status/PORT. Requests for
 * another port than this connector's are not its own: they fail their
 * invocation and are otherwise left alone.
 *
 * Polling-read (polling_read: true) also reads what has arrived every
 * polling_interval_ms, up to polling_read_length bytes, and publishes it
 * on read_response without an id, as soon as it arrives.
 *
 * A port that fails (unplugged, gone) is closed and opened again by the
 * next request or poll.
 */
#include "connector.h"
#include "request.h"

#include "port.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    json_t *params;
    const char *path;
    serial_port_t port;
    uint32_t timeout_ms;
    bool polling;
    bool poll_hex;
    size_t poll_length;
    uint32_t poll_interval_ms;
    uint64_t next_poll_ms;
    conn_limit_t log_limit;
    char open_error[300];
} serial_conn_t;

static bool port_open(serial_conn_t *s)
{
    if (s->port.fd >= 0)
        return true;
    char why[sizeof s->open_error];
    if (serial_port_open(&s->port, s->path, s->params, why, sizeof why)) {
        if (s->open_error[0])
            conn_log("info", "%s is open again", s->path);
        s->open_error[0] = '\0';
        return true;
    }
    if (strcmp(why, s->open_error) != 0)
        conn_log("warn", "%s", why);
    memcpy(s->open_error, why, sizeof why);
    return false;
}

static void port_failed(serial_conn_t *s, const char *what, char *why, size_t why_len)
{
    snprintf(why, why_len, "Could not %s port: %s", what, strerror(errno));
    conn_log("warn", "%s %s failed: %s; opened again at the next request", what, s->path,
             strerror(errno));
    serial_port_close(&s->port);
}

static void publish_reply(const char *thing, const char *kind, const char *path, json_t *doc)
{
    char topic[512];
    serial_reply_topic(thing, kind, path, topic, sizeof topic);
    (void)conn_publish_json(topic, doc);
    json_decref(doc);
}

static const char *do_read(serial_conn_t *s, serial_request_t *r, char *why, size_t why_len)
{
    static uint8_t buf[SERIAL_MAX_READ];
    if (!port_open(s))
        return s->open_error;
    long n = serial_port_read(&s->port, buf, r->read_length, s->timeout_ms);
    if (n < 0) {
        port_failed(s, "read from", why, why_len);
        return why;
    }
    publish_reply(r->thing, "read_response", r->port,
                  serial_read_response(r->id, buf, (size_t)n, r->hex));
    if ((size_t)n < r->read_length) {
        snprintf(why, why_len, "Timed out after %u ms: read %ld of %zu bytes", s->timeout_ms, n,
                 r->read_length);
        return why;
    }
    return NULL;
}

static const char *do_write(serial_conn_t *s, serial_request_t *r, char *why, size_t why_len)
{
    if (!port_open(s))
        return s->open_error;
    long n = serial_port_write(&s->port, r->data, r->data_len, s->timeout_ms);
    if (n < 0) {
        port_failed(s, "write to", why, why_len);
        return why;
    }
    if ((size_t)n < r->data_len) {
        snprintf(why, why_len, "Could not write to port: %ld of %zu bytes written in %u ms", n,
                 r->data_len, s->timeout_ms);
        return why;
    }
    return NULL;
}

static sedge_err handle(const sedge_event *ev, sedge_result *res, void *ctx)
{
    serial_conn_t *s = ctx;
    serial_request_t r;
    char why[400];
    if (!serial_topic_parse(ev->topic, &r)) {
        snprintf(why, sizeof why, "not a Serial Stream topic: %.200s", ev->topic);
        return sedge_result_error(res, why);
    }
    if (strcmp(r.port, s->path) != 0) {
        snprintf(why, sizeof why, "for port %.200s; this connector serves %.150s", r.port, s->path);
        return sedge_result_error(res, why);
    }
    const char *error = NULL;
    if (!serial_payload_parse(ev->payload, ev->payload_len, &r, why, sizeof why))
        error = why;
    else if (r.op == SERIAL_READ)
        error = do_read(s, &r, why, sizeof why);
    else
        error = do_write(s, &r, why, sizeof why);
    publish_reply(r.thing, "status", r.port, serial_status(r.id, error));
    if (error && conn_limit_allows(&s->log_limit))
        conn_log("warn", "%s request failed: %s", r.op == SERIAL_READ ? "read" : "write", error);
    serial_request_release(&r);
    return error ? sedge_result_error(res, error) : SEDGE_OK;
}

static int64_t next_ms(void *ctx)
{
    serial_conn_t *s = ctx;
    if (!s->polling)
        return -1;
    uint64_t now = conn_now_ms();
    return s->next_poll_ms > now ? (int64_t)(s->next_poll_ms - now) : 0;
}

static void tick(void *ctx)
{
    serial_conn_t *s = ctx;
    static uint8_t buf[SERIAL_MAX_READ];
    s->next_poll_ms = conn_now_ms() + s->poll_interval_ms;
    if (!port_open(s))
        return;
    long n = serial_port_read(&s->port, buf, s->poll_length, 0);
    if (n < 0) {
        char why[300];
        port_failed(s, "read from", why, sizeof why);
        return;
    }
    if (n > 0)
        publish_reply(conn_thing_name(), "read_response", s->path,
                      serial_read_response(NULL, buf, (size_t)n, s->poll_hex));
}

int main(void)
{
    serial_conn_t s = {.port = {.fd = -1}};
    sedge_err err = conn_parameters(&s.params);
    if (err) {
        conn_log("error", "cannot read the parameters: %s", sedge_last_error());
        return 1;
    }
    s.path = conn_param_str(s.params, "serial_port", "");
    s.timeout_ms = (uint32_t)conn_param_int(s.params, "timeout_ms", 1000);
    s.polling = conn_param_bool(s.params, "polling_read", false);
    s.poll_length = (size_t)conn_param_int(s.params, "polling_read_length", 1);
    s.poll_interval_ms = (uint32_t)conn_param_int(s.params, "polling_interval_ms", 1000);
    s.poll_hex = strcmp(conn_param_str(s.params, "polling_read_type", "ascii"), "hex") == 0;
    s.next_poll_ms = conn_now_ms();
    if (!port_open(&s))
        conn_log("warn", "%s: opened again at the next request%s", s.path,
                 s.polling ? " or poll" : "");
    conn_ops_t ops = {.handle = handle, .next_ms = next_ms, .tick = tick, .ctx = &s};
    err = conn_run(&ops);
    conn_log(err == SEDGE_ERR_CLOSED ? "info" : "error", "stopping: %s", sedge_last_error());
    serial_port_close(&s.port);
    json_decref(s.params);
    return err == SEDGE_ERR_CLOSED ? 0 : 1;
}
