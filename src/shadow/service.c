/*
 * service: the shadow service — requests, the cache of documents, the
 * store, and replies.
 *
 * Every shadow touched stays in a cache keyed "THING/NAME" (a thing name
 * cannot contain '/'), loaded from the store on first use, so the store is
 * only read once per shadow. A request's replies are built when it is
 * handled and published once the service's latest write has settled in
 * the store: replies keep the order of requests, and none reports state
 * that a crash could still lose.
 */
#include "shadow.h"

#include "base/map.h"
#include "doc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "shadow"

/* A deleted shadow created again within this time continues its versions. */
#define VERSION_MEMORY_S (48 * 3600)
#define MAX_CLIENT_TOKEN 64

typedef struct {
    char *key; /* "THING/NAME" */
    size_t key_len;
    int64_t version;    /* of the current document, or the base for a new one */
    int64_t deleted_at; /* wall seconds; 0 if never deleted or recreated */
    json_t *doc;        /* NULL: no shadow */
} entry_t;

struct shadow_svc {
    shadow_options_t o;
    map_t cache;
    uint64_t last_write; /* newest store batch holding a shadow write */
};

typedef struct {
    char *topic;
    char *payload;
} outgoing_t;

/* What one request answers, once its batch has settled. */
typedef struct {
    shadow_svc_t *svc;
    char *key; /* the shadow's cache key, to forget it if the write fails */
    shadow_op_t op;
    char *base; /* the request topic, for a late /rejected */
    bool from_mqtt;
    outgoing_t out[3];
    size_t count;
    int code;       /* 0 accepted, else the error code */
    char *response; /* accepted or rejected document, for `done` */
    shadow_done_fn done;
    void *done_ctx;
} reply_t;

typedef struct {
    shadow_op_t op;
    bytes_t thing, name;
    char base[400]; /* "$aws/things/T/shadow[/name/N]/OP" */
    json_t *client_token;
    bool from_mqtt;
    shadow_done_fn done;
    void *done_ctx;
} request_t;

static bool valid_name(bytes_t name, size_t max)
{
    if (name.len == 0 || name.len > max)
        return false;
    for (size_t i = 0; i < name.len; i++) {
        uint8_t ch = name.data[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == ':' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

bool shadow_valid_thing_name(bytes_t name)
{
    return valid_name(name, 128);
}
bool shadow_valid_shadow_name(bytes_t name)
{
    return valid_name(name, 64);
}

static const char *op_name(shadow_op_t op)
{
    return op == SHADOW_GET ? "get" : op == SHADOW_UPDATE ? "update" : "delete";
}

static void free_entry(entry_t *e)
{
    json_decref(e->doc);
    free(e->key);
    free(e);
}

static entry_t *entry_get(shadow_svc_t *s, bytes_t thing, bytes_t name)
{
    char key[200];
    int n = snprintf(key, sizeof key, "%.*s/%.*s", (int)thing.len, (const char *)thing.data,
                     (int)name.len, (const char *)name.data);
    bytes_t k = {(const uint8_t *)key, (size_t)n};
    entry_t *e = map_get(&s->cache, k);
    if (e)
        return e;
    e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key))) {
        free(e);
        return NULL;
    }
    e->key_len = (size_t)n;
    char *text = NULL;
    sedge_err err = store_read_shadow(s->o.store, thing, name, &e->version, &text, &e->deleted_at);
    if (err == SEDGE_OK && text) {
        json_error_t jerr;
        e->doc = json_loads(text, 0, &jerr);
        if (!e->doc)
            LOGE("stored shadow %s is not JSON (%s); treating it as absent", key, jerr.text);
    } else if (err && err != SEDGE_ERR_NOT_FOUND) {
        free(text);
        free_entry(e);
        return NULL;
    }
    free(text);
    if (!e->doc && e->deleted_at && clock_wall_s() - e->deleted_at > VERSION_MEMORY_S)
        e->version = 0;
    if (map_put(&s->cache, (bytes_t){(const uint8_t *)e->key, e->key_len}, e)) {
        free_entry(e);
        return NULL;
    }
    return e;
}

/* Build replies and publish them in order once the store has caught up. */

static void forget(shadow_svc_t *s, const char *key)
{
    entry_t *e = map_del(&s->cache, bytes_of_cstr(key));
    if (e)
        free_entry(e);
}

static void send_reply(void *ctx, sedge_err result)
{
    reply_t *r = ctx;
    shadow_svc_t *s = r->svc;
    if (result && r->code == 0) {
        /* The change never reached the disk: drop it from the cache, so
         * the stored document is what the next request sees, and say so. */
        LOGE("%s: the store failed (%s): answering 500", r->base, sedge_strerror(result));
        r->code = 500;
        if (r->key)
            forget(s, r->key);
        if (r->from_mqtt && r->base) {
            char topic[440];
            snprintf(topic, sizeof topic, "%s/rejected", r->base);
            char payload[128];
            snprintf(payload, sizeof payload,
                     "{\"code\":500,\"message\":\"An internal error occurred\",\"timestamp\":%lld}",
                     (long long)clock_wall_s());
            s->o.publish(s->o.ctx, bytes_of_cstr(topic), bytes_of_cstr(payload));
        }
    }
    for (size_t i = 0; i < r->count; i++) {
        if (r->code == 0 || strstr(r->out[i].topic, "/rejected"))
            s->o.publish(s->o.ctx, bytes_of_cstr(r->out[i].topic),
                         bytes_of_cstr(r->out[i].payload));
        free(r->out[i].topic);
        free(r->out[i].payload);
    }
    if (r->code == 0 && r->key && r->op != SHADOW_GET && s->o.on_change) {
        const char *slash = strchr(r->key, '/');
        bytes_t thing = {(const uint8_t *)r->key, (size_t)(slash - r->key)};
        bytes_t name = bytes_of_cstr(slash + 1);
        s->o.on_change(s->o.ctx, r->op, thing, name,
                       bytes_of_cstr(r->response ? r->response : "{}"));
    }
    if (r->done) {
        const char *resp = r->response ? r->response : "{}";
        if (result && r->code == 500)
            resp = "{\"code\":500,\"message\":\"An internal error occurred\"}";
        r->done(r->done_ctx, r->code, bytes_of_cstr(resp));
    }
    free(r->response);
    free(r->key);
    free(r->base);
    free(r);
}

static void schedule(shadow_svc_t *s, reply_t *r)
{
    if (store_when_settled(s->o.store, s->last_write, send_reply, r))
        send_reply(r, SEDGE_ERR_NOMEM);
}

static reply_t *reply_new(shadow_svc_t *s, const request_t *q)
{
    reply_t *r = calloc(1, sizeof *r);
    if (r) {
        r->svc = s;
        r->done = q->done;
        r->done_ctx = q->done_ctx;
        r->from_mqtt = q->from_mqtt;
        r->base = strdup(q->base);
        r->op = q->op;
    }
    return r;
}

static void reply_add(reply_t *r, const char *base, const char *suffix, json_t *payload)
{
    char *text = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    size_t n = strlen(base) + strlen(suffix) + 1;
    char *topic = malloc(n);
    if (!text || !topic || r->count == ARRAY_LEN(r->out)) {
        free(text);
        free(topic);
        return;
    }
    snprintf(topic, n, "%s%s", base, suffix);
    r->out[r->count++] = (outgoing_t){topic, text};
}

static void add_token(json_t *o, const request_t *q)
{
    if (q->client_token)
        json_object_set(o, "clientToken", q->client_token);
}

static void reject(shadow_svc_t *s, const request_t *q, int code, const char *message)
{
    reply_t *r = reply_new(s, q);
    if (!r)
        return;
    json_t *p = json_object();
    json_object_set_new(p, "code", json_integer(code));
    json_object_set_new(p, "message", json_string(message));
    json_object_set_new(p, "timestamp", json_integer(clock_wall_s()));
    add_token(p, q);
    r->code = code;
    r->response = json_dumps(p, JSON_COMPACT);
    if (q->from_mqtt)
        reply_add(r, q->base, "/rejected", p);
    else
        json_decref(p);
    LOGD("%s: %d %s", q->base, code, message);
    schedule(s, r);
}

static void not_found(shadow_svc_t *s, const request_t *q)
{
    char msg[160];
    bytes_t which = q->name.len ? q->name : q->thing;
    snprintf(msg, sizeof msg, "No shadow exists with name: '%.*s'", (int)which.len,
             (const char *)which.data);
    reject(s, q, 404, msg);
}

/* {"state": {desired, reported}, "metadata": {...}, "version": N} */
static json_t *document_view(const json_t *doc, bool with_delta)
{
    json_t *view = json_object();
    json_t *state = json_deep_copy(json_object_get(doc, "state"));
    json_t *meta = json_deep_copy(json_object_get(doc, "metadata"));
    if (!state)
        state = json_object();
    if (!meta)
        meta = json_object();
    if (with_delta) {
        json_t *delta =
            shadow_delta(json_object_get(state, "desired"), json_object_get(state, "reported"));
        if (delta)
            json_object_set_new(state, "delta", delta);
    }
    json_object_set_new(view, "state", state);
    json_object_set_new(view, "metadata", meta);
    json_object_set(view, "version", json_object_get(doc, "version"));
    return view;
}

static void handle_get(shadow_svc_t *s, request_t *q, entry_t *e)
{
    if (!e->doc) {
        not_found(s, q);
        return;
    }
    reply_t *r = reply_new(s, q);
    if (!r)
        return;
    json_t *p = document_view(e->doc, true);
    json_object_set_new(p, "timestamp", json_integer(clock_wall_s()));
    add_token(p, q);
    r->response = json_dumps(p, JSON_COMPACT);
    if (q->from_mqtt)
        reply_add(r, q->base, "/accepted", p);
    else
        json_decref(p);
    schedule(s, r);
}

static void handle_delete(shadow_svc_t *s, request_t *q, entry_t *e)
{
    if (!e->doc) {
        not_found(s, q);
        return;
    }
    int64_t now = clock_wall_s();
    json_decref(e->doc);
    e->doc = NULL;
    e->deleted_at = now;
    s->last_write = store_put_shadow(s->o.store, q->thing, q->name, e->version, BYTES_LIT(""), now);
    reply_t *r = reply_new(s, q);
    if (!r)
        return;
    r->key = strdup(e->key);
    json_t *p = json_object();
    json_object_set_new(p, "version", json_integer(e->version));
    json_object_set_new(p, "timestamp", json_integer(now));
    add_token(p, q);
    r->response = json_dumps(p, JSON_COMPACT);
    reply_add(r, q->base, "/accepted", p);
    schedule(s, r);
}

static size_t section_size(const json_t *state, const char *section)
{
    json_t *v = json_object_get(state, section);
    if (!v)
        return 0;
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t n = text ? strlen(text) : 0;
    free(text);
    return n;
}

/* Remove a section that the update left empty, with its metadata. */
static void drop_if_empty(json_t *state, json_t *meta, const char *section)
{
    json_t *v = json_object_get(state, section);
    if (v && json_object_size(v) == 0) {
        json_object_del(state, section);
        json_object_del(meta, section);
    }
}

static bool listened(shadow_svc_t *s, const char *base, const char *suffix)
{
    if (!s->o.has_listeners)
        return true;
    char topic[440];
    snprintf(topic, sizeof topic, "%s%s", base, suffix);
    return s->o.has_listeners(s->o.ctx, bytes_of_cstr(topic));
}

static void handle_update(shadow_svc_t *s, request_t *q, entry_t *e, json_t *req)
{
    json_t *state = json_object_get(req, "state");
    if (!state) {
        reject(s, q, 400, "Missing required node: state");
        return;
    }
    if (!json_is_object(state) && !json_is_null(state)) {
        reject(s, q, 400, "State node must be an object");
        return;
    }
    const char *key;
    json_t *v;
    json_object_foreach(json_is_object(state) ? state : NULL, key, v)
    {
        if (strcmp(key, "desired") != 0 && strcmp(key, "reported") != 0) {
            char msg[128];
            snprintf(msg, sizeof msg, "State contains an invalid node: '%.64s'", key);
            reject(s, q, 400, msg);
            return;
        }
        if (!json_is_object(v) && !json_is_null(v)) {
            reject(s, q, 400,
                   strcmp(key, "desired") == 0 ? "Desired node must be an object"
                                               : "Reported node must be an object");
            return;
        }
        if (shadow_depth(v) > SHADOW_MAX_DEPTH) {
            reject(s, q, 400, "JSON contains too many levels of nesting; maximum is 6");
            return;
        }
    }
    json_t *version = json_object_get(req, "version");
    if (version && (!json_is_integer(version) || json_integer_value(version) < 0)) {
        reject(s, q, 400, "Invalid version");
        return;
    }
    if (version && json_integer_value(version) != e->version) {
        reject(s, q, 409, "Version conflict");
        return;
    }

    int64_t now = clock_wall_s();
    json_t *doc = e->doc ? json_deep_copy(e->doc) : json_object();
    json_t *dstate = json_object_get(doc, "state"), *dmeta = json_object_get(doc, "metadata");
    if (!dstate) {
        dstate = json_object();
        json_object_set_new(doc, "state", dstate);
    }
    if (!dmeta) {
        dmeta = json_object();
        json_object_set_new(doc, "metadata", dmeta);
    }
    json_t *meta_patch = json_object();
    const char *sections[] = {"desired", "reported"};
    for (size_t i = 0; i < 2; i++) {
        const char *sec = sections[i];
        json_t *patch = json_is_null(state) ? json_null() : json_object_get(state, sec);
        if (!patch)
            continue;
        if (json_is_null(patch)) {
            json_object_del(dstate, sec);
            json_object_del(dmeta, sec);
            continue;
        }
        json_t *target = json_object_get(dstate, sec), *tmeta = json_object_get(dmeta, sec);
        if (!target) {
            target = json_object();
            json_object_set_new(dstate, sec, target);
        }
        if (!tmeta) {
            tmeta = json_object();
            json_object_set_new(dmeta, sec, tmeta);
        }
        shadow_merge(target, tmeta, patch, now);
        json_object_set_new(meta_patch, sec, shadow_metadata_of(patch, now));
        drop_if_empty(dstate, dmeta, sec);
    }
    if (section_size(dstate, "desired") + section_size(dstate, "reported") > s->o.max_doc_bytes) {
        json_decref(doc);
        json_decref(meta_patch);
        reject(s, q, 413, "The payload exceeds the maximum size allowed");
        return;
    }
    int64_t new_version = e->version + 1;
    json_object_set_new(doc, "version", json_integer(new_version));
    json_object_set_new(doc, "timestamp", json_integer(now));
    char *text = json_dumps(doc, JSON_COMPACT);
    if (!text) {
        json_decref(doc);
        json_decref(meta_patch);
        reject(s, q, 500, "An internal error occurred");
        return;
    }
    s->last_write =
        store_put_shadow(s->o.store, q->thing, q->name, new_version, bytes_of_cstr(text), 0);
    free(text);

    reply_t *r = reply_new(s, q);
    json_t *previous = e->doc;
    e->doc = doc;
    e->version = new_version;
    e->deleted_at = 0;
    if (!r) {
        json_decref(previous);
        json_decref(meta_patch);
        return;
    }
    r->key = strdup(e->key);
    json_t *acc = json_object();
    json_object_set(acc, "state", state);
    json_object_set_new(acc, "metadata", meta_patch);
    json_object_set_new(acc, "version", json_integer(new_version));
    json_object_set_new(acc, "timestamp", json_integer(now));
    add_token(acc, q);
    r->response = json_dumps(acc, JSON_COMPACT);
    char base[420];
    snprintf(base, sizeof base, "%s", q->base);
    reply_add(r, base, "/accepted", acc);
    json_t *desired = json_object_get(dstate, "desired");
    if (desired && listened(s, base, "/delta")) {
        json_t *delta = shadow_delta(desired, json_object_get(dstate, "reported"));
        if (delta) {
            json_t *p = json_object();
            json_object_set_new(p, "version", json_integer(new_version));
            json_object_set_new(p, "timestamp", json_integer(now));
            json_object_set_new(p, "state", delta);
            json_object_set_new(p, "metadata",
                                shadow_delta_metadata(delta, json_object_get(dmeta, "desired")));
            add_token(p, q);
            reply_add(r, base, "/delta", p);
        }
    }
    if (listened(s, base, "/documents")) {
        json_t *p = json_object();
        json_object_set_new(p, "previous", previous ? document_view(previous, false) : json_null());
        json_object_set_new(p, "current", document_view(doc, false));
        json_object_set_new(p, "timestamp", json_integer(now));
        add_token(p, q);
        reply_add(r, base, "/documents", p);
    }
    json_decref(previous);
    schedule(s, r);
}

static void handle(shadow_svc_t *s, request_t *q, bytes_t payload)
{
    if (!shadow_valid_thing_name(q->thing)) {
        reject(s, q, 400, "Invalid thing name");
        return;
    }
    if (q->name.len && !shadow_valid_shadow_name(q->name)) {
        reject(s, q, 400, "Invalid shadow name");
        return;
    }
    if (payload.len > s->o.max_doc_bytes * 2 + 1024) {
        reject(s, q, 413, "The payload exceeds the maximum size allowed");
        return;
    }
    json_t *req = NULL;
    if (payload.len || q->op == SHADOW_UPDATE) {
        json_error_t jerr;
        req = json_loadb((const char *)payload.data, payload.len, JSON_REJECT_DUPLICATES, &jerr);
        if (!req || !json_is_object(req)) {
            json_decref(req);
            reject(s, q, 400, "Payload contains invalid json");
            return;
        }
        json_t *token = json_object_get(req, "clientToken");
        if (token) {
            if (!json_is_string(token) || json_string_length(token) > MAX_CLIENT_TOKEN ||
                json_string_length(token) == 0) {
                json_decref(req);
                reject(s, q, 400, "Invalid clientToken");
                return;
            }
            q->client_token = json_incref(token);
        }
    }
    entry_t *e = entry_get(s, q->thing, q->name);
    if (!e) {
        reject(s, q, 500, "An internal error occurred");
    } else if (q->op == SHADOW_GET) {
        handle_get(s, q, e);
    } else if (q->op == SHADOW_DELETE) {
        handle_delete(s, q, e);
    } else {
        handle_update(s, q, e, req);
    }
    json_decref(q->client_token);
    json_decref(req);
}

static bool make_base(request_t *q)
{
    int n;
    if (q->name.len)
        n = snprintf(q->base, sizeof q->base, "$aws/things/%.*s/shadow/name/%.*s/%s",
                     (int)q->thing.len, (const char *)q->thing.data, (int)q->name.len,
                     (const char *)q->name.data, op_name(q->op));
    else
        n = snprintf(q->base, sizeof q->base, "$aws/things/%.*s/shadow/%s", (int)q->thing.len,
                     (const char *)q->thing.data, op_name(q->op));
    return n > 0 && (size_t)n < sizeof q->base;
}

/* $aws/things/T/shadow/OP or $aws/things/T/shadow/name/N/OP */
static bool parse_topic(bytes_t topic, request_t *q)
{
    static const char prefix[] = "$aws/things/";
    if (!bytes_has_prefix(topic, prefix))
        return false;
    const uint8_t *p = topic.data + sizeof prefix - 1;
    const uint8_t *end = topic.data + topic.len;
    bytes_t parts[5];
    size_t n = 0;
    for (;;) {
        const uint8_t *slash = memchr(p, '/', (size_t)(end - p));
        if (n == ARRAY_LEN(parts))
            return false; /* more levels than a request has */
        const uint8_t *stop = slash ? slash : end;
        parts[n++] = (bytes_t){p, (size_t)(stop - p)};
        if (!slash)
            break;
        p = slash + 1;
    }
    bytes_t op;
    if (n == 3 && bytes_eq_cstr(parts[1], "shadow")) {
        q->thing = parts[0];
        q->name = (bytes_t){0};
        op = parts[2];
    } else if (n == 5 && bytes_eq_cstr(parts[1], "shadow") && bytes_eq_cstr(parts[2], "name")) {
        q->thing = parts[0];
        q->name = parts[3];
        op = parts[4];
    } else {
        return false;
    }
    if (bytes_eq_cstr(op, "get"))
        q->op = SHADOW_GET;
    else if (bytes_eq_cstr(op, "update"))
        q->op = SHADOW_UPDATE;
    else if (bytes_eq_cstr(op, "delete"))
        q->op = SHADOW_DELETE;
    else
        return false;
    return true;
}

void shadow_on_message(shadow_svc_t *s, bytes_t topic, bytes_t payload)
{
    request_t q = {.from_mqtt = true};
    if (!parse_topic(topic, &q) || !make_base(&q))
        return;
    handle(s, &q, payload);
}

void shadow_request(shadow_svc_t *s, shadow_op_t op, bytes_t thing, bytes_t name, bytes_t payload,
                    shadow_done_fn done, void *ctx)
{
    request_t q = {.op = op, .thing = thing, .name = name, .done = done, .done_ctx = ctx};
    if (!make_base(&q)) {
        json_t *p = json_pack("{s:i,s:s}", "code", 400, "message", "Invalid thing name");
        char *text = json_dumps(p, JSON_COMPACT);
        done(ctx, 400, bytes_of_cstr(text));
        free(text);
        json_decref(p);
        return;
    }
    handle(s, &q, payload);
}

typedef struct {
    shadow_svc_t *svc;
    bytes_t thing;
    json_t *names;
} list_ctx_t;

static sedge_err add_stored_name(void *ctx, bytes_t name)
{
    list_ctx_t *l = ctx;
    entry_t *e = entry_get(l->svc, l->thing, name);
    if (e && e->doc) {
        json_t *s = json_stringn((const char *)name.data, name.len);
        json_object_set_new(l->names, json_string_value(s), json_true());
        json_decref(s);
    }
    return SEDGE_OK;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

sedge_err shadow_list(shadow_svc_t *s, bytes_t thing, json_t **names)
{
    list_ctx_t l = {s, thing, json_object()};
    sedge_err err = store_list_shadows(s->o.store, thing, add_stored_name, &l);
    /* Shadows written since the last commit are only in the cache. */
    size_t pos = 0;
    entry_t *e;
    while ((e = map_next(&s->cache, &pos))) {
        if (!e->doc || e->key_len <= thing.len + 1 || memcmp(e->key, thing.data, thing.len) != 0 ||
            e->key[thing.len] != '/')
            continue;
        json_object_set_new(l.names, e->key + thing.len + 1, json_true());
    }
    if (err) {
        json_decref(l.names);
        return err;
    }
    size_t n = json_object_size(l.names), i = 0;
    const char **sorted = calloc(n ? n : 1, sizeof *sorted);
    const char *key;
    json_t *v;
    json_object_foreach(l.names, key, v) if (sorted) sorted[i++] = key;
    if (sorted)
        qsort(sorted, i, sizeof *sorted, compare_names);
    json_t *list = json_array();
    for (size_t k = 0; k < i; k++)
        json_array_append_new(list, json_string(sorted[k]));
    free(sorted);
    json_decref(l.names);
    *names = list;
    return SEDGE_OK;
}

sedge_err shadow_open(const shadow_options_t *opts, shadow_svc_t **out)
{
    shadow_svc_t *s = calloc(1, sizeof *s);
    if (!s)
        return SEDGE_ERR_NOMEM;
    s->o = *opts;
    if (!s->o.max_doc_bytes)
        s->o.max_doc_bytes = SHADOW_DOC_DEFAULT_BYTES;
    if (s->o.max_doc_bytes > SHADOW_DOC_MAX_BYTES)
        s->o.max_doc_bytes = SHADOW_DOC_MAX_BYTES;
    s->cache.seed = (uint64_t)(uintptr_t)s;
    *out = s;
    return SEDGE_OK;
}

void shadow_free(shadow_svc_t *s)
{
    if (!s)
        return;
    size_t pos = 0;
    entry_t *e;
    while ((e = map_next(&s->cache, &pos)))
        free_entry(e);
    map_free(&s->cache);
    free(s);
}
