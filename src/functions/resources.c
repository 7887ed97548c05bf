/*
 * resources: a function's references to the group's resources ({id,
 * access}) turned into what spec.c reads — the inline form, with the
 * resource's id, its owner setting and, for a model, the cache directory
 * it was unpacked into; a secret is named only (its value stays in the
 * group and is handed out by ipc.c on request); a function's code given as
 * an archive ({"url", "sha256"}) becomes its unpacked directory in the
 * cache. The models and code archives themselves are brought into the
 * cache here, on a worker thread, before a deployment's functions are
 * checked, and pruned when no deployed group uses them.
 */
#include "internal.h"

#include "artifact/artifact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void resources_cache_dir(const char *data_dir, char *out, size_t len)
{
    snprintf(out, len, "%s/models", data_dir);
}

/* A function whose "code" is an archive ({"url", "sha256"}) runs from its
 * unpacked copy in the cache: {"path": CACHE/SHA256}. */
static json_t *code_in_cache(json_t *entry, const char *cache, char *err, size_t errlen)
{
    json_t *code = json_object_get(entry, "code");
    const char *sha = json_string_value(json_object_get(code, "sha256"));
    if (!sha)
        return json_incref(entry);
    char dir[4200];
    if (!artifact_cached(cache, sha, dir, sizeof dir)) {
        snprintf(err, errlen, "code: the archive %.64s is not in the cache", sha);
        return NULL;
    }
    json_t *out = json_copy(entry);
    if (!out || json_object_set_new(out, "code", json_pack("{s:s}", "path", dir)) != 0) {
        json_decref(out);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return out;
}

json_t *resources_expand(json_t *given, const group_t *g, const char *cache, char *err,
                         size_t errlen)
{
    json_t *entry = code_in_cache(given, cache, err, errlen);
    if (!entry)
        return NULL;
    json_t *list = json_object_get(entry, "resources");
    bool any = false;
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r) any |= json_object_get(r, "id") != NULL;
    if (!any)
        return entry;
    json_t *out = json_copy(entry);
    json_decref(entry);
    json_t *expanded = json_array();
    if (!out || !expanded || json_object_set_new(out, "resources", expanded) != 0) {
        json_decref(out);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_array_foreach(list, i, r)
    {
        const char *id = json_string_value(json_object_get(r, "id"));
        if (!id) {
            json_array_append(expanded, r);
            continue;
        }
        json_t *res = group_resource(g, id);
        json_t *e = res ? json_copy(res) : NULL;
        if (!e) {
            snprintf(err, errlen, "resource %.128s: not in the group", id);
            json_decref(out);
            return NULL;
        }
        json_object_del(e, "description");
        json_t *access = json_object_get(r, "access");
        json_object_set_new(
            e, "access", json_string(json_string_value(access) ? json_string_value(access) : "ro"));
        const char *type = json_string_value(json_object_get(e, "type"));
        if (type && strcmp(type, "model") == 0) {
            char dir[4200];
            const char *sha = json_string_value(json_object_get(e, "sha256"));
            if (!sha || !artifact_cached(cache, sha, dir, sizeof dir)) {
                snprintf(err, errlen, "resource %.128s: the model is not in the cache", id);
                json_decref(e);
                json_decref(out);
                return NULL;
            }
            json_object_set_new(e, "source", json_string(dir));
        }
        json_array_append_new(expanded, e);
    }
    return out;
}

/* The archives of the group (models, functions' code), fetched on a
 * worker thread. */
typedef struct {
    uv_work_t work;
    char cache[4200];
    json_t *models; /* [{what, url, sha256}], a copy owned here */
    sedge_err err;
    char why[1024];
    void (*done)(void *ctx, sedge_err err, const char *why);
    void *ctx;
} prepare_t;

static void prepare_work(uv_work_t *w)
{
    prepare_t *p = w->data;
    artifact_limits_t lim = ARTIFACT_LIMITS_DEFAULT;
    size_t i;
    json_t *m;
    json_array_foreach(p->models, i, m)
    {
        char dir[4200], why[900] = "";
        p->err = artifact_fetch_unpack(p->cache, json_string_value(json_object_get(m, "url")),
                                       json_string_value(json_object_get(m, "sha256")), &lim, dir,
                                       sizeof dir, why, sizeof why);
        if (p->err) {
            snprintf(p->why, sizeof p->why, "%.120s: %.890s",
                     json_string_value(json_object_get(m, "what")), why);
            return;
        }
    }
}

static void prepare_after(uv_work_t *w, int status)
{
    prepare_t *p = w->data;
    if (status != 0 && !p->err) {
        p->err = SEDGE_ERR_IO;
        snprintf(p->why, sizeof p->why, "the models could not be prepared");
    }
    p->done(p->ctx, p->err, p->err ? p->why : NULL);
    json_decref(p->models);
    free(p);
}

void resources_prepare(uv_loop_t *loop, const group_t *g, const char *cache,
                       void (*done)(void *ctx, sedge_err err, const char *why), void *ctx)
{
    json_t *models = json_array();
    char what[200];
    size_t i;
    json_t *r;
    json_array_foreach(g ? group_resources(g) : NULL, i, r)
    {
        const char *type = json_string_value(json_object_get(r, "type"));
        const char *sha = json_string_value(json_object_get(r, "sha256"));
        char dir[4200];
        if (!type || strcmp(type, "model") != 0 || !sha ||
            artifact_cached(cache, sha, dir, sizeof dir))
            continue;
        const char *id = json_string_value(json_object_get(r, "id"));
        snprintf(what, sizeof what, "resources[%zu] (model %.128s)", i, id ? id : "");
        /* Copies, not references: the worker thread reads them while the
         * loop's thread owns the group. */
        json_t *m = json_pack("{s:s?, s:s, s:s}", "url",
                              json_string_value(json_object_get(r, "url")), "sha256", sha, "what",
                              what);
        if (m)
            json_array_append_new(models, m);
    }
    json_array_foreach(g ? group_functions(g) : NULL, i, r)
    {
        json_t *code = json_object_get(r, "code");
        const char *sha = json_string_value(json_object_get(code, "sha256"));
        const char *name = json_string_value(json_object_get(r, "name"));
        char dir[4200];
        if (!sha || artifact_cached(cache, sha, dir, sizeof dir))
            continue;
        snprintf(what, sizeof what, "functions[%zu].code (function %.128s)", i, name ? name : "");
        json_t *m = json_pack("{s:s?, s:s, s:s}", "url",
                              json_string_value(json_object_get(code, "url")), "sha256", sha,
                              "what", what);
        if (m)
            json_array_append_new(models, m);
    }
    prepare_t *p = models && json_array_size(models) ? calloc(1, sizeof *p) : NULL;
    if (!p) {
        bool nomem = !models || json_array_size(models);
        json_decref(models);
        done(ctx, nomem ? SEDGE_ERR_NOMEM : SEDGE_OK, nomem ? "out of memory" : NULL);
        return;
    }
    snprintf(p->cache, sizeof p->cache, "%s", cache);
    p->models = models;
    p->done = done;
    p->ctx = ctx;
    p->work.data = p;
    if (uv_queue_work(loop, &p->work, prepare_work, prepare_after) != 0) {
        json_decref(models);
        free(p);
        done(ctx, SEDGE_ERR_IO, "cannot start fetching the models");
    }
}

void resources_prune(const group_t *g, const char *cache)
{
    const char *keep[64];
    size_t n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(g ? group_resources(g) : NULL, i, r)
    {
        const char *type = json_string_value(json_object_get(r, "type"));
        const char *sha = json_string_value(json_object_get(r, "sha256"));
        if (type && strcmp(type, "model") == 0 && sha && n < ARRAY_LEN(keep))
            keep[n++] = sha;
    }
    json_array_foreach(g ? group_functions(g) : NULL, i, r)
    {
        const char *sha = json_string_value(json_object_get(json_object_get(r, "code"), "sha256"));
        if (sha && n < ARRAY_LEN(keep))
            keep[n++] = sha;
    }
    artifact_cache_prune(cache, keep, n);
}

void functions_secret_arrived(functions_t *f, const char *id, bytes_t value)
{
    if (!f->cloud_secrets && !(f->cloud_secrets = json_object()))
        return;
    const uint8_t *key = f->o.seal_key.get ? f->o.seal_key.get(f->o.seal_key.ctx) : NULL;
    char *kept = key ? group_seal_value(id, value.data, value.len, key)
                     : strndup((const char *)value.data, value.len);
    if (kept)
        json_object_set_new(f->cloud_secrets, id, json_string(kept));
    free(kept);
}
