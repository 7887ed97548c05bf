/*
 * deploy: the deployment state machine.
 *
 *   submit: validate -> store version (deploying) -> apply
 *             -> applied: statuses + active version in one batch -> done
 *             -> failed:  status failed, apply the previous group again -> done
 *   rollback: read the version's document -> validate -> apply -> as above
 */
#include "deploy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "deploy"

typedef struct {
    uint64_t version;
    char *group;
    char *checksum;
    int64_t created_at;
    char *status;
    char *reason;
} record_t;

struct deploy {
    deploy_options_t o;
    record_t *history;
    size_t count, cap;
    uint64_t active; /* 0: none */
    group_t *active_group;
    /* The operation in progress. */
    bool busy;
    bool rollback;
    group_t *candidate;
    uint64_t candidate_version;
    char *failure; /* why the candidate failed to apply */
    deploy_done_fn done;
    void *done_ctx;
};

static record_t *find(deploy_t *d, uint64_t version)
{
    for (size_t i = 0; i < d->count; i++)
        if (d->history[i].version == version)
            return &d->history[i];
    return NULL;
}

static void set_text(char **field, const char *value)
{
    free(*field);
    *field = strdup(value ? value : "");
}

static record_t *add_record(deploy_t *d, uint64_t version, const char *group, const char *checksum,
                            int64_t created_at, const char *status, const char *reason)
{
    record_t *history = array_room(d->history, d->count, &d->cap, sizeof *history, 16);
    if (!history)
        return NULL;
    d->history = history;
    record_t *r = &d->history[d->count++];
    *r = (record_t){.version = version, .created_at = created_at};
    set_text(&r->group, group);
    set_text(&r->checksum, checksum);
    set_text(&r->status, status);
    set_text(&r->reason, reason);
    return r;
}

static void set_status(deploy_t *d, uint64_t version, const char *status, const char *reason)
{
    record_t *r = find(d, version);
    if (r) {
        set_text(&r->status, status);
        set_text(&r->reason, reason);
    }
    store_set_deployment_status(d->o.store, version, status, reason);
}

static void finish(deploy_t *d, sedge_err err, const char *message, uint64_t version)
{
    deploy_done_fn done = d->done;
    void *ctx = d->done_ctx;
    d->busy = false;
    d->done = NULL;
    free(d->failure);
    d->failure = NULL;
    if (done)
        done(ctx, err, message, version);
}

/* The statuses and active version are durable: report. */
static void activation_settled(void *ctx, sedge_err result)
{
    deploy_t *d = ctx;
    char msg[256];
    if (result) {
        snprintf(msg, sizeof msg, "version %llu is active but could not be recorded: %s",
                 (unsigned long long)d->active, sedge_strerror(result));
        finish(d, result, msg, d->active);
        return;
    }
    record_t *r = find(d, d->active);
    snprintf(msg, sizeof msg, "%s version %llu of group %s (checksum %.12s)",
             d->rollback ? "rolled back to" : "deployed", (unsigned long long)d->active,
             r ? r->group : "?", r ? r->checksum : "?");
    LOGI("%s", msg);
    finish(d, SEDGE_OK, msg, d->active);
}

/* The previous group is applied again after a failure. */
static void reapplied(void *token, sedge_err err, const char *why)
{
    deploy_t *d = token;
    if (err)
        LOGE("re-applying version %llu after the failure also failed: %s",
             (unsigned long long)d->active, why ? why : sedge_strerror(err));
    char msg[1024], stays[64] = "no group is active";
    if (d->active)
        snprintf(stays, sizeof stays, "version %llu stays active", (unsigned long long)d->active);
    snprintf(msg, sizeof msg, "version %llu failed to apply: %s; %s",
             (unsigned long long)d->candidate_version, d->failure ? d->failure : "?", stays);
    LOGW("%s", msg);
    group_free(d->candidate);
    d->candidate = NULL;
    finish(d, SEDGE_ERR_INVALID, msg, d->candidate_version);
}

static void applied(void *token, sedge_err err, const char *why)
{
    deploy_t *d = token;
    uint64_t version = d->candidate_version;
    if (err) {
        d->failure = strdup(why ? why : sedge_strerror(err));
        set_status(d, version, "failed", d->failure);
        /* Back to what was active: the previous group, or none. */
        d->o.apply(d->o.ctx, d->active_group, reapplied, d);
        return;
    }
    uint64_t previous = d->active;
    if (previous) {
        char reason[64] = "";
        if (d->rollback)
            snprintf(reason, sizeof reason, "rolled back to version %llu",
                     (unsigned long long)version);
        set_status(d, previous, d->rollback ? "rolled_back" : "superseded", reason);
    }
    set_status(d, version, "active", "");
    uint64_t batch = store_put_meta(d->o.store, "active_deployment", (int64_t)version);
    group_free(d->active_group);
    d->active_group = d->candidate;
    d->candidate = NULL;
    d->active = version;
    if (store_when_settled(d->o.store, batch, activation_settled, d))
        activation_settled(d, SEDGE_ERR_NOMEM);
}

static void stored(void *ctx, sedge_err result)
{
    deploy_t *d = ctx;
    if (result) {
        char msg[256];
        snprintf(msg, sizeof msg, "the store could not save the deployment: %s",
                 sedge_strerror(result));
        group_free(d->candidate);
        d->candidate = NULL;
        finish(d, result, msg, 0);
        return;
    }
    d->o.apply(d->o.ctx, d->candidate, applied, d);
}

static bool begin(deploy_t *d, deploy_done_fn done, void *ctx)
{
    if (d->busy) {
        done(ctx, SEDGE_ERR_BUSY, "another deployment is in progress; try again when it ends", 0);
        return false;
    }
    d->busy = true;
    d->done = done;
    d->done_ctx = ctx;
    return true;
}

/* The document as it will be stored, its secret values sealed, into *out;
 * NULL when it has none to seal (or is not JSON: group_parse says why).
 * An error when a value cannot be sealed: never stored as given. */
static sedge_err sealed_text(deploy_t *d, const char *text, size_t len, char **out)
{
    *out = NULL;
    if (!d->o.seal_key.get || len > d->o.max_bytes)
        return SEDGE_OK;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    bool changed = false;
    sedge_err err = json_is_object(doc) ? group_seal_secrets(doc, &d->o.seal_key, &changed)
                                        : SEDGE_OK;
    if (!err && changed && !(*out = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_INDENT(1))))
        err = SEDGE_ERR_NOMEM;
    json_decref(doc);
    return err;
}

void deploy_submit(deploy_t *d, const char *text, size_t len, deploy_done_fn done, void *ctx)
{
    if (!begin(d, done, ctx))
        return;
    d->rollback = false;
    char *sealed = NULL;
    sedge_err sealing = sealed_text(d, text, len, &sealed);
    if (sealing) {
        finish(d, sealing,
               sealing == SEDGE_ERR_DENIED
                   ? "resources: the secrets cannot be sealed: this core has no sealing key "
                     "(sedged's log says why)"
                   : sedge_strerror(sealing),
               0);
        return;
    }
    if (sealed) {
        text = sealed;
        len = strlen(sealed);
    }
    buf_t errors = {0};
    group_t *g = NULL;
    sedge_err err = group_parse(text, len, d->o.max_bytes, &g, &errors);
    if (!err && d->o.check && !d->o.check(d->o.ctx, g, &errors)) {
        group_free(g);
        g = NULL;
        err = SEDGE_ERR_INVALID;
    }
    if (err) {
        bool terminated = buf_append(&errors, "", 1) == SEDGE_OK;
        finish(d, err, terminated ? (const char *)errors.data : sedge_strerror(err), 0);
        buf_free(&errors);
        free(sealed);
        return;
    }
    buf_free(&errors);
    uint64_t version = d->count ? d->history[d->count - 1].version + 1 : 1;
    int64_t now = clock_wall_s();
    if (!add_record(d, version, g->name, g->checksum, now, "deploying", "")) {
        group_free(g);
        free(sealed);
        finish(d, SEDGE_ERR_NOMEM, "out of memory", 0);
        return;
    }
    store_deployment_t row = {
        .version = version,
        .group = bytes_of_cstr(g->name),
        .checksum = bytes_of_cstr(g->checksum),
        .created_at = now,
        .status = BYTES_LIT("deploying"),
        .reason = BYTES_LIT(""),
    };
    uint64_t batch = store_put_deployment(d->o.store, &row, (bytes_t){(const uint8_t *)text, len});
    free(sealed);
    d->candidate = g;
    d->candidate_version = version;
    LOGI("deploying version %llu of group %s (%zu things, %zu routes)", (unsigned long long)version,
         g->name, g->thing_count, g->route_count);
    if (store_when_settled(d->o.store, batch, stored, d))
        stored(d, SEDGE_ERR_NOMEM);
}

static bool good_status(const char *status)
{
    return strcmp(status, "superseded") == 0 || strcmp(status, "rolled_back") == 0 ||
           strcmp(status, "active") == 0;
}

void deploy_rollback(deploy_t *d, uint64_t version, deploy_done_fn done, void *ctx)
{
    if (!begin(d, done, ctx))
        return;
    d->rollback = true;
    char msg[256];
    if (!version) {
        for (size_t i = d->count; i-- > 0;) {
            const record_t *r = &d->history[i];
            if (r->version < d->active && good_status(r->status)) {
                version = r->version;
                break;
            }
        }
        if (!version) {
            finish(d, SEDGE_ERR_NOT_FOUND, "no earlier good version to roll back to", 0);
            return;
        }
    }
    record_t *r = find(d, version);
    if (!r) {
        snprintf(msg, sizeof msg, "no version %llu (see sedgectl deployments)",
                 (unsigned long long)version);
        finish(d, SEDGE_ERR_NOT_FOUND, msg, 0);
        return;
    }
    if (version == d->active) {
        snprintf(msg, sizeof msg, "version %llu is already active", (unsigned long long)version);
        finish(d, SEDGE_ERR_INVALID, msg, version);
        return;
    }
    if (!good_status(r->status)) {
        snprintf(msg, sizeof msg, "version %llu %s; roll back to a version that was active",
                 (unsigned long long)version,
                 strcmp(r->status, "failed") == 0 ? "failed to apply" : "never became active");
        finish(d, SEDGE_ERR_INVALID, msg, version);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    buf_t errors = {0};
    group_t *g = NULL;
    sedge_err err = store_read_deployment_document(d->o.store, version, &text, &len);
    if (!err)
        err = group_parse(text, len, SIZE_MAX, &g, &errors);
    free(text);
    buf_free(&errors);
    if (err) {
        snprintf(msg, sizeof msg, "cannot load version %llu: %s", (unsigned long long)version,
                 sedge_strerror(err));
        finish(d, err, msg, version);
        return;
    }
    d->candidate = g;
    d->candidate_version = version;
    LOGI("rolling back to version %llu", (unsigned long long)version);
    d->o.apply(d->o.ctx, g, applied, d);
}

static sedge_err load_record(void *ctx, const store_deployment_t *v)
{
    deploy_t *d = ctx;
    char *group = bytes_dup_cstr(v->group), *checksum = bytes_dup_cstr(v->checksum),
         *status = bytes_dup_cstr(v->status), *reason = bytes_dup_cstr(v->reason);
    record_t *r = group && checksum && status && reason
                      ? add_record(d, v->version, group, checksum, v->created_at, status, reason)
                      : NULL;
    free(group);
    free(checksum);
    free(status);
    free(reason);
    return r ? SEDGE_OK : SEDGE_ERR_NOMEM;
}

/* The active version applied again at start; functions may take a while
 * (long-lived ones must connect), so this may come after deploy_open. A
 * failure does not stop the core: the routes are in force, and what failed
 * is shown by sedgectl functions. */
static void startup_applied(void *token, sedge_err err, const char *why)
{
    deploy_t *d = token;
    d->busy = false;
    if (err)
        LOGE("the active deployment, version %llu, could not be applied completely: %s",
             (unsigned long long)d->active, why ? why : sedge_strerror(err));
}

sedge_err deploy_open(const deploy_options_t *opts, deploy_t **out)
{
    deploy_t *d = calloc(1, sizeof *d);
    if (!d)
        return SEDGE_ERR_NOMEM;
    d->o = *opts;
    sedge_err err = store_load_deployments(d->o.store, load_record, d);
    if (err) {
        deploy_free(d);
        return err;
    }
    for (size_t i = 0; i < d->count; i++)
        if (strcmp(d->history[i].status, "deploying") == 0)
            set_status(d, d->history[i].version, "failed",
                       "interrupted: the core stopped during the deployment");
    int64_t active = 0;
    if (store_read_meta(d->o.store, "active_deployment", &active) == SEDGE_OK && active > 0) {
        char *text = NULL;
        size_t len = 0;
        buf_t errors = {0};
        group_t *g = NULL;
        err = store_read_deployment_document(d->o.store, (uint64_t)active, &text, &len);
        if (!err)
            err = group_parse(text, len, SIZE_MAX, &g, &errors);
        free(text);
        if (err) {
            LOGE("the active deployment, version %lld, cannot be loaded: %s%s", (long long)active,
                 sedge_strerror(err), errors.len ? " (see its errors with sedgectl)" : "");
            buf_free(&errors);
            deploy_free(d);
            return err;
        }
        buf_free(&errors);
        d->active = (uint64_t)active;
        d->active_group = g;
        d->busy = true;
        LOGI("group %s, version %lld, is active", g->name, (long long)active);
        d->o.apply(d->o.ctx, g, startup_applied, d);
    }
    *out = d;
    return SEDGE_OK;
}

void deploy_free(deploy_t *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->count; i++) {
        record_t *r = &d->history[i];
        free(r->group);
        free(r->checksum);
        free(r->status);
        free(r->reason);
    }
    free(d->history);
    group_free(d->candidate);
    group_free(d->active_group);
    free(d->failure);
    free(d);
}

uint64_t deploy_active_version(const deploy_t *d)
{
    return d->active;
}

const group_t *deploy_active_group(const deploy_t *d)
{
    return d->active_group;
}

json_t *deploy_history(const deploy_t *d)
{
    json_t *list = json_array();
    for (size_t i = 0; i < d->count; i++) {
        const record_t *r = &d->history[i];
        json_t *o = json_object();
        json_object_set_new(o, "version", json_integer((json_int_t)r->version));
        json_object_set_new(o, "group", json_string(r->group));
        json_object_set_new(o, "created_at", json_integer(r->created_at));
        json_object_set_new(o, "status", json_string(r->status));
        json_object_set_new(o, "checksum", json_string(r->checksum));
        if (r->reason[0])
            json_object_set_new(o, "reason", json_string(r->reason));
        json_array_append_new(list, o);
    }
    return list;
}
