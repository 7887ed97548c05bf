/*
 * console: the local web console — a page served by the core (plain
 * HTML/CSS/JS embedded in sedged, nothing fetched from elsewhere) and the
 * JSON API it uses, under /api/.
 *
 * Access: on the loopback HTTP site, `sedgectl console` prints a one-time
 * login URL (a token, valid http.login_ttl_s, used once) that becomes
 * a session cookie (HttpOnly, SameSite=Strict); over TLS, a client
 * certificate whose CN is listed in http.admins. Every changing request
 * (POST) carries the session's CSRF token in X-CSRF-Token; the live topic
 * viewer's WebSocket must come from the page's own origin. Changes go
 * through the same admin commands as sedgectl (admin_call), with their
 * checks and errors.
 */
#include "front.h"

#include "mqtt/mqtt.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "console"

/* The embedded assets (console_assets.c, generated from src/core/console/). */
typedef struct {
    const char *path;
    const char *content_type;
    const unsigned char *data;
    size_t len;
} console_asset_t;
extern const console_asset_t console_assets[];
extern const size_t console_asset_count;

#define COOKIE_NAME "sedge_session"
#define WATCH_MAX_PENDING 256 /* messages queued to one viewer before it drops */

static void random_hex(char out[65])
{
    uint8_t r[32];
    if (RAND_bytes(r, sizeof r) != 1) {
        out[0] = '\0';
        return;
    }
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static bool same_secret(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n && n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

bool console_is_admin(front_t *f, const char *cn)
{
    const http_config_t *h = &f->core->cfg.http;
    for (size_t i = 0; cn && i < h->admin_count; i++)
        if (strcmp(h->admins[i], cn) == 0)
            return true;
    return false;
}

void front_console_login(front_t *f, json_t *reply)
{
    if (!f || !f->url[0] || !f->core->cfg.http.console) {
        json_object_set_new(reply, "error",
                            json_string("the console is not served on loopback: set http.bind "
                                        "(and http.console) in the config"));
        return;
    }
    int64_t now = clock_wall_s();
    console_token_t *slot = &f->tokens[0];
    for (size_t i = 0; i < CONSOLE_MAX_TOKENS; i++) {
        if (f->tokens[i].expires < now) {
            slot = &f->tokens[i];
            break;
        }
        if (f->tokens[i].expires < slot->expires)
            slot = &f->tokens[i];
    }
    random_hex(slot->token);
    slot->expires = now + f->core->cfg.http.login_ttl_s;
    f->console.tokens_issued++;
    char url[300];
    snprintf(url, sizeof url, "%s/login?token=%s", f->url, slot->token);
    json_object_set_new(reply, "url", json_string(url));
    json_object_set_new(reply, "expires_in_s", json_integer(f->core->cfg.http.login_ttl_s));
}

/* The session a request's cookie names, if valid. */
static console_session_t *session_of_cookie(front_t *f, const char *cookies)
{
    const char *p = cookies ? strstr(cookies, COOKIE_NAME "=") : NULL;
    if (!p)
        return NULL;
    p += sizeof COOKIE_NAME;
    char id[65];
    size_t n = strcspn(p, "; ");
    if (n == 0 || n >= sizeof id)
        return NULL;
    memcpy(id, p, n);
    id[n] = '\0';
    int64_t now = clock_wall_s();
    for (size_t i = 0; i < CONSOLE_MAX_SESSIONS; i++) {
        console_session_t *s = &f->sessions[i];
        if (s->expires > now && same_secret(s->id, id)) {
            s->expires = now + CONSOLE_SESSION_TTL_S;
            return s;
        }
    }
    return NULL;
}

static console_session_t *session_new(front_t *f, const char *who)
{
    int64_t now = clock_wall_s();
    console_session_t *slot = &f->sessions[0];
    for (size_t i = 0; i < CONSOLE_MAX_SESSIONS; i++) {
        if (f->sessions[i].expires < now) {
            slot = &f->sessions[i];
            break;
        }
        if (f->sessions[i].expires < slot->expires)
            slot = &f->sessions[i];
    }
    random_hex(slot->id);
    random_hex(slot->csrf);
    slot->expires = now + CONSOLE_SESSION_TTL_S;
    snprintf(slot->who, sizeof slot->who, "%s", who);
    return slot;
}

static void respond_json(http_request_t *req, int status, json_t *body, const char *headers)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    http_respond(req, status, "application/json", headers, bytes_of_cstr(text ? text : "{}"));
    free(text);
}

static void respond_error(http_request_t *req, int status, const char *message)
{
    respond_json(req, status, json_pack("{s:s}", "error", message), NULL);
}

/* A query argument's value into out (no decoding: lws decoded it). */
static bool query_arg(const char *query, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            size_t v = len - n - 1;
            if (v >= cap)
                return false;
            memcpy(out, p + n + 1, v);
            out[v] = '\0';
            return true;
        }
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

/* ---- static files and login ---- */

static bool serve_asset(http_request_t *req, const char *path)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (size_t i = 0; i < console_asset_count; i++) {
        if (strcmp(console_assets[i].path, path) != 0)
            continue;
        http_respond(req, 200, console_assets[i].content_type,
                     "X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n"
                     "Content-Security-Policy: default-src 'self'; connect-src 'self'; "
                     "img-src 'self' data:; frame-ancestors 'none'\r\n",
                     (bytes_t){console_assets[i].data, console_assets[i].len});
        return true;
    }
    return false;
}

static void login(front_t *f, http_request_t *req, const http_request_info_t *info)
{
    char token[80] = "";
    query_arg(info->query, "token", token, sizeof token);
    int64_t now = clock_wall_s();
    for (size_t i = 0; token[0] && i < CONSOLE_MAX_TOKENS; i++) {
        console_token_t *t = &f->tokens[i];
        if (t->expires < now || !same_secret(t->token, token))
            continue;
        t->expires = 0; /* used: never again */
        memset(t->token, 0, sizeof t->token);
        console_session_t *s = session_new(f, "token");
        f->console.logins++;
        LOGI("console login from %s", info->peer);
        char headers[300];
        snprintf(headers, sizeof headers,
                 "Set-Cookie: " COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict%s\r\n"
                 "Location: /\r\n",
                 s->id, info->tls ? "; Secure" : "");
        http_respond(req, 303, "text/plain", headers, BYTES_LIT("logged in\n"));
        return;
    }
    f->console.logins_refused++;
    LOGW("console login from %s refused: the token is unknown, used or expired", info->peer);
    http_respond(req, 401, "text/html; charset=utf-8", NULL,
                 BYTES_LIT("<!doctype html><title>Sedge</title><p>This login link is unknown, "
                           "already used or expired. Run <code>sedgectl console</code> for a new "
                           "one.</p>\n"));
}

/* ---- the API ---- */

typedef struct {
    http_request_t *req;
    front_t *front;
    int kind; /* how to shape the answer */
} call_t;

enum { SHAPE_PLAIN, SHAPE_LOGS, SHAPE_INVOKE };

/* An admin command's response, as the API's: errors are 400 (the
 * command's checks) with its message. */
static void call_done(void *ctx, json_t *response)
{
    call_t *c = ctx;
    const char *error = json_string_value(json_object_get(response, "error"));
    if (error) {
        respond_json(c->req, 400, json_pack("{s:s}", "error", error), NULL);
        json_decref(response);
        free(c);
        return;
    }
    if (c->kind == SHAPE_LOGS) {
        const char *path = json_string_value(json_object_get(response, "path"));
        json_t *r = json_object();
        FILE *fp = path ? fopen(path, "r") : NULL;
        if (fp) {
            char tail[16384];
            fseek(fp, 0, SEEK_END);
            long size = ftell(fp);
            long from = size > (long)sizeof tail - 1 ? size - (long)sizeof tail + 1 : 0;
            fseek(fp, from, SEEK_SET);
            size_t n = fread(tail, 1, sizeof tail - 1, fp);
            fclose(fp);
            json_object_set_new(r, "tail", json_stringn_nocheck(tail, n));
        } else {
            json_object_set_new(r, "tail", json_string(""));
        }
        json_decref(response);
        response = r;
    } else if (c->kind == SHAPE_INVOKE) {
        const char *b64 = json_string_value(json_object_get(response, "result_b64"));
        buf_t out = {0};
        if (b64 && base64_decode(b64, &out) == SEDGE_OK) {
            json_object_set_new(response, "result",
                                json_stringn_nocheck((const char *)out.data, out.len));
        }
        buf_free(&out);
    }
    json_object_del(response, "ok");
    respond_json(c->req, 200, response, NULL);
    free(c);
}

static void call(front_t *f, http_request_t *req, json_t *request, int kind)
{
    call_t *c = malloc(sizeof *c);
    if (!c) {
        json_decref(request);
        respond_error(req, 500, "out of memory");
        return;
    }
    *c = (call_t){req, f, kind};
    admin_call(f->core->admin, request, call_done, c);
    json_decref(request);
}

typedef struct {
    front_t *front;
    json_t *things; /* name -> thing object */
} things_ctx_t;

static json_t *thing_entry(things_ctx_t *t, const char *name)
{
    json_t *o = json_object_get(t->things, name);
    if (!o) {
        o = json_pack("{s:s,s:b,s:b,s:[]}", "name", name, "in_group", 0, "connected", 0, "clients");
        json_object_set_new(t->things, name, o);
    }
    return o;
}

static void client_seen(void *ctx, const broker_client_info_t *ci)
{
    things_ctx_t *t = ctx;
    json_t *o = thing_entry(t, ci->identity);
    json_object_set_new(o, "connected", json_true());
    json_array_append_new(json_object_get(o, "clients"),
                          json_pack("{s:s,s:s,s:s,s:s,s:i,s:i}", "client_id", ci->client_id, "peer",
                                    ci->address, "transport", ci->transport, "mqtt",
                                    ci->version == 5 ? "5.0" : "3.1.1", "subscriptions",
                                    ci->subscriptions, "queued", ci->queued));
    json_object_set_new(t->front->last_seen, ci->identity, json_integer(clock_wall_s()));
}

static void things(front_t *f, http_request_t *req)
{
    things_ctx_t t = {f, json_object()};
    if (!f->last_seen)
        f->last_seen = json_object();
    const group_t *g = deploy_active_group(f->core->deploy);
    for (size_t i = 0; g && i < g->thing_count; i++) {
        json_t *o = thing_entry(&t, g->things[i]);
        json_object_set_new(o, "in_group", json_true());
        json_object_set_new(o, "revoked",
                            json_boolean(group_is_revoked(g, bytes_of_cstr(g->things[i]))));
    }
    broker_each_client(f->core->broker, client_seen, &t);
    json_t *list = json_array();
    const char *name;
    json_t *o;
    json_object_foreach(t.things, name, o)
    {
        json_t *seen = json_object_get(f->last_seen, name);
        json_object_set(o, "last_seen", seen ? seen : json_null());
        json_array_append(list, o);
    }
    json_decref(t.things);
    respond_json(req, 200, json_pack("{s:o,s:b}", "things", list, "group_deployed", g != NULL),
                 NULL);
}

static void group(front_t *f, http_request_t *req)
{
    const group_t *g = deploy_active_group(f->core->deploy);
    json_t *st = json_object();
    routing_status(f->core->routing, st);
    json_t *r = json_object();
    json_object_set_new(r, "version",
                        json_integer((json_int_t)deploy_active_version(f->core->deploy)));
    json_object_set(r, "document", g && g->doc ? g->doc : json_null());
    json_object_set(r, "routes", json_object_get(st, "routes") ?: json_array());
    json_object_set(r, "services", json_object_get(st, "services") ?: json_object());
    json_decref(st);
    respond_json(req, 200, r, NULL);
}

static void publish(front_t *f, http_request_t *req, json_t *body)
{
    const char *topic = json_string_value(json_object_get(body, "topic"));
    const char *payload = json_string_value(json_object_get(body, "payload"));
    json_t *q = json_object_get(body, "qos");
    if (!topic || !mqtt_topic_name_valid(bytes_of_cstr(topic))) {
        respond_error(req, 400, "publish needs a valid \"topic\" (no wildcards)");
        return;
    }
    if (q && (!json_is_integer(q) || json_integer_value(q) < 0 || json_integer_value(q) > 1)) {
        respond_error(req, 400, "qos must be 0 or 1");
        return;
    }
    broker_message_t m = {.source = BYTES_LIT("console"),
                          .topic = bytes_of_cstr(topic),
                          .payload = bytes_of_cstr(payload ? payload : ""),
                          .qos = q ? (uint8_t)json_integer_value(q) : 0,
                          .retain = json_is_true(json_object_get(body, "retain"))};
    sedge_err err = broker_publish(f->core->broker, &m);
    if (err == SEDGE_ERR_DENIED)
        respond_error(req, 403, "no route of the deployed group lets the console publish there");
    else if (err)
        respond_error(req, 500, sedge_strerror(err));
    else
        respond_json(req, 200, json_pack("{s:b}", "published", 1), NULL);
}

/* POST bodies: one JSON object. */
static json_t *body_object(http_request_t *req, const http_request_info_t *info)
{
    json_error_t jerr;
    json_t *body =
        json_loadb((const char *)info->body.data, info->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        char msg[256];
        snprintf(msg, sizeof msg, "the body must be a JSON object%s%s", body ? "" : ": ",
                 body ? "" : jerr.text);
        respond_error(req, 400, msg);
        return NULL;
    }
    return body;
}

static void api_get(front_t *f, http_request_t *req, const http_request_info_t *info,
                    const char *what)
{
    char a[256] = "", b[256] = "";
    if (strcmp(what, "status") == 0)
        call(f, req, json_pack("{s:s}", "cmd", "status"), SHAPE_PLAIN);
    else if (strcmp(what, "functions") == 0)
        call(f, req, json_pack("{s:s}", "cmd", "functions"), SHAPE_PLAIN);
    else if (strcmp(what, "spool") == 0)
        call(f, req, json_pack("{s:s}", "cmd", "spool"), SHAPE_PLAIN);
    else if (strcmp(what, "deployments") == 0)
        call(f, req, json_pack("{s:s}", "cmd", "deployments"), SHAPE_PLAIN);
    else if (strcmp(what, "things") == 0)
        things(f, req);
    else if (strcmp(what, "group") == 0)
        group(f, req);
    else if (strcmp(what, "shadows") == 0 && query_arg(info->query, "thing", a, sizeof a))
        call(f, req, json_pack("{s:s,s:s,s:s}", "cmd", "shadow", "op", "list", "thing", a),
             SHAPE_PLAIN);
    else if (strcmp(what, "shadow") == 0 && query_arg(info->query, "thing", a, sizeof a)) {
        json_t *r = json_pack("{s:s,s:s,s:s}", "cmd", "shadow", "op", "get", "thing", a);
        if (query_arg(info->query, "name", b, sizeof b) && b[0])
            json_object_set_new(r, "name", json_string(b));
        call(f, req, r, SHAPE_PLAIN);
    } else if (strcmp(what, "logs") == 0 && query_arg(info->query, "function", a, sizeof a))
        call(f, req, json_pack("{s:s,s:s}", "cmd", "logs", "function", a), SHAPE_LOGS);
    else
        respond_error(req, 404, "no such API (or a query argument is missing)");
}

json_t *console_request(const char *what, bytes_t body_text, int *shape, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *body =
        json_loadb((const char *)body_text.data, body_text.len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *r = NULL;
    *shape = SHAPE_PLAIN;
    err[0] = '\0';
    if (!json_is_object(body)) {
        snprintf(err, errlen, "the body must be a JSON object%s%s", body ? "" : ": ",
                 body ? "" : jerr.text);
    } else if (strcmp(what, "shadow") == 0) {
        /* {thing, name?, document} or {thing, name?, desired}: an update. */
        json_t *doc = json_object_get(body, "document");
        json_t *desired = json_object_get(body, "desired");
        const char *thing = json_string_value(json_object_get(body, "thing"));
        const char *name = json_string_value(json_object_get(body, "name"));
        json_t *update = doc       ? json_incref(doc)
                         : desired ? json_pack("{s:{s:O}}", "state", "desired", desired)
                                   : NULL;
        char *text = update ? json_dumps(update, JSON_COMPACT) : NULL;
        json_decref(update);
        if (thing && text) {
            r = json_pack("{s:s,s:s,s:s,s:s}", "cmd", "shadow", "op", "update", "thing", thing,
                          "document", text);
            if (r && name && name[0])
                json_object_set_new(r, "name", json_string(name));
        } else {
            snprintf(err, errlen,
                     "a shadow update needs \"thing\" and \"desired\" (or "
                     "\"document\")");
        }
        free(text);
    } else if (strcmp(what, "invoke") == 0) {
        /* "payload": a JSON value, sent as its JSON text; or
         * "payload_text": sent as it is (a binary-encoding function's). */
        const char *fn = json_string_value(json_object_get(body, "function"));
        json_t *p = json_object_get(body, "payload");
        const char *text = json_string_value(json_object_get(body, "payload_text"));
        char *payload = text ? strdup(text)
                        : p  ? json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY)
                             : strdup("");
        char *b64 = payload ? base64_encode(bytes_of_cstr(payload)) : NULL;
        free(payload);
        if (fn && b64)
            r = json_pack("{s:s,s:s,s:s}", "cmd", "invoke", "function", fn, "payload_b64", b64);
        else
            snprintf(err, errlen, "invoke needs \"function\" (and a \"payload\")");
        *shape = SHAPE_INVOKE;
        free(b64);
    } else if (strcmp(what, "rollback") == 0) {
        r = json_pack("{s:s}", "cmd", "rollback");
        json_t *v = json_object_get(body, "version");
        if (r && v)
            json_object_set(r, "version", v);
    } else if (strcmp(what, "deploy") == 0) {
        json_t *doc = json_object_get(body, "document");
        char *text = json_is_string(doc) ? strdup(json_string_value(doc))
                     : doc               ? json_dumps(doc, JSON_COMPACT)
                                         : NULL;
        if (text)
            r = json_pack("{s:s,s:s}", "cmd", "deploy", "document", text);
        else
            snprintf(err, errlen, "deploy needs \"document\"");
        free(text);
    } else {
        snprintf(err, errlen, "no such API");
    }
    json_decref(body);
    if (!r && !err[0])
        snprintf(err, errlen, "out of memory");
    return r;
}

static void api_post(front_t *f, http_request_t *req, const http_request_info_t *info,
                     const char *what)
{
    if (strcmp(what, "publish") == 0) {
        json_t *body = body_object(req, info);
        if (body)
            publish(f, req, body);
        json_decref(body);
        return;
    }
    int shape;
    char err[300];
    json_t *r = console_request(what, info->body, &shape, err, sizeof err);
    if (!r) {
        respond_error(req, strcmp(err, "no such API") == 0 ? 404 : 400, err);
        return;
    }
    call(f, req, r, shape);
}

void console_handle(void *ctx, http_request_t *req, const http_request_info_t *info)
{
    front_t *f = ctx;
    bool admin_cert = info->tls && console_is_admin(f, info->client_cn);
    if (info->tls && !admin_cert) {
        f->console.unauthorised++;
        http_respond(req, 403, "text/plain", NULL,
                     BYTES_LIT("the console over TLS is for the identities in http.admins\n"));
        return;
    }
    bool get = strcmp(info->method, "GET") == 0 || strcmp(info->method, "HEAD") == 0;
    if (strncmp(info->path, "/api/", 5) != 0) {
        if (get && strcmp(info->path, "/login") == 0)
            login(f, req, info);
        else if (!get || !serve_asset(req, info->path))
            http_respond(req, get ? 404 : 405, "text/plain", NULL,
                         get ? BYTES_LIT("not found\n") : BYTES_LIT("method not allowed\n"));
        return;
    }
    char cookie[512] = "";
    http_request_header(req, "cookie", cookie, sizeof cookie);
    console_session_t *s = session_of_cookie(f, cookie);
    const char *what = info->path + 5;
    if (!s && admin_cert && get && strcmp(what, "session") == 0) {
        /* An admin's certificate opens a session at the page's first call. */
        s = session_new(f, info->client_cn);
        char headers[200];
        snprintf(headers, sizeof headers,
                 "Set-Cookie: " COOKIE_NAME "=%s; Path=/; HttpOnly; Secure; SameSite=Strict\r\n",
                 s->id);
        respond_json(req, 200, json_pack("{s:s,s:s}", "csrf", s->csrf, "who", s->who), headers);
        return;
    }
    if (!s) {
        f->console.unauthorised++;
        respond_error(req, 401, "log in first: run `sedgectl console` and open the URL it prints");
        return;
    }
    if (get) {
        if (strcmp(what, "session") == 0)
            respond_json(req, 200, json_pack("{s:s,s:s}", "csrf", s->csrf, "who", s->who), NULL);
        else
            api_get(f, req, info, what);
        return;
    }
    if (strcmp(info->method, "POST") != 0) {
        respond_error(req, 405, "GET or POST");
        return;
    }
    char csrf[80] = "";
    if (http_request_header(req, "x-csrf-token", csrf, sizeof csrf) < 0 ||
        !same_secret(s->csrf, csrf)) {
        f->console.csrf_refused++;
        LOGW("console change from %s refused: missing or wrong CSRF token", info->peer);
        respond_error(req, 403, "missing or wrong X-CSRF-Token");
        return;
    }
    if (strcmp(what, "logout") == 0) {
        memset(s, 0, sizeof *s);
        respond_json(req, 200, json_object(), NULL);
        return;
    }
    api_post(f, req, info, what);
}

/* ---- the live topic viewer: a WebSocket streaming matching messages ---- */

typedef struct viewer {
    struct viewer *next;
    front_t *front;
    http_ws_t *ws;
    broker_watch_t *watch;
    buf_t pending; /* JSON lines waiting for the WebSocket */
    size_t pending_count;
    uint64_t dropped;
    bool writing;
    buf_t in; /* a request arriving in pieces */
} viewer_t;

static viewer_t *viewers;

static void viewer_flush(viewer_t *v)
{
    if (v->writing || !v->pending.len || !v->ws)
        return;
    if (http_ws_write(v->ws, v->pending.data, v->pending.len) == SEDGE_OK)
        v->writing = true;
    v->pending.len = 0;
    v->pending_count = 0;
}

static void viewer_send(viewer_t *v, json_t *o)
{
    if (v->pending_count >= WATCH_MAX_PENDING) {
        v->dropped++;
        json_decref(o);
        return;
    }
    if (v->dropped) {
        json_object_set_new(o, "dropped_before", json_integer((json_int_t)v->dropped));
        v->dropped = 0;
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text && buf_append(&v->pending, text, strlen(text)) == SEDGE_OK &&
        buf_append(&v->pending, "\n", 1) == SEDGE_OK)
        v->pending_count++;
    free(text);
    viewer_flush(v);
}

static void watched(void *ctx, const broker_message_t *m)
{
    viewer_t *v = ctx;
    json_t *o =
        json_pack("{s:s%,s:i,s:b,s:s%,s:I}", "topic", (const char *)m->topic.data, m->topic.len,
                  "qos", m->qos, "retain", m->retain, "source", (const char *)m->source.data,
                  m->source.len, "t", (json_int_t)clock_wall_s());
    json_t *text = json_stringn((const char *)m->payload.data, m->payload.len);
    if (text) {
        json_object_set_new(o, "payload", text);
    } else {
        char *b64 = base64_encode(m->payload);
        json_object_set_new(o, "payload_b64", json_string(b64 ? b64 : ""));
        free(b64);
    }
    viewer_send(v, o);
}

/* The upgrade: from the page's own origin (no cross-site WebSocket), with
 * a session (or an admin's certificate). */
static bool viewer_accept(void *ctx, http_ws_t *ws, const http_request_info_t *info)
{
    front_t *f = ctx;
    char cookie[512] = "", origin[256] = "", host[256] = "";
    http_ws_header(ws, "cookie", cookie, sizeof cookie);
    http_ws_header(ws, "origin", origin, sizeof origin);
    http_ws_header(ws, "host", host, sizeof host);
    /* The page's own origin only (no cross-site WebSocket), and a session. */
    const char *o = strstr(origin, "://");
    if (!o || strcmp(o + 3, host) != 0) {
        f->console.csrf_refused++;
        LOGW("console WebSocket from %s refused: origin '%s' is not this console", info->peer,
             origin);
        return false;
    }
    if (!session_of_cookie(f, cookie) && !(info->tls && console_is_admin(f, info->client_cn))) {
        f->console.unauthorised++;
        LOGW("console WebSocket from %s refused: no session", info->peer);
        return false;
    }
    return true;
}

static void *viewer_open(void *ctx, http_ws_t *ws, const http_request_info_t *info)
{
    (void)info;
    front_t *f = ctx;
    viewer_t *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->front = f;
    v->ws = ws;
    v->next = viewers;
    viewers = v;
    return v;
}

static void viewer_request(viewer_t *v, const char *line, size_t len)
{
    json_t *req = json_loadb(line, len, 0, NULL);
    const char *filter = json_string_value(json_object_get(req, "subscribe"));
    if (filter) {
        if (v->watch)
            broker_unwatch(v->front->core->broker, v->watch);
        v->watch = broker_watch(v->front->core->broker, filter, watched, v);
        viewer_send(v, json_pack("{s:s,s:b}", "subscribed", filter, "ok", v->watch != NULL));
    } else {
        viewer_send(v, json_pack("{s:s}", "error", "expected {\"subscribe\": FILTER}"));
    }
    json_decref(req);
}

static void viewer_receive(void *conn, const uint8_t *data, size_t len)
{
    viewer_t *v = conn;
    if (v->in.len + len > 65536) {
        http_ws_close(v->ws);
        return;
    }
    if (buf_append(&v->in, data, len))
        return;
    uint8_t *nl;
    while ((nl = memchr(v->in.data, '\n', v->in.len))) {
        size_t n = (size_t)(nl - v->in.data);
        viewer_request(v, (const char *)v->in.data, n);
        buf_consume(&v->in, n + 1);
    }
    /* A browser sends each request as one frame without a newline. */
    if (v->in.len && v->in.data[v->in.len - 1] == '}') {
        viewer_request(v, (const char *)v->in.data, v->in.len);
        v->in.len = 0;
    }
}

static void viewer_written(void *conn)
{
    viewer_t *v = conn;
    v->writing = false;
    viewer_flush(v);
}

static void viewer_free(viewer_t *v)
{
    for (viewer_t **l = &viewers; *l; l = &(*l)->next)
        if (*l == v) {
            *l = v->next;
            break;
        }
    if (v->watch)
        broker_unwatch(v->front->core->broker, v->watch);
    buf_free(&v->pending);
    buf_free(&v->in);
    free(v);
}

static void viewer_closed(void *conn)
{
    viewer_free(conn);
}

const http_ws_handler_t console_ws_handler = {
    .accept = viewer_accept,
    .open = viewer_open,
    .receive = viewer_receive,
    .written = viewer_written,
    .closed = viewer_closed,
    .text = true,
};

sedge_err console_start(front_t *f)
{
    f->last_seen = json_object();
    return f->last_seen ? SEDGE_OK : SEDGE_ERR_NOMEM;
}

/* Stopping: the viewers stop watching (their WebSockets close with the
 * server). */
void console_stop(front_t *f)
{
    for (viewer_t *v = viewers; v; v = v->next)
        if (v->watch) {
            broker_unwatch(f->core->broker, v->watch);
            v->watch = NULL;
        }
}
