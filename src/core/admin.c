/*
 * admin: the admin socket. Each connection reads one line, dispatches it
 * and stops reading until the answer is written; sedgectl sends one
 * request per connection, scripts may send several in turn.
 */
#include "admin.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_TAG "admin"

typedef struct command {
    struct command *next;
    char *name;
    admin_handler fn;
    void *ctx;
} command_t;

typedef struct conn {
    uv_pipe_t pipe;
    admin_t *admin;
    struct conn *next, *prev;
    buf_t in;
    admin_request_t *pending;
    bool closing;
} conn_t;

struct admin_request {
    conn_t *conn; /* NULL once the connection has gone */
    admin_result_fn done; /* admin_call's, instead of a connection */
    void *done_ctx;
};

struct admin {
    uv_loop_t *loop;
    uv_pipe_t server;
    char *path;
    command_t *commands;
    conn_t *conns;
    size_t handles;
    void (*done)(void *);
    void *done_ctx;
};

typedef struct {
    uv_write_t req;
    char *data;
    conn_t *conn;
} write_t;

static void handle_closed(admin_t *a)
{
    if (--a->handles == 0 && a->done) {
        void (*done)(void *) = a->done;
        a->done = NULL;
        done(a->done_ctx);
    }
}

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    admin_t *a = c->admin;
    if (c->pending)
        c->pending->conn = NULL;
    buf_free(&c->in);
    free(c);
    handle_closed(a);
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    admin_t *a = c->admin;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void process(conn_t *c);
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void write_cb(uv_write_t *req, int status)
{
    write_t *w = (write_t *)req;
    conn_t *c = w->conn;
    free(w->data);
    free(w);
    if (status < 0 || c->closing) {
        conn_close(c);
        return;
    }
    /* Next request, if one is buffered, then read again. */
    process(c);
    if (!c->pending && !c->closing)
        uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

static void send_line(conn_t *c, json_t *response)
{
    char *text = json_dumps(response, JSON_COMPACT);
    json_decref(response);
    size_t len = text ? strlen(text) : 0;
    write_t *w = malloc(sizeof *w);
    char *line = text ? realloc(text, len + 2) : NULL;
    if (!w || !line) {
        free(w);
        free(line ? line : text);
        conn_close(c);
        return;
    }
    line[len] = '\n';
    line[len + 1] = '\0';
    w->data = line;
    w->conn = c;
    uv_buf_t b = uv_buf_init(line, (unsigned)len + 1);
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, write_cb)) {
        free(line);
        free(w);
        conn_close(c);
    }
}

void admin_reply(admin_request_t *req, json_t *response)
{
    conn_t *c = req->conn;
    admin_result_fn done = req->done;
    void *done_ctx = req->done_ctx;
    free(req);
    if (!response)
        response = json_object();
    if (!json_object_get(response, "ok"))
        json_object_set_new(response, "ok", json_boolean(!json_object_get(response, "error")));
    if (done) {
        done(done_ctx, response);
        return;
    }
    if (!c) {
        json_decref(response);
        return;
    }
    c->pending = NULL;
    send_line(c, response);
}

void admin_reply_error(admin_request_t *req, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *r = json_object();
    json_object_set_new(r, "ok", json_false());
    json_object_set_new(r, "error", json_string(msg));
    admin_reply(req, r);
}

/* The handler of request's "cmd" answers `req`. */
static void run_command(admin_t *a, json_t *request, admin_request_t *req)
{
    const char *cmd = json_string_value(json_object_get(request, "cmd"));
    command_t *k = a->commands;
    while (k && (!cmd || strcmp(k->name, cmd) != 0))
        k = k->next;
    if (!k)
        admin_reply_error(req, "unknown command '%s'", cmd ? cmd : "(none)");
    else
        k->fn(k->ctx, request, req);
}

static void dispatch(conn_t *c, const char *line, size_t len)
{
    admin_request_t *req = calloc(1, sizeof *req);
    if (!req) {
        conn_close(c);
        return;
    }
    req->conn = c;
    c->pending = req;
    uv_read_stop((uv_stream_t *)&c->pipe);
    json_error_t jerr;
    json_t *request = json_loadb(line, len, 0, &jerr);
    if (!request || !json_is_object(request)) {
        json_decref(request);
        admin_reply_error(req, "request is not a JSON object: %s",
                          request ? "wrong type" : jerr.text);
        return;
    }
    run_command(c->admin, request, req);
    json_decref(request);
}

void admin_call(admin_t *a, json_t *request, admin_result_fn done, void *ctx)
{
    admin_request_t *req = calloc(1, sizeof *req);
    if (!req) {
        done(ctx, json_pack("{s:b,s:s}", "ok", 0, "error", "out of memory"));
        return;
    }
    req->done = done;
    req->done_ctx = ctx;
    run_command(a, request, req);
}

/* Dispatch the first complete line in the buffer, if any. */
static void process(conn_t *c)
{
    if (c->pending || c->closing)
        return;
    uint8_t *nl = c->in.len ? memchr(c->in.data, '\n', c->in.len) : NULL;
    if (!nl) {
        if (c->in.len > ADMIN_MAX_REQUEST) {
            LOGW("admin request over %u bytes; closing", ADMIN_MAX_REQUEST);
            conn_close(c);
        }
        return;
    }
    size_t len = (size_t)(nl - c->in.data);
    char *line = malloc(len + 1);
    if (!line) {
        conn_close(c);
        return;
    }
    memcpy(line, c->in.data, len);
    buf_consume(&c->in, len + 1);
    dispatch(c, line, len);
    free(line);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;
    (void)suggested;
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
    conn_t *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->in.len += (size_t)n;
    process(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    admin_t *a = server->data;
    if (status < 0)
        return;
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->admin = a;
    uv_pipe_init(a->loop, &c->pipe, 0);
    c->pipe.data = c;
    a->handles++;
    if (uv_accept(server, (uv_stream_t *)&c->pipe)) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
        return;
    }
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

sedge_err admin_start(uv_loop_t *loop, const char *path, admin_t **out)
{
    admin_t *a = calloc(1, sizeof *a);
    if (!a || !(a->path = strdup(path))) {
        free(a);
        return SEDGE_ERR_NOMEM;
    }
    a->loop = loop;
    unlink(path);
    uv_pipe_init(loop, &a->server, 0);
    a->server.data = a;
    a->handles = 1;
    mode_t old = umask(0077);
    int rc = uv_pipe_bind(&a->server, path);
    umask(old);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&a->server, 16, on_connection);
    if (rc) {
        LOGE("cannot listen on %s: %s", path, uv_strerror(rc));
        uv_close((uv_handle_t *)&a->server, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        free(a->path);
        free(a);
        return SEDGE_ERR_IO;
    }
    *out = a;
    return SEDGE_OK;
}

sedge_err admin_register(admin_t *a, const char *cmd, admin_handler fn, void *ctx)
{
    command_t *k = calloc(1, sizeof *k);
    if (!k || !(k->name = strdup(cmd))) {
        free(k);
        return SEDGE_ERR_NOMEM;
    }
    k->fn = fn;
    k->ctx = ctx;
    k->next = a->commands;
    a->commands = k;
    return SEDGE_OK;
}

static void on_server_closed(uv_handle_t *h)
{
    admin_t *a = h->data;
    unlink(a->path);
    handle_closed(a);
}

void admin_close(admin_t *a, void (*done)(void *ctx), void *ctx)
{
    a->done = done;
    a->done_ctx = ctx;
    while (a->conns)
        conn_close(a->conns);
    uv_close((uv_handle_t *)&a->server, on_server_closed);
}

void admin_free(admin_t *a)
{
    while (a->commands) {
        command_t *k = a->commands;
        a->commands = k->next;
        free(k->name);
        free(k);
    }
    free(a->path);
    free(a);
}
