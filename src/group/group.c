/*
 * group: parsing and validating the group document.
 *
 * The validator walks the whole document and records every problem with
 * its JSON path before deciding; a document with any problem is refused
 * whole. Names are checked before routes, so a route can name an unknown
 * thing or function precisely.
 */
#include "group.h"

#include "internal.h"
#include "mqtt/mqtt.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void problem(check_t *c, const char *fmt, ...)
{
    c->count++;
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
    /* Keys and values from the document are in the line: a newline in one
     * must not start a problem of its own. */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    line[len++] = '\n';
    if (c->errors && buf_append(c->errors, line, len) == SEDGE_OK)
        return;
}

bool group_valid_thing_name(const char *s, size_t len)
{
    if (len == 0 || len > GROUP_MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == ':' || ch == '.';
        if (!ok)
            return false;
    }
    return true;
}

bool valid_function_name(const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

void check_keys(check_t *c, json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool known = false;
        for (size_t i = 0; allowed[i]; i++)
            known |= strcmp(key, allowed[i]) == 0;
        if (!known)
            problem(c, "%s%s%.*s%s: unknown key", path, path[0] ? "." : "", KEY_SHOWN, key,
                    strlen(key) > KEY_SHOWN ? "..." : "");
    }
}

bool check_element(check_t *c, json_t *element, const char *list, size_t i,
                   const char *const *allowed, char *path, size_t path_len)
{
    snprintf(path, path_len, "%s[%zu]", list, i);
    if (!json_is_object(element)) {
        problem(c, "%s: expected an object", path);
        return false;
    }
    if (allowed)
        check_keys(c, element, path, allowed);
    return true;
}

const char *string_at(check_t *c, json_t *obj, const char *key, const char *path,
                             bool required)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            problem(c, "%s.%s: missing", path, key);
        return NULL;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        problem(c, "%s.%s: expected a non-empty string", path, key);
        return NULL;
    }
    return json_string_value(v);
}

static bool name_in(json_t *names, const char *name)
{
    return json_object_get(names, name) != NULL;
}

/* Collect names of a section's entries into `names` (an object used as a
 * set), reporting duplicates and invalid names. */
static void collect_names(check_t *c, json_t *section, const char *what, json_t *names,
                          bool (*valid)(const char *, size_t))
{
    size_t i;
    json_t *e;
    json_array_foreach(section, i, e)
    {
        if (!json_is_object(e))
            continue;
        json_t *nv = json_object_get(e, "name");
        if (!json_is_string(nv))
            continue;
        const char *name = json_string_value(nv);
        if (!valid(name, json_string_length(nv)))
            problem(c, "%s[%zu].name: invalid name \"%s\"", what, i, name);
        else if (name_in(names, name))
            problem(c, "%s[%zu].name: duplicate name \"%s\"", what, i, name);
        else
            json_object_set_new(names, name, json_true());
    }
}

static bool parse_endpoint(check_t *c, const char *text, const char *path, json_t *things,
                           json_t *functions, json_t *connectors, endpoint_t *out)
{
    memset(out, 0, sizeof *out);
    const char *name = NULL;
    json_t *known = NULL;
    const char *kind_word = NULL;
    if (strcmp(text, "cloud") == 0) {
        out->kind = ENDPOINT_CLOUD;
    } else if (strcmp(text, "shadow") == 0) {
        out->kind = ENDPOINT_SHADOW;
    } else if (strcmp(text, "thing:*") == 0) {
        out->kind = ENDPOINT_ANY_THING;
    } else if (strncmp(text, "thing:", 6) == 0) {
        out->kind = ENDPOINT_THING, name = text + 6, known = things, kind_word = "thing";
    } else if (strncmp(text, "function:", 9) == 0) {
        out->kind = ENDPOINT_FUNCTION, name = text + 9, known = functions, kind_word = "function";
    } else if (strncmp(text, "connector:", 10) == 0) {
        out->kind = ENDPOINT_CONNECTOR, name = text + 10, known = connectors,
        kind_word = "connector";
    } else {
        problem(c,
                "%s: unknown endpoint \"%s\" (expected thing:NAME, thing:*, function:NAME, "
                "connector:NAME, cloud or shadow)",
                path, text);
        return false;
    }
    if (name) {
        if (!name_in(known, name)) {
            problem(c, "%s: unknown %s \"%s\"", path, kind_word, name);
            return false;
        }
        out->name = strdup(name);
        out->name_len = strlen(name);
    }
    return true;
}

void endpoint_format(const endpoint_t *e, char *buf, size_t len)
{
    switch (e->kind) {
    case ENDPOINT_THING: snprintf(buf, len, "thing:%s", e->name); break;
    case ENDPOINT_ANY_THING: snprintf(buf, len, "thing:*"); break;
    case ENDPOINT_FUNCTION: snprintf(buf, len, "function:%s", e->name); break;
    case ENDPOINT_CONNECTOR: snprintf(buf, len, "connector:%s", e->name); break;
    case ENDPOINT_CLOUD: snprintf(buf, len, "cloud"); break;
    case ENDPOINT_SHADOW: snprintf(buf, len, "shadow"); break;
    case ENDPOINT_KIND_COUNT: snprintf(buf, len, "?"); break;
    }
}

static void check_routes(check_t *c, json_t *routes, json_t *things, json_t *functions,
                         json_t *connectors, group_t *g)
{
    static const char *const keys[] = {"source", "filter", "target", "qos", "description", NULL};
    size_t n = json_array_size(routes);
    g->routes = calloc(n ? n : 1, sizeof *g->routes);
    if (!g->routes) {
        problem(c, "routes: out of memory");
        return;
    }
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        char path[64];
        if (!check_element(c, r, "routes", i, keys, path, sizeof path))
            continue;
        route_t *rt = &g->routes[g->route_count];
        char sub[96];
        const char *source = string_at(c, r, "source", path, true);
        const char *target = string_at(c, r, "target", path, true);
        const char *filter = string_at(c, r, "filter", path, true);
        bool ok = source && target && filter;
        snprintf(sub, sizeof sub, "%s.source", path);
        if (source && !parse_endpoint(c, source, sub, things, functions, connectors, &rt->source))
            ok = false;
        snprintf(sub, sizeof sub, "%s.target", path);
        if (target && !parse_endpoint(c, target, sub, things, functions, connectors, &rt->target))
            ok = false;
        if (filter) {
            bytes_t f = bytes_of_cstr(filter);
            bytes_t group, inner;
            if (mqtt_shared_split(f, &group, &inner)) {
                problem(c, "%s.filter: \"%s\" is a shared subscription, not a route filter", path,
                        filter);
                ok = false;
            } else if (!mqtt_topic_filter_valid(f)) {
                problem(c, "%s.filter: \"%.200s\" is not a valid MQTT topic filter", path, filter);
                ok = false;
            } else if (mqtt_topic_levels(f) > MQTT_MAX_FILTER_LEVELS) {
                problem(c, "%s.filter: %zu levels; a route filter has at most %d", path,
                        mqtt_topic_levels(f), MQTT_MAX_FILTER_LEVELS);
                ok = false;
            }
        }
        if (ok && rt->source.kind == ENDPOINT_SHADOW && rt->target.kind == ENDPOINT_SHADOW) {
            problem(c, "%s: a route from shadow to shadow goes nowhere", path);
            ok = false;
        }
        rt->qos = -1;
        json_t *q = json_object_get(r, "qos");
        if (q) {
            if (!json_is_integer(q) || json_integer_value(q) < 0 || json_integer_value(q) > 1) {
                problem(c, "%s.qos: expected 0 or 1", path);
                ok = false;
            } else {
                rt->qos = (int)json_integer_value(q);
            }
        }
        if (!ok) {
            free(rt->source.name);
            free(rt->target.name);
            memset(rt, 0, sizeof *rt);
            continue;
        }
        rt->filter = strdup(filter);
        rt->filter_len = strlen(filter);
        char s_text[160], t_text[160];
        endpoint_format(&rt->source, s_text, sizeof s_text);
        endpoint_format(&rt->target, t_text, sizeof t_text);
        size_t len = strlen(s_text) + strlen(t_text) + rt->filter_len + 16;
        rt->text = malloc(len);
        if (rt->text)
            snprintf(rt->text, len, "%s -> %s -> %s", s_text, filter, t_text);
        g->route_count++;
    }
}

bool is_uint(json_t *v, json_int_t min, json_int_t max)
{
    return json_is_integer(v) && json_integer_value(v) >= min && json_integer_value(v) <= max;
}

/* One decimal id, digits only (sscanf's %u would take "-1" as 4294967295
 * and skip spaces), below (uid_t)-1, which means "no id". */
static const char *parse_id(const char *s)
{
    unsigned long long v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (unsigned)(*p - '0');
        if (v >= 4294967295ull)
            return NULL;
    }
    return p > s ? p : NULL;
}

bool valid_run_as(const char *s)
{
    const char *p = parse_id(s);
    return p && *p == ':' && (p = parse_id(p + 1)) && *p == '\0';
}

/* Variables the dynamic loader or the C library act on before a program's
 * own code runs: glibc's list of variables it ignores in privileged
 * programs (sysdeps/generic/unsecvars.h), with every LD_ variable. */
static bool env_name_unsafe(const char *name)
{
    static const char *const unsafe[] = {
        "GCONV_PATH",  "GETCONF_DIR",  "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN",
        "LOCPATH",     "MALLOC_TRACE", "NIS_PATH",       "NLSPATH",     "RESOLV_HOST_CONF",
        "RES_OPTIONS", "TMPDIR",       "TZDIR",          NULL};
    if (strncmp(name, "LD_", 3) == 0)
        return true;
    for (size_t i = 0; unsafe[i]; i++)
        if (strcmp(name, unsafe[i]) == 0)
            return true;
    return false;
}

static void check_function_env(check_t *c, json_t *env, const char *path)
{
    if (!json_is_object(env)) {
        problem(c, "%s.env: expected an object of strings", path);
        return;
    }
    if (json_object_size(env) > GROUP_MAX_ENV)
        problem(c, "%s.env: at most %d variables", path, GROUP_MAX_ENV);
    size_t bytes = 0;
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v)
    {
        int shown = KEY_SHOWN;
        const char *cut = strlen(k) > KEY_SHOWN ? "..." : "";
        if (!json_is_string(v))
            problem(c, "%s.env.%.*s%s: expected a string", path, shown, k, cut);
        else
            bytes += strlen(k) + json_string_length(v) + 2;
        if (!k[0] || strchr(k, '='))
            problem(c, "%s.env: invalid variable name \"%s\"", path, k);
        else if (env_name_unsafe(k))
            problem(c,
                    "%s.env.%.*s%s: refused: the dynamic loader or the C library acts on it "
                    "before the function's own code runs (remove it; set it inside the "
                    "function if it must)",
                    path, shown, k, cut);
        else if (strncmp(k, "SEDGE_", 6) == 0)
            problem(c, "%s.env.%.*s%s: refused: SEDGE_ variables are set by the core", path, shown,
                    k, cut);
    }
    if (bytes > GROUP_MAX_ENV_BYTES)
        problem(c, "%s.env: %zu bytes of variables, over the limit of %d", path, bytes,
                GROUP_MAX_ENV_BYTES);
}

/* "code": "/dir" or {"path": "/dir"}: the directory with the function's own
 * files; or {"url", "sha256"}: an archive of them, fetched, checked and
 * unpacked into the content-addressed cache before the deployment goes
 * ahead. */
static void check_function_code(check_t *c, json_t *code, const char *path)
{
    static const char *const keys[] = {"path", "url", "sha256", "signature", NULL};
    char sub[96];
    snprintf(sub, sizeof sub, "%s.code", path);
    const char *dir = NULL;
    if (json_is_object(code)) {
        check_keys(c, code, sub, keys);
        if (json_object_get(code, "url") || json_object_get(code, "sha256")) {
            if (json_object_get(code, "path"))
                problem(c, "%s: give \"path\", or \"url\" and \"sha256\", not both", sub);
            else
                check_artifact_ref(c, code, sub);
            json_t *sig = json_object_get(code, "signature");
            if (sig && (!json_is_string(sig) || json_string_length(sig) != 88))
                problem(c, "%s.signature: expected the base64 of a 64-byte Ed25519 signature", sub);
            return;
        }
        dir = string_at(c, code, "path", sub, true);
    } else if (json_is_string(code) && json_string_length(code)) {
        dir = json_string_value(code);
    } else {
        problem(c, "%s: expected a directory (\"/path/dir\" or {\"path\": \"/path/dir\"})", sub);
        return;
    }
    if (!dir)
        return;
    if (dir[0] != '/')
        problem(c, "%s: \"%s\" must be an absolute path", sub, dir);
    else if (!path_is_plain(dir))
        problem(c, "%s: \"%s\" may not contain \".\", \"..\" or empty levels", sub, dir);
    else if (strcmp(dir, "/") == 0 || path_starts_with_level(dir, "proc") ||
             path_starts_with_level(dir, "dev") || path_starts_with_level(dir, "sys"))
        problem(c, "%s: \"%s\" may not be a function's code directory", sub, dir);
}

static void check_functions(check_t *c, json_t *functions)
{
    static const char *const keys[] = {
        "name",           "exec",      "lifecycle", "timeout_s", "memory_mb",
        "max_instances",  "max_queue", "run_as",    "isolation", "env",
        "encoding",       "resources", "sysfs",     "network",   "max_processes",
        "idle_timeout_s", "config",    "code",      "standby",   NULL};
    size_t i;
    json_t *f;
    json_array_foreach(functions, i, f)
    {
        char path[64];
        if (!check_element(c, f, "functions", i, keys, path, sizeof path))
            continue;
        string_at(c, f, "name", path, true);
        json_t *exec = json_object_get(f, "exec");
        if (!exec)
            problem(c, "%s.exec: missing (the program and its arguments)", path);
        else if (!json_is_array(exec) || json_array_size(exec) == 0)
            problem(c, "%s.exec: expected a non-empty array of strings", path);
        else {
            size_t k;
            json_t *a;
            json_array_foreach(exec, k, a) if (!json_is_string(a))
                problem(c, "%s.exec[%zu]: expected a string", path, k);
        }
        const char *lifecycle = string_at(c, f, "lifecycle", path, false);
        if (lifecycle && strcmp(lifecycle, "on-demand") && strcmp(lifecycle, "long-lived"))
            problem(c, "%s.lifecycle: \"%s\" is not on-demand or long-lived", path, lifecycle);
        json_t *t = json_object_get(f, "timeout_s");
        if (t && !(json_is_number(t) && json_number_value(t) > 0 && json_number_value(t) <= 86400))
            problem(c, "%s.timeout_s: expected a number of seconds, above 0 and at most 86400",
                    path);
        struct {
            const char *key;
            json_int_t min, max;
        } ints[] = {{"memory_mb", 1, 1048576},
                    {"max_instances", 1, 1000},
                    {"max_queue", 1, 1000000},
                    {"max_processes", 1, 65536},
                    {"idle_timeout_s", 1, 86400}};
        for (size_t k = 0; k < ARRAY_LEN(ints); k++) {
            json_t *v = json_object_get(f, ints[k].key);
            if (v && !is_uint(v, ints[k].min, ints[k].max))
                problem(c, "%s.%s: expected an integer from %lld to %lld", path, ints[k].key,
                        (long long)ints[k].min, (long long)ints[k].max);
        }
        const char *run_as = string_at(c, f, "run_as", path, false);
        if (run_as && !valid_run_as(run_as))
            problem(c, "%s.run_as: \"%s\" is not UID:GID", path, run_as);
        const char *isolation = string_at(c, f, "isolation", path, false);
        if (isolation && strcmp(isolation, "sandbox") && strcmp(isolation, "none"))
            problem(c, "%s.isolation: \"%s\" is not sandbox or none", path, isolation);
        const char *encoding = string_at(c, f, "encoding", path, false);
        if (encoding && strcmp(encoding, "json") && strcmp(encoding, "binary"))
            problem(c, "%s.encoding: \"%s\" is not json or binary", path, encoding);
        json_t *env = json_object_get(f, "env");
        if (env)
            check_function_env(c, env, path);
        json_t *code = json_object_get(f, "code");
        if (code)
            check_function_code(c, code, path);
        const char *bools[] = {"sysfs", "network", "standby"};
        for (size_t k = 0; k < ARRAY_LEN(bools); k++) {
            json_t *v = json_object_get(f, bools[k]);
            if (v && !json_is_boolean(v))
                problem(c, "%s.%s: expected true or false", path, bools[k]);
        }
        json_t *res = json_object_get(f, "resources");
        if (res)
            check_function_resources(c, res, path);
    }
}

static void check_named_objects(check_t *c, json_t *list, const char *what)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (!json_is_object(e))
            problem(c, "%s[%zu]: expected an object", what, i);
        else if (!json_is_string(json_object_get(e, "name")))
            problem(c, "%s[%zu].name: missing", what, i);
    }
}

static void check_shadows(check_t *c, json_t *shadows, json_t *things)
{
    static const char *const keys[] = {"sync", NULL};
    static const char *const sync_keys[] = {"thing", "names", "classic", "direction", NULL};
    if (!json_is_object(shadows)) {
        problem(c, "shadows: expected an object");
        return;
    }
    check_keys(c, shadows, "shadows", keys);
    json_t *sync = json_object_get(shadows, "sync");
    if (!sync)
        return;
    if (!json_is_array(sync)) {
        problem(c, "shadows.sync: expected an array");
        return;
    }
    size_t i;
    json_t *s;
    json_array_foreach(sync, i, s)
    {
        char path[64];
        if (!check_element(c, s, "shadows.sync", i, sync_keys, path, sizeof path))
            continue;
        const char *thing = string_at(c, s, "thing", path, true);
        if (thing && !name_in(things, thing) && !group_valid_thing_name(thing, strlen(thing)))
            problem(c, "%s.thing: invalid thing name \"%s\"", path, thing);
        json_t *names = json_object_get(s, "names");
        if (names && !json_is_array(names))
            problem(c, "%s.names: expected an array of shadow names", path);
        const char *dir = string_at(c, s, "direction", path, false);
        if (dir && strcmp(dir, "between_device_and_cloud") && strcmp(dir, "device_to_cloud") &&
            strcmp(dir, "cloud_to_device"))
            problem(c,
                    "%s.direction: \"%s\" is not between_device_and_cloud, device_to_cloud or "
                    "cloud_to_device",
                    path, dir);
    }
}

static bool valid_any_name(const char *s, size_t len)
{
    return len > 0 && len <= GROUP_MAX_NAME && group_valid_thing_name(s, len);
}

/* Hex digits (colons between bytes allowed, as OpenSSL prints them) into
 * bytes; the count, or -1 when malformed or longer than `cap`. */
static int parse_hex(const char *text, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int half = -1;
    for (const char *p = text; *p; p++) {
        if (*p == ':' && half < 0)
            continue;
        int v = *p >= '0' && *p <= '9'   ? *p - '0'
                : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
                                         : -1;
        if (v < 0)
            return -1;
        if (half < 0) {
            half = v;
            continue;
        }
        if (n == cap)
            return -1;
        out[n++] = (uint8_t)(half << 4 | v);
        half = -1;
    }
    return half < 0 ? (int)n : -1;
}

static void check_revoked_certs(check_t *c, json_t *list, group_t *g)
{
    g->revoked_certs = calloc(json_array_size(list) + 1, sizeof *g->revoked_certs);
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        const char *text = json_string_value(item);
        revoked_cert_t rc = {0};
        int n = -1;
        if (text && strncmp(text, "sha256:", 7) == 0) {
            n = parse_hex(text + 7, rc.bytes, sizeof rc.bytes);
            if (n != 32)
                n = -1;
        } else if (text && strncmp(text, "serial:", 7) == 0) {
            rc.by_serial = true;
            /* A number: an odd count of digits has its leading zero left out. */
            char digits[64];
            size_t len = strlen(text + 7);
            bool odd = len % 2 && !strchr(text + 7, ':');
            /* (The result checked, not only len: 32-bit GCC warns otherwise.) */
            if (len + 2 <= sizeof digits &&
                snprintf(digits, sizeof digits, "%s%s", odd ? "0" : "", text + 7) <
                    (int)sizeof digits)
                n = parse_hex(digits, rc.bytes, 20); /* RFC 5280: at most 20 octets */
            int skip = 0;
            while (skip < n - 1 && rc.bytes[skip] == 0)
                skip++;
            if (n > 0) {
                memmove(rc.bytes, rc.bytes + skip, (size_t)(n - skip));
                n -= skip;
            }
        }
        if (n <= 0) {
            problem(c,
                    "revoked_certificates[%zu]: expected \"sha256:\" and the certificate's "
                    "fingerprint (64 hex digits) or \"serial:\" and its serial number in hex",
                    i);
            continue;
        }
        rc.len = (uint8_t)n;
        if (g->revoked_certs)
            g->revoked_certs[g->revoked_cert_count++] = rc;
    }
}

bool group_cert_revoked(const group_t *g, const uint8_t sha256[32], bytes_t serial)
{
    while (serial.len > 1 && serial.data[0] == 0) {
        serial.data++;
        serial.len--;
    }
    for (size_t i = 0; i < g->revoked_cert_count; i++) {
        const revoked_cert_t *rc = &g->revoked_certs[i];
        if (rc->by_serial ? serial.len == rc->len && memcmp(serial.data, rc->bytes, rc->len) == 0
                          : memcmp(sha256, rc->bytes, 32) == 0)
            return true;
    }
    return false;
}

static char *sha256_hex(const char *text, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL))
        return NULL;
    char *hex = malloc(mdlen * 2 + 1);
    if (!hex)
        return NULL;
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return hex;
}

static void check_thing_list(check_t *c, json_t *things, json_t *names)
{
    static const char *const keys[] = {"name", "description", "attributes", NULL};
    size_t i;
    json_t *t;
    json_array_foreach(things, i, t)
    {
        char path[64];
        if (!check_element(c, t, "things", i, keys, path, sizeof path))
            continue;
        string_at(c, t, "name", path, true);
    }
    collect_names(c, things, "things", names, group_valid_thing_name);
}

sedge_err group_parse(const char *text, size_t len, size_t max_bytes, group_t **out, buf_t *errors)
{
    check_t c = {errors, 0, NULL, NULL};
    *out = NULL;
    if (len > max_bytes) {
        problem(&c, "document: %zu bytes, over the limit of %zu", len, max_bytes);
        return SEDGE_ERR_TOO_LARGE;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        problem(&c, "document: invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                jerr.text);
        return SEDGE_ERR_INVALID;
    }
    if (!json_is_object(doc)) {
        problem(&c, "document: expected a JSON object");
        json_decref(doc);
        return SEDGE_ERR_INVALID;
    }
    static const char *const keys[] = {"group",     "description", "things",     "routes",
                                       "functions", "resources",   "connectors", "revoked",
                                       "shadows",   "revoked_certificates",      NULL};
    check_keys(&c, doc, "", keys);
    group_t *g = calloc(1, sizeof *g);
    if (g)
        g->doc = doc; /* freed with g from here on */
    json_t *things = json_object(), *functions = json_object(), *connectors = json_object(),
           *resources = json_object();
    c.resource_ids = resources;
    if (!g || !things || !functions || !connectors || !resources) {
        problem(&c, "document: out of memory");
        goto done;
    }
    json_t *name = json_object_get(doc, "group");
    if (!json_is_string(name) || !valid_any_name(json_string_value(name), json_string_length(name)))
        problem(&c, "group: %s",
                name ? "expected a name of 1 to 128 of a-z A-Z 0-9 - _ : ."
                     : "missing (the group's name)");
    else
        g->name = strdup(json_string_value(name));

    const char *sections[] = {"things",     "routes",  "functions",           "resources",
                              "connectors", "revoked", "revoked_certificates"};
    for (size_t i = 0; i < ARRAY_LEN(sections); i++) {
        json_t *s = json_object_get(doc, sections[i]);
        if (s && !json_is_array(s))
            problem(&c, "%s: expected an array", sections[i]);
    }
    json_t *thing_list = json_object_get(doc, "things");
    json_t *function_list = json_object_get(doc, "functions");
    json_t *connector_list = json_object_get(doc, "connectors");
    json_t *resource_list = json_object_get(doc, "resources");
    json_t *route_list = json_object_get(doc, "routes");
    json_t *revoked = json_object_get(doc, "revoked");
    if (json_is_array(resource_list))
        check_group_resources(&c, resource_list, resources);
    if (json_is_array(thing_list))
        check_thing_list(&c, thing_list, things);
    if (json_is_array(function_list)) {
        check_functions(&c, function_list);
        collect_names(&c, function_list, "functions", functions, valid_function_name);
    }
    if (json_is_array(connector_list)) {
        check_named_objects(&c, connector_list, "connectors");
        check_connectors(&c, connector_list);
        collect_names(&c, connector_list, "connectors", connectors, valid_function_name);
    }
    if (json_is_array(route_list))
        check_routes(&c, route_list, things, functions, connectors, g);
    json_t *shadows = json_object_get(doc, "shadows");
    if (shadows)
        check_shadows(&c, shadows, things);

    g->thing_count = json_object_size(things);
    g->things = calloc(g->thing_count ? g->thing_count : 1, sizeof *g->things);
    if (g->things) {
        size_t k = 0;
        const char *key;
        json_t *v;
        json_object_foreach(things, key, v) g->things[k++] = strdup(key);
    }
    if (json_is_array(revoked)) {
        g->revoked = calloc(json_array_size(revoked) + 1, sizeof *g->revoked);
        size_t i;
        json_t *r;
        json_array_foreach(revoked, i, r)
        {
            if (!json_is_string(r) ||
                !group_valid_thing_name(json_string_value(r), json_string_length(r)))
                problem(&c, "revoked[%zu]: expected a thing name", i);
            else if (g->revoked)
                g->revoked[g->revoked_count++] = strdup(json_string_value(r));
        }
    }
    json_t *revoked_certs = json_object_get(doc, "revoked_certificates");
    if (json_is_array(revoked_certs))
        check_revoked_certs(&c, revoked_certs, g);
    g->checksum = sha256_hex(text, len);
done:
    json_decref(things);
    json_decref(functions);
    json_decref(connectors);
    json_decref(resources);
    if (c.count || !g) {
        if (g)
            group_free(g);
        else
            json_decref(doc);
        return c.count ? SEDGE_ERR_INVALID : SEDGE_ERR_NOMEM;
    }
    *out = g;
    return SEDGE_OK;
}

void group_free(group_t *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->thing_count; i++)
        free(g->things[i]);
    free(g->things);
    for (size_t i = 0; i < g->route_count; i++) {
        free(g->routes[i].source.name);
        free(g->routes[i].target.name);
        free(g->routes[i].filter);
        free(g->routes[i].text);
    }
    free(g->routes);
    for (size_t i = 0; i < g->revoked_count; i++)
        free(g->revoked[i]);
    free(g->revoked);
    free(g->revoked_certs);
    json_decref(g->doc);
    free(g->name);
    free(g->checksum);
    free(g);
}

bool group_has_thing(const group_t *g, bytes_t name)
{
    for (size_t i = 0; i < g->thing_count; i++)
        if (bytes_eq_cstr(name, g->things[i]))
            return true;
    return false;
}

bool group_is_revoked(const group_t *g, bytes_t name)
{
    for (size_t i = 0; i < g->revoked_count; i++)
        if (bytes_eq_cstr(name, g->revoked[i]))
            return true;
    return false;
}

json_t *group_functions(const group_t *g)
{
    return json_object_get(g->doc, "functions");
}

json_t *group_connectors(const group_t *g)
{
    return json_object_get(g->doc, "connectors");
}
