/*
 * run: the function's main loop — wait for an invocation, call the
 * handler, answer with its result — and the result the handler fills in.
 *
 * The core sends the next invocation only after the previous one was
 * answered, so the loop is strictly one invocation at a time, and whatever
 * the handler asks of the core in between is answered before the next
 * invocation can arrive.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct sedge_result {
    sdk_buf_t data;
    char *error; /* set by sedge_result_error: the invocation failed */
    bool failed;
};

/* Inside a handler the core sends no invocation: one there is a protocol
 * error, not one to keep for later (client.c). */
static bool in_handler;

bool sdk_in_handler(void)
{
    return in_handler;
}

/* The event handed to the handler, with what sedge.h's struct has no room
 * for; sedge_event comes first so that the handler's pointer leads here. */
typedef struct {
    sedge_event ev;
    const char *source;
} invocation_t;

const char *sedge_event_source(const sedge_event *ev)
{
    return ev ? ((const invocation_t *)ev)->source : "";
}

sedge_err sedge_result_set(sedge_result *res, const void *data, size_t len)
{
    if (!res || (!data && len))
        return sdk_error(SEDGE_ERR_INVALID, "sedge_result_set: data is NULL but len is %zu", len);
    res->data.len = 0;
    if (!sdk_buf_put(&res->data, data, len))
        return sdk_error(SEDGE_ERR_NOMEM, "no memory for a result of %zu bytes", len);
    return SEDGE_OK;
}

sedge_err sedge_result_error(sedge_result *res, const char *message)
{
    if (!res)
        return sdk_error(SEDGE_ERR_INVALID, "sedge_result_error: res is NULL");
    res->failed = true;
    free(res->error);
    res->error = NULL;
    if (!message || !*message)
        return SEDGE_OK;
    if (!sdk_utf8_valid((const uint8_t *)message, strlen(message)))
        return sdk_error(SEDGE_ERR_INVALID, "sedge_result_error: the message is not UTF-8 text");
    res->error = strdup(message);
    return res->error ? SEDGE_OK : sdk_error(SEDGE_ERR_NOMEM, "no memory for an error message");
}

static sedge_err send_failure(int64_t id, const char *message)
{
    sdk_json_t j;
    sdk_json_begin(&j);
    sdk_json_str(&j, "op", "result");
    sdk_json_int(&j, "id", id);
    sdk_json_bool(&j, "ok", false);
    sdk_json_str(&j, "error", message);
    sedge_err err = sdk_send(&j, NULL, 0);
    sdk_json_release(&j);
    return err;
}

static sedge_err send_result(int64_t id, sedge_err handler_err, const sedge_result *res)
{
    if (handler_err != SEDGE_OK || res->failed) {
        if (res->error)
            return send_failure(id, res->error);
        return send_failure(id, sedge_strerror(handler_err ? handler_err : SEDGE_ERR_FAILED));
    }
    sdk_json_t j;
    sdk_json_begin(&j);
    sdk_json_str(&j, "op", "result");
    sdk_json_int(&j, "id", id);
    sdk_json_bool(&j, "ok", true);
    sedge_err err = sdk_send(&j, res->data.data, res->data.len);
    sdk_json_release(&j);
    if (err == SEDGE_ERR_TOO_LARGE)
        return send_failure(id, "the function's result is over the 16 MiB frame limit");
    return err;
}

/* One invocation frame: call the handler and answer. */
static sedge_err serve(const sdk_frame_t *f, sedge_handler handler, void *ctx)
{
    int64_t id;
    if (strcmp(f->op, "invoke") != 0) {
        sedge_err err = sdk_error(
            SEDGE_ERR_PROTOCOL, "the core sent op \"%s\" where an invocation_t was expected", f->op);
        sdk_fail(err);
        return err;
    }
    if (!sdk_header_int(&f->header, "id", &id)) {
        sedge_err err =
            sdk_error(SEDGE_ERR_MALFORMED, "the core sent an invocation_t without an integer id");
        sdk_fail(err);
        return err;
    }
    const char *topic = sdk_header_str(&f->header, "topic");
    const char *source = sdk_header_str(&f->header, "source");
    invocation_t inv = {
        .ev = {.topic = topic ? topic : "", .payload = f->payload, .payload_len = f->payload_len},
        .source = source ? source : "",
    };
    sedge_result res = {0};
    in_handler = true;
    sedge_err handler_err = handler(&inv.ev, &res, ctx);
    in_handler = false;
    sedge_err err = send_result(id, handler_err, &res);
    sdk_buf_release(&res.data);
    free(res.error);
    return err;
}

sedge_err sedge_run(sedge_handler handler, void *ctx)
{
    if (!handler)
        return sdk_error(SEDGE_ERR_INVALID, "sedge_run: the handler is NULL");
    if (sdk_running())
        return sdk_error(SEDGE_ERR_BUSY, "sedge_run is already running (called from a handler?)");
    sedge_err err = sdk_connect();
    if (err)
        return err;
    sdk_set_running(true);
    for (;;) {
        sdk_frame_t f;
        if (!sdk_take_waiting(&f))
            err = sdk_receive(&f);
        if (err)
            break;
        err = serve(&f, handler, ctx);
        sdk_frame_release(&f);
        if (err)
            break;
    }
    sdk_set_running(false);
    return err;
}

sedge_err sedge_serve(sedge_handler handler, void *ctx)
{
    if (!handler)
        return sdk_error(SEDGE_ERR_INVALID, "sedge_serve: the handler is NULL");
    if (sdk_running())
        return sdk_error(SEDGE_ERR_BUSY, "sedge_serve called from a handler");
    sdk_frame_t f;
    sedge_err err = SEDGE_OK;
    if (!sdk_take_waiting(&f))
        err = sdk_receive(&f);
    if (err)
        return err;
    sdk_set_running(true);
    err = serve(&f, handler, ctx);
    sdk_set_running(false);
    sdk_frame_release(&f);
    return err;
}
