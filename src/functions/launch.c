/*
 * launch: what an instance is started with — sedge-sandbox's command line
 * (the user, the cgroups or rlimits, and what the sandbox shows: the
 * system directories, the code directory, the function's socket, the
 * declared volumes and devices, the SDK's files) and the environment the
 * function gets, which travels on the sandbox's stdin and is applied only
 * after every privilege is gone (src/sandbox/sandbox.h). The arguments of
 * `exec` are passed on as they are: data for the function, never paths to
 * show it.
 */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FIXED_ARGS 48

/* A string kept for the command line's lifetime. */
static const char *keep(launch_t *l, const char *fmt, ...) PRINTF_LIKE(2, 3);
static const char *keep(launch_t *l, const char *fmt, ...)
{
    if (l->kept_count == ARRAY_LEN(l->kept))
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    l->kept[l->kept_count++] = s;
    return s;
}

static void arg(launch_t *l, const char *a)
{
    if (!a)
        l->failed = true;
    else if (l->argc + 1 < l->cap)
        l->argv[l->argc++] = (char *)a;
    else
        l->failed = true;
}

static void arg2(launch_t *l, const char *option, const char *value)
{
    arg(l, option);
    arg(l, value);
}

NODISCARD static sedge_err env_add(buf_t *b, const char *kv)
{
    return buf_append(b, kv, strlen(kv) + 1);
}

/* The function's environment: the core's variables, then the document's
 * (validated: no loader variables, no SEDGE_ ones), whose PATH, HOME or
 * LANG replace the defaults. */
NODISCARD static sedge_err build_env(const fn_t *fn, const instance_t *in, buf_t *out)
{
    struct functions *f = fn->owner;
    const spec_t *s = &fn->spec;
    static const char *const defaults[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp",
                                           "LANG=C.UTF-8", "PYTHONUNBUFFERED=1"};
    uint8_t zero[4] = {0};
    sedge_err err = buf_append(out, zero, sizeof zero);
    char line[700];
    snprintf(line, sizeof line, "SEDGE_SOCKET=%s", fn->socket_path);
    err = err ? err : env_add(out, line);
    snprintf(line, sizeof line, "SEDGE_FUNCTION=%s", s->name);
    err = err ? err : env_add(out, line);
    snprintf(line, sizeof line, "SEDGE_TOKEN=%s", in->token);
    err = err ? err : env_add(out, line);
    err = err ? err
              : env_add(out, s->json_encoding ? "SEDGE_ENCODING=json" : "SEDGE_ENCODING=binary");
    snprintf(line, sizeof line, "SEDGE_THING_NAME=%.600s", f->thing_name);
    err = err ? err : env_add(out, line);
    if (f->python_sdk_dir) {
        snprintf(line, sizeof line, "PYTHONPATH=%.600s", f->python_sdk_dir);
        err = err ? err : env_add(out, line);
    }
    /* SEDGE_RESOURCE_<ID>: where a function finds a resource of the group
     * (ids upper-cased, ':' and '-' as '_'); a model without a sandbox is
     * where the cache has it. */
    for (size_t i = 0; i < s->resource_count && !err; i++) {
        const resource_t *r = &s->resources[i];
        if (!r->id || r->kind == RESOURCE_SECRET)
            continue;
        int n = snprintf(line, sizeof line, "SEDGE_RESOURCE_");
        for (const char *p = r->id; *p && (size_t)n + 1 < sizeof line; p++)
            line[n++] = (*p == ':' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
        snprintf(line + n, sizeof line - (size_t)n, "=%s",
                 s->sandbox || r->kind != RESOURCE_MODEL ? r->dest : r->source);
        err = env_add(out, line);
        /* A model's version: the cache directory is named by its hash. */
        const char *sha = r->kind == RESOURCE_MODEL ? strrchr(r->source, '/') : NULL;
        if (sha && !err) {
            snprintf(line + n, sizeof line - (size_t)n, "_SHA256=%s", sha + 1);
            err = env_add(out, line);
        }
    }
    for (size_t i = 0; i < s->env_count && !err; i++)
        err = env_add(out, s->env[i]);
    for (size_t i = 0; i < ARRAY_LEN(defaults) && !err; i++) {
        size_t name_len = strchr(defaults[i], '=') - defaults[i] + 1;
        bool given = false;
        for (size_t k = 0; k < s->env_count && !given; k++)
            given = strncmp(s->env[k], defaults[i], name_len) == 0;
        if (!given)
            err = env_add(out, defaults[i]);
    }
    if (err)
        return err;
    uint32_t len = (uint32_t)(out->len - 4);
    out->data[0] = (uint8_t)(len >> 24), out->data[1] = (uint8_t)(len >> 16);
    out->data[2] = (uint8_t)(len >> 8), out->data[3] = (uint8_t)len;
    return SEDGE_OK;
}

/* Is the program a Python interpreter (which is shown the Python SDK)? */
static bool runs_python(const spec_t *s)
{
    const char *base = strrchr(s->argv[0], '/');
    return strncmp(base ? base + 1 : s->argv[0], "python", 6) == 0;
}

sedge_err launch_build(const fn_t *fn, const instance_t *in, bool standby, launch_t *l)
{
    struct functions *f = fn->owner;
    const spec_t *s = &fn->spec;
    memset(l, 0, sizeof *l);
    l->cap = FIXED_ARGS + 2 * (s->resource_count + s->binds.count + s->group_count) + s->argc + 1;
    l->argv = calloc(l->cap, sizeof *l->argv);
    if (!l->argv)
        return SEDGE_ERR_NOMEM;
    arg(l, f->sandbox_program);
    if (s->has_user) {
        arg2(l, "--uid", keep(l, "%u", s->uid));
        arg2(l, "--gid", keep(l, "%u", s->gid));
        for (size_t i = 0; i < s->group_count; i++)
            arg2(l, "--group", keep(l, "%u", s->groups[i]));
    }
    for (int i = 0; i < in->cgroup.count; i++)
        arg2(l, "--cgroup", in->cgroup.paths[i]);
    if (!in->cgroup.count) {
        arg2(l, "--memory-mb", keep(l, "%u", s->memory_mb));
        arg2(l, "--nproc", keep(l, "%u", s->max_processes));
    }
    if (standby)
        arg(l, "--standby");
    if (s->code_dir)
        arg2(l, "--code", s->code_dir);
    if (s->sandbox) {
        arg(l, "--isolate");
        arg2(l, "--root", in->root_dir);
        if (s->network)
            arg(l, "--network");
        if (fn->shared_ns.ipc_fd >= 0) { /* the function's own: see sharedns.c */
            if (!s->network)
                arg2(l, "--netns-fd", "3");
            arg2(l, "--ipcns-fd", "4");
            l->shared_ns = true;
        }
        if (s->sysfs)
            arg(l, "--sysfs");
        arg2(l, "--rw", fn->socket_path);
        if (f->python_sdk_dir && runs_python(s))
            arg2(l, "--ro", f->python_sdk_dir);
        for (size_t i = 0; i < s->binds.count; i++)
            arg2(l, "--ro", s->binds.paths[i]);
        for (size_t i = 0; i < s->resource_count; i++) {
            const resource_t *r = &s->resources[i];
            const char *mode = r->rw ? "rw" : "ro";
            if (r->kind == RESOURCE_SECRET)
                continue;
            if (r->device)
                arg2(l, "--device", keep(l, "%s:%s", r->source, mode));
            else
                arg2(l, "--volume", keep(l, "%s:%s:%s", r->source, r->dest, mode));
        }
    }
    arg(l, "--");
    for (size_t i = 0; i < s->argc; i++)
        arg(l, s->argv[i]);
    l->argv[l->argc] = NULL;
    sedge_err err = build_env(fn, in, &l->env);
    if (l->failed || err) {
        launch_free(l);
        return err ? err : SEDGE_ERR_NOMEM;
    }
    return SEDGE_OK;
}

void launch_free(launch_t *l)
{
    for (size_t i = 0; i < l->kept_count; i++)
        free(l->kept[i]);
    free(l->argv);
    buf_free(&l->env);
    memset(l, 0, sizeof *l);
}

size_t launch_device_rules(const spec_t *s, device_rule_t *rules, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_LEN(devices_basic) && n < cap; i++)
        rules[n++] = devices_basic[i];
    for (size_t i = 0; i < s->resource_count && n < cap; i++) {
        const resource_t *r = &s->resources[i];
        if (r->device)
            rules[n++] = (device_rule_t){r->block, r->major, r->minor, r->rw};
    }
    return n;
}
