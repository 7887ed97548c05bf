/*
 * client: the one connection from this function to the core.
 *
 * The connection is made by the first call that needs it (sedge_run, or a
 * publish before it), from SEDGE_SOCKET / SEDGE_FUNCTION / SEDGE_TOKEN, and
 * starts with the hello handshake. Requests are synchronous: send, then
 * block until the reply with the same req. The core never sends an
 * invocation while a request is outstanding, so any other frame there is a
 * protocol error; the stream cannot be trusted after one, and the SDK
 * closes the connection and keeps the reason — every later call returns
 * it, and sedge_run() returns it so that the process can exit.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct {
    int fd;           /* -1 until connected, and after the connection ended */
    sedge_err ended;  /* why it ended; SEDGE_OK while usable */
    char why[1024];   /* the message of `ended` */
    int64_t next_req; /* request numbers are 1, 2, 3... */
    bool running;     /* inside sedge_run */
    /* An invocation that arrived while a request waited for its reply
     * (a function publishing between invocations): served next. */
    sdk_frame_t waiting;
    bool has_waiting;
} conn = {.fd = -1, .next_req = 1};

static char last_error[1024];

const char *sedge_last_error(void)
{
    return last_error;
}

void sdk_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

sedge_err sdk_error(sedge_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return err;
}

const char *sedge_strerror(sedge_err err)
{
    switch (err) {
    case SEDGE_OK: return "success";
    case SEDGE_ERR_NOMEM: return "out of memory";
    case SEDGE_ERR_INVALID: return "invalid argument";
    case SEDGE_ERR_AGAIN: return "try again";
    case SEDGE_ERR_MALFORMED: return "the core sent something unreadable";
    case SEDGE_ERR_PROTOCOL: return "protocol error between the function and the core";
    case SEDGE_ERR_TOO_LARGE: return "too large";
    case SEDGE_ERR_NOT_FOUND: return "not found";
    case SEDGE_ERR_EXISTS: return "already exists";
    case SEDGE_ERR_DENIED: return "denied: no route allows it";
    case SEDGE_ERR_IO: return "cannot talk to the core (is this function started by sedged?)";
    case SEDGE_ERR_STORE: return "store error";
    case SEDGE_ERR_TLS: return "TLS error";
    case SEDGE_ERR_FULL: return "the target's queue is full";
    case SEDGE_ERR_TIMEOUT: return "timed out";
    case SEDGE_ERR_BUSY: return "busy";
    case SEDGE_ERR_CLOSED: return "the core closed the connection";
    case SEDGE_ERR_UNSUPPORTED: return "not supported";
    case SEDGE_ERR_CONFLICT: return "version conflict";
    case SEDGE_ERR_FAILED: return "the request failed";
    }
    return "unknown error";
}

void sdk_fail(sedge_err err)
{
    if (conn.fd >= 0)
        close(conn.fd);
    conn.fd = -1;
    if (conn.has_waiting)
        sdk_frame_release(&conn.waiting);
    conn.has_waiting = false;
    if (conn.ended == SEDGE_OK) {
        conn.ended = err;
        snprintf(conn.why, sizeof conn.why, "%s", last_error[0] ? last_error : sedge_strerror(err));
    }
}

bool sdk_running(void)
{
    return conn.running;
}

void sdk_set_running(bool running)
{
    conn.running = running;
}

static const char *env_required(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Open the socket; nothing is sent. */
static sedge_err open_socket(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return sdk_error(SEDGE_ERR_IO, "SEDGE_SOCKET is longer than a unix socket path may be");
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sdk_error(SEDGE_ERR_IO, "cannot create a socket: %s", strerror(errno));
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        sedge_err err =
            sdk_error(SEDGE_ERR_IO, "cannot connect to the core at %s: %s", path, strerror(errno));
        close(fd);
        return err;
    }
    conn.fd = fd;
    return SEDGE_OK;
}

static sedge_err handshake(const char *function, const char *token)
{
    sdk_json_t j;
    sdk_json_begin(&j);
    sdk_json_str(&j, "op", "hello");
    sdk_json_str(&j, "function", function);
    sdk_json_str(&j, "token", token);
    sdk_json_str(&j, "sdk", SDK_VERSION_STRING);
    sedge_err err = sdk_json_end(&j);
    if (err == SEDGE_ERR_INVALID)
        err = sdk_error(err, "SEDGE_FUNCTION or SEDGE_TOKEN is not UTF-8 text");
    else if (err)
        err = sdk_error(err, "no memory for the hello frame");
    else
        err = sdk_frame_write(conn.fd, &j.out, NULL, 0);
    sdk_json_release(&j);
    if (err)
        return err;

    sdk_frame_t reply;
    err = sdk_frame_read(conn.fd, &reply);
    if (err)
        return err;
    bool ok = false;
    const char *why = sdk_header_str(&reply.header, "error");
    if (strcmp(reply.op, "error") == 0) {
        err = sdk_error(SEDGE_ERR_PROTOCOL, "the core refused the hello: %s",
                        why ? why : "no reason given");
    } else if (strcmp(reply.op, "hello") != 0) {
        err = sdk_error(SEDGE_ERR_PROTOCOL, "the core answered the hello with op \"%s\"", reply.op);
    } else if (!sdk_header_bool(&reply.header, "ok", &ok)) {
        err = sdk_error(SEDGE_ERR_MALFORMED, "the core's hello reply has no boolean \"ok\"");
    } else if (!ok) {
        err = sdk_error(SEDGE_ERR_DENIED, "the core refused function %s: %s", function,
                        why ? why : "no reason given");
    }
    sdk_frame_release(&reply);
    return err;
}

sedge_err sdk_connect(void)
{
    if (conn.ended)
        return sdk_error(conn.ended, "%s", conn.why);
    if (conn.fd >= 0)
        return SEDGE_OK;
    const char *path = env_required("SEDGE_SOCKET");
    const char *function = env_required("SEDGE_FUNCTION");
    const char *token = env_required("SEDGE_TOKEN");
    const char *missing = !path       ? "SEDGE_SOCKET"
                          : !function ? "SEDGE_FUNCTION"
                          : !token    ? "SEDGE_TOKEN"
                                      : NULL;
    if (missing)
        return sdk_error(SEDGE_ERR_IO,
                         "%s is not set: a Sedge function must be started by sedged "
                         "(deploy it in a group, then sedgectl invoke)",
                         missing);
    sedge_err err = open_socket(path);
    if (err)
        return err;
    err = handshake(function, token);
    if (err)
        sdk_fail(err);
    return err;
}

int64_t sdk_begin_request(sdk_json_t *j, const char *op)
{
    int64_t req = conn.next_req++;
    sdk_json_begin(j);
    sdk_json_str(j, "op", op);
    sdk_json_int(j, "req", req);
    return req;
}

sedge_err sdk_send(sdk_json_t *j, const void *payload, size_t payload_len)
{
    sedge_err err = sdk_json_end(j);
    if (err == SEDGE_ERR_INVALID)
        return sdk_error(err, "a name or topic is not valid UTF-8 text");
    if (err)
        return sdk_error(err, "no memory for a frame header");
    err = sdk_connect();
    if (err)
        return err;
    err = sdk_frame_write(conn.fd, &j->out, payload, payload_len);
    /* Too large is found before a byte is sent: the connection is fine. */
    if (err && err != SEDGE_ERR_TOO_LARGE)
        sdk_fail(err);
    return err;
}

sedge_err sdk_receive(sdk_frame_t *f)
{
    sedge_err err = sdk_connect();
    if (err)
        return err;
    err = sdk_frame_read(conn.fd, f);
    if (err == SEDGE_OK && strcmp(f->op, "error") == 0) {
        const char *why = sdk_header_str(&f->header, "error");
        err = sdk_error(SEDGE_ERR_PROTOCOL, "the core reported a protocol error: %s",
                        why ? why : "no reason given");
        sdk_frame_release(f);
    }
    if (err)
        sdk_fail(err);
    return err;
}

bool sdk_take_waiting(sdk_frame_t *f)
{
    if (!conn.has_waiting)
        return false;
    *f = conn.waiting;
    conn.waiting = (sdk_frame_t){0};
    conn.has_waiting = false;
    return true;
}

int sedge_pending(void)
{
    return conn.has_waiting;
}

sedge_err sedge_fd(int *fd)
{
    if (!fd)
        return sdk_error(SEDGE_ERR_INVALID, "sedge_fd: fd is NULL");
    *fd = -1;
    sedge_err err = sdk_connect();
    if (!err)
        *fd = conn.fd;
    return err;
}

sedge_err sdk_request(sdk_json_t *j, int64_t req, const void *payload, size_t payload_len,
                      sdk_frame_t *reply)
{
    *reply = (sdk_frame_t){0};
    sedge_err err = sdk_send(j, payload, payload_len);
    if (err)
        return err;
    /* Outside a handler the core may have sent an invocation before it
     * read this request; it sends no other until that one is answered,
     * so at most one is kept for later. */
    for (;;) {
        err = sdk_receive(reply);
        if (err)
            return err;
        if (strcmp(reply->op, "invoke") != 0 || conn.has_waiting || sdk_in_handler())
            break;
        conn.waiting = *reply;
        conn.has_waiting = true;
        *reply = (sdk_frame_t){0};
    }
    int64_t got;
    bool ok;
    if (strcmp(reply->op, "reply") != 0)
        err = sdk_error(SEDGE_ERR_PROTOCOL,
                        "the core sent op \"%s\" while this function waited for the reply to "
                        "request %lld",
                        reply->op, (long long)req);
    else if (!sdk_header_int(&reply->header, "req", &got) || got != req)
        err = sdk_error(SEDGE_ERR_PROTOCOL,
                        "the core sent a reply that is not for request %lld, the one outstanding",
                        (long long)req);
    else if (!sdk_header_bool(&reply->header, "ok", &ok))
        err = sdk_error(SEDGE_ERR_MALFORMED, "the core sent a reply without a boolean \"ok\"");
    if (err) {
        sdk_frame_release(reply);
        sdk_fail(err);
    }
    return err;
}

/* The words a reply's "code" may be, and the sentences the core puts in
 * "error" for its own failures ("timed out", "queue full"...). A sentence
 * must match whole, so that an invoked function's own message ("timed out
 * reading the sensor") is not taken for the core's. */
sedge_err sdk_code_from_word(const char *word)
{
    static const struct {
        const char *word;
        sedge_err err;
    } table[] = {
        {"denied", SEDGE_ERR_DENIED},       {"not_found", SEDGE_ERR_NOT_FOUND},
        {"not found", SEDGE_ERR_NOT_FOUND}, {"no such function", SEDGE_ERR_NOT_FOUND},
        {"timed out", SEDGE_ERR_TIMEOUT},   {"timeout", SEDGE_ERR_TIMEOUT},
        {"queue full", SEDGE_ERR_FULL},     {"full", SEDGE_ERR_FULL},
        {"too_large", SEDGE_ERR_TOO_LARGE}, {"too large", SEDGE_ERR_TOO_LARGE},
        {"invalid", SEDGE_ERR_INVALID},     {"conflict", SEDGE_ERR_CONFLICT},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcasecmp(word, table[i].word) == 0)
            return table[i].err;
    return SEDGE_ERR_FAILED;
}

sedge_err sdk_code_from_number(int64_t code)
{
    switch (code) {
    case 400: return SEDGE_ERR_INVALID;
    case 403: return SEDGE_ERR_DENIED;
    case 404: return SEDGE_ERR_NOT_FOUND;
    case 409: return SEDGE_ERR_CONFLICT;
    case 413: return SEDGE_ERR_TOO_LARGE;
    default: return SEDGE_ERR_FAILED;
    }
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

sedge_err sdk_reply_error(const sdk_frame_t *reply)
{
    const sdk_json_field_t *code = sdk_header_get(&reply->header, "code");
    const char *error = sdk_header_str(&reply->header, "error");
    sedge_err err = SEDGE_ERR_FAILED;
    bool numeric = false;
    if (code && code->type == SDK_JSON_INT) {
        err = sdk_code_from_number(code->num);
        numeric = true;
    } else if (code && code->type == SDK_JSON_STRING && all_digits(code->str)) {
        err = sdk_code_from_number(strtoll(code->str, NULL, 10));
        numeric = true;
    } else if (code && code->type == SDK_JSON_STRING) {
        err = sdk_code_from_word(code->str);
    }
    /* No code, or "failed" / a word we do not know: the sentence decides. */
    if (!numeric && err == SEDGE_ERR_FAILED && error)
        err = sdk_code_from_word(error);

    /* A rejected shadow document says what was wrong in its "message".
     * The reply is not used after this, so it may be parsed in place. */
    const char *message = NULL;
    sdk_header_t doc;
    if (reply->payload_len > 0 &&
        sdk_header_parse((char *)reply->payload, reply->payload_len, &doc) == SEDGE_OK)
        message = sdk_header_str(&doc, "message");
    if (!message)
        message = error;
    if (!message && code && code->type == SDK_JSON_STRING)
        message = code->str;
    if (!message)
        message = sedge_strerror(err);
    return sdk_error(err, "%s", message);
}

sedge_err sdk_buf_copy_out(sedge_buf *out, const uint8_t *data, size_t len)
{
    if (!out)
        return SEDGE_OK;
    *out = (sedge_buf){0};
    uint8_t *p = malloc(len + 1);
    if (!p)
        return sdk_error(SEDGE_ERR_NOMEM, "no memory for a reply of %zu bytes", len);
    if (len)
        memcpy(p, data, len);
    p[len] = 0;
    out->data = p;
    out->len = len;
    return SEDGE_OK;
}

void sedge_buf_free(sedge_buf *buf)
{
    if (!buf)
        return;
    free(buf->data);
    *buf = (sedge_buf){0};
}
