/*
 * config: the JSON configuration. Every problem in a file is collected
 * before the load fails, so one run shows them all. jansson gives no
 * positions for values, so the line of a problem is found by walking the
 * text to its path (jsonpos.h).
 */
#include "config.h"

#include "jsonpos.h"

#include <jansson.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *file;
    char *text; /* the file, for line numbers */
    char *err;
    size_t errlen, used;
    size_t count;
    char *dir; /* the file's directory, for relative paths */
} loader_t;

/* The line of `path` in the file; for a missing key, the line of the
 * nearest enclosing value that is there; failing that (a key spelled with
 * escapes), the first occurrence of `key`. */
static int line_of(const loader_t *l, const char *path, const char *key)
{
    if (!l->text)
        return 0;
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s", path);
    while (prefix[0]) {
        int line = jsonpos_line(l->text, strlen(l->text), prefix);
        if (line)
            return line;
        char *cut = prefix + strlen(prefix);
        while (cut > prefix && *cut != '.' && *cut != '[')
            cut--;
        *cut = '\0';
    }
    if (!key)
        return 0;
    char quoted[256];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *at = strstr(l->text, quoted);
    if (!at)
        return 0;
    int line = 1;
    for (const char *p = l->text; p < at; p++)
        line += *p == '\n';
    return line;
}

static void problem(loader_t *l, const char *path, const char *key, const char *fmt, ...)
    PRINTF_LIKE(4, 5);

static void problem(loader_t *l, const char *path, const char *key, const char *fmt, ...)
{
    l->count++;
    if (l->used >= l->errlen)
        return;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int line = line_of(l, path, key);
    int n;
    if (line)
        n = snprintf(l->err + l->used, l->errlen - l->used, "%s:%d: %s: %s\n", l->file, line, path,
                     what);
    else
        n = snprintf(l->err + l->used, l->errlen - l->used, "%s: %s: %s\n", l->file, path, what);
    if (n > 0)
        l->used += (size_t)n;
}

/* A path from the file, made relative to the file's directory. */
static char *resolve(const loader_t *l, const char *p)
{
    if (!l->dir || p[0] == '/')
        return strdup(p);
    size_t n = strlen(l->dir) + strlen(p) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", l->dir, p);
    return out;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", dir, name);
    return out;
}

static void check_keys(loader_t *l, json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool known = false;
        for (size_t i = 0; allowed[i]; i++)
            known |= strcmp(key, allowed[i]) == 0;
        if (!known) {
            char full[256];
            snprintf(full, sizeof full, "%s%s%s", path, path[0] ? "." : "", key);
            problem(l, full, key, "unknown key");
        }
    }
}

/* An integer from min to max at obj.key; false (a problem noted when the
 * key is there) otherwise. */
static bool get_uint_range(loader_t *l, json_t *obj, const char *key, const char *path,
                           uint64_t min, uint64_t max, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return false;
    char full[256];
    snprintf(full, sizeof full, "%s.%s", path, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max) {
        problem(l, full, key, "expected an integer from %llu to %llu", (unsigned long long)min,
                (unsigned long long)max);
        return false;
    }
    if ((uint64_t)json_integer_value(v) < min) {
        problem(l, full, key, "must be at least %llu", (unsigned long long)min);
        return false;
    }
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static bool get_uint(loader_t *l, json_t *obj, const char *key, const char *path, uint64_t max,
                     uint64_t *out)
{
    return get_uint_range(l, obj, key, path, 0, max, out);
}

static const char *get_string(loader_t *l, json_t *obj, const char *key, const char *path)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return NULL;
    if (!json_is_string(v) || !json_string_length(v)) {
        char full[256];
        snprintf(full, sizeof full, "%s%s%s", path, path[0] ? "." : "", key);
        problem(l, full, key, "expected a non-empty string");
        return NULL;
    }
    return json_string_value(v);
}

/* A listener's certificate, key or CA that is not there: say how to make
 * it (sedgectl ca init writes ca.pem, ca.key, core.pem, core.key). */
static void check_certificate_file(loader_t *l, const char *path, const char *key, const char *file)
{
    if (!file || access(file, F_OK) == 0)
        return;
    char *copy = strdup(file);
    const char *dir = copy ? dirname(copy) : ".";
    problem(l, path, key,
            "%s does not exist: create the group CA and the core's certificate with "
            "`sedgectl ca init --dir %s` (or name files that exist)",
            file, dir);
    free(copy);
}

static void load_limits(loader_t *l, json_t *o, broker_limits_t *lim)
{
    static const char *const keys[] = {"max_connections",
                                       "max_packet_bytes",
                                       "max_queued_messages",
                                       "max_inflight",
                                       "topic_alias_maximum",
                                       "max_keepalive",
                                       "max_session_expiry",
                                       "sys_interval_s",
                                       "max_output_bytes",
                                       "slow_reader_timeout_s",
                                       "connect_timeout_s",
                                       "max_connect_bytes",
                                       "max_buffered_bytes",
                                       "max_subscriptions",
                                       "max_filters_per_packet",
                                       "slow_reader_policy",
                                       NULL};
    if (!json_is_object(o)) {
        problem(l, "limits", "limits", "expected an object");
        return;
    }
    check_keys(l, o, "limits", keys);
    uint64_t v;
    if (get_uint(l, o, "max_connections", "limits", 10000000, &v))
        lim->max_connections = (uint32_t)v;
    if (get_uint_range(l, o, "max_packet_bytes", "limits", 64, 268435455, &v))
        lim->max_packet_bytes = (uint32_t)v;
    if (get_uint(l, o, "max_queued_messages", "limits", 100000000, &v))
        lim->max_queued_messages = (uint32_t)v;
    if (get_uint_range(l, o, "max_inflight", "limits", 1, 65535, &v))
        lim->max_inflight = (uint16_t)v;
    if (get_uint(l, o, "topic_alias_maximum", "limits", 65535, &v))
        lim->topic_alias_maximum = (uint16_t)v;
    if (get_uint(l, o, "max_keepalive", "limits", 65535, &v))
        lim->max_keepalive = (uint16_t)v;
    if (get_uint(l, o, "max_session_expiry", "limits", UINT32_MAX, &v))
        lim->max_session_expiry = (uint32_t)v;
    if (get_uint(l, o, "sys_interval_s", "limits", 86400, &v))
        lim->sys_interval_s = (uint32_t)v;
    if (get_uint(l, o, "max_output_bytes", "limits", (uint64_t)1 << 40, &v))
        lim->max_output_bytes = (size_t)v;
    if (get_uint(l, o, "slow_reader_timeout_s", "limits", 86400, &v))
        lim->slow_reader_timeout_s = (uint32_t)v;
    if (get_uint_range(l, o, "connect_timeout_s", "limits", 1, 3600, &v))
        lim->connect_timeout_s = (uint32_t)v;
    if (get_uint_range(l, o, "max_connect_bytes", "limits", 64, 268435455, &v))
        lim->max_connect_bytes = (uint32_t)v;
    if (get_uint_range(l, o, "max_buffered_bytes", "limits", 65536, (uint64_t)1 << 40, &v))
        lim->max_buffered_bytes = (size_t)v;
    if (get_uint_range(l, o, "max_subscriptions", "limits", 1, 100000000, &v))
        lim->max_subscriptions = (uint32_t)v;
    if (get_uint_range(l, o, "max_filters_per_packet", "limits", 1, 65535, &v))
        lim->max_filters_per_packet = (uint32_t)v;
    const char *policy = get_string(l, o, "slow_reader_policy", "limits");
    if (policy && strcmp(policy, "disconnect") == 0)
        lim->slow_reader_drop = false;
    else if (policy && strcmp(policy, "drop_qos0") == 0)
        lim->slow_reader_drop = true;
    else if (policy)
        problem(l, "limits.slow_reader_policy", "slow_reader_policy",
                "'%s' is not disconnect or drop_qos0", policy);
}

static void load_listener(loader_t *l, json_t *o, size_t i, config_t *c)
{
    static const char *const keys[] = {"type",     "bind",     "ca_file", "cert_file",
                                       "key_file", "crl_file", NULL};
    char path[64];
    snprintf(path, sizeof path, "listeners[%zu]", i);
    if (!json_is_object(o)) {
        problem(l, path, NULL, "expected an object");
        return;
    }
    check_keys(l, o, path, keys);
    const char *type = get_string(l, o, "type", path);
    const char *bind = get_string(l, o, "bind", path);
    bool web = type && (strcmp(type, "ws") == 0 || strcmp(type, "wss") == 0);
    if (web && c->ws_listener_count == CONFIG_MAX_LISTENERS)
        web = false;
    listener_config_t *lc =
        web ? &c->ws_listeners[c->ws_listener_count] : &c->listeners[c->listener_count];
    char full[96];
    snprintf(full, sizeof full, "%s.type", path);
    if (!type) {
        if (!json_object_get(o, "type"))
            problem(l, full, NULL, "missing (tcp, tls, unix, ws or wss)");
        return;
    }
    if (strcmp(type, "tcp") == 0 || strcmp(type, "ws") == 0)
        lc->type = LISTENER_TCP;
    else if (strcmp(type, "tls") == 0 || strcmp(type, "wss") == 0)
        lc->type = LISTENER_TLS;
    else if (strcmp(type, "unix") == 0)
        lc->type = LISTENER_UNIX;
    else {
        problem(l, full, "type", "'%s' is not tcp, tls, unix, ws or wss", type);
        return;
    }
    snprintf(full, sizeof full, "%s.bind", path);
    if (!bind) {
        if (!json_object_get(o, "bind"))
            problem(l, full, NULL, "missing (host:port, or a path for unix)");
        return;
    }
    lc->bind = lc->type == LISTENER_UNIX ? resolve(l, bind) : strdup(bind);
    char why[300];
    if (lc->bind && broker_check_bind(lc->type, lc->bind, why, sizeof why))
        problem(l, full, "bind", "%s", why);
    if (lc->type == LISTENER_TLS) {
        const char *names[] = {"ca_file", "cert_file", "key_file"};
        const char **dest[] = {&lc->ca_file, &lc->cert_file, &lc->key_file};
        for (size_t k = 0; k < 3; k++) {
            const char *v = get_string(l, o, names[k], path);
            snprintf(full, sizeof full, "%s.%s", path, names[k]);
            if (v) {
                *dest[k] = resolve(l, v);
                check_certificate_file(l, full, names[k], *dest[k]);
            } else if (!json_object_get(o, names[k])) {
                problem(l, full, NULL, "missing (a tls or wss listener needs it)");
            }
        }
        const char *crl = get_string(l, o, "crl_file", path);
        if (crl)
            lc->crl_file = resolve(l, crl);
    } else if (json_object_get(o, "crl_file")) {
        snprintf(full, sizeof full, "%s.crl_file", path);
        problem(l, full, "crl_file", "only a tls or wss listener has CRLs");
    }
    if (web)
        c->ws_listener_count++;
    else
        c->listener_count++;
}

static void load_spool(loader_t *l, json_t *o, uplink_config_t *u)
{
    static const char *const keys[] = {"storage", "max_bytes", "when_full", NULL};
    if (!json_is_object(o)) {
        problem(l, "cloud.spool", "spool", "expected an object");
        return;
    }
    check_keys(l, o, "cloud.spool", keys);
    const char *storage = get_string(l, o, "storage", "cloud.spool");
    if (storage && strcmp(storage, "disk") == 0)
        u->spool_storage = SPOOL_DISK;
    else if (storage && strcmp(storage, "memory") == 0)
        u->spool_storage = SPOOL_MEMORY;
    else if (storage)
        problem(l, "cloud.spool.storage", "storage", "'%s' is not disk or memory", storage);
    uint64_t v;
    if (get_uint(l, o, "max_bytes", "cloud.spool", (uint64_t)1 << 40, &v)) {
        if (v < 1024)
            problem(l, "cloud.spool.max_bytes", "max_bytes", "must be at least 1024");
        else
            u->spool_max_bytes = v;
    }
    const char *full = get_string(l, o, "when_full", "cloud.spool");
    if (full && strcmp(full, "drop_oldest") == 0)
        u->spool_when_full = SPOOL_DROP_OLDEST;
    else if (full && strcmp(full, "reject_new") == 0)
        u->spool_when_full = SPOOL_REJECT_NEW;
    else if (full)
        problem(l, "cloud.spool.when_full", "when_full", "'%s' is not drop_oldest or reject_new",
                full);
}

/* cloud.limits: each key set replaces the profile's figure. */
static void load_cloud_limits(loader_t *l, json_t *o, uplink_limits_t *lim)
{
    static const struct {
        const char *key;
        size_t offset;
        uint32_t min;
    } fields[] = {
        {"max_topic_bytes", offsetof(uplink_limits_t, max_topic_bytes), 0},
        {"max_topic_slashes", offsetof(uplink_limits_t, max_topic_slashes), 0},
        {"max_payload_bytes", offsetof(uplink_limits_t, max_payload_bytes), 0},
        {"max_filters_per_subscribe", offsetof(uplink_limits_t, max_filters_per_subscribe), 1},
        {"publishes_per_s", offsetof(uplink_limits_t, publishes_per_s), 0},
        {"bytes_per_s", offsetof(uplink_limits_t, bytes_per_s), 0},
        {"shadow_requests_per_s", offsetof(uplink_limits_t, shadow_requests_per_s), 0},
        {"shadow_inflight", offsetof(uplink_limits_t, shadow_inflight), 1},
        {"ack_timeout_ms", offsetof(uplink_limits_t, ack_timeout_ms), 0},
        {"dead_letter_after", offsetof(uplink_limits_t, dead_letter_after), 0},
    };
    const char *keys[ARRAY_LEN(fields) + 1];
    for (size_t i = 0; i < ARRAY_LEN(fields); i++)
        keys[i] = fields[i].key;
    keys[ARRAY_LEN(fields)] = NULL;
    if (!json_is_object(o)) {
        problem(l, "cloud.limits", "limits", "expected an object");
        return;
    }
    check_keys(l, o, "cloud.limits", keys);
    for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
        uint64_t v;
        if (!get_uint(l, o, fields[i].key, "cloud.limits", UINT32_MAX, &v))
            continue;
        if (v < fields[i].min) {
            char full[96];
            snprintf(full, sizeof full, "cloud.limits.%s", fields[i].key);
            problem(l, full, fields[i].key, "must be at least %u", fields[i].min);
            continue;
        }
        memcpy((char *)lim + fields[i].offset, &(uint32_t){(uint32_t)v}, sizeof(uint32_t));
    }
}

static void load_cloud(loader_t *l, json_t *o, config_t *c)
{
    static const char *const keys[] = {"endpoint",
                                       "ca_file",
                                       "cert_file",
                                       "key_file",
                                       "client_id",
                                       "protocol",
                                       "keepalive_s",
                                       "max_inflight",
                                       "reconnect_min_ms",
                                       "reconnect_max_ms",
                                       "spool",
                                       "profile",
                                       "limits",
                                       NULL};
    if (!json_is_object(o)) {
        problem(l, "cloud", "cloud", "expected an object");
        return;
    }
    check_keys(l, o, "cloud", keys);
    uplink_config_t *u = &c->cloud;
    const char *endpoint = get_string(l, o, "endpoint", "cloud");
    if (!endpoint) {
        if (!json_object_get(o, "endpoint"))
            problem(l, "cloud.endpoint", NULL, "missing (host:port of the cloud broker)");
    } else if (!strrchr(endpoint, ':')) {
        problem(l, "cloud.endpoint", "endpoint", "'%s' is not host:port", endpoint);
    } else {
        u->endpoint = strdup(endpoint);
    }
    const char *files[] = {"ca_file", "cert_file", "key_file"};
    char **dest[] = {&u->ca_file, &u->cert_file, &u->key_file};
    for (size_t i = 0; i < 3; i++) {
        const char *v = get_string(l, o, files[i], "cloud");
        if (v)
            *dest[i] = resolve(l, v);
    }
    if ((u->cert_file == NULL) != (u->key_file == NULL))
        problem(l, "cloud", "cert_file", "cert_file and key_file go together");
    const char *client_id = get_string(l, o, "client_id", "cloud");
    if (client_id)
        u->client_id = strdup(client_id);
    const char *protocol = get_string(l, o, "protocol", "cloud");
    if (protocol && strcmp(protocol, "3.1.1") == 0)
        u->protocol = 4;
    else if (protocol && strcmp(protocol, "5") == 0)
        u->protocol = 5;
    else if (protocol)
        problem(l, "cloud.protocol", "protocol", "'%s' is not 3.1.1 or 5", protocol);
    uint64_t v;
    if (get_uint(l, o, "keepalive_s", "cloud", 65535, &v))
        u->keepalive_s = (uint16_t)v;
    if (get_uint(l, o, "max_inflight", "cloud", 65000, &v))
        u->max_inflight = (uint16_t)(v ? v : 1);
    if (get_uint(l, o, "reconnect_min_ms", "cloud", 3600000, &v))
        u->reconnect_min_ms = (uint32_t)(v ? v : 1);
    if (get_uint(l, o, "reconnect_max_ms", "cloud", 86400000, &v))
        u->reconnect_max_ms = (uint32_t)v;
    if (u->reconnect_max_ms < u->reconnect_min_ms)
        u->reconnect_max_ms = u->reconnect_min_ms;
    json_t *spool = json_object_get(o, "spool");
    if (spool)
        load_spool(l, spool, u);
    /* The cloud's limits: AWS IoT Core's when the endpoint is AWS's or
     * the profile says so, then what "limits" sets. */
    const char *profile = get_string(l, o, "profile", "cloud");
    u->aws = uplink_endpoint_is_aws(u->endpoint);
    if (profile && strcmp(profile, "aws-iot") == 0)
        u->aws = true;
    else if (profile && strcmp(profile, "mqtt") == 0)
        u->aws = false;
    else if (profile)
        problem(l, "cloud.profile", "profile",
                "'%s' is not aws-iot (AWS IoT Core's limits) or mqtt (a plain broker's)", profile);
    uplink_limits_default(u->aws, &u->limits);
    json_t *limits = json_object_get(o, "limits");
    if (limits)
        load_cloud_limits(l, limits, &u->limits);
    c->cloud_enabled = true;
}

static void load_ota(loader_t *l, json_t *o, config_t *c)
{
    static const char *const keys[] = {
        "root",    "trusted_keys",     "health_timeout_s", "tries",
        "ca_file", "max_bundle_bytes", "max_rate_bytes_s", "stall_timeout_s",
        NULL};
    if (!json_is_object(o)) {
        problem(l, "ota", "ota", "expected an object");
        return;
    }
    check_keys(l, o, "ota", keys);
    ota_settings_t *ota = &c->ota;
    ota->enabled = true;
    const char *root = get_string(l, o, "root", "ota");
    if (root && !(ota->root = resolve(l, root)))
        l->count++;
    json_t *tk = json_object_get(o, "trusted_keys");
    if (!json_is_array(tk) || json_array_size(tk) == 0 || json_array_size(tk) > 16) {
        problem(l, "ota.trusted_keys", tk ? "trusted_keys" : "ota",
                "expected 1 to 16 paths of Ed25519 public keys (PEM)");
        return;
    }
    if (!(ota->trusted_keys = calloc(json_array_size(tk), sizeof *ota->trusted_keys))) {
        l->count++;
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(tk, i, v)
    {
        if (!json_is_string(v))
            problem(l, "ota.trusted_keys", "trusted_keys", "[%zu]: expected a path", i);
        else if ((ota->trusted_keys[ota->key_count] = resolve(l, json_string_value(v))))
            ota->key_count++;
    }
    uint64_t n;
    if (get_uint_range(l, o, "health_timeout_s", "ota", 1, 3600, &n))
        ota->health_timeout_s = (uint32_t)n;
    if (get_uint_range(l, o, "tries", "ota", 1, 10, &n))
        ota->tries = (uint32_t)n;
    if (get_uint_range(l, o, "max_bundle_bytes", "ota", 1 << 20, 1ull << 32, &n))
        ota->max_bundle_bytes = n;
    if (get_uint(l, o, "max_rate_bytes_s", "ota", 1ull << 40, &n))
        ota->max_rate_bytes_s = n;
    if (get_uint_range(l, o, "stall_timeout_s", "ota", 1, 3600, &n))
        ota->stall_timeout_s = (uint32_t)n;
    const char *ca = get_string(l, o, "ca_file", "ota");
    if (ca && !(ota->ca_file = resolve(l, ca)))
        l->count++;
}

/* A bind, or an array of them. */
static void load_binds(loader_t *l, json_t *v, const char *path, char **out, size_t *count)
{
    if (json_is_string(v)) {
        out[(*count)++] = strdup(json_string_value(v));
        return;
    }
    if (!json_is_array(v) || !json_array_size(v) || json_array_size(v) > CONFIG_MAX_BINDS) {
        problem(l, path, "bind", "expected \"host:port\" or an array of 1 to %d of them",
                CONFIG_MAX_BINDS);
        return;
    }
    size_t i;
    json_t *b;
    json_array_foreach(v, i, b)
    {
        if (!json_is_string(b) || !strrchr(json_string_value(b), ':'))
            problem(l, path, "bind", "element %zu is not \"host:port\"", i);
        else
            out[(*count)++] = strdup(json_string_value(b));
    }
}

static void load_files(loader_t *l, json_t *o, const char *path, char **ca, char **cert, char **key,
                       char **crl)
{
    const char *names[] = {"ca_file", "cert_file", "key_file", "crl_file"};
    char **dest[] = {ca, cert, key, crl};
    for (size_t i = 0; i < 4; i++) {
        const char *v = get_string(l, o, names[i], path);
        if (v)
            *dest[i] = resolve(l, v);
    }
}

static void load_discovery(loader_t *l, json_t *o, config_t *c)
{
    static const char *const keys[] = {"bind",     "ca_file",  "cert_file",
                                       "key_file", "crl_file", "connectivity",
                                       "group_id", "core_arn", NULL};
    discovery_config_t *d = &c->discovery;
    if (!json_is_object(o)) {
        problem(l, "discovery", "discovery", "expected an object");
        return;
    }
    check_keys(l, o, "discovery", keys);
    d->enabled = true;
    json_t *bind = json_object_get(o, "bind");
    if (bind)
        load_binds(l, bind, "discovery.bind", d->binds, &d->bind_count);
    else
        d->binds[d->bind_count++] = strdup("0.0.0.0:8443");
    load_files(l, o, "discovery", &d->ca_file, &d->cert_file, &d->key_file, &d->crl_file);
    const char *group_id = get_string(l, o, "group_id", "discovery");
    if (group_id)
        d->group_id = strdup(group_id);
    const char *arn = get_string(l, o, "core_arn", "discovery");
    if (arn)
        d->core_arn = strdup(arn);
    json_t *conn = json_object_get(o, "connectivity");
    if (!conn)
        return;
    if (!json_is_array(conn) || json_array_size(conn) > CONFIG_MAX_CONNECTIVITY) {
        problem(l, "discovery.connectivity", "connectivity",
                "expected an array of at most %d {\"HostAddress\", \"PortNumber\"}",
                CONFIG_MAX_CONNECTIVITY);
        return;
    }
    static const char *const ckeys[] = {"Id", "HostAddress", "PortNumber", "Metadata", NULL};
    size_t i;
    json_t *e;
    json_array_foreach(conn, i, e)
    {
        char path[64];
        snprintf(path, sizeof path, "discovery.connectivity[%zu]", i);
        if (!json_is_object(e)) {
            problem(l, path, NULL, "expected an object");
            continue;
        }
        check_keys(l, e, path, ckeys);
        const char *host = get_string(l, e, "HostAddress", path);
        uint64_t port = 0;
        bool has_port = get_uint_range(l, e, "PortNumber", path, 1, 65535, &port);
        if (!host || !has_port) {
            if (!json_object_get(e, "HostAddress") || !json_object_get(e, "PortNumber"))
                problem(l, path, NULL, "needs HostAddress and PortNumber");
            continue;
        }
        connectivity_t *ct = &d->connectivity[d->connectivity_count++];
        const char *id = get_string(l, e, "Id", path);
        const char *meta = get_string(l, e, "Metadata", path);
        char auto_id[300];
        snprintf(auto_id, sizeof auto_id, "%s_%zu", host, i);
        ct->id = strdup(id ? id : auto_id);
        ct->host_address = strdup(host);
        ct->port = (uint16_t)port;
        ct->metadata = strdup(meta ? meta : "");
    }
}

static void load_http(loader_t *l, json_t *o, config_t *c)
{
    static const char *const keys[] = {
        "bind",   "tls_bind", "ca_file", "cert_file",       "key_file",  "crl_file",
        "admins", "console",  "metrics", "max_connections", "timeout_s", "max_ws_frame_bytes", "login_ttl_s",
        NULL};
    http_config_t *h = &c->http;
    if (!json_is_object(o)) {
        problem(l, "http", "http", "expected an object");
        return;
    }
    check_keys(l, o, "http", keys);
    free(h->bind);
    h->bind = NULL;
    const char *bind = get_string(l, o, "bind", "http");
    const char *tls_bind = get_string(l, o, "tls_bind", "http");
    if (bind)
        h->bind = strdup(bind);
    if (tls_bind)
        h->tls_bind = strdup(tls_bind);
    load_files(l, o, "http", &h->ca_file, &h->cert_file, &h->key_file, &h->crl_file);
    json_t *admins = json_object_get(o, "admins");
    if (admins) {
        size_t i;
        json_t *a;
        if (!json_is_array(admins) || json_array_size(admins) > CONFIG_MAX_ADMINS)
            problem(l, "http.admins", "admins", "expected an array of at most %d identities",
                    CONFIG_MAX_ADMINS);
        else
            json_array_foreach(admins, i, a)
            {
                if (!json_is_string(a) || !json_string_length(a))
                    problem(l, "http.admins", "admins", "element %zu is not a non-empty string", i);
                else
                    h->admins[h->admin_count++] = strdup(json_string_value(a));
            }
    }
    const char *flags[] = {"console", "metrics"};
    bool *dest[] = {&h->console, &h->metrics};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(o, flags[i]);
        if (v && !json_is_boolean(v)) {
            char full[64];
            snprintf(full, sizeof full, "http.%s", flags[i]);
            problem(l, full, flags[i], "expected true or false");
        } else if (v) {
            *dest[i] = json_is_true(v);
        }
    }
    uint64_t v;
    if (get_uint_range(l, o, "max_connections", "http", 1, 1000000, &v))
        h->max_connections = (uint32_t)v;
    if (get_uint_range(l, o, "timeout_s", "http", 1, 3600, &v))
        h->timeout_s = (uint32_t)v;
    if (get_uint_range(l, o, "max_ws_frame_bytes", "http", 1024, 268435461, &v))
        h->max_ws_frame_bytes = (uint32_t)v;
    if (get_uint_range(l, o, "login_ttl_s", "http", 1, 3600, &v))
        h->login_ttl_s = (uint32_t)v;
}

static void load_root(loader_t *l, json_t *root, config_t *c)
{
    static const char *const keys[] = {
        "data_dir", "core",      "listeners", "limits", "store", "shadow", "functions",
        "cloud",    "log_level", "discovery", "http",   "ota",   NULL};
    check_keys(l, root, "", keys);
    const char *data_dir = get_string(l, root, "data_dir", "");
    free(c->data_dir);
    c->data_dir = resolve(l, data_dir ? data_dir : "sedge-data");
    json_t *core = json_object_get(root, "core");
    if (core) {
        static const char *const core_keys[] = {"thing_name", NULL};
        if (!json_is_object(core))
            problem(l, "core", "core", "expected an object");
        else {
            check_keys(l, core, "core", core_keys);
            const char *name = get_string(l, core, "thing_name", "core");
            if (name) {
                free(c->thing_name);
                c->thing_name = strdup(name);
            }
        }
    }
    json_t *listeners = json_object_get(root, "listeners");
    if (listeners) {
        if (!json_is_array(listeners) || json_array_size(listeners) == 0)
            problem(l, "listeners", "listeners", "expected a non-empty array");
        else if (json_array_size(listeners) > CONFIG_MAX_LISTENERS)
            problem(l, "listeners", "listeners", "at most %d listeners", CONFIG_MAX_LISTENERS);
        else {
            size_t i;
            json_t *o;
            json_array_foreach(listeners, i, o) load_listener(l, o, i, c);
        }
    } else {
        problem(l, "listeners", NULL, "missing: at least one listener is needed");
    }
    json_t *limits = json_object_get(root, "limits");
    if (limits)
        load_limits(l, limits, &c->limits);
    json_t *store = json_object_get(root, "store");
    if (store) {
        static const char *const store_keys[] = {"synchronous", "busy_timeout_ms", NULL};
        if (!json_is_object(store))
            problem(l, "store", "store", "expected an object");
        else {
            check_keys(l, store, "store", store_keys);
            const char *sync = get_string(l, store, "synchronous", "store");
            if (sync && strcmp(sync, "full") == 0)
                c->store_sync_full = true;
            else if (sync && strcmp(sync, "normal") == 0)
                c->store_sync_full = false;
            else if (sync)
                problem(l, "store.synchronous", "synchronous",
                        "'%s' is not full (survives power loss) or normal (survives crashes)",
                        sync);
            uint64_t v;
            if (get_uint_range(l, store, "busy_timeout_ms", "store", 1, 3600000, &v))
                c->store_busy_timeout_ms = (uint32_t)v;
        }
    }
    json_t *shadow = json_object_get(root, "shadow");
    if (shadow) {
        static const char *const shadow_keys[] = {"max_document_bytes", NULL};
        if (!json_is_object(shadow))
            problem(l, "shadow", "shadow", "expected an object");
        else {
            check_keys(l, shadow, "shadow", shadow_keys);
            uint64_t v;
            if (get_uint_range(l, shadow, "max_document_bytes", "shadow", 64, 30720, &v))
                c->shadow_max_bytes = (size_t)v;
        }
    }
    json_t *functions = json_object_get(root, "functions");
    if (functions) {
        static const char *const fn_keys[] = {"allow_root", "max_frame_bytes", NULL};
        if (!json_is_object(functions))
            problem(l, "functions", "functions", "expected an object");
        else {
            check_keys(l, functions, "functions", fn_keys);
            json_t *v = json_object_get(functions, "allow_root");
            if (v && !json_is_boolean(v))
                problem(l, "functions.allow_root", "allow_root", "expected true or false");
            c->functions_allow_root = json_is_true(v);
            uint64_t max;
            if (get_uint(l, functions, "max_frame_bytes", "functions", 1u << 30, &max)) {
                if (max < 65536)
                    problem(l, "functions.max_frame_bytes", "max_frame_bytes",
                            "must be at least 65536");
                else
                    c->functions_max_frame_bytes = (size_t)max;
            }
        }
    }
    const char *level = get_string(l, root, "log_level", "");
    if (level) {
        static const char *const names[] = {"error", "warn", "info", "debug"};
        bool found = false;
        for (int i = 0; i < 4; i++) {
            if (strcmp(level, names[i]) == 0) {
                c->log_level = (log_level_t)i;
                found = true;
            }
        }
        if (!found)
            problem(l, "log_level", "log_level", "'%s' is not error, warn, info or debug", level);
    }
    json_t *cloud = json_object_get(root, "cloud");
    if (cloud)
        load_cloud(l, cloud, c);
    json_t *discovery = json_object_get(root, "discovery");
    if (discovery)
        load_discovery(l, discovery, c);
    json_t *http = json_object_get(root, "http");
    if (http)
        load_http(l, http, c);
    if (c->listener_count == 0 && c->ws_listener_count && !l->count)
        problem(l, "listeners", "listeners", "at least one tcp, tls or unix listener is needed");
    json_t *ota = json_object_get(root, "ota");
    if (ota)
        load_ota(l, ota, c);
    if (c->ota.enabled && !c->ota.root && c->data_dir &&
        !(c->ota.root = join_path(c->data_dir, "ota")))
        l->count++;
}

static sedge_err base_config(config_t *out)
{
    memset(out, 0, sizeof *out);
    broker_limits_default(&out->limits);
    out->thing_name = strdup("edge-core");
    out->data_dir = strdup("sedge-data");
    out->store_sync_full = true;
    out->shadow_max_bytes = 8192;
    out->functions_max_frame_bytes = 16u << 20;
    out->cloud = (uplink_config_t){
        .protocol = 4,
        .keepalive_s = 60,
        .max_inflight = 100,
        .reconnect_min_ms = 1000,
        .reconnect_max_ms = 120000,
        .spool_storage = SPOOL_DISK,
        .spool_max_bytes = 104857600,
        .spool_when_full = SPOOL_DROP_OLDEST,
    };
    out->ota.health_timeout_s = 60;
    out->ota.tries = 3;
    out->ota.max_bundle_bytes = 512ull << 20;
    out->ota.stall_timeout_s = 60;
    out->log_level = LOG_INFO;
    out->http = (http_config_t){.console = true,
                                .metrics = true,
                                .max_connections = 256,
                                .timeout_s = 10,
                                .max_ws_frame_bytes = 1u << 20,
                                .login_ttl_s = CONSOLE_LOGIN_TTL_S};
    return out->thing_name && out->data_dir ? SEDGE_OK : SEDGE_ERR_NOMEM;
}

sedge_err config_default(config_t *out)
{
    sedge_err err = base_config(out);
    if (err)
        return err;
    out->embedded_default = true;
    out->listeners[0] = (listener_config_t){.type = LISTENER_TCP, .bind = strdup("127.0.0.1:1883")};
    out->listeners[1] = (listener_config_t){
        .type = LISTENER_TLS,
        .bind = strdup("0.0.0.0:8883"),
        .ca_file = join_path(out->data_dir, "ca.pem"),
        .cert_file = join_path(out->data_dir, "core.pem"),
        .key_file = join_path(out->data_dir, "core.key"),
    };
    out->listener_count = 2;
    /* The console and /metrics on loopback. */
    out->http.bind = strdup("127.0.0.1:8080");
    return SEDGE_OK;
}

sedge_err config_load(const char *path, config_t *out, char *err, size_t errlen)
{
    err[0] = '\0';
    sedge_err rc = base_config(out);
    if (rc)
        return rc;
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: %s\n", path, jerr.line, jerr.column, jerr.text);
        config_free(out);
        return SEDGE_ERR_INVALID;
    }
    loader_t l = {.file = path, .err = err, .errlen = errlen};
    char *copy = strdup(path);
    l.dir = copy ? strdup(dirname(copy)) : NULL;
    free(copy);
    FILE *f = fopen(path, "r");
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        if (n > 0 && (l.text = malloc((size_t)n + 1))) {
            size_t got = fread(l.text, 1, (size_t)n, f);
            l.text[got] = '\0';
        }
        fclose(f);
    }
    if (!json_is_object(root))
        problem(&l, "(top level)", NULL, "expected a JSON object");
    else
        load_root(&l, root, out);
    json_decref(root);
    free(l.text);
    free(l.dir);
    if (l.count) {
        config_free(out);
        return SEDGE_ERR_INVALID;
    }
    return SEDGE_OK;
}

void config_free(config_t *c)
{
    free(c->data_dir);
    free(c->thing_name);
    free(c->cloud.endpoint);
    free(c->cloud.ca_file);
    free(c->cloud.cert_file);
    free(c->cloud.key_file);
    free(c->cloud.client_id);
    for (size_t i = 0; i < c->listener_count + c->ws_listener_count; i++) {
        listener_config_t *lc =
            i < c->listener_count ? &c->listeners[i] : &c->ws_listeners[i - c->listener_count];
        free((char *)lc->bind);
        free((char *)lc->ca_file);
        free((char *)lc->cert_file);
        free((char *)lc->key_file);
        free((char *)lc->crl_file);
    }
    free(c->ota.root);
    free(c->ota.ca_file);
    for (size_t i = 0; i < c->ota.key_count; i++)
        free(c->ota.trusted_keys[i]);
    free(c->ota.trusted_keys);
    discovery_config_t *d = &c->discovery;
    for (size_t i = 0; i < d->bind_count; i++)
        free(d->binds[i]);
    for (size_t i = 0; i < d->connectivity_count; i++) {
        free(d->connectivity[i].id);
        free(d->connectivity[i].host_address);
        free(d->connectivity[i].metadata);
    }
    free(d->ca_file);
    free(d->cert_file);
    free(d->key_file);
    free(d->crl_file);
    free(d->group_id);
    free(d->core_arn);
    http_config_t *h = &c->http;
    free(h->bind);
    free(h->tls_bind);
    free(h->ca_file);
    free(h->cert_file);
    free(h->key_file);
    free(h->crl_file);
    for (size_t i = 0; i < h->admin_count; i++)
        free(h->admins[i]);
    memset(c, 0, sizeof *c);
}
