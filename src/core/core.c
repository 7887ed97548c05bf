/*
 * core: start-up and shutdown order, and the admin commands of the core.
 *
 * Start: data directory and its lock, demo CA (embedded default only),
 * store, broker state from the store, listeners, admin socket. Stop: the
 * reverse — listeners and clients first (so nothing new arrives), then the
 * admin socket, then the last store commit.
 */
#include "core.h"

#include "admin.h"
#include "cloud/cloud.h"
#include "deploy/deploy.h"
#include "functions/functions.h"
#include "internal.h"
#include "ota/ota.h"
#include "paths.h"
#include "pki/pki.h"
#include "routing/routing.h"
#include "seal.h"
#include "shadow/shadow.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_TAG "core"

static char *data_path(const core_t *c, const char *name)
{
    size_t n = strlen(c->cfg.data_dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", c->cfg.data_dir, name);
    return p;
}

static sedge_err make_dirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return SEDGE_ERR_IO;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return SEDGE_ERR_IO;
    return SEDGE_OK;
}

static sedge_err lock_data_dir(core_t *c)
{
    char *path = data_path(c, "sedged.lock");
    if (!path)
        return SEDGE_ERR_NOMEM;
    c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (c->lock_fd < 0 || flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        LOGE("%s: %s", path,
             c->lock_fd < 0 ? strerror(errno) : "another sedged is running on this data directory");
        free(path);
        return SEDGE_ERR_BUSY;
    }
    free(path);
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(c->lock_fd, 0) == 0 && write(c->lock_fd, pid, (size_t)n) < 0)
        LOGW("cannot write the pid into the lock file");
    return SEDGE_OK;
}

static sedge_err ensure_demo_ca(core_t *c)
{
    char *ca = data_path(c, "ca.pem");
    if (!ca)
        return SEDGE_ERR_NOMEM;
    bool exists = access(ca, F_OK) == 0;
    free(ca);
    if (exists)
        return SEDGE_OK;
    char err[512];
    sedge_err rc = pki_ca_init(c->cfg.data_dir, c->cfg.thing_name, NULL, 0, false, err, sizeof err);
    if (rc)
        LOGE("cannot create the demo CA: %s", err);
    else
        LOGI("created a demo CA and the core's certificate in %s", c->cfg.data_dir);
    return rc;
}

static void add_thing(void *ctx, const broker_client_info_t *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "identity", json_string(t->identity));
    json_object_set_new(o, "client_id", json_string(t->client_id));
    json_object_set_new(o, "address", json_string(t->address));
    json_object_set_new(o, "listener", json_string(t->listener));
    json_object_set_new(o, "since", json_integer(t->connected_at));
    json_object_set_new(o, "protocol", json_string(t->version == 5 ? "5" : "3.1.1"));
    json_object_set_new(o, "keep_alive_s", json_integer(t->keep_alive_s));
    json_t *session = json_object();
    json_object_set_new(session, "persistent", json_boolean(t->persistent));
    json_object_set_new(session, "expiry_s", json_integer(t->session_expiry_s));
    json_object_set_new(o, "session", session);
    json_array_append_new(ctx, o);
}

/* The connected things (sedgectl things). */
static void cmd_things(void *ctx, json_t *request, admin_request_t *req)
{
    (void)request;
    core_t *c = ctx;
    json_t *list = json_array();
    broker_each_client(c->broker, add_thing, list);
    json_t *r = json_object();
    json_object_set_new(r, "things", list);
    admin_reply(req, r);
}

static void cmd_status(void *ctx, json_t *request, admin_request_t *req)
{
    (void)request;
    core_t *c = ctx;
    broker_stats_t b;
    broker_get_stats(c->broker, &b);
    store_stats_t s;
    store_get_stats(c->store, &s);
    json_t *r = json_object();
    json_object_set_new(r, "version", json_string(SEDGE_VERSION));
    json_object_set_new(r, "pid", json_integer(getpid()));
    json_object_set_new(r, "thing_name", json_string(c->cfg.thing_name));
    json_object_set_new(r, "uptime_s", json_integer(clock_wall_s() - (int64_t)b.started_at));
    json_object_set_new(r, "connections", json_integer((json_int_t)b.connections));
    json_object_set_new(r, "connections_total", json_integer((json_int_t)b.connections_total));
    json_object_set_new(r, "connections_refused", json_integer((json_int_t)b.refused_connections));
    json_object_set_new(r, "sessions", json_integer((json_int_t)b.sessions));
    json_object_set_new(r, "sessions_persistent", json_integer((json_int_t)b.sessions_persistent));
    json_object_set_new(r, "subscriptions", json_integer((json_int_t)b.subscriptions));
    json_object_set_new(r, "retained", json_integer((json_int_t)b.retained));
    json_object_set_new(r, "messages_in", json_integer((json_int_t)b.msgs_in));
    json_object_set_new(r, "messages_out", json_integer((json_int_t)b.msgs_out));
    json_object_set_new(r, "messages_dropped", json_integer((json_int_t)b.msgs_dropped));
    json_object_set_new(r, "messages_queued", json_integer((json_int_t)b.queued));
    json_object_set_new(r, "bytes_in", json_integer((json_int_t)b.bytes_in));
    json_object_set_new(r, "bytes_out", json_integer((json_int_t)b.bytes_out));
    json_object_set_new(r, "protocol_errors", json_integer((json_int_t)b.protocol_errors));
    json_object_set_new(r, "buffered_bytes", json_integer((json_int_t)b.buffered_bytes));
    json_object_set_new(r, "flow_pauses", json_integer((json_int_t)b.flow_pauses));
    json_object_set_new(r, "slow_readers", json_integer((json_int_t)b.slow_readers));
    json_object_set_new(r, "store_bytes", json_integer((json_int_t)s.bytes_on_disk));
    json_object_set_new(r, "store_commits", json_integer((json_int_t)s.batches));
    json_object_set_new(r, "store_failures", json_integer((json_int_t)s.failures));
    const group_t *g = deploy_active_group(c->deploy);
    if (g) {
        json_t *group = json_object();
        json_object_set_new(group, "name", json_string(g->name));
        json_object_set_new(group, "version",
                            json_integer((json_int_t)deploy_active_version(c->deploy)));
        json_object_set_new(group, "checksum", json_string(g->checksum));
        json_object_set_new(group, "things", json_integer((json_int_t)g->thing_count));
        json_object_set_new(r, "group", group);
    } else {
        json_object_set_new(r, "group", json_null());
    }
    routing_status(c->routing, r);
    admin_reply(req, r);
}

static void deploy_answered(void *ctx, sedge_err err, const char *message, uint64_t version)
{
    admin_request_t *req = ctx;
    json_t *r = json_object();
    if (err) {
        json_object_set_new(r, "error", json_string(message ? message : sedge_strerror(err)));
        json_object_set_new(r, "code", json_string(err == SEDGE_ERR_BUSY ? "busy" : "failed"));
    } else {
        json_object_set_new(r, "message", json_string(message ? message : ""));
    }
    if (version)
        json_object_set_new(r, "version", json_integer((json_int_t)version));
    admin_reply(req, r);
}

static void cmd_deploy(void *ctx, json_t *request, admin_request_t *req)
{
    core_t *c = ctx;
    json_t *doc = json_object_get(request, "document");
    if (!json_is_string(doc)) {
        admin_reply_error(req, "deploy needs \"document\": the group document's text");
        return;
    }
    deploy_submit(c->deploy, json_string_value(doc), json_string_length(doc), deploy_answered, req);
}

static void cmd_deployments(void *ctx, json_t *request, admin_request_t *req)
{
    (void)request;
    core_t *c = ctx;
    json_t *r = json_object();
    json_object_set_new(r, "active", json_integer((json_int_t)deploy_active_version(c->deploy)));
    json_object_set_new(r, "deployments", deploy_history(c->deploy));
    admin_reply(req, r);
}

static void cmd_rollback(void *ctx, json_t *request, admin_request_t *req)
{
    core_t *c = ctx;
    json_t *v = json_object_get(request, "version");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 1)) {
        admin_reply_error(req, "version must be a positive integer");
        return;
    }
    deploy_rollback(c->deploy, v ? (uint64_t)json_integer_value(v) : 0, deploy_answered, req);
}

static void shadow_publish(void *ctx, bytes_t topic, bytes_t payload)
{
    core_t *c = ctx;
    broker_message_t m = {.source = BYTES_LIT("shadow"), .topic = topic, .payload = payload};
    if (broker_publish(c->broker, &m) == SEDGE_ERR_DENIED)
        LOGD("shadow reply on %.*s: no route", (int)topic.len, (const char *)topic.data);
}

static bool shadow_listeners(void *ctx, bytes_t topic)
{
    core_t *c = ctx;
    return broker_has_subscribers(c->broker, topic);
}

static void shadow_changed(void *ctx, shadow_op_t op, bytes_t thing, bytes_t name, bytes_t accepted)
{
    core_t *c = ctx;
    if (c->cloud)
        cloud_shadow_changed(c->cloud, op, thing, name, accepted);
}

static int shadow_from_broker(void *ctx, const endpoint_t *target, const broker_message_t *m,
                              int route_qos)
{
    (void)route_qos;
    (void)target;
    core_t *c = ctx;
    shadow_on_message(c->shadow, m->topic, m->payload);
    return 0;
}

static void shadow_answered(void *ctx, int code, bytes_t response)
{
    admin_request_t *req = ctx;
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)response.data, response.len, 0, &jerr);
    json_t *r = json_object();
    if (code) {
        const char *msg = json_string_value(json_object_get(doc, "message"));
        char text[512];
        snprintf(text, sizeof text, "%d %s", code, msg ? msg : "error");
        json_object_set_new(r, "error", json_string(text));
        json_object_set_new(r, "code", json_integer(code));
        json_decref(doc);
    } else {
        json_object_set_new(r, "document", doc ? doc : json_object());
    }
    admin_reply(req, r);
}

static void cmd_shadow(void *ctx, json_t *request, admin_request_t *req)
{
    core_t *c = ctx;
    const char *op = json_string_value(json_object_get(request, "op"));
    const char *thing = json_string_value(json_object_get(request, "thing"));
    const char *name = json_string_value(json_object_get(request, "name"));
    const char *doc = json_string_value(json_object_get(request, "document"));
    if (!op || !thing) {
        admin_reply_error(req, "shadow needs \"op\" and \"thing\"");
        return;
    }
    bytes_t t = bytes_of_cstr(thing), n = bytes_of_cstr(name ? name : "");
    if (!shadow_valid_thing_name(t) || (name && !shadow_valid_shadow_name(n))) {
        admin_reply_error(req, "invalid %s name (up to %d of a-z A-Z 0-9 : _ -)",
                          shadow_valid_thing_name(t) ? "shadow" : "thing",
                          shadow_valid_thing_name(t) ? 64 : 128);
        return;
    }
    if (strcmp(op, "list") == 0) {
        json_t *names = NULL;
        if (shadow_list(c->shadow, t, &names)) {
            admin_reply_error(req, "cannot list the shadows of %s", thing);
            return;
        }
        json_t *r = json_object();
        json_object_set_new(r, "results", names);
        admin_reply(req, r);
        return;
    }
    shadow_op_t sop;
    if (strcmp(op, "get") == 0)
        sop = SHADOW_GET;
    else if (strcmp(op, "update") == 0)
        sop = SHADOW_UPDATE;
    else if (strcmp(op, "delete") == 0)
        sop = SHADOW_DELETE;
    else {
        admin_reply_error(req, "unknown shadow operation '%s' (get, update, delete, list)", op);
        return;
    }
    if (sop == SHADOW_UPDATE && !doc) {
        admin_reply_error(req, "shadow update needs a document");
        return;
    }
    shadow_request(c->shadow, sop, t, n, bytes_of_cstr(doc ? doc : ""), shadow_answered, req);
}

/* A function's code archive with a "signature": the Ed25519 signature of
 * its SHA-256 (the 64 hex digits) by one of ota.trusted_keys. */
static bool check_code_signatures(core_t *c, const group_t *g, buf_t *errors)
{
    bool ok = true;
    ota_keys_t *keys = NULL;
    size_t i;
    json_t *f;
    json_array_foreach(group_functions(g), i, f)
    {
        json_t *code = json_object_get(f, "code");
        const char *sig = json_string_value(json_object_get(code, "signature"));
        const char *sha = json_string_value(json_object_get(code, "sha256"));
        if (!sig || !sha)
            continue;
        char why[300] = "", line[600];
        buf_t raw = {0};
        if (!keys && c->cfg.ota.enabled &&
            ota_keys_load((const char *const *)c->cfg.ota.trusted_keys, c->cfg.ota.key_count, &keys,
                          why, sizeof why))
            keys = NULL;
        if (!c->cfg.ota.enabled)
            snprintf(why, sizeof why, "no ota.trusted_keys to check it with");
        else if (keys &&
                 (base64_decode(sig, &raw) ||
                  ota_keys_verify_any(keys, bytes_of_cstr(sha), (bytes_t){raw.data, raw.len})))
            snprintf(why, sizeof why, "not signed by a key in ota.trusted_keys");
        buf_free(&raw);
        if (!why[0])
            continue;
        int n = snprintf(line, sizeof line, "functions[%zu].code.signature: %s\n", i, why);
        if (n > 0 &&
            buf_append(errors, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1))
            break;
        ok = false;
    }
    ota_keys_free(keys);
    return ok;
}

static bool check_group(void *ctx, const group_t *g, buf_t *errors)
{
    core_t *c = ctx;
    bool ok = check_code_signatures(c, g, errors);
    return (!c->cloud || cloud_check_group(c->cloud, g, errors)) && ok;
}

/* A secret's value from the cloud: the function runtime keeps it. */
static void secret_from_cloud(void *ctx, const char *id, bytes_t value)
{
    core_t *c = ctx;
    if (c->functions)
        functions_secret_arrived(c->functions, id, value);
}

/* Applying a deployment: the route table, then what follows from it. */
typedef struct {
    core_t *core;
    const group_t *group;
    void (*done)(void *token, sedge_err err, const char *why);
    void *token;
} apply_t;

static void functions_applied(void *ctx, sedge_err err, const char *why)
{
    apply_t *a = ctx;
    if (!err && a->core->cloud)
        cloud_group_applied(a->core->cloud, a->group);
    a->done(a->token, err, why);
    free(a);
}

static void applied(void *ctx, sedge_err err, const char *why)
{
    apply_t *a = ctx;
    if (err) {
        a->done(a->token, err, why);
        free(a);
        return;
    }
    functions_apply(a->core->functions, a->group, functions_applied, a);
}

static void core_apply(void *ctx, const group_t *g,
                       void (*done)(void *token, sedge_err err, const char *why), void *token)
{
    core_t *c = ctx;
    apply_t *a = malloc(sizeof *a);
    if (!a) {
        done(token, SEDGE_ERR_NOMEM, "out of memory");
        return;
    }
    *a = (apply_t){c, g, done, token};
    routing_apply(c->routing, g, applied, a);
}

/* The endpoint of a name the function runtime gives: a connector runs
 * there as the function "connector:NAME". */
static endpoint_t runtime_endpoint(const char *name)
{
    if (strncmp(name, "connector:", 10) == 0)
        return (endpoint_t){ENDPOINT_CONNECTOR, (char *)name + 10, strlen(name + 10)};
    return (endpoint_t){ENDPOINT_FUNCTION, (char *)name, strlen(name)};
}

/* A message routed to function:NAME becomes an asynchronous invocation;
 * one that cannot be queued is refused: an MQTT 5 publisher hears 0x99
 * (payload format invalid) when it is not JSON for a json function, 0x97
 * (quota exceeded) when the queue is full. */
static int function_from_broker(void *ctx, const endpoint_t *target, const broker_message_t *m,
                                int route_qos)
{
    (void)route_qos;
    core_t *c = ctx;
    sedge_err err =
        functions_invoke(c->functions, target->name, m->topic, m->payload, m->source, NULL, NULL);
    if (err == SEDGE_ERR_INVALID)
        return BROKER_ROUTED_INVALID;
    if (err && err != SEDGE_ERR_NOT_FOUND)
        return BROKER_ROUTED_REFUSED;
    return 0;
}

/* A function invokes another only through a route between them. */
static bool function_may_invoke(void *ctx, const char *from, const char *to)
{
    core_t *c = ctx;
    endpoint_t source = runtime_endpoint(from);
    endpoint_t target = runtime_endpoint(to);
    return routing_connects(c->routing, &source, &target);
}

/* A message routed to connector:NAME is an asynchronous invocation of
 * the function the connector runs as, refused as a function's would be. */
static int connector_from_broker(void *ctx, const endpoint_t *target, const broker_message_t *m,
                                 int route_qos)
{
    (void)route_qos;
    core_t *c = ctx;
    char name[GROUP_MAX_NAME + 16];
    endpoint_format(target, name, sizeof name);
    sedge_err err =
        functions_invoke(c->functions, name, m->topic, m->payload, m->source, NULL, NULL);
    if (err == SEDGE_ERR_INVALID)
        return BROKER_ROUTED_INVALID;
    if (err && err != SEDGE_ERR_NOT_FOUND)
        return BROKER_ROUTED_REFUSED;
    return 0;
}

static sedge_err function_publish(void *ctx, const char *function, bytes_t topic, bytes_t payload,
                                  uint8_t qos)
{
    core_t *c = ctx;
    endpoint_t fn = runtime_endpoint(function);
    char source[GROUP_MAX_NAME + 16];
    endpoint_format(&fn, source, sizeof source);
    broker_message_t m = {
        .source = bytes_of_cstr(source), .topic = topic, .payload = payload, .qos = qos};
    return broker_publish(c->broker, &m);
}

static void function_shadow(void *ctx, const char *function, shadow_op_t op, bytes_t thing,
                            bytes_t name, bytes_t payload, shadow_done_fn done, void *done_ctx)
{
    core_t *c = ctx;
    static const char *const ops[] = {"get", "update", "delete"};
    static const endpoint_t shadow = {.kind = ENDPOINT_SHADOW};
    endpoint_t fn = runtime_endpoint(function);
    char source[GROUP_MAX_NAME + 16], topic[400];
    endpoint_format(&fn, source, sizeof source);
    if (name.len)
        snprintf(topic, sizeof topic, "$aws/things/%.*s/shadow/name/%.*s/%s", (int)thing.len,
                 (const char *)thing.data, (int)name.len, (const char *)name.data, ops[op]);
    else
        snprintf(topic, sizeof topic, "$aws/things/%.*s/shadow/%s", (int)thing.len,
                 (const char *)thing.data, ops[op]);
    if (!routing_allows(c->routing, bytes_of_cstr(source), bytes_of_cstr(topic), &shadow)) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "{\"code\":403,\"message\":\"Forbidden: no route from %.80s to shadow\"}", source);
        done(done_ctx, 403, bytes_of_cstr(msg));
        return;
    }
    if (!shadow_valid_thing_name(thing) || (name.len && !shadow_valid_shadow_name(name))) {
        done(done_ctx, 400,
             BYTES_LIT("{\"code\":400,\"message\":\"Invalid thing or shadow name\"}"));
        return;
    }
    shadow_request(c->shadow, op, thing, name, payload, done, done_ctx);
}

static void cmd_functions(void *ctx, json_t *request, admin_request_t *req)
{
    (void)request;
    core_t *c = ctx;
    json_t *r = json_object();
    json_object_set_new(r, "functions", functions_status(c->functions));
    admin_reply(req, r);
}

static void invoke_answered(void *ctx, sedge_err err, const char *error, bytes_t result)
{
    admin_request_t *req = ctx;
    json_t *r = json_object();
    if (err) {
        json_object_set_new(r, "error", json_string(error ? error : sedge_strerror(err)));
    } else {
        char *b64 = base64_encode(result);
        json_object_set_new(r, "result_b64", json_string(b64 ? b64 : ""));
        free(b64);
    }
    admin_reply(req, r);
}

static void cmd_invoke(void *ctx, json_t *request, admin_request_t *req)
{
    core_t *c = ctx;
    const char *name = json_string_value(json_object_get(request, "function"));
    const char *b64 = json_string_value(json_object_get(request, "payload_b64"));
    if (!name) {
        admin_reply_error(req, "invoke needs a function name");
        return;
    }
    buf_t payload = {0};
    if (b64 && base64_decode(b64, &payload)) {
        admin_reply_error(req, "payload_b64 is not base64");
        return;
    }
    sedge_err err =
        functions_invoke(c->functions, name, BYTES_LIT(""), (bytes_t){payload.data, payload.len},
                         BYTES_LIT("sedgectl"), invoke_answered, req);
    buf_free(&payload);
    if (err == SEDGE_ERR_NOT_FOUND)
        admin_reply_error(req, "no function named %s in the active group", name);
    else if (err == SEDGE_ERR_FULL)
        admin_reply_error(req, "queue full");
    else if (err == SEDGE_ERR_INVALID)
        admin_reply_error(req, "payload is not JSON (the function's encoding is json)");
    else if (err)
        admin_reply_error(req, "%s", sedge_strerror(err));
}

static void cmd_logs(void *ctx, json_t *request, admin_request_t *req)
{
    core_t *c = ctx;
    const char *name = json_string_value(json_object_get(request, "function"));
    char path[600];
    if (!name || functions_log_path(c->functions, name, path, sizeof path)) {
        admin_reply_error(req, "no log for function %s", name ? name : "(none)");
        return;
    }
    json_t *r = json_object();
    json_object_set_new(r, "path", json_string(path));
    admin_reply(req, r);
}

static void cmd_spool(void *ctx, json_t *request, admin_request_t *req)
{
    (void)request;
    core_t *c = ctx;
    if (!c->cloud) {
        admin_reply_error(req, "no cloud is configured (the \"cloud\" section of the config)");
        return;
    }
    admin_reply(req, cloud_status(c->cloud));
}

static void cmd_console(void *ctx, json_t *request, admin_request_t *req)
{
    (void)request;
    core_t *c = ctx;
    json_t *r = json_object();
    if (!c->front)
        json_object_set_new(r, "error",
                            json_string("the HTTP front is off: set http.bind in the config"));
    else
        front_console_login(c->front, r);
    admin_reply(req, r);
}

static void print_welcome(const core_t *c)
{
    const char *d = c->cfg.data_dir;
    fprintf(stderr,
            "\nsedged is running. Try it (in another terminal):\n"
            "  ./build/sedgectl status\n"
            "  mosquitto_sub -h 127.0.0.1 -p 1883 -t 'demo/#' -v &\n"
            "  mosquitto_pub -h 127.0.0.1 -p 1883 -t demo/hello -m 'hi'\n"
            "Over mutual TLS, with a certificate for a thing:\n"
            "  ./build/sedgectl cert issue sensor-1 --dir %s\n"
            "  mosquitto_pub -h localhost -p 8883 --cafile %s/ca.pem --cert %s/sensor-1.pem "
            "--key %s/sensor-1.key -t demo/hello -m 'over TLS'\n"
            "The web console (a one-time login URL) and the Prometheus metrics:\n"
            "  ./build/sedgectl console\n"
            "  curl http://127.0.0.1:8080/metrics\n\n",
            d, d, d, d);
}

/* Memory freed by a burst stays with the process for reuse (sedged's
 * main raises glibc's trim threshold); once no byte has moved for a
 * whole interval and nothing is buffered, it goes back to the system. */
#define TRIM_INTERVAL_MS 10000u

static void trim_cb(uv_timer_t *t)
{
    core_t *c = t->data;
    if (!c->broker)
        return;
    broker_stats_t st;
    broker_get_stats(c->broker, &st);
    uint64_t moved = st.bytes_in + st.bytes_out;
    bool quiet = moved == c->bytes_at_trim && st.buffered_bytes == 0;
    if (moved != c->bytes_at_trim)
        c->trimmed = false;
    c->bytes_at_trim = moved;
    if (quiet && !c->trimmed) {
        malloc_trim(0);
        c->trimmed = true;
    }
}

/* The end of every loop turn, before the loop waits for I/O, in this
 * order (as Redis's beforeSleep): the store's batch goes to its worker
 * first, so that the commit runs while the rest is written; then the
 * broker's output to its clients; then the uplink's to the cloud. Nothing
 * else runs between the turn's work and the wait. */
static void before_wait_cb(uv_prepare_t *h)
{
    core_t *c = h->data;
    if (c->store)
        store_before_wait(c->store);
    if (c->broker)
        broker_before_wait(c->broker);
    if (c->cloud)
        cloud_before_wait(c->cloud);
}

static void core_abort(core_t *c);

static bool core_cloud_up(void *ctx)
{
    core_t *c = ctx;
    return c->cloud && cloud_connected(c->cloud);
}

static void core_job_report(void *ctx, const char *job, const char *status, json_t *details)
{
    core_t *c = ctx;
    if (c->cloud)
        cloud_job_report(c->cloud, job, status, details);
    else
        json_decref(details);
}

static void core_update_job(void *ctx, const char *job, json_t *document)
{
    core_t *c = ctx;
    if (c->update_jobs)
        update_jobs_run(c->update_jobs, job, document);
}

static bool core_functions_up(void *ctx)
{
    core_t *c = ctx;
    json_t *list = functions_status(c->functions);
    bool up = true;
    size_t i;
    json_t *f;
    json_array_foreach(list, i, f)
    {
        const char *lifecycle = json_string_value(json_object_get(f, "lifecycle"));
        const char *state = json_string_value(json_object_get(f, "state"));
        if (lifecycle && strcmp(lifecycle, "long-lived") == 0 &&
            (!state || strcmp(state, "running")))
            up = false;
    }
    json_decref(list);
    return up;
}

static void cmd_updates_off(void *ctx, json_t *request, admin_request_t *req)
{
    (void)ctx;
    (void)request;
    admin_reply_error(req, "updates are off: the config has no \"ota\" section (trusted_keys, "
                           "health_timeout_s; see README, Updating)");
}

static void core_restart(void *ctx, core_then_t then)
{
    core_t *c = ctx;
    (void)then; /* the updater keeps it: core_then */
    if (c->self_stop)
        c->self_stop(c->self_stop_ctx);
}

void core_on_self_stop(core_t *c, void (*stop)(void *ctx), void *ctx)
{
    c->self_stop = stop;
    c->self_stop_ctx = ctx;
}

core_then_t core_then(const core_t *c)
{
    return updater_then(c->updater);
}

sedge_err core_start(uv_loop_t *loop, config_t *cfg, core_t **out)
{
    core_t *c = calloc(1, sizeof *c);
    if (!c) {
        config_free(cfg);
        return SEDGE_ERR_NOMEM;
    }
    c->loop = loop;
    uv_prepare_init(loop, &c->before_wait);
    c->before_wait.data = c;
    uv_prepare_start(&c->before_wait, before_wait_cb);
    uv_unref((uv_handle_t *)&c->before_wait);
    uv_timer_init(loop, &c->trim_timer);
    c->trim_timer.data = c;
    uv_timer_start(&c->trim_timer, trim_cb, TRIM_INTERVAL_MS, TRIM_INTERVAL_MS);
    uv_unref((uv_handle_t *)&c->trim_timer);
    c->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    c->lock_fd = -1;
    log_set_level(c->cfg.log_level);
    sedge_err err;
    if (make_dirs(c->cfg.data_dir)) {
        LOGE("cannot create the data directory %s: %s", c->cfg.data_dir, strerror(errno));
        err = SEDGE_ERR_IO;
        goto fail;
    }
    /* Absolute, so that paths handed to functions and logs are too; and
     * traversable (not listable) by others, so that functions running as
     * other users reach the function socket — every file inside is 0600. */
    char *absolute = realpath(c->cfg.data_dir, NULL);
    if (absolute) {
        free(c->cfg.data_dir);
        c->cfg.data_dir = absolute;
    }
    chmod(c->cfg.data_dir, 0711);
    if ((err = lock_data_dir(c)))
        goto fail;
    if (c->cfg.embedded_default && (err = ensure_demo_ca(c)))
        goto fail;
    char *db = data_path(c, "sedge.db");
    store_options_t so = {.path = db,
                          .synchronous_full = c->cfg.store_sync_full,
                          .busy_timeout_ms = c->cfg.store_busy_timeout_ms};
    err = db ? store_open(loop, &so, &c->store) : SEDGE_ERR_NOMEM;
    free(db);
    if (err)
        goto fail;
    if ((err = broker_create(loop, &c->cfg.limits, c->store, &c->broker)) ||
        (err = broker_load(c->broker)) || (err = routing_create(c->broker, &c->routing)))
        goto fail;
    shadow_options_t sopts = {.store = c->store,
                              .max_doc_bytes = c->cfg.shadow_max_bytes,
                              .publish = shadow_publish,
                              .has_listeners = shadow_listeners,
                              .on_change = shadow_changed,
                              .ctx = c};
    if ((err = shadow_open(&sopts, &c->shadow)))
        goto fail;
    routing_attach(c->routing, ENDPOINT_SHADOW,
                   &(routing_service_t){"shadow", shadow_from_broker, c});
    if (c->cfg.cloud_enabled) {
        if (!c->cfg.cloud.client_id)
            c->cfg.cloud.client_id = strdup(c->cfg.thing_name);
        cloud_options_t co = {.loop = loop,
                              .store = c->store,
                              .cfg = &c->cfg.cloud,
                              .broker = c->broker,
                              .routing = c->routing,
                              .shadow = c->shadow,
                              .secret = secret_from_cloud,
                              .ctx = c};
        if ((err = cloud_start(&co, &c->cloud)))
            goto fail;
    }
    paths_t *paths = malloc(sizeof *paths);
    if (!paths) {
        err = SEDGE_ERR_NOMEM;
        goto fail;
    }
    paths_of_self(paths);
    functions_options_t fo = {.loop = loop,
                              .data_dir = c->cfg.data_dir,
                              .sandbox_program = paths->sandbox,
                              .python_sdk_dir = paths->python_sdk[0] ? paths->python_sdk : NULL,
                              .sdk_library = paths->sdk_library[0] ? paths->sdk_library : NULL,
                              .connectors_dir = paths->connectors,
                              .thing_name = c->cfg.thing_name,
                              .allow_root = c->cfg.functions_allow_root,
                              .max_frame_bytes = c->cfg.functions_max_frame_bytes,
                              .publish = function_publish,
                              .shadow = function_shadow,
                              .may_invoke = function_may_invoke,
                              .ctx = c};
    err = core_seal_init(&c->seal, c->cfg.data_dir, c->cfg.listeners, c->cfg.listener_count);
    fo.seal_key = (group_seal_key_t){core_seal_get, &c->seal};
    if (!err)
        err = functions_start(&fo, &c->functions);
    free(paths);
    if (err)
        goto fail;
    routing_attach(c->routing, ENDPOINT_FUNCTION,
                   &(routing_service_t){"functions", function_from_broker, c});
    routing_attach(c->routing, ENDPOINT_CONNECTOR,
                   &(routing_service_t){"connectors", connector_from_broker, c});
    deploy_options_t dopts = {.store = c->store,
                              .max_bytes = GROUP_MAX_BYTES_DEFAULT,
                              .apply = core_apply,
                              .check = check_group,
                              .ctx = c,
                              .seal_key = {core_seal_get, &c->seal}};
    if ((err = deploy_open(&dopts, &c->deploy)))
        goto fail;
    if (c->cloud && c->cfg.ota.enabled)
        cloud_on_update_job(c->cloud, core_update_job, c);
    if (c->cloud && (err = cloud_listen_for_jobs(c->cloud, c->deploy, c->cfg.thing_name)))
        goto fail;
    for (size_t i = 0; i < c->cfg.listener_count; i++)
        if ((err = broker_listen(c->broker, &c->cfg.listeners[i])))
            goto fail;
    char *admin_path = data_path(c, "admin.sock");
    err = admin_path ? admin_start(loop, admin_path, &c->admin) : SEDGE_ERR_NOMEM;
    free(admin_path);
    if (err)
        goto fail;
    if ((err = admin_register(c->admin, "status", cmd_status, c)) ||
        (err = admin_register(c->admin, "deploy", cmd_deploy, c)) ||
        (err = admin_register(c->admin, "deployments", cmd_deployments, c)) ||
        (err = admin_register(c->admin, "rollback", cmd_rollback, c)) ||
        (err = admin_register(c->admin, "shadow", cmd_shadow, c)) ||
        (err = admin_register(c->admin, "spool", cmd_spool, c)) ||
        (err = admin_register(c->admin, "functions", cmd_functions, c)) ||
        (err = admin_register(c->admin, "invoke", cmd_invoke, c)) ||
        (err = admin_register(c->admin, "logs", cmd_logs, c)) ||
        (err = admin_register(c->admin, "things", cmd_things, c)) ||
        (err = admin_register(c->admin, "console", cmd_console, c)))
        goto fail;
    if (c->cfg.ota.enabled) {
        updater_options_t uo = {.loop = loop,
                                .cfg = &c->cfg.ota,
                                .cloud_up = core_cloud_up,
                                .functions_up = core_functions_up,
                                .restart = core_restart,
                                .report = core_job_report,
                                .ctx = c};
        if ((err = updater_start(&uo, c->admin, &c->updater)) ||
            (err = update_jobs_start(loop, c->updater, core_job_report, c, &c->update_jobs)))
            goto fail;
    } else if ((err = admin_register(c->admin, "update", cmd_updates_off, c)) ||
               (err = admin_register(c->admin, "update_status", cmd_updates_off, c)) ||
               (err = admin_register(c->admin, "update_rollback", cmd_updates_off, c))) {
        goto fail;
    }
    /* The HTTP front last: the broker and the admin commands it serves
     * are up. */
    if ((err = front_start(c)))
        goto fail;
    LOGI("sedged %s ready (data directory %s)", SEDGE_VERSION, c->cfg.data_dir);
    if (c->cfg.embedded_default)
        print_welcome(c);
    *out = c;
    return SEDGE_OK;
fail:
    core_abort(c);
    return err;
}

static void before_wait_closed(uv_handle_t *h);

static void trim_closed(uv_handle_t *h)
{
    core_t *c = h->data;
    uv_close((uv_handle_t *)&c->before_wait, before_wait_closed);
}

static void before_wait_closed(uv_handle_t *h)
{
    core_t *c = h->data;
    /* The last writes are committed by store_close, once the loop has
     * finished the batch it may still be committing. */
    if (c->stop_done)
        c->stop_done(c->stop_ctx);
}

static void part_stopped(void *ctx)
{
    core_t *c = ctx;
    if (--c->stopping_parts > 0)
        return;
    uv_close((uv_handle_t *)&c->trim_timer, trim_closed);
}

static void broker_stopped(void *ctx)
{
    core_t *c = ctx;
    front_stop(c->front, part_stopped, c);
}

void core_stop(core_t *c, void (*done)(void *ctx), void *ctx)
{
    c->stop_done = done;
    c->stop_ctx = ctx;
    /* One more than the parts, released at the end, so that a part that
     * stops at once does not end the stop before the others have begun. */
    c->stopping_parts = 1;
    if (c->functions) {
        c->stopping_parts++;
        functions_stop(c->functions, part_stopped, c);
    }
    if (c->broker) {
        c->stopping_parts++;
        /* The HTTP front stops after the broker: MQTT over WebSockets
         * clients get their DISCONNECT before their WebSockets close. */
        broker_shutdown(c->broker, c->front ? broker_stopped : part_stopped, c);
    } else if (c->front) {
        c->stopping_parts++;
        front_stop(c->front, part_stopped, c);
    }
    if (c->admin) {
        c->stopping_parts++;
        admin_close(c->admin, part_stopped, c);
    }
    if (c->cloud) {
        c->stopping_parts++;
        cloud_stop(c->cloud, part_stopped, c);
    }
    if (c->updater) {
        c->stopping_parts++;
        updater_stop(c->updater, part_stopped, c);
    }
    if (c->update_jobs) {
        c->stopping_parts++;
        update_jobs_stop(c->update_jobs, part_stopped, c);
    }
    part_stopped(c);
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_listeners(const listener_config_t *x, size_t nx, const listener_config_t *y,
                           size_t ny)
{
    if (nx != ny)
        return false;
    for (size_t i = 0; i < nx; i++)
        if (x[i].type != y[i].type || !same_str(x[i].bind, y[i].bind) ||
            !same_str(x[i].ca_file, y[i].ca_file) || !same_str(x[i].cert_file, y[i].cert_file) ||
            !same_str(x[i].key_file, y[i].key_file) || !same_str(x[i].crl_file, y[i].crl_file))
            return false;
    return true;
}

static bool same_strs(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!same_str(a[i], b[i]))
            return false;
    return true;
}

/* Discovery's server: its addresses and files (a restart). */
static bool same_discovery_server(const discovery_config_t *x, const discovery_config_t *y)
{
    return x->enabled == y->enabled &&
           same_strs(x->binds, x->bind_count, y->binds, y->bind_count) &&
           same_str(x->ca_file, y->ca_file) && same_str(x->cert_file, y->cert_file) &&
           same_str(x->key_file, y->key_file) && same_str(x->crl_file, y->crl_file);
}

/* What discovery answers (read at each request: reloaded). */
static bool same_connectivity(const discovery_config_t *x, const discovery_config_t *y)
{
    if (x->connectivity_count != y->connectivity_count || !same_str(x->group_id, y->group_id) ||
        !same_str(x->core_arn, y->core_arn))
        return false;
    for (size_t i = 0; i < x->connectivity_count; i++) {
        const connectivity_t *a = &x->connectivity[i], *b = &y->connectivity[i];
        if (!same_str(a->id, b->id) || !same_str(a->host_address, b->host_address) ||
            a->port != b->port || !same_str(a->metadata, b->metadata))
            return false;
    }
    return true;
}

static bool same_http(const http_config_t *x, const http_config_t *y)
{
    return same_str(x->bind, y->bind) && same_str(x->tls_bind, y->tls_bind) &&
           same_str(x->ca_file, y->ca_file) && same_str(x->cert_file, y->cert_file) &&
           same_str(x->key_file, y->key_file) && same_str(x->crl_file, y->crl_file) &&
           same_strs(x->admins, x->admin_count, y->admins, y->admin_count) &&
           x->console == y->console && x->metrics == y->metrics &&
           x->max_connections == y->max_connections && x->timeout_s == y->timeout_s &&
           x->max_ws_frame_bytes == y->max_ws_frame_bytes;
}

static bool same_ota(const ota_settings_t *x, const ota_settings_t *y)
{
    return x->enabled == y->enabled && same_str(x->root, y->root) &&
           same_strs(x->trusted_keys, x->key_count, y->trusted_keys, y->key_count) &&
           x->health_timeout_s == y->health_timeout_s && x->tries == y->tries &&
           same_str(x->ca_file, y->ca_file) && x->max_bundle_bytes == y->max_bundle_bytes &&
           x->max_rate_bytes_s == y->max_rate_bytes_s && x->stall_timeout_s == y->stall_timeout_s;
}

static bool same_cloud(const config_t *a, const config_t *b)
{
    const uplink_config_t *x = &a->cloud, *y = &b->cloud;
    if (a->cloud_enabled != b->cloud_enabled)
        return false;
    if (!a->cloud_enabled)
        return true;
    /* The client id defaults to the thing name once started. */
    const char *yid = y->client_id ? y->client_id : b->thing_name;
    return same_str(x->endpoint, y->endpoint) && same_str(x->ca_file, y->ca_file) &&
           same_str(x->cert_file, y->cert_file) && same_str(x->key_file, y->key_file) &&
           same_str(x->client_id, yid) && x->protocol == y->protocol &&
           x->keepalive_s == y->keepalive_s && x->max_inflight == y->max_inflight &&
           x->reconnect_min_ms == y->reconnect_min_ms &&
           x->reconnect_max_ms == y->reconnect_max_ms && x->spool_storage == y->spool_storage &&
           x->spool_max_bytes == y->spool_max_bytes && x->spool_when_full == y->spool_when_full &&
           x->aws == y->aws && memcmp(&x->limits, &y->limits, sizeof x->limits) == 0;
}

static const char *level_name(log_level_t l)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    return l <= LOG_DEBUG ? names[l] : "?";
}

void core_reload(core_t *c, config_t *next)
{
    if (next) {
        /* What is read once at start: a change waits for a restart. */
        const struct {
            const char *what;
            bool same;
        } fixed[] = {
            {"data_dir", same_str(c->cfg.data_dir, next->data_dir)},
            {"core.thing_name", same_str(c->cfg.thing_name, next->thing_name)},
            {"listeners (addresses, types or file names)",
             same_listeners(c->cfg.listeners, c->cfg.listener_count, next->listeners,
                            next->listener_count) &&
                 same_listeners(c->cfg.ws_listeners, c->cfg.ws_listener_count, next->ws_listeners,
                                next->ws_listener_count)},
            {"http", same_http(&c->cfg.http, &next->http)},
            {"discovery (addresses or files)",
             same_discovery_server(&c->cfg.discovery, &next->discovery)},
            {"ota", same_ota(&c->cfg.ota, &next->ota)},
            {"store", c->cfg.store_sync_full == next->store_sync_full &&
                          c->cfg.store_busy_timeout_ms == next->store_busy_timeout_ms},
            {"shadow", c->cfg.shadow_max_bytes == next->shadow_max_bytes},
            {"functions", c->cfg.functions_allow_root == next->functions_allow_root &&
                              c->cfg.functions_max_frame_bytes == next->functions_max_frame_bytes},
            {"cloud", same_cloud(&c->cfg, next)},
        };
        for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
            if (!fixed[i].same)
                LOGW("SIGHUP: %s changed: not reloaded, it takes a restart", fixed[i].what);
        if (next->log_level != c->cfg.log_level) {
            LOGI("SIGHUP: log level %s (was %s)", level_name(next->log_level),
                 level_name(c->cfg.log_level));
            c->cfg.log_level = next->log_level;
            log_set_level(next->log_level);
        }
        /* Discovery reads its answer's parts at each request: the new ones
         * are taken over (and next frees the old). */
        if (c->cfg.discovery.enabled && next->discovery.enabled &&
            !same_connectivity(&c->cfg.discovery, &next->discovery)) {
            discovery_config_t *cur = &c->cfg.discovery, *nd = &next->discovery;
            connectivity_t list[CONFIG_MAX_CONNECTIVITY];
            memcpy(list, cur->connectivity, sizeof list);
            memcpy(cur->connectivity, nd->connectivity, sizeof list);
            memcpy(nd->connectivity, list, sizeof list);
            size_t count = cur->connectivity_count;
            cur->connectivity_count = nd->connectivity_count;
            nd->connectivity_count = count;
            char *group_id = cur->group_id, *core_arn = cur->core_arn;
            cur->group_id = nd->group_id;
            cur->core_arn = nd->core_arn;
            nd->group_id = group_id;
            nd->core_arn = core_arn;
            LOGI("SIGHUP: discovery answers with %zu connectivity entries%s",
                 cur->connectivity_count, cur->connectivity_count ? "" : " (the host's addresses)");
        }
        if (memcmp(&next->limits, &c->cfg.limits, sizeof next->limits) != 0) {
            c->cfg.limits = next->limits;
            broker_set_limits(c->broker, &next->limits);
            LOGI("SIGHUP: limits reloaded (a connection's own, such as max_inflight and "
                 "topic_alias_maximum, apply from its next CONNECT)");
        }
    }
    size_t tls = 0, cut = broker_reload_tls(c->broker, &tls);
    if (tls)
        LOGI("SIGHUP: %zu TLS listener(s) reloaded their certificate, key, CA and CRLs", tls);
    if (cut)
        LOGI("SIGHUP: disconnected %zu clients whose certificates the CRLs now revoke", cut);
}

static void aborted(void *ctx)
{
    *(bool *)ctx = true;
}

/* A start that failed half-way: stop the parts that started, let the loop
 * close their handles (a handle freed while still in the loop would be
 * used after free), then free everything. */
static void core_abort(core_t *c)
{
    bool done = false;
    core_stop(c, aborted, &done);
    while (!done && uv_run(c->loop, UV_RUN_ONCE))
        ;
    core_free(c);
}

void core_free(core_t *c)
{
    if (!c)
        return;
    if (c->store)
        store_close(c->store);
    c->store = NULL;
    front_free(c->front);
    broker_free(c->broker);
    routing_free(c->routing);
    deploy_free(c->deploy);
    shadow_free(c->shadow);
    functions_free(c->functions);
    cloud_free(c->cloud);
    update_jobs_free(c->update_jobs);
    updater_free(c->updater);
    if (c->admin)
        admin_free(c->admin);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    core_seal_free(&c->seal);
    config_free(&c->cfg);
    free(c);
}
