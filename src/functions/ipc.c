/*
 * ipc: the function socket — accepting connections, framing, the hello
 * with its credential check, and the requests a function makes.
 *
 * A connection is anonymous until its hello names a live instance's token
 * and the kernel's SO_PEERCRED says the peer really is that instance (its
 * user, and its process or a descendant of it). Answers to requests that
 * complete later (shadows, invocations) find their connection again by its
 * serial number, so a connection that closed meanwhile is simply skipped.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_TAG "functions"

struct fconn {
    uv_pipe_t pipe;
    struct functions *f;
    fconn_t *next, *prev;
    uint64_t serial;
    buf_t in;
    instance_t *instance;
    bool closing;
};

static uint64_t next_serial = 1;

typedef struct {
    uv_write_t req;
    uint8_t *data;
} frame_write_t;

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    frame_write_t *w = (frame_write_t *)req;
    free(w->data);
    free(w);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Send a frame; takes the reference to `header`. */
static void send_frame(fconn_t *c, json_t *header, bytes_t payload)
{
    char *text = json_dumps(header, JSON_COMPACT);
    json_decref(header);
    if (!text || c->closing) {
        free(text);
        return;
    }
    size_t hlen = strlen(text), total = 8 + hlen + payload.len;
    frame_write_t *w = malloc(sizeof *w);
    uint8_t *data = malloc(total);
    if (!w || !data) {
        free(w);
        free(data);
        free(text);
        ipc_close_conn(c);
        return;
    }
    put_u32(data, (uint32_t)(total - 4));
    put_u32(data + 4, (uint32_t)hlen);
    memcpy(data + 8, text, hlen);
    if (payload.len)
        memcpy(data + 8 + hlen, payload.data, payload.len);
    free(text);
    w->data = data;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)total);
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written)) {
        free(data);
        free(w);
        ipc_close_conn(c);
    }
}

static void send_error_and_close(fconn_t *c, const char *why)
{
    const char *who = c->instance ? c->instance->fn->spec.name : "an unauthenticated peer";
    LOGW("function socket: %s: %s; closing the connection", who, why);
    if (c->instance)
        c->instance->fn->errors++;
    send_frame(c, json_pack("{s:s,s:s}", "op", "error", "error", why), (bytes_t){0});
    ipc_close_conn(c);
}

static void reply(fconn_t *c, json_int_t req, bool ok, const char *code, const char *error,
                  bytes_t payload)
{
    json_t *h = json_pack("{s:s,s:I,s:b}", "op", "reply", "req", req, "ok", ok);
    if (code)
        json_object_set_new(h, "code", json_string(code));
    if (error)
        json_object_set_new(h, "error", json_string(error));
    send_frame(c, h, payload);
}

static fconn_t *conn_by_serial(struct functions *f, uint64_t serial)
{
    for (fconn_t *c = f->conns; c; c = c->next)
        if (c->serial == serial && !c->closing)
            return c;
    return NULL;
}

/* Answers that come later. */
typedef struct {
    struct functions *f;
    uint64_t serial;
    json_int_t req;
} pending_t;

static pending_t *pending_new(fconn_t *c, json_int_t req)
{
    pending_t *p = malloc(sizeof *p);
    if (p)
        *p = (pending_t){c->f, c->serial, req};
    return p;
}

static void shadow_answered(void *ctx, int code, bytes_t response)
{
    pending_t *p = ctx;
    fconn_t *c = conn_by_serial(p->f, p->serial);
    if (c) {
        json_t *h = json_pack("{s:s,s:I,s:b}", "op", "reply", "req", p->req, "ok", code == 0);
        if (code) {
            json_object_set_new(h, "code", json_integer(code));
            json_error_t jerr;
            json_t *doc = json_loadb((const char *)response.data, response.len, 0, &jerr);
            const char *msg = json_string_value(json_object_get(doc, "message"));
            json_object_set_new(h, "error", json_string(msg ? msg : "shadow request failed"));
            json_decref(doc);
        }
        send_frame(c, h, response);
    }
    free(p);
}

/* The short word an SDK maps to its error codes. */
static const char *invoke_code(sedge_err err)
{
    switch (err) {
    case SEDGE_ERR_TIMEOUT: return "timeout";
    case SEDGE_ERR_FULL: return "full";
    case SEDGE_ERR_NOT_FOUND: return "not_found";
    case SEDGE_ERR_INVALID: return "invalid";
    case SEDGE_ERR_NOMEM: return "out_of_memory";
    default: return "failed";
    }
}

static void invoke_answered(void *ctx, sedge_err err, const char *error, bytes_t result)
{
    pending_t *p = ctx;
    fconn_t *c = conn_by_serial(p->f, p->serial);
    if (c)
        reply(c, p->req, err == SEDGE_OK, err ? invoke_code(err) : NULL, err ? error : NULL,
              result);
    free(p);
}

/* Is `pid` the process `ancestor` or one of its descendants? */
static bool descends_from(int pid, int ancestor)
{
    for (int hops = 0; pid > 1 && hops < 64; hops++) {
        if (pid == ancestor)
            return true;
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/status", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            return false;
        int ppid = 0;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "PPid: %d", &ppid) == 1)
                break;
        fclose(f);
        pid = ppid;
    }
    return false;
}

static void handle_hello(fconn_t *c, json_t *h)
{
    const char *token = json_string_value(json_object_get(h, "token"));
    const char *name = json_string_value(json_object_get(h, "function"));
    instance_t *in = token ? instance_by_token(c->f, token) : NULL;
    if (!in || !name || strcmp(name, in->fn->spec.name) != 0 || in->conn) {
        send_frame(c,
                   json_pack("{s:s,s:b,s:s}", "op", "hello", "ok", 0, "error",
                             "unknown function or credential"),
                   (bytes_t){0});
        send_error_and_close(c, "hello with an unknown function or credential");
        return;
    }
    struct ucred cred;
    socklen_t len = sizeof cred;
    int fd = -1;
    uv_fileno((uv_handle_t *)&c->pipe, &fd);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (in->fn->spec.has_user && cred.uid != in->fn->spec.uid) ||
        !descends_from(cred.pid, in->pid)) {
        send_error_and_close(c, "credential used by a process that is not the function's");
        return;
    }
    c->instance = in;
    send_frame(c, json_pack("{s:s,s:b}", "op", "hello", "ok", 1), (bytes_t){0});
    instance_connected(in, c);
}

static void handle_request(fconn_t *c, json_t *h, const char *op, bytes_t payload)
{
    struct functions *f = c->f;
    instance_t *in = c->instance;
    fn_t *fn = in->fn;
    json_t *jreq = json_object_get(h, "req");
    json_int_t req = json_integer_value(jreq);
    if (strcmp(op, "result") == 0) {
        json_t *id = json_object_get(h, "id");
        if (!json_is_integer(id)) {
            send_error_and_close(c, "result without an id");
            return;
        }
        instance_result(in, (uint64_t)json_integer_value(id),
                        json_is_true(json_object_get(h, "ok")),
                        json_string_value(json_object_get(h, "error")), payload);
        return;
    }
    if (strcmp(op, "log") == 0) {
        const char *level = json_string_value(json_object_get(h, "level"));
        logfile_line(fn->log, in->pid, level ? level : "info", payload.data, payload.len);
        return;
    }
    if (!json_is_integer(jreq)) {
        send_error_and_close(c, "request without a req number");
        return;
    }
    if (strcmp(op, "publish") == 0) {
        const char *topic = json_string_value(json_object_get(h, "topic"));
        json_int_t qos = json_integer_value(json_object_get(h, "qos"));
        if (!topic || qos < 0 || qos > 1) {
            reply(c, req, false, "invalid", "publish needs a topic and qos 0 or 1", (bytes_t){0});
            return;
        }
        sedge_err err =
            f->o.publish(f->o.ctx, fn->spec.name, bytes_of_cstr(topic), payload, (uint8_t)qos);
        if (err == SEDGE_ERR_DENIED) {
            fn->publish_refused++;
            char why[300];
            snprintf(why, sizeof why, "no route from function:%s allows topic %.200s",
                     fn->spec.name, topic);
            reply(c, req, false, "denied", why, (bytes_t){0});
        } else if (err) {
            reply(c, req, false, "invalid", sedge_strerror(err), (bytes_t){0});
        } else {
            reply(c, req, true, NULL, NULL, (bytes_t){0});
        }
    } else if (strcmp(op, "shadow") == 0) {
        const char *action = json_string_value(json_object_get(h, "action"));
        const char *thing = json_string_value(json_object_get(h, "thing"));
        const char *name = json_string_value(json_object_get(h, "name"));
        shadow_op_t sop;
        if (action && strcmp(action, "get") == 0)
            sop = SHADOW_GET;
        else if (action && strcmp(action, "update") == 0)
            sop = SHADOW_UPDATE;
        else if (action && strcmp(action, "delete") == 0)
            sop = SHADOW_DELETE;
        else {
            reply(c, req, false, "invalid", "shadow action must be get, update or delete",
                  (bytes_t){0});
            return;
        }
        pending_t *p = thing ? pending_new(c, req) : NULL;
        if (!p) {
            reply(c, req, false, "invalid", "shadow needs a thing", (bytes_t){0});
            return;
        }
        f->o.shadow(f->o.ctx, fn->spec.name, sop, bytes_of_cstr(thing),
                    bytes_of_cstr(name ? name : ""), payload, shadow_answered, p);
    } else if (strcmp(op, "invoke") == 0) {
        const char *target = json_string_value(json_object_get(h, "function"));
        bool async = json_is_true(json_object_get(h, "async"));
        char source[96];
        snprintf(source, sizeof source, "function:%.80s", fn->spec.name);
        if (!target) {
            reply(c, req, false, "invalid", "invoke needs a function", (bytes_t){0});
            return;
        }
        pending_t *p = async ? NULL : pending_new(c, req);
        sedge_err err = functions_invoke(f, target, BYTES_LIT(""), payload, source,
                                         p ? invoke_answered : NULL, p);
        if (err) {
            free(p);
            reply(c, req, false, invoke_code(err),
                  err == SEDGE_ERR_FULL        ? "queue full"
                  : err == SEDGE_ERR_NOT_FOUND ? "no such function"
                  : err == SEDGE_ERR_INVALID   ? "payload is not JSON"
                                               : sedge_strerror(err),
                  (bytes_t){0});
        } else if (async) {
            reply(c, req, true, NULL, NULL, (bytes_t){0});
        }
    } else if (strcmp(op, "config") == 0) {
        reply(c, req, true, NULL, NULL, bytes_of_cstr(fn->spec.config));
    } else {
        char why[96];
        snprintf(why, sizeof why, "unknown request '%.40s'", op);
        send_error_and_close(c, why);
    }
}

static void handle_frame(fconn_t *c, const uint8_t *data, size_t len)
{
    uint32_t hlen = get_u32(data);
    if (hlen > len - 4) {
        send_error_and_close(c, "frame header longer than the frame");
        return;
    }
    json_error_t jerr;
    json_t *h = json_loadb((const char *)data + 4, hlen, 0, &jerr);
    const char *op = json_string_value(json_object_get(h, "op"));
    if (!op) {
        json_decref(h);
        send_error_and_close(c, "frame header is not a JSON object with an op");
        return;
    }
    bytes_t payload = {data + 4 + hlen, len - 4 - hlen};
    if (!c->instance) {
        if (strcmp(op, "hello") == 0)
            handle_hello(c, h);
        else
            send_error_and_close(c, "the first frame must be hello");
    } else {
        handle_request(c, h, op, payload);
    }
    json_decref(h);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    fconn_t *c = h->data;
    if (buf_reserve(&c->in, 65536)) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)c->in.data + c->in.len;
    buf->len = c->in.cap - c->in.len;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    fconn_t *c = s->data;
    if (n < 0) {
        ipc_close_conn(c);
        return;
    }
    c->in.len += (size_t)n;
    size_t used = 0;
    while (!c->closing && c->in.len - used >= 4) {
        uint32_t len = get_u32(c->in.data + used);
        if (len < 4 || len > FRAME_MAX) {
            send_error_and_close(c, len < 4 ? "frame too short" : "frame over 16 MiB");
            return;
        }
        if (c->in.len - used - 4 < len)
            break;
        handle_frame(c, c->in.data + used + 4, len);
        used += 4 + len;
    }
    if (!c->closing)
        buf_consume(&c->in, used);
}

static void on_conn_closed(uv_handle_t *h)
{
    fconn_t *c = h->data;
    struct functions *f = c->f;
    buf_free(&c->in);
    free(c);
    if (--f->handles == 0 && f->stop_done)
        f->stop_done(f->stop_ctx);
}

void ipc_close_conn(fconn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct functions *f = c->f;
    if (c->prev)
        c->prev->next = c->next;
    else
        f->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    instance_t *in = c->instance;
    c->instance = NULL;
    if (in)
        instance_disconnected(in);
    uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

void ipc_forget_instance(fconn_t *c)
{
    c->instance = NULL;
    ipc_close_conn(c);
}

void ipc_send_invoke(fconn_t *c, const invocation_t *inv)
{
    json_t *h = json_pack("{s:s,s:I,s:s,s:s}", "op", "invoke", "id", (json_int_t)inv->id, "topic",
                          inv->topic ? inv->topic : "", "source", inv->source ? inv->source : "");
    send_frame(c, h, (bytes_t){inv->payload.data, inv->payload.len});
}

static void on_connection(uv_stream_t *server, int status)
{
    struct functions *f = server->data;
    if (status < 0 || f->stopping)
        return;
    fconn_t *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->f = f;
    c->serial = next_serial++;
    uv_pipe_init(server->loop, &c->pipe, 0);
    c->pipe.data = c;
    f->handles++;
    if (uv_accept(server, (uv_stream_t *)&c->pipe)) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
        return;
    }
    c->next = f->conns;
    if (f->conns)
        f->conns->prev = c;
    f->conns = c;
    uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

sedge_err ipc_listen(struct functions *f)
{
    snprintf(f->socket_path, sizeof f->socket_path, "%.480s/functions.sock", f->data_dir);
    unlink(f->socket_path);
    uv_pipe_init(f->o.loop, &f->server, 0);
    f->server.data = f;
    int rc = uv_pipe_bind(&f->server, f->socket_path);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&f->server, 64, on_connection);
    if (rc) {
        LOGE("cannot listen on %s: %s", f->socket_path, uv_strerror(rc));
        return SEDGE_ERR_IO;
    }
    /* Functions run as other users: the credential, not the file mode,
     * decides who is served. */
    chmod(f->socket_path, 0666);
    f->handles++;
    return SEDGE_OK;
}

static void on_server_closed(uv_handle_t *h)
{
    struct functions *f = h->data;
    unlink(f->socket_path);
    if (--f->handles == 0 && f->stop_done)
        f->stop_done(f->stop_ctx);
}

void ipc_close(struct functions *f)
{
    while (f->conns)
        ipc_close_conn(f->conns);
    uv_close((uv_handle_t *)&f->server, on_server_closed);
}
