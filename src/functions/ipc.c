/*
 * ipc: the function sockets — one per function, DATA_DIR/fn/NAME.sock,
 * owned by the function's user and mode 0600 — their connections,
 * framing, the hello with its credential check, and the requests a
 * function makes.
 *
 * Nothing is read from a connection before it is known to come from the
 * function: at accept, the kernel's SO_PEERCRED must name a process of an
 * instance of this function that has not connected yet (its user, and its
 * process or a descendant of it); any other peer gets one error frame and
 * is closed. Until its hello (which must carry that instance's token, and
 * come within HELLO_TIMEOUT_MS) a connection may send frames of at most
 * HELLO_FRAME_MAX bytes, and only a few such connections exist at once.
 * After the hello, frames are bounded by the configured maximum and by the
 * function's memory_mb, as are the bytes the core holds for it unsent: the
 * memory a function makes the core spend counts against its own limit.
 *
 * Answers to requests that complete later (shadows, invocations) find
 * their connection again by its serial number, so a connection that
 * closed meanwhile is simply skipped.
 */
#include "internal.h"

#include <openssl/crypto.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_TAG "functions"

#define HELLO_FRAME_MAX 4096
#define HELLO_TIMEOUT_MS 5000
#define UNAUTHENTICATED_MAX 16 /* connections waiting for their hello, in all */
#define PER_INSTANCE_MAX 4     /* of them, from one instance's processes */
#define PENDING_MAX 64         /* requests of one connection answered later */
#define REFUSAL_LOG_EVERY 1000
#define OUTPUT_SLACK (64u << 10) /* unsent bytes allowed past one whole frame */

typedef struct listener {
    struct listener *next;
    struct functions *f;
    uv_pipe_t pipe;
    char name[72];
    char path[108];
} listener_t;

struct fconn {
    uv_pipe_t pipe;
    struct functions *f;
    fconn_t *next, *prev;
    uint64_t serial;
    buf_t in;
    instance_t *instance;  /* after the hello */
    uint64_t expected_seq; /* before it: the instance its peer belongs to */
    uint64_t accepted_ms;
    size_t frame_max, output_max;
    unsigned pending;
    bool authenticated; /* its hello was accepted */
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

static const char *conn_who(const fconn_t *c)
{
    return c->instance ? c->instance->fn->spec.name : "an unauthenticated peer";
}

/* Send a frame; takes the reference to `header`. A function that lets
 * more than its share pile up unread loses the connection. */
static void send_frame(fconn_t *c, json_t *header, bytes_t payload)
{
    char *text = json_dumps(header, JSON_COMPACT);
    json_decref(header);
    if (!text || c->closing) {
        free(text);
        return;
    }
    size_t hlen = strlen(text), total = 8 + hlen + payload.len;
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);
    if (queued + total > c->output_max) {
        LOGW("function socket: %s: %zu bytes it has not read, over its limit of %zu (memory_mb "
             "and functions.max_frame_bytes); closing the connection",
             conn_who(c), queued + total, c->output_max);
        if (c->instance)
            c->instance->fn->errors++;
        free(text);
        ipc_close_conn(c);
        return;
    }
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
    LOGW("function socket: %s: %s; closing the connection", conn_who(c), why);
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
    if (p) {
        *p = (pending_t){c->f, c->serial, req};
        c->pending++;
    }
    return p;
}

/* The connection a later answer is for, if it is still there; frees `p`. */
static fconn_t *pending_end(pending_t *p, json_int_t *req)
{
    fconn_t *c = conn_by_serial(p->f, p->serial);
    if (c && c->pending)
        c->pending--;
    *req = p->req;
    free(p);
    return c;
}

static void shadow_answered(void *ctx, int code, bytes_t response)
{
    json_int_t req;
    fconn_t *c = pending_end(ctx, &req);
    if (!c)
        return;
    json_t *h = json_pack("{s:s,s:I,s:b}", "op", "reply", "req", req, "ok", code == 0);
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

/* The short word an SDK maps to its error codes. */
static const char *invoke_code(sedge_err err)
{
    switch (err) {
    case SEDGE_ERR_TIMEOUT: return "timeout";
    case SEDGE_ERR_FULL: return "full";
    case SEDGE_ERR_NOT_FOUND: return "not_found";
    case SEDGE_ERR_INVALID: return "invalid";
    case SEDGE_ERR_NOMEM: return "out_of_memory";
    case SEDGE_ERR_DENIED: return "denied";
    default: return "failed";
    }
}

static void invoke_answered(void *ctx, sedge_err err, const char *error, bytes_t result)
{
    json_int_t req;
    fconn_t *c = pending_end(ctx, &req);
    if (c)
        reply(c, req, err == SEDGE_OK, err ? invoke_code(err) : NULL, err ? error : NULL, result);
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

static bool peer_credentials(fconn_t *c, struct ucred *cred)
{
    socklen_t len = sizeof *cred;
    int fd = -1;
    return uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
           getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) == 0;
}

/* The instance of function `name` whose process `cred` is, if it has not
 * connected yet. */
static instance_t *instance_awaiting(struct functions *f, const char *name,
                                     const struct ucred *cred)
{
    fn_t *fn = fn_find(f, name);
    for (instance_t *in = fn ? fn->instances : NULL; in; in = in->next) {
        if (in->state != INSTANCE_STARTING || in->conn || in->pid <= 0)
            continue;
        if (fn->spec.has_user && cred->uid != fn->spec.uid)
            continue;
        if (descends_from(cred->pid, in->pid))
            return in;
    }
    return NULL;
}

/* What the kernel says of the peer's confinement (/proc/PID/status). */
static void observe_confinement(instance_t *in, int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    confinement_t *k = &in->confinement;
    unsigned long long caps;
    int v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "NoNewPrivs: %d", &v) == 1)
            k->no_new_privs = v == 1;
        else if (sscanf(line, "Seccomp: %d", &v) == 1)
            k->seccomp_filter = v == 2;
        else if (sscanf(line, "CapEff: %llx", &caps) == 1)
            k->no_capabilities = caps == 0;
        else if (sscanf(line, "CapBnd: %llx", &caps) == 1)
            k->empty_bounding_set = caps == 0;
    }
    fclose(f);
    k->observed = true;
    in->fn->confinement = *k;
}

static void handle_hello(fconn_t *c, json_t *h)
{
    const char *token = json_string_value(json_object_get(h, "token"));
    const char *name = json_string_value(json_object_get(h, "function"));
    instance_t *in = token ? instance_by_token(c->f, token) : NULL;
    if (!in || !name || strcmp(name, in->fn->spec.name) != 0 || in->conn ||
        in->seq != c->expected_seq) {
        send_frame(c,
                   json_pack("{s:s,s:b,s:s}", "op", "hello", "ok", 0, "error",
                             "unknown function or credential"),
                   (bytes_t){0});
        send_error_and_close(c, "hello with an unknown function or credential");
        return;
    }
    /* The peer was found to be a process of this very instance when it
     * connected (expected_seq); the kernel's credentials of a connection
     * do not change. */
    struct ucred cred;
    if (!peer_credentials(c, &cred) || (in->fn->spec.has_user && cred.uid != in->fn->spec.uid)) {
        send_error_and_close(c, "credential used by a process that is not the function's");
        return;
    }
    c->instance = in;
    c->authenticated = true;
    c->f->unauthenticated--;
    uint64_t own = (uint64_t)in->fn->spec.memory_mb << 20;
    c->frame_max = c->f->o.max_frame_bytes < own ? c->f->o.max_frame_bytes : (size_t)own;
    c->output_max = c->frame_max + OUTPUT_SLACK;
    observe_confinement(in, cred.pid);
    send_frame(c, json_pack("{s:s,s:b}", "op", "hello", "ok", 1), (bytes_t){0});
    instance_connected(in, c);
}

static void handle_publish(fconn_t *c, json_t *h, json_int_t req, bytes_t payload)
{
    struct functions *f = c->f;
    fn_t *fn = c->instance->fn;
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
        char why[400], self[GROUP_MAX_NAME + 16];
        fn_endpoint(fn->spec.name, self, sizeof self);
        snprintf(why, sizeof why, "no route from %s allows topic %.200s", self, topic);
        reply(c, req, false, "denied", why, (bytes_t){0});
    } else if (err) {
        reply(c, req, false, "invalid", sedge_strerror(err), (bytes_t){0});
    } else {
        reply(c, req, true, NULL, NULL, (bytes_t){0});
    }
}

static void handle_shadow(fconn_t *c, json_t *h, json_int_t req, bytes_t payload)
{
    struct functions *f = c->f;
    const char *action = json_string_value(json_object_get(h, "action"));
    const char *thing = json_string_value(json_object_get(h, "thing"));
    const char *name = json_string_value(json_object_get(h, "name"));
    static const char *const actions[] = {"get", "update", "delete"};
    static const shadow_op_t ops[] = {SHADOW_GET, SHADOW_UPDATE, SHADOW_DELETE};
    size_t i = 0;
    while (i < ARRAY_LEN(actions) && !(action && strcmp(action, actions[i]) == 0))
        i++;
    if (i == ARRAY_LEN(actions)) {
        reply(c, req, false, "invalid", "shadow action must be get, update or delete",
              (bytes_t){0});
        return;
    }
    pending_t *p = thing ? pending_new(c, req) : NULL;
    if (!p) {
        reply(c, req, false, "invalid", "shadow needs a thing", (bytes_t){0});
        return;
    }
    f->o.shadow(f->o.ctx, c->instance->fn->spec.name, ops[i], bytes_of_cstr(thing),
                bytes_of_cstr(name ? name : ""), payload, shadow_answered, p);
}

static void handle_invoke(fconn_t *c, json_t *h, json_int_t req, bytes_t payload)
{
    struct functions *f = c->f;
    fn_t *fn = c->instance->fn;
    const char *target = json_string_value(json_object_get(h, "function"));
    bool async = json_is_true(json_object_get(h, "async"));
    char source[GROUP_MAX_NAME + 16], to[GROUP_MAX_NAME + 16];
    fn_endpoint(fn->spec.name, source, sizeof source);
    if (!target) {
        reply(c, req, false, "invalid", "invoke needs a function", (bytes_t){0});
        return;
    }
    if (fn_find(f, target) && !f->o.may_invoke(f->o.ctx, fn->spec.name, target)) {
        char why[400];
        fn_endpoint(target, to, sizeof to);
        snprintf(why, sizeof why, "no route from %s to %.140s", source, to);
        reply(c, req, false, "denied", why, (bytes_t){0});
        return;
    }
    pending_t *p = async ? NULL : pending_new(c, req);
    sedge_err err =
        functions_invoke(f, target, BYTES_LIT(""), payload, bytes_of_cstr(source),
                         p ? invoke_answered : NULL, p);
    if (err) {
        json_int_t ignored;
        if (p)
            pending_end(p, &ignored);
        reply(c, req, false, invoke_code(err),
              err == SEDGE_ERR_FULL        ? "queue full"
              : err == SEDGE_ERR_NOT_FOUND ? "no such function"
              : err == SEDGE_ERR_INVALID   ? "payload is not JSON"
                                           : sedge_strerror(err),
              (bytes_t){0});
    } else if (async) {
        reply(c, req, true, NULL, NULL, (bytes_t){0});
    }
}

/* A secret the function lists, unsealed into the reply (and wiped). */
static void handle_secret(fconn_t *c, json_t *h, json_int_t req)
{
    struct functions *f = c->f;
    const spec_t *s = &c->instance->fn->spec;
    const char *id = json_string_value(json_object_get(h, "id"));
    const resource_t *r = NULL;
    for (size_t i = 0; id && i < s->resource_count && !r; i++)
        if (s->resources[i].kind == RESOURCE_SECRET && strcmp(s->resources[i].id, id) == 0)
            r = &s->resources[i];
    if (!r) {
        char why[300];
        snprintf(why, sizeof why, "%.64s does not list a secret \"%.128s\" in its resources",
                 s->name, id ? id : "");
        reply(c, req, false, "not_found", why, (bytes_t){0});
        return;
    }
    const char *stored = r->source;
    if (r->cloud) {
        stored = json_string_value(json_object_get(f->cloud_secrets, r->id));
        if (!stored) {
            char why[300];
            snprintf(why, sizeof why, "the secret \"%.128s\" has not come from the cloud (%.120s) yet",
                     r->id, r->source);
            reply(c, req, false, "not_found", why, (bytes_t){0});
            return;
        }
    }
    const uint8_t *key = NULL;
    if (r->sealed || r->cloud)
        key = f->o.seal_key.get ? f->o.seal_key.get(f->o.seal_key.ctx) : NULL;
    if (r->sealed && !key) {
        reply(c, req, false, "failed",
              "the secret cannot be unsealed: this core has no sealing key (sedged's log says why)",
              (bytes_t){0});
        return;
    }
    if (!key) { /* as deployed, or as it came from the cloud */
        reply(c, req, true, NULL, NULL, bytes_of_cstr(stored));
        return;
    }
    buf_t value = {0};
    sedge_err err = group_unseal(r->id, stored, key, &value);
    if (err)
        reply(c, req, false, "failed",
              "the secret cannot be unsealed with this core's key (deployed to another core, or "
              "its key changed): deploy it again",
              (bytes_t){0});
    else
        reply(c, req, true, NULL, NULL, (bytes_t){value.data, value.len});
    if (value.data)
        OPENSSL_cleanse(value.data, value.cap);
    buf_free(&value);
}

static void handle_request(fconn_t *c, json_t *h, const char *op, bytes_t payload)
{
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
    bool later = strcmp(op, "shadow") == 0 || strcmp(op, "invoke") == 0;
    if (later && c->pending >= PENDING_MAX) {
        reply(c, req, false, "full", "too many requests waiting for their answer", (bytes_t){0});
        return;
    }
    if (strcmp(op, "publish") == 0)
        handle_publish(c, h, req, payload);
    else if (strcmp(op, "shadow") == 0)
        handle_shadow(c, h, req, payload);
    else if (strcmp(op, "invoke") == 0)
        handle_invoke(c, h, req, payload);
    else if (strcmp(op, "config") == 0)
        reply(c, req, true, NULL, NULL, bytes_of_cstr(fn->spec.config));
    else if (strcmp(op, "secret") == 0)
        handle_secret(c, h, req);
    else {
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
    size_t want = c->instance ? 65536 : HELLO_FRAME_MAX + 4;
    if (buf_reserve(&c->in, want)) {
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
        size_t max = c->instance ? c->frame_max : HELLO_FRAME_MAX;
        if (len < 4 || len > max) {
            char why[160];
            if (len < 4)
                snprintf(why, sizeof why, "frame too short");
            else
                snprintf(why, sizeof why, "frame of %u bytes, over the limit of %zu%s", len, max,
                         c->instance ? "" : " before the hello");
            send_error_and_close(c, why);
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

static void handles_done(struct functions *f)
{
    if (--f->handles == 0 && f->stop_done)
        f->stop_done(f->stop_ctx);
}

static void on_conn_closed(uv_handle_t *h)
{
    fconn_t *c = h->data;
    struct functions *f = c->f;
    buf_free(&c->in);
    free(c);
    handles_done(f);
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
    if (!c->authenticated)
        f->unauthenticated--;
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

size_t ipc_buffered_bytes(const fconn_t *c)
{
    return c->in.cap + uv_stream_get_write_queue_size((const uv_stream_t *)&c->pipe);
}

/* Connections still without a hello past HELLO_TIMEOUT_MS are closed. */
static void hello_sweep(uv_timer_t *t)
{
    struct functions *f = t->data;
    uint64_t now = clock_mono_ms();
    for (fconn_t *c = f->conns, *next; c; c = next) {
        next = c->next;
        if (!c->instance && now - c->accepted_ms >= HELLO_TIMEOUT_MS)
            send_error_and_close(c, "no hello within 5 s");
    }
    if (!f->unauthenticated)
        uv_timer_stop(t);
}

static void refuse_peer(fconn_t *c, const char *function, const struct ucred *cred, const char *why)
{
    struct functions *f = c->f;
    if (f->refused_peers++ % REFUSAL_LOG_EVERY == 0)
        LOGW("function socket of %s: connection from pid %d (uid %u) refused: %s (%llu refused "
             "so far)",
             function, cred ? (int)cred->pid : 0, cred ? (unsigned)cred->uid : 0, why,
             (unsigned long long)f->refused_peers);
    send_frame(c, json_pack("{s:s,s:s}", "op", "error", "error", why), (bytes_t){0});
    ipc_close_conn(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    listener_t *l = server->data;
    struct functions *f = l->f;
    if (status < 0 || f->stopping)
        return;
    fconn_t *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->f = f;
    c->serial = next_serial++;
    c->accepted_ms = clock_mono_ms();
    c->frame_max = c->output_max = HELLO_FRAME_MAX;
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
    f->unauthenticated++;
    struct ucred cred;
    bool known = peer_credentials(c, &cred);
    instance_t *in = known ? instance_awaiting(f, l->name, &cred) : NULL;
    if (!in) {
        refuse_peer(c, l->name, known ? &cred : NULL,
                    "not a process of an instance of this function waiting to connect");
        return;
    }
    size_t same = 0;
    for (fconn_t *o = f->conns; o; o = o->next)
        same += !o->instance && o->expected_seq == in->seq;
    if (f->unauthenticated > UNAUTHENTICATED_MAX || same >= PER_INSTANCE_MAX) {
        refuse_peer(c, l->name, &cred, "too many connections waiting for their hello");
        return;
    }
    c->expected_seq = in->seq;
    uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
    if (!uv_is_active((uv_handle_t *)&f->hello_timer))
        uv_timer_start(&f->hello_timer, hello_sweep, 1000, 1000);
}

sedge_err ipc_start(struct functions *f)
{
    snprintf(f->socket_dir, sizeof f->socket_dir, "%.480s/fn", f->data_dir);
    if (mkdir(f->socket_dir, 0711) != 0 && errno != EEXIST) {
        LOGE("cannot create %s: %s", f->socket_dir, strerror(errno));
        return SEDGE_ERR_IO;
    }
    /* Functions run as other users: they traverse it to their socket. */
    chmod(f->socket_dir, 0711);
    uv_timer_init(f->o.loop, &f->hello_timer);
    f->hello_timer.data = f;
    f->handles++;
    return SEDGE_OK;
}

static listener_t *listener_find(struct functions *f, const char *name)
{
    for (listener_t *l = f->listeners; l; l = l->next)
        if (strcmp(l->name, name) == 0)
            return l;
    return NULL;
}

sedge_err ipc_listen_function(struct functions *f, fn_t *fn, char *err, size_t errlen)
{
    const spec_t *s = &fn->spec;
    listener_t *l = listener_find(f, s->name);
    if (!l) {
        l = calloc(1, sizeof *l);
        if (!l)
            return SEDGE_ERR_NOMEM;
        l->f = f;
        snprintf(l->name, sizeof l->name, "%s", s->name);
        int n = snprintf(l->path, sizeof l->path, "%s/%s.sock", f->socket_dir, s->name);
        if (n < 0 || (size_t)n >= sizeof l->path) {
            snprintf(err, errlen,
                     "function %s: its socket path %s/%s.sock is longer than a unix socket path "
                     "may be (107 bytes): use a shorter data directory or function name",
                     s->name, f->socket_dir, s->name);
            free(l);
            return SEDGE_ERR_TOO_LARGE;
        }
        unlink(l->path);
        uv_pipe_init(f->o.loop, &l->pipe, 0);
        l->pipe.data = l;
        f->handles++;
        int rc = uv_pipe_bind(&l->pipe, l->path);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&l->pipe, 64, on_connection);
        l->next = f->listeners;
        f->listeners = l;
        if (rc) {
            snprintf(err, errlen, "function %s: cannot listen on %s: %s", s->name, l->path,
                     uv_strerror(rc));
            return SEDGE_ERR_IO;
        }
    }
    /* Only the function's user (and root) may connect. */
    uid_t uid = s->has_user ? s->uid : geteuid();
    gid_t gid = s->has_user ? s->gid : getegid();
    /* chmod first: once the socket is another user's, only root (or
     * CAP_FOWNER, which the packaged service does not hold) could. */
    if (chmod(l->path, 0600) != 0 || chown(l->path, uid, gid) != 0) {
        snprintf(err, errlen, "function %s: cannot give %s to %u:%u: %s", s->name, l->path,
                 (unsigned)uid, (unsigned)gid, strerror(errno));
        return SEDGE_ERR_IO;
    }
    snprintf(fn->socket_path, sizeof fn->socket_path, "%s", l->path);
    return SEDGE_OK;
}

static void hello_timer_closed(uv_handle_t *h)
{
    handles_done(h->data);
}

static void listener_closed(uv_handle_t *h)
{
    listener_t *l = h->data;
    struct functions *f = l->f;
    free(l);
    handles_done(f);
}

static void listener_close(listener_t *l)
{
    unlink(l->path); /* now: a new listener of the name may bind it at once */
    uv_close((uv_handle_t *)&l->pipe, listener_closed);
}

void ipc_prune(struct functions *f)
{
    for (listener_t **pp = &f->listeners; *pp;) {
        listener_t *l = *pp;
        if (fn_find(f, l->name)) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        listener_close(l);
    }
}

void ipc_close(struct functions *f)
{
    while (f->conns)
        ipc_close_conn(f->conns);
    while (f->listeners) {
        listener_t *l = f->listeners;
        f->listeners = l->next;
        listener_close(l);
    }
    uv_close((uv_handle_t *)&f->hello_timer, hello_timer_closed);
}
