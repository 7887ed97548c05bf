/*
 * spec: a function's settings from its (already validated) group entry,
 * with the defaults, and the checks only the running machine can make:
 * that the program can start and, sandboxed, sees what it needs; that the
 * code directory, volumes and devices are there and are what they claim
 * (a device is a device node; nothing overlaps the core's data
 * directory); and that root is allowed. Errors name the entry's JSON path.
 */
#include "internal.h"

#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Defaults. Memory is higher than Greengrass's 16 MB, which a Python
 * interpreter alone nearly fills. */
#define DEFAULT_TIMEOUT_MS 3000
#define DEFAULT_MEMORY_MB 64
#define DEFAULT_MAX_INSTANCES 10
#define DEFAULT_MAX_QUEUE 1000
#define DEFAULT_MAX_PROCESSES 64
#define DEFAULT_IDLE_TIMEOUT_MS 60000
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
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

bool paths_overlap(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    size_t n = na < nb ? na : nb;
    if (strncmp(a, b, n) != 0)
        return false;
    const char *longer = na > nb ? a : b;
    return na == nb || longer[n] == '/' || n == 1; /* n == 1: one of them is "/" */
}

/* The program `name` is run as: a name without '/' found on PATH, a
 * relative path inside the code directory, or an absolute path. */
static char *resolve_program(const char *name, const char *path_var, const char *code_dir)
{
    char candidate[4096];
    if (name[0] == '/')
        return strdup(name);
    if (strchr(name, '/')) {
        if (!code_dir)
            return NULL;
        snprintf(candidate, sizeof candidate, "%s/%s", code_dir, name);
        return strdup(candidate);
    }
    for (const char *p = path_var; p && *p;) {
        size_t n = strcspn(p, ":");
        int w = snprintf(candidate, sizeof candidate, "%.*s/%s", (int)n, p, name);
        if (w > 0 && (size_t)w < sizeof candidate && access(candidate, X_OK) == 0)
            return strdup(candidate);
        p += n;
        if (*p == ':')
            p++;
    }
    return NULL;
}

static const char *code_path(json_t *e)
{
    json_t *code = json_object_get(e, "code");
    return json_is_string(code) ? json_string_value(code)
                                : json_string_value(json_object_get(code, "path"));
}

NODISCARD static sedge_err parse_code(spec_t *s, json_t *e, const char *where,
                                      const spec_context_t *ctx, char *err, size_t errlen)
{
    const char *dir = code_path(e);
    if (!dir)
        return SEDGE_OK;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s.code: %s is not a directory on this machine", where, dir);
        return SEDGE_ERR_NOT_FOUND;
    }
    char *real = realpath(dir, NULL);
    /* The data directory holds keys: never bound into a sandbox, except
     * the unpacked, read-only code archives in its cache. */
    char cache[4200];
    resources_cache_dir(ctx->data_dir, cache, sizeof cache);
    size_t clen = strlen(cache);
    bool cached = real && strncmp(real, cache, clen) == 0 && real[clen] == '/' && real[clen + 1];
    if (!real || (paths_overlap(real, ctx->data_dir) && !cached)) {
        snprintf(err, errlen, "%s.code: %s overlaps the core's data directory %s", where, dir,
                 ctx->data_dir);
        free(real);
        return SEDGE_ERR_DENIED;
    }
    s->code_dir = real;
    return SEDGE_OK;
}

NODISCARD static sedge_err parse_program(spec_t *s, json_t *e, const char *where,
                                         const spec_context_t *ctx, char *err, size_t errlen)
{
    json_t *exec = json_object_get(e, "exec");
    s->argc = json_array_size(exec);
    s->argv = calloc(s->argc + 1, sizeof *s->argv);
    if (!s->argv)
        return SEDGE_ERR_NOMEM;
    for (size_t i = 0; i < s->argc; i++)
        if (!(s->argv[i] = strdup(json_string_value(json_array_get(exec, i)))))
            return SEDGE_ERR_NOMEM;
    if (!s->argc) {
        snprintf(err, errlen, "%s.exec: no program", where);
        return SEDGE_ERR_INVALID;
    }
    const char *path_var = json_string_value(json_object_get(json_object_get(e, "env"), "PATH"));
    char *program = resolve_program(s->argv[0], path_var ? path_var : DEFAULT_PATH, s->code_dir);
    struct stat st;
    if (!program || stat(program, &st) != 0 || !S_ISREG(st.st_mode) || access(program, X_OK) != 0) {
        snprintf(err, errlen, "%s.exec[0]: function %s: cannot run %s: no such executable%s", where,
                 s->name, s->argv[0], strchr(s->argv[0], '/') || !program ? "" : " on PATH");
        free(program);
        return SEDGE_ERR_NOT_FOUND;
    }
    free(s->argv[0]);
    s->argv[0] = program;
    program_view_t view = {s->sandbox, s->code_dir, ctx->sdk_library, ctx->sdk_library_dir,
                           &s->binds};
    if (s->sandbox && !program_visible(&view, program)) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", program);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        snprintf(err, errlen,
                 "%s.exec[0]: %s is outside the system directories%s, so the sandbox does not "
                 "show it: declare the directory with the function's files, e.g. \"code\": "
                 "\"%s\"",
                 where, program, s->code_dir ? " and the function's code directory" : "",
                 dir[0] ? dir : "/");
        return SEDGE_ERR_NOT_FOUND;
    }
    char why[900];
    sedge_err rc = program_check(program, &view, why, sizeof why);
    if (rc)
        snprintf(err, errlen, "%s.exec[0]: function %s cannot start: %s", where, s->name, why);
    return rc;
}

/* The supplementary group a resource's owner setting gives: "auto" (the
 * file's own group), a name or an id. 0 (root's group) is never given. */
NODISCARD static sedge_err owner_group(spec_t *s, json_t *r, const struct stat *st,
                                       const char *shown, char *err, size_t errlen)
{
    json_t *g = json_object_get(json_object_get(r, "owner"), "group");
    if (!g)
        return SEDGE_OK;
    uint32_t gid;
    if (json_is_integer(g)) {
        gid = (uint32_t)json_integer_value(g);
    } else if (strcmp(json_string_value(g), "auto") == 0) {
        gid = st->st_gid;
    } else {
        struct group grp, *found = NULL;
        char text[4096];
        if (getgrnam_r(json_string_value(g), &grp, text, sizeof text, &found) != 0 || !found) {
            snprintf(err, errlen, "%s.owner.group: no group \"%.64s\" on this machine", shown,
                     json_string_value(g));
            return SEDGE_ERR_NOT_FOUND;
        }
        gid = found->gr_gid;
    }
    if (gid == 0) {
        snprintf(err, errlen,
                 "%s.owner.group: the group is root's (0); it is never given to a function (give "
                 "the file a group of its own)",
                 shown);
        return SEDGE_ERR_DENIED;
    }
    for (size_t i = 0; i < s->group_count; i++)
        if (s->groups[i] == gid)
            return SEDGE_OK;
    if (s->group_count == SPEC_MAX_GROUPS) {
        snprintf(err, errlen, "%s.owner: more than %d groups for one function", shown,
                 SPEC_MAX_GROUPS);
        return SEDGE_ERR_TOO_LARGE;
    }
    s->groups[s->group_count++] = gid;
    return SEDGE_OK;
}

static resource_kind_t kind_of(json_t *r)
{
    const char *type = str_or(r, "type", "volume");
    if (strcmp(type, "device") == 0)
        return RESOURCE_DEVICE;
    if (strcmp(type, "model") == 0)
        return RESOURCE_MODEL;
    if (strcmp(type, "secret") == 0)
        return RESOURCE_SECRET;
    return RESOURCE_VOLUME;
}

/* Without a sandbox nothing is bound: a volume is usable only where it is
 * on the host, and only as the host's permissions say. */
NODISCARD static sedge_err check_unsandboxed(const spec_t *s, const resource_t *rs,
                                             const char *shown, char *err, size_t errlen)
{
    if (s->sandbox || rs->kind != RESOURCE_VOLUME)
        return SEDGE_OK;
    if (strcmp(rs->source, rs->dest) != 0) {
        snprintf(err, errlen,
                 "%s.dest: function %s has isolation none, which cannot show %s at %s (no "
                 "sandbox, no bind): use the same path or isolation sandbox",
                 shown, s->name, rs->source, rs->dest);
        return SEDGE_ERR_UNSUPPORTED;
    }
    if (!rs->rw) {
        snprintf(err, errlen,
                 "%s.access: function %s has isolation none, which cannot make %s read-only (no "
                 "sandbox, no bind): declare it rw or use isolation sandbox",
                 shown, s->name, rs->source);
        return SEDGE_ERR_UNSUPPORTED;
    }
    return SEDGE_OK;
}

NODISCARD static sedge_err parse_resource(spec_t *s, resource_t *rs, json_t *r, const char *shown,
                                          const spec_context_t *ctx, char *err, size_t errlen)
{
    rs->kind = kind_of(r);
    rs->device = rs->kind == RESOURCE_DEVICE;
    const char *id = str_or(r, "id", NULL);
    if (id && !(rs->id = strdup(id)))
        return SEDGE_ERR_NOMEM;
    if (rs->kind == RESOURCE_SECRET) {
        /* Read through the SDK, nothing to show: kept as stored (sealed). */
        const char *sealed = str_or(r, "sealed", NULL);
        const char *topic = str_or(r, "cloud_topic", NULL);
        rs->sealed = sealed != NULL;
        rs->cloud = topic != NULL;
        rs->source = strdup(sealed ? sealed : topic ? topic : str_or(r, "value", ""));
        return rs->source ? SEDGE_OK : SEDGE_ERR_NOMEM;
    }
    const char *source = str_or(r, rs->device ? "path" : "source", "");
    rs->dest = strdup(str_or(r, rs->device ? "path" : "dest", ""));
    rs->rw = strcmp(str_or(r, "access", "ro"), "rw") == 0;
    struct stat st;
    char *real = realpath(source, NULL);
    if (!rs->dest || !real || stat(real, &st) != 0) {
        snprintf(err, errlen, "%s: function %s: resource %s does not exist", shown, s->name,
                 source);
        free(real);
        return SEDGE_ERR_NOT_FOUND;
    }
    if (rs->device) {
        rs->source = strdup(source);
        free(real);
        if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
            snprintf(err, errlen, "%s.path: %s is not a device node", shown, source);
            return SEDGE_ERR_INVALID;
        }
        rs->block = S_ISBLK(st.st_mode);
        rs->major = major(st.st_rdev);
        rs->minor = minor(st.st_rdev);
    } else if (rs->kind == RESOURCE_MODEL) {
        rs->source = real; /* the core's own cache, unpacked read-only */
    } else {
        rs->source = real;
        if (paths_overlap(real, ctx->data_dir)) {
            snprintf(err, errlen,
                     "%s.source: %s overlaps the core's data directory %s (its keys and store are "
                     "never shown to functions)",
                     shown, source, ctx->data_dir);
            return SEDGE_ERR_DENIED;
        }
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
            snprintf(err, errlen,
                     "%s.source: %s is neither a directory nor a file (a device node is a "
                     "\"device\" resource)",
                     shown, source);
            return SEDGE_ERR_INVALID;
        }
    }
    if (!rs->source)
        return SEDGE_ERR_NOMEM;
    sedge_err rc = owner_group(s, r, &st, shown, err, errlen);
    return rc ? rc : check_unsandboxed(s, rs, shown, err, errlen);
}

/* Without a user to switch to (sedged not root) a function has sedged's
 * own groups: an owner group it lacks cannot be given, and is refused
 * rather than ignored. */
NODISCARD static sedge_err check_groups_reachable(const spec_t *s, const char *where, char *err,
                                                  size_t errlen)
{
    if (s->has_user || !s->group_count)
        return SEDGE_OK;
    gid_t mine[256];
    int n = getgroups((int)ARRAY_LEN(mine), mine);
    for (size_t i = 0; i < s->group_count; i++) {
        bool member = s->groups[i] == getegid();
        for (int k = 0; k < n && !member; k++)
            member = mine[k] == s->groups[i];
        if (!member) {
            snprintf(err, errlen,
                     "%s.resources: function %s needs group %u for a resource's owner, which "
                     "sedged (not root) is not in and cannot give",
                     where, s->name, s->groups[i]);
            return SEDGE_ERR_DENIED;
        }
    }
    return SEDGE_OK;
}

NODISCARD static sedge_err parse_resources(spec_t *s, json_t *e, const char *where,
                                           const spec_context_t *ctx, char *err, size_t errlen)
{
    json_t *res = json_object_get(e, "resources");
    s->resources = calloc(json_array_size(res) + 1, sizeof *s->resources);
    if (!s->resources)
        return SEDGE_ERR_NOMEM;
    size_t i;
    json_t *r;
    json_array_foreach(res, i, r)
    {
        char shown[200];
        const char *id = str_or(r, "id", NULL);
        if (id)
            snprintf(shown, sizeof shown, "%s.resources[%zu] (%.128s)", where, i, id);
        else
            snprintf(shown, sizeof shown, "%s.resources[%zu]", where, i);
        sedge_err rc = parse_resource(s, &s->resources[s->resource_count++], r, shown, ctx, err,
                                      errlen);
        if (rc)
            return rc;
    }
    return SEDGE_OK;
}

NODISCARD static sedge_err parse_user(spec_t *s, json_t *e, const char *where, bool allow_root,
                                      char *err, size_t errlen)
{
    const char *run_as = str_or(e, "run_as", NULL);
    bool root = runner_privileged();
    if (run_as) {
        sscanf(run_as, "%u:%u", &s->uid, &s->gid);
        s->has_user = true;
    } else if (root) {
        s->uid = s->gid = NOBODY;
        s->has_user = true;
    }
    if (s->has_user && (s->uid == 0 || s->gid == 0) && !allow_root) {
        snprintf(err, errlen,
                 "%s.run_as: function %s: run_as %u:%u is root, which the core's config does "
                 "not allow (functions.allow_root)",
                 where, s->name, s->uid, s->gid);
        return SEDGE_ERR_DENIED;
    }
    if (s->has_user && (s->uid == 0 || s->gid == 0) && !s->sandbox) {
        snprintf(err, errlen,
                 "%s.isolation: function %s runs as root, which needs the sandbox: without it, "
                 "root's files on the host (the kernel's settings in /proc/sys among them) "
                 "would be its own, capabilities or not",
                 where, s->name);
        return SEDGE_ERR_DENIED;
    }
    if (s->has_user && !root && (s->uid != geteuid() || s->gid != getegid())) {
        snprintf(err, errlen, "%s.run_as: function %s: run_as %u:%u needs sedged to run as root (or with the "
                 "capabilities of the packaged service)",
                 where, s->name, s->uid, s->gid);
        return SEDGE_ERR_DENIED;
    }
    if (s->sandbox && !root) {
        snprintf(err, errlen,
                 "%s.isolation: function %s: isolation sandbox needs sedged to run as root or "
                 "with the capabilities of the packaged service (or set isolation: none)",
                 where, s->name);
        return SEDGE_ERR_DENIED;
    }
    return SEDGE_OK;
}

NODISCARD static sedge_err parse_env(spec_t *s, json_t *e)
{
    json_t *env = json_object_get(e, "env");
    s->env = calloc(json_object_size(env) + 1, sizeof *s->env);
    if (!s->env)
        return SEDGE_ERR_NOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v)
    {
        size_t n = strlen(k) + json_string_length(v) + 2;
        char *kv = malloc(n);
        if (!kv)
            return SEDGE_ERR_NOMEM;
        snprintf(kv, n, "%s=%s", k, json_string_value(v));
        s->env[s->env_count++] = kv;
    }
    return SEDGE_OK;
}

sedge_err spec_parse(json_t *e, const char *where, const spec_context_t *ctx, spec_t *s, char *err,
                     size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->source = json_incref(e);
    s->name = strdup(str_or(e, "name", ""));
    json_t *config = json_object_get(e, "config");
    s->config = config ? json_dumps(config, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
    if (!s->name || !s->config) {
        snprintf(err, errlen, "out of memory");
        return SEDGE_ERR_NOMEM;
    }
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
    s->standby = bool_or(e, "standby", true);
    s->json_encoding = strcmp(str_or(e, "encoding", "json"), "json") == 0;
    sedge_err rc;
    if ((rc = parse_user(s, e, where, ctx->allow_root, err, errlen)) || (rc = parse_env(s, e)) ||
        (rc = parse_code(s, e, where, ctx, err, errlen)) ||
        (rc = parse_resources(s, e, where, ctx, err, errlen)) ||
        (rc = check_groups_reachable(s, where, err, errlen)) ||
        (rc = parse_program(s, e, where, ctx, err, errlen))) {
        if (rc == SEDGE_ERR_NOMEM)
            snprintf(err, errlen, "out of memory");
        return rc;
    }
    return SEDGE_OK;
}

void spec_free(spec_t *s)
{
    for (size_t i = 0; s->argv && i < s->argc; i++)
        free(s->argv[i]);
    free(s->argv);
    for (size_t i = 0; i < s->env_count; i++)
        free(s->env[i]);
    free(s->env);
    for (size_t i = 0; i < s->resource_count; i++) {
        free(s->resources[i].id);
        free(s->resources[i].source);
        free(s->resources[i].dest);
    }
    free(s->resources);
    program_binds_free(&s->binds);
    free(s->code_dir);
    free(s->config);
    free(s->name);
    json_decref(s->source);
    memset(s, 0, sizeof *s);
}
