/*
 * requests: what a function asks of the core — publish, shadows, invoke,
 * config — and the log lines it sends without waiting.
 *
 * Each request is one header plus a payload, then one reply; the reply's
 * payload, when the caller wants it, is copied into a sedge_buf it owns.
 * Arguments are checked here so that a mistake gets a sentence naming the
 * argument instead of a refusal from the core.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The reply's verdict; on success its payload goes to `out` (may be NULL). */
static sedge_err finish(sdk_frame_t *reply, sedge_buf *out)
{
    bool ok = false;
    (void)sdk_header_bool(&reply->header, "ok", &ok);
    sedge_err err =
        ok ? sdk_buf_copy_out(out, reply->payload, reply->payload_len) : sdk_reply_error(reply);
    sdk_frame_release(reply);
    return err;
}

static sedge_err ask(sdk_json_t *j, int64_t req, const void *payload, size_t len, sedge_buf *out)
{
    sdk_frame_t reply;
    sedge_err err = sdk_request(j, req, payload, len, &reply);
    sdk_json_release(j);
    return err ? err : finish(&reply, out);
}

sedge_err sedge_publish(const char *topic, const void *payload, size_t len, int qos)
{
    if (!topic || !*topic)
        return sdk_error(SEDGE_ERR_INVALID, "sedge_publish: the topic is empty");
    if (qos != 0 && qos != 1)
        return sdk_error(SEDGE_ERR_INVALID, "sedge_publish: qos must be 0 or 1, not %d", qos);
    if (!payload && len)
        return sdk_error(SEDGE_ERR_INVALID, "sedge_publish: payload is NULL but len is %zu", len);
    sdk_json_t j;
    int64_t req = sdk_begin_request(&j, "publish");
    sdk_json_str(&j, "topic", topic);
    sdk_json_int(&j, "qos", qos);
    return ask(&j, req, payload, len, NULL);
}

static sedge_err shadow(const char *action, const char *thing, const char *name, const char *update,
                        sedge_buf *doc)
{
    if (doc)
        *doc = (sedge_buf){0};
    if (!thing || !*thing)
        return sdk_error(SEDGE_ERR_INVALID, "sedge_shadow_%s: the thing name is empty", action);
    sdk_json_t j;
    int64_t req = sdk_begin_request(&j, "shadow");
    sdk_json_str(&j, "action", action);
    sdk_json_str(&j, "thing", thing);
    if (name && *name)
        sdk_json_str(&j, "name", name);
    return ask(&j, req, update, update ? strlen(update) : 0, doc);
}

sedge_err sedge_shadow_get(const char *thing, const char *name, sedge_buf *doc)
{
    return shadow("get", thing, name, NULL, doc);
}

sedge_err sedge_shadow_update(const char *thing, const char *name, const char *update_json,
                              sedge_buf *doc)
{
    if (!update_json || !*update_json) {
        if (doc)
            *doc = (sedge_buf){0};
        return sdk_error(SEDGE_ERR_INVALID, "sedge_shadow_update: the update document is empty");
    }
    return shadow("update", thing, name, update_json, doc);
}

sedge_err sedge_shadow_delete(const char *thing, const char *name, sedge_buf *doc)
{
    return shadow("delete", thing, name, NULL, doc);
}

static sedge_err invoke(const char *function, const void *payload, size_t len, bool async,
                        sedge_buf *result)
{
    if (result)
        *result = (sedge_buf){0};
    if (!function || !*function)
        return sdk_error(SEDGE_ERR_INVALID, "sedge_invoke: the function name is empty");
    if (!payload && len)
        return sdk_error(SEDGE_ERR_INVALID, "sedge_invoke: payload is NULL but len is %zu", len);
    sdk_json_t j;
    int64_t req = sdk_begin_request(&j, "invoke");
    sdk_json_str(&j, "function", function);
    sdk_json_bool(&j, "async", async);
    return ask(&j, req, payload, len, result);
}

sedge_err sedge_invoke(const char *function, const void *payload, size_t len, sedge_buf *result)
{
    return invoke(function, payload, len, false, result);
}

sedge_err sedge_invoke_async(const char *function, const void *payload, size_t len)
{
    return invoke(function, payload, len, true, NULL);
}

sedge_err sedge_config(sedge_buf *config)
{
    if (!config)
        return sdk_error(SEDGE_ERR_INVALID, "sedge_config: config is NULL");
    *config = (sedge_buf){0};
    sdk_json_t j;
    int64_t req = sdk_begin_request(&j, "config");
    sedge_err err = ask(&j, req, NULL, 0, config);
    /* A function deployed without a config gets an empty object. */
    if (err == SEDGE_OK && config->len == 0) {
        sedge_buf_free(config);
        err = sdk_buf_copy_out(config, (const uint8_t *)"{}", 2);
    }
    return err;
}

sedge_err sedge_secret_get(const char *id, sedge_buf *value)
{
    if (!id || !value)
        return sdk_error(SEDGE_ERR_INVALID, "sedge_secret_get: id or value is NULL");
    *value = (sedge_buf){0};
    sdk_json_t j;
    int64_t req = sdk_begin_request(&j, "secret");
    sdk_json_str(&j, "id", id);
    return ask(&j, req, NULL, 0, value);
}

sedge_err sedge_log(sedge_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if ((unsigned)level >= sizeof names / sizeof names[0])
        return sdk_error(SEDGE_ERR_INVALID, "sedge_log: unknown level %d", (int)level);
    if (!fmt)
        return sdk_error(SEDGE_ERR_INVALID, "sedge_log: the format is NULL");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return sdk_error(SEDGE_ERR_INVALID, "sedge_log: the format cannot be printed");
    /* A line longer than a frame is cut; a log is not worth failing for. */
    size_t len = (size_t)n;
    if (len > SDK_FRAME_MAX - 256)
        len = SDK_FRAME_MAX - 256;
    char *text = malloc((size_t)n + 1);
    if (!text)
        return sdk_error(SEDGE_ERR_NOMEM, "no memory for a log line of %d bytes", n);
    va_start(ap, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sdk_json_t j;
    sdk_json_begin(&j);
    sdk_json_str(&j, "op", "log");
    sdk_json_str(&j, "level", names[level]);
    sedge_err err = sdk_send(&j, text, len);
    sdk_json_release(&j);
    free(text);
    return err;
}
