/*
 * connector: the loop every connector runs and the helpers they share.
 *
 * The loop is poll(): the core's socket, the connector's own descriptors
 * (a serial port, GPIO line events), and its next timer. An invocation is
 * served when the socket is readable or one waits already (it arrived
 * while a publish waited for its reply); the connector's own work runs
 * between invocations, never inside one, so that what it publishes there
 * and what a handler publishes never interleave.
 */
#include "connector.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t conn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void conn_log(const char *level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    fprintf(stderr, "%s: %s\n", level, line);
    fflush(stderr);
}

#define LIMIT_WINDOW_MS 10000
#define LIMIT_BURST 10

bool conn_limit_allows(conn_limit_t *l)
{
    uint64_t now = conn_now_ms();
    if (now - l->window_start_ms >= LIMIT_WINDOW_MS) {
        if (l->skipped)
            conn_log("warn", "(%u similar lines left out in the last 10 s)", l->skipped);
        l->window_start_ms = now;
        l->count = 0;
        l->skipped = 0;
    }
    if (l->count < LIMIT_BURST) {
        l->count++;
        return true;
    }
    l->skipped++;
    return false;
}

const char *conn_thing_name(void)
{
    const char *t = getenv("SEDGE_THING_NAME");
    return t ? t : "";
}

sedge_err conn_parameters(json_t **params)
{
    *params = NULL;
    sedge_buf cfg;
    sedge_err err = sedge_config(&cfg);
    if (err)
        return err;
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)cfg.data, cfg.len, 0, &jerr);
    sedge_buf_free(&cfg);
    if (!json_is_object(doc)) {
        json_decref(doc);
        conn_log("error", "the parameters from the core are not a JSON object");
        return SEDGE_ERR_MALFORMED;
    }
    *params = doc;
    return SEDGE_OK;
}

static conn_limit_t publish_limit;

sedge_err conn_publish(const char *topic, const void *data, size_t len)
{
    sedge_err err = sedge_publish(topic, data, len, 0);
    if (err && conn_limit_allows(&publish_limit))
        conn_log("warn", "cannot publish on %s: %s", topic, sedge_last_error());
    return err;
}

sedge_err conn_publish_json(const char *topic, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (!text)
        return SEDGE_ERR_NOMEM;
    sedge_err err = conn_publish(topic, text, strlen(text));
    free(text);
    return err;
}

json_t *conn_request_load(const uint8_t *data, size_t len, size_t max, char *why, size_t why_len)
{
    if (len > max) {
        snprintf(why, why_len, "Request of %zu bytes, over the limit of %zu", len, max);
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        snprintf(why, why_len, "Invalid request: %s", doc ? "not a JSON object" : jerr.text);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

const char *conn_param_str(json_t *params, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(params, key));
    return v ? v : dflt;
}

int64_t conn_param_int(json_t *params, const char *key, int64_t dflt)
{
    json_t *v = json_object_get(params, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

bool conn_param_bool(json_t *params, const char *key, bool dflt)
{
    json_t *v = json_object_get(params, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

sedge_err conn_run(const conn_ops_t *ops)
{
    int core_fd;
    sedge_err err = sedge_fd(&core_fd);
    if (err)
        return err;
    for (;;) {
        struct pollfd fds[CONN_MAX_FDS + 1];
        size_t n = ops->fds ? ops->fds(ops->ctx, fds, CONN_MAX_FDS) : 0;
        fds[n] = (struct pollfd){.fd = core_fd, .events = POLLIN};
        int64_t wait = ops->next_ms ? ops->next_ms(ops->ctx) : -1;
        if (sedge_pending())
            wait = 0;
        int rc = poll(fds, n + 1, wait > INT32_MAX ? INT32_MAX : (int)wait);
        if (rc < 0 && errno != EINTR) {
            conn_log("error", "poll: %s", strerror(errno));
            return SEDGE_ERR_IO;
        }
        if (rc > 0 && n && ops->ready)
            ops->ready(ops->ctx, fds, n);
        if (ops->tick && ops->next_ms && ops->next_ms(ops->ctx) == 0)
            ops->tick(ops->ctx);
        if (sedge_pending() || (rc > 0 && fds[n].revents)) {
            err = sedge_serve(ops->handle, ops->ctx);
            if (err)
                return err;
        }
    }
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *conn_base64_encode(const uint8_t *data, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? b64[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_value(char ch)
{
    const char *p = ch ? strchr(b64, ch) : NULL;
    return p ? (int)(p - b64) : -1;
}

bool conn_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len % 4)
        return false;
    uint8_t *buf = malloc(len / 4 * 3 + 1);
    if (!buf)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = b64_value(text[i + (size_t)k]);
        bool pad2 = last && text[i + 2] == '=' && text[i + 3] == '=';
        bool pad1 = last && !pad2 && text[i + 3] == '=';
        if (v[0] < 0 || v[1] < 0 || (v[2] < 0 && !pad2) || (v[3] < 0 && !pad1 && !pad2)) {
            free(buf);
            return false;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12;
        if (!pad2)
            w |= (uint32_t)v[2] << 6;
        if (!pad1 && !pad2)
            w |= (uint32_t)v[3];
        buf[o++] = (uint8_t)(w >> 16);
        if (!pad2)
            buf[o++] = (uint8_t)(w >> 8);
        if (!pad1 && !pad2)
            buf[o++] = (uint8_t)w;
    }
    *out = buf;
    *out_len = o;
    return true;
}
