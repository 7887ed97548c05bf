/*
 * update: one update at a time. `update` records the phase "installing"
 * before the install starts on libuv's thread pool, so that a core killed
 * meanwhile tells the truth at its next start (ota_boot turns it into
 * "failed: interrupted"); a refusal is recorded as "failed" with its
 * reason and answered to sedgectl; a good install is answered, then the
 * core stops (the store flushed and closed) and sedged execs the new
 * release (ota_exec_trial). The new release's updater runs the health
 * check and commits; the guard rolls back when it does not.
 */
#include "update.h"

#include "ota/ota.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_TAG "update"
#define HEALTH_POLL_MS 50
#define REPLY_GRACE_MS 100 /* the answer leaves before the admin socket closes */

/* The store schema this release reads and writes (src/store's
 * PRAGMA user_version); a bundle may be one step either side. */
#define STORE_SCHEMA 2

typedef struct {
    uv_work_t work;
    struct updater *u;
    char file[PATH_MAX]; /* the bundle: given, or where the download lands */
    char url[2048];      /* "" for a local file */
    char sha256[65];     /* "" when not given */
    char job[128];
    bool allow_downgrade;
    bool has_signature;
    uint8_t signature[OTA_SIG_BYTES];
    char running[OTA_VERSION_MAX];
    update_done_fn done;
    void *ctx;
    int cancel;
    uint64_t bytes_done, bytes_total; /* written by the worker (__atomic) */
    sedge_err rc;
    char slot[2];
    char version[OTA_VERSION_MAX];
    char err[1024];
} install_job_t;

struct updater {
    updater_options_t o;
    uv_timer_t timer; /* health checks, then the pause before a restart */
    core_then_t then;
    install_job_t *job;
    bool committed;
    void (*stop_done)(void *);
    void *stop_ctx;
    bool timer_closed;
};

static void state_of(const updater_t *u, ota_state_t *st)
{
    if (ota_state_load(u->o.cfg->root, st)) {
        LOGW("%s/state.json is unreadable; starting it afresh", u->o.cfg->root);
        memset(st, 0, sizeof *st);
    }
}

static bool in_progress(const ota_state_t *st)
{
    return st->phase == OTA_DOWNLOADING || st->phase == OTA_INSTALLING || st->phase == OTA_TRYING;
}

static void record(const char *root, const ota_state_t *st)
{
    if (ota_state_save(root, st))
        LOGE("cannot write %s/state.json: %s", root, strerror(errno));
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    install_job_t *j = ctx;
    __atomic_store_n(&j->bytes_done, done, __ATOMIC_RELAXED);
    __atomic_store_n(&j->bytes_total, total, __ATOMIC_RELAXED);
}

/* The worker's side of a download: ROOT/downloads/<hash of the URL>, so a
 * restart resumes the same file. */
static sedge_err download(install_job_t *j)
{
    const ota_settings_t *cfg = j->u->o.cfg;
    char dir[PATH_MAX], name[65];
    ota_sha256_hex(bytes_of_cstr(j->url), name);
    name[32] = '\0';
    if (snprintf(dir, sizeof dir, "%s/downloads", cfg->root) >= (int)sizeof dir ||
        snprintf(j->file, sizeof j->file, "%s/%s.sedge", dir, name) >= (int)sizeof j->file) {
        snprintf(j->err, sizeof j->err, "ota.root is too long a path");
        return SEDGE_ERR_TOO_LARGE;
    }
    mkdir(dir, 0700);
    ota_download_t d = {.url = j->url,
                        .dest = j->file,
                        .ca_file = cfg->ca_file,
                        .max_bytes = cfg->max_bundle_bytes,
                        .max_rate = cfg->max_rate_bytes_s,
                        .stall_s = cfg->stall_timeout_s,
                        .attempts = 5,
                        .progress = on_progress,
                        .ctx = j,
                        .cancel = &j->cancel};
    sedge_err rc = ota_download(&d, j->err, sizeof j->err);
    if (rc)
        return rc;
    char hex[65];
    uint64_t size = 0;
    if (j->sha256[0] && (ota_file_sha256(j->file, &size, hex) || strcmp(hex, j->sha256) != 0)) {
        unlink(j->file);
        snprintf(j->err, sizeof j->err,
                 "the downloaded bundle does not have the SHA-256 the update gave (%s)", j->sha256);
        return SEDGE_ERR_INVALID;
    }
    ota_state_t st;
    if (!ota_state_load(cfg->root, &st) && st.phase == OTA_DOWNLOADING) {
        st.phase = OTA_INSTALLING;
        st.bytes_done = st.bytes_total = size ? size : j->bytes_done;
        record(cfg->root, &st);
    }
    return SEDGE_OK;
}

static void install_work(uv_work_t *w)
{
    install_job_t *j = w->data;
    const ota_settings_t *cfg = j->u->o.cfg;
    if (j->url[0] && (j->rc = download(j)))
        return;
    ota_keys_t *keys = NULL;
    j->rc = ota_keys_load((const char *const *)cfg->trusted_keys, cfg->key_count, &keys, j->err,
                          sizeof j->err);
    if (j->rc)
        return;
    ota_install_t in = {.root = cfg->root,
                        .keys = keys,
                        .running_version = j->running,
                        .store_schema = STORE_SCHEMA,
                        .allow_downgrade = j->allow_downgrade,
                        .signature = j->has_signature ? j->signature : NULL};
    j->rc = ota_install(&in, j->file, j->slot, j->version, j->err, sizeof j->err);
    ota_keys_free(keys);
    /* A downloaded bundle is kept only while a resume may need it. */
    if (j->url[0] && (!j->rc || (j->rc != SEDGE_ERR_IO && j->rc != SEDGE_ERR_FULL)))
        unlink(j->file);
}

/* The outcome of the update a cloud job asked for, once: SUCCEEDED or
 * FAILED with the reason (durable in the jobs module from here on). */
static void report_outcome(updater_t *u, ota_state_t *st)
{
    if (!st->job[0] || st->job_reported || !u->o.report)
        return;
    if (st->phase == OTA_COMMITTED)
        u->o.report(u->o.ctx, st->job, "SUCCEEDED",
                    json_pack("{s:s, s:s}", "phase", "committed", "version", st->version));
    else if (st->phase == OTA_ROLLED_BACK || st->phase == OTA_FAILED)
        u->o.report(
            u->o.ctx, st->job, "FAILED",
            json_pack("{s:s, s:s}", "phase", ota_phase_name(st->phase), "reason", st->reason));
    else
        return;
    st->job_reported = true;
    record(u->o.cfg->root, st);
}

void updater_job_seen(updater_t *u, const char *job, bool *known)
{
    ota_state_t st;
    state_of(u, &st);
    *known = st.job[0] && strcmp(st.job, job) == 0;
    if (*known) {
        st.job_reported = false; /* offered again: the cloud lacks the outcome */
        report_outcome(u, &st);
    }
}

static void timer_cb(uv_timer_t *t);

static void finish_stop(updater_t *u)
{
    if (u->stop_done && u->timer_closed && !u->job) {
        void (*done)(void *) = u->stop_done;
        u->stop_done = NULL;
        done(u->stop_ctx);
    }
}

static void install_done(uv_work_t *w, int status)
{
    install_job_t *j = w->data;
    updater_t *u = j->u;
    u->job = NULL;
    ota_state_t st;
    state_of(u, &st);
    if (status == UV_ECANCELED) {
        j->rc = SEDGE_ERR_CLOSED;
        snprintf(j->err, sizeof j->err, "the core stopped before the install began");
    }
    if (j->rc) {
        st.phase = OTA_FAILED;
        snprintf(st.reason, sizeof st.reason, "%s", j->err);
        st.finished = clock_wall_s();
        record(u->o.cfg->root, &st);
        report_outcome(u, &st);
        LOGW("update from %s refused: %s", j->url[0] ? j->url : j->file, j->err);
        if (j->done)
            j->done(j->ctx, j->rc, j->err, NULL);
    } else {
        st.phase = OTA_INSTALLING;
        snprintf(st.slot, sizeof st.slot, "%s", j->slot);
        snprintf(st.version, sizeof st.version, "%s", j->version);
        record(u->o.cfg->root, &st);
        LOGI("version %s installed in slot %s; restarting into it", j->version, j->slot);
        if (j->done)
            j->done(j->ctx, SEDGE_OK, NULL, j->version);
        if (!u->stop_done) {
            u->then = CORE_THEN_TRIAL;
            uv_timer_start(&u->timer, timer_cb, REPLY_GRACE_MS, 0);
        }
    }
    free(j);
    finish_stop(u);
}

sedge_err updater_submit(updater_t *u, const update_request_t *r, update_done_fn done, void *ctx,
                         char *err, size_t errlen)
{
    const char *source = r->url ? r->url : r->file;
    if (!source || (r->file && r->file[0] != '/') || strlen(source) >= 2048 ||
        (r->url && strncmp(r->url, "https://", 8) != 0 && strncmp(r->url, "http://", 7) != 0)) {
        snprintf(err, errlen, "an update needs an absolute path or an http(s) URL of a bundle");
        return SEDGE_ERR_INVALID;
    }
    if (r->sha256 && (strlen(r->sha256) != 64 || strspn(r->sha256, "0123456789abcdef") != 64)) {
        snprintf(err, errlen, "sha256 must be 64 lowercase hex digits");
        return SEDGE_ERR_INVALID;
    }
    ota_state_t st;
    state_of(u, &st);
    if (u->job || u->stop_done || in_progress(&st)) {
        snprintf(err, errlen, "an update is already in progress (%s%s%s)", ota_phase_name(st.phase),
                 st.version[0] ? " of version " : "", st.version);
        return SEDGE_ERR_BUSY;
    }
    install_job_t *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return SEDGE_ERR_NOMEM;
    }
    j->u = u;
    j->done = done;
    j->ctx = ctx;
    j->work.data = j;
    j->allow_downgrade = r->allow_downgrade;
    snprintf(r->url ? j->url : j->file, r->url ? sizeof j->url : sizeof j->file, "%s", source);
    snprintf(j->sha256, sizeof j->sha256, "%s", r->sha256 ? r->sha256 : "");
    snprintf(j->job, sizeof j->job, "%s", r->job ? r->job : "");
    if (r->signature) {
        memcpy(j->signature, r->signature, OTA_SIG_BYTES);
        j->has_signature = true;
    }
    char running_slot[2];
    ota_running(u->o.cfg->root, SEDGE_VERSION, j->running, running_slot);
    ota_state_t next = {.phase = r->url ? OTA_DOWNLOADING : OTA_INSTALLING,
                        .started = clock_wall_s()};
    snprintf(next.source, sizeof next.source, "%s", source);
    snprintf(next.job, sizeof next.job, "%s", j->job);
    memcpy(next.bad, st.bad, sizeof st.bad);
    next.bad_count = st.bad_count;
    next.was_connected = u->o.cloud_up && u->o.cloud_up(u->o.ctx);
    snprintf(next.prev_version, sizeof next.prev_version, "%s", j->running);
    record(u->o.cfg->root, &next);
    LOGI("update from %s: %s (running %s)", source,
         r->url ? "downloading" : "checking and installing", j->running);
    u->job = j;
    int rc = uv_queue_work(u->o.loop, &j->work, install_work, install_done);
    if (rc) {
        u->job = NULL;
        j->rc = SEDGE_ERR_IO;
        snprintf(j->err, sizeof j->err, "cannot start the install: %s", uv_strerror(rc));
        install_done(&j->work, 0);
    }
    return SEDGE_OK;
}

static void cmd_update(void *ctx, json_t *request, admin_request_t *req)
{
    updater_t *u = ctx;
    update_request_t r = {
        .file = json_string_value(json_object_get(request, "file")),
        .url = json_string_value(json_object_get(request, "url")),
        .sha256 = json_string_value(json_object_get(request, "sha256")),
        .allow_downgrade = json_is_true(json_object_get(request, "allow_downgrade")),
    };
    char err[300];
    if ((r.file != NULL) == (r.url != NULL)) {
        admin_reply_error(req, "update: give \"file\" or \"url\"");
        return;
    }
    /* Answered at once; sedgectl follows the update with update_status. */
    if (updater_submit(u, &r, NULL, NULL, err, sizeof err))
        admin_reply_error(req, "%s", err);
    else
        admin_reply(req, json_pack("{s:s}", "phase", r.url ? "downloading" : "installing"));
}

static void cmd_update_status(void *ctx, json_t *request, admin_request_t *req)
{
    (void)request;
    updater_t *u = ctx;
    ota_state_t st;
    state_of(u, &st);
    char running[OTA_VERSION_MAX], running_slot[2], current[2];
    ota_running(u->o.cfg->root, SEDGE_VERSION, running, running_slot);
    ota_current_slot(u->o.cfg->root, current);
    if (u->job) {
        st.bytes_done = __atomic_load_n(&u->job->bytes_done, __ATOMIC_RELAXED);
        st.bytes_total = __atomic_load_n(&u->job->bytes_total, __ATOMIC_RELAXED);
    }
    json_t *r = ota_state_json(&st);
    json_object_set_new(r, "running_version", json_string(running));
    json_object_set_new(r, "running_slot", json_string(running_slot));
    json_object_set_new(r, "current_slot", json_string(current));
    json_object_set_new(r, "core_pid", json_integer(getpid()));
    json_object_set_new(r, "root", json_string(u->o.cfg->root));
    json_object_set_new(r, "health_timeout_s", json_integer(u->o.cfg->health_timeout_s));
    json_t *keys = json_array();
    for (size_t i = 0; i < u->o.cfg->key_count; i++)
        json_array_append_new(keys, json_string(u->o.cfg->trusted_keys[i]));
    json_object_set_new(r, "trusted_keys", keys);
    admin_reply(req, r);
}

static void cmd_update_rollback(void *ctx, json_t *request, admin_request_t *req)
{
    (void)request;
    updater_t *u = ctx;
    ota_state_t st;
    state_of(u, &st);
    if (u->job || u->stop_done || st.phase != OTA_COMMITTED || !st.prev_exec[0]) {
        admin_reply_error(req, "nothing to roll back to: the last update is %s%s%s",
                          ota_phase_name(st.phase), st.reason[0] ? " — " : "", st.reason);
        return;
    }
    LOGI("rolling back from %s to %s (sedgectl update --rollback)", st.version, st.prev_version);
    admin_reply(req, json_pack("{s:s, s:s}", "phase", "restarting", "version", st.prev_version));
    u->then = CORE_THEN_ROLLBACK;
    uv_timer_start(&u->timer, timer_cb, REPLY_GRACE_MS, 0);
}

/* A restart waits out REPLY_GRACE_MS; a trial polls its health. */
static void timer_cb(uv_timer_t *t)
{
    updater_t *u = t->data;
    if (u->then != CORE_THEN_EXIT) {
        u->o.restart(u->o.ctx, u->then);
        return;
    }
    if (u->committed)
        return;
    ota_state_t st;
    state_of(u, &st);
    if (st.phase != OTA_TRYING || st.core_pid != getpid()) {
        uv_timer_stop(t); /* the guard rolled back meanwhile */
        return;
    }
    if (st.was_connected && !(u->o.cloud_up && u->o.cloud_up(u->o.ctx)))
        return; /* the cloud link was up before: wait for it */
    if (u->o.functions_up && !u->o.functions_up(u->o.ctx))
        return;
    if (ota_commit(u->o.cfg->root)) {
        LOGE("cannot commit version %s: %s", st.version, strerror(errno));
        return;
    }
    u->committed = true;
    uv_timer_stop(t);
    state_of(u, &st);
    report_outcome(u, &st);
    LOGI("version %s is healthy: committed (%llu s after the update began)", st.version,
         (unsigned long long)(clock_wall_s() - st.started));
}

/* mkdir -p, 0755: the release slots are readable like /usr. */
static sedge_err make_root(const char *root)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/", root) >= (int)sizeof path)
        return SEDGE_ERR_TOO_LARGE;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            LOGE("cannot create %s (ota.root): %s", path, strerror(errno));
            return SEDGE_ERR_IO;
        }
        *p = '/';
    }
    chmod(root, 0755);
    return SEDGE_OK;
}

sedge_err updater_start(const updater_options_t *o, admin_t *admin, updater_t **out)
{
    sedge_err err = make_root(o->cfg->root);
    if (err)
        return err;
    updater_t *u = calloc(1, sizeof *u);
    if (!u)
        return SEDGE_ERR_NOMEM;
    u->o = *o;
    uv_timer_init(o->loop, &u->timer);
    u->timer.data = u;
    if ((err = admin_register(admin, "update", cmd_update, u)) ||
        (err = admin_register(admin, "update_status", cmd_update_status, u)) ||
        (err = admin_register(admin, "update_rollback", cmd_update_rollback, u))) {
        uv_close((uv_handle_t *)&u->timer, NULL);
        u->timer_closed = true;
        *out = u;
        return err;
    }
    if (o->cfg->trial) {
        uv_timer_start(&u->timer, timer_cb, 0, HEALTH_POLL_MS);
    } else {
        ota_state_t st;
        state_of(u, &st);
        report_outcome(u, &st); /* e.g. a rollback that brought this release back */
    }
    *out = u;
    return SEDGE_OK;
}

static void timer_closed(uv_handle_t *h)
{
    updater_t *u = h->data;
    u->timer_closed = true;
    finish_stop(u);
}

void updater_stop(updater_t *u, void (*done)(void *ctx), void *ctx)
{
    u->stop_done = done;
    u->stop_ctx = ctx;
    if (u->job) {
        __atomic_store_n(&u->job->cancel, 1, __ATOMIC_RELAXED);
        uv_cancel((uv_req_t *)&u->job->work);
    }
    if (!u->timer_closed && !uv_is_closing((uv_handle_t *)&u->timer))
        uv_close((uv_handle_t *)&u->timer, timer_closed);
    else
        finish_stop(u);
}

void updater_free(updater_t *u)
{
    free(u);
}

bool updater_progress(const updater_t *u, const char **phase, uint64_t *done, uint64_t *total)
{
    if (!u->job)
        return false;
    *done = __atomic_load_n(&u->job->bytes_done, __ATOMIC_RELAXED);
    *total = __atomic_load_n(&u->job->bytes_total, __ATOMIC_RELAXED);
    *phase = u->job->url[0] && (!*total || *done < *total) ? "downloading" : "installing";
    return true;
}

core_then_t updater_then(const updater_t *u)
{
    return u ? u->then : CORE_THEN_EXIT;
}
