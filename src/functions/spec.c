/*
 * spec: a function's settings from its (already validated) group entry,
 * with the defaults, and the checks only the running machine can make:
 * that the program can be run, and that root is allowed.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Defaults. Memory is higher than Greengrass's 16 MB, which a Python
 * interpreter alone nearly fills. */
#define DEFAULT_TIMEOUT_MS 3000
#define DEFAULT_MEMORY_MB 64
#define DEFAULT_MAX_INSTANCES 10
#define DEFAULT_MAX_QUEUE 1000
#define DEFAULT_MAX_PROCESSES 64
#define DEFAULT_IDLE_TIMEOUT_MS 60000
#define NOBODY 65534

static uint64_t uint_or(json_t *o, const char *key, uint64_t dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (uint64_t)json_integer_value(v) : dflt;
}

static bool bool_or(json_t *o, const char *key, bool dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : dflt;
}

/* Can `program` be run? Searched on PATH when it has no '/'. */
static bool runnable(const char *program)
{
    if (strchr(program, '/'))
        return access(program, X_OK) == 0;
    const char *path = getenv("PATH");
    char dir[4096];
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        snprintf(dir, sizeof dir, "%.*s/%s", (int)n, path, program);
        if (access(dir, X_OK) == 0)
            return true;
        path = colon ? colon + 1 : NULL;
    }
    return false;
}

sedge_err spec_parse(json_t *e, bool allow_root, spec_t *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->source = json_incref(e);
    s->name = strdup(str_or(e, "name", ""));
    json_t *exec = json_object_get(e, "exec");
    s->argc = json_array_size(exec);
    s->argv = calloc(s->argc + 1, sizeof *s->argv);
    if (!s->name || !s->argv) {
        snprintf(err, errlen, "out of memory");
        return SEDGE_ERR_NOMEM;
    }
    for (size_t i = 0; i < s->argc; i++)
        s->argv[i] = strdup(json_string_value(json_array_get(exec, i)));
    s->lifecycle = strcmp(str_or(e, "lifecycle", "on-demand"), "long-lived") == 0
                       ? LIFECYCLE_LONG_LIVED
                       : LIFECYCLE_ON_DEMAND;
    json_t *t = json_object_get(e, "timeout_s");
    s->timeout_ms =
        json_is_number(t) ? (uint64_t)(json_number_value(t) * 1000.0) : DEFAULT_TIMEOUT_MS;
    s->memory_mb = (uint32_t)uint_or(e, "memory_mb", DEFAULT_MEMORY_MB);
    s->max_instances = (uint32_t)uint_or(e, "max_instances", DEFAULT_MAX_INSTANCES);
    if (s->lifecycle == LIFECYCLE_LONG_LIVED)
        s->max_instances = 1;
    s->max_queue = (uint32_t)uint_or(e, "max_queue", DEFAULT_MAX_QUEUE);
    s->max_processes = (uint32_t)uint_or(e, "max_processes", DEFAULT_MAX_PROCESSES);
    s->idle_timeout_ms = uint_or(e, "idle_timeout_s", DEFAULT_IDLE_TIMEOUT_MS / 1000) * 1000u;
    s->sandbox = strcmp(str_or(e, "isolation", "sandbox"), "sandbox") == 0;
    s->network = bool_or(e, "network", false);
    s->sysfs = bool_or(e, "sysfs", false);
    s->json_encoding = strcmp(str_or(e, "encoding", "json"), "json") == 0;
    const char *run_as = str_or(e, "run_as", NULL);
    bool root = geteuid() == 0;
    if (run_as) {
        sscanf(run_as, "%u:%u", &s->uid, &s->gid);
        s->has_user = true;
    } else if (root) {
        s->uid = s->gid = NOBODY;
        s->has_user = true;
    }
    if (s->has_user && (s->uid == 0 || s->gid == 0) && !allow_root) {
        snprintf(err, errlen,
                 "function %s: run_as %u:%u is root, which the core's config does not allow "
                 "(functions.allow_root)",
                 s->name, s->uid, s->gid);
        return SEDGE_ERR_DENIED;
    }
    if (s->has_user && !root && (s->uid != geteuid() || s->gid != getegid())) {
        snprintf(err, errlen, "function %s: run_as %u:%u needs sedged to run as root", s->name,
                 s->uid, s->gid);
        return SEDGE_ERR_DENIED;
    }
    if (s->sandbox && !root) {
        snprintf(err, errlen,
                 "function %s: isolation sandbox needs sedged to run as root (or set isolation: "
                 "none)",
                 s->name);
        return SEDGE_ERR_DENIED;
    }
    json_t *env = json_object_get(e, "env");
    s->env = calloc(json_object_size(env) + 1, sizeof *s->env);
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v)
    {
        size_t n = strlen(k) + json_string_length(v) + 2;
        char *kv = malloc(n);
        if (kv) {
            snprintf(kv, n, "%s=%s", k, json_string_value(v));
            s->env[s->env_count++] = kv;
        }
    }
    json_t *res = json_object_get(e, "resources");
    s->resources = calloc(json_array_size(res) + 1, sizeof *s->resources);
    size_t i;
    json_t *r;
    json_array_foreach(res, i, r)
    {
        resource_t *rs = &s->resources[s->resource_count++];
        rs->type = strdup(str_or(r, "type", "volume"));
        bool device = strcmp(rs->type, "device") == 0;
        rs->source = strdup(str_or(r, device ? "path" : "source", ""));
        rs->dest = strdup(str_or(r, device ? "path" : "dest", ""));
        rs->rw = strcmp(str_or(r, "access", "ro"), "rw") == 0;
        if (access(rs->source, F_OK) != 0) {
            snprintf(err, errlen, "function %s: resource %s does not exist", s->name, rs->source);
            return SEDGE_ERR_NOT_FOUND;
        }
    }
    json_t *config = json_object_get(e, "config");
    s->config = config ? json_dumps(config, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
    if (s->argc == 0 || !s->argv[0] || !runnable(s->argv[0])) {
        snprintf(err, errlen, "function %s: cannot run %s: no such executable", s->name,
                 s->argc ? s->argv[0] : "(nothing)");
        return SEDGE_ERR_NOT_FOUND;
    }
    return SEDGE_OK;
}

void spec_free(spec_t *s)
{
    for (size_t i = 0; i < s->argc; i++)
        free(s->argv[i]);
    free(s->argv);
    for (size_t i = 0; i < s->env_count; i++)
        free(s->env[i]);
    free(s->env);
    for (size_t i = 0; i < s->resource_count; i++) {
        free(s->resources[i].type);
        free(s->resources[i].source);
        free(s->resources[i].dest);
    }
    free(s->resources);
    free(s->config);
    free(s->name);
    json_decref(s->source);
    memset(s, 0, sizeof *s);
}
