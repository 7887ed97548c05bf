/*
 * update_jobs: AWS IoT Jobs whose document is an update of the core —
 *   {"operation": "sedge.update", "url": "https://...", "sha256": "<hex>",
 *    "signature": "<base64 of the bundle's Ed25519 signature>",
 *    "allow_downgrade": false,
 *    "not_before": 1767225600 | "2026-01-01T00:00:00Z",
 *    "window": {"start": "02:00", "end": "04:00"}}
 * (signature, allow_downgrade, not_before and window optional; the window
 * is daily, UTC, and may wrap midnight). One job document sent to many
 * cores updates each of them.
 *
 * A job not yet due is reported IN_PROGRESS {"phase": "scheduled",
 * "not_before"} and started by a timer (a core restarted meanwhile gets it
 * offered again by the cloud). A running update is reported IN_PROGRESS
 * with its phase and percent as it goes, then "restarting"; the outcome —
 * SUCCEEDED from the committed release, FAILED with the reason from the
 * release that runs after a refusal or a rollback — is reported by the
 * updater, which keeps the job in its durable state across the restart.
 */
#include "update.h"

#include "ota/ota.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_TAG "update"
#define PROGRESS_MS 1000

struct update_jobs {
    updater_t *u;
    void (*report)(void *ctx, const char *job, const char *status, json_t *details);
    void *ctx;
    uv_timer_t sched;    /* the scheduled job's start */
    uv_timer_t progress; /* the running job's progress reports */
    char scheduled[128];
    json_t *scheduled_doc;
    char running[128];
    char last_phase[16];
    int last_percent;
    int open_handles;
    void (*stop_done)(void *);
    void *stop_ctx;
};

static void report(update_jobs_t *uj, const char *job, const char *status, json_t *details)
{
    uj->report(uj->ctx, job, status, details);
}

static void progress_cb(uv_timer_t *t)
{
    update_jobs_t *uj = t->data;
    const char *phase;
    uint64_t done, total;
    if (!uj->running[0] || !updater_progress(uj->u, &phase, &done, &total)) {
        uv_timer_stop(t);
        return;
    }
    int percent = total ? (int)(done * 100 / total) : 0;
    if (strcmp(phase, uj->last_phase) == 0 && percent < uj->last_percent + 10)
        return;
    snprintf(uj->last_phase, sizeof uj->last_phase, "%s", phase);
    uj->last_percent = percent;
    char pct[8];
    snprintf(pct, sizeof pct, "%d", percent);
    report(uj, uj->running, "IN_PROGRESS", json_pack("{s:s, s:s}", "phase", phase, "percent", pct));
}

static void job_done(void *ctx, sedge_err err, const char *message, const char *version)
{
    (void)message;
    update_jobs_t *uj = ctx;
    uv_timer_stop(&uj->progress);
    /* A refusal was reported FAILED by the updater (its state names the job). */
    if (!err)
        report(uj, uj->running, "IN_PROGRESS",
               json_pack("{s:s, s:s, s:s}", "phase", "restarting", "percent", "100", "version",
                         version));
    uj->running[0] = '\0';
}

static void start(update_jobs_t *uj, const char *job, json_t *doc)
{
    buf_t sig = {0};
    const char *sig_text = json_string_value(json_object_get(doc, "signature"));
    update_request_t r = {
        .url = json_string_value(json_object_get(doc, "url")),
        .sha256 = json_string_value(json_object_get(doc, "sha256")),
        .job = job,
        .allow_downgrade = json_is_true(json_object_get(doc, "allow_downgrade")),
    };
    char err[300];
    if (sig_text && (base64_decode(sig_text, &sig) || sig.len != OTA_SIG_BYTES)) {
        report(uj, job, "FAILED",
               json_pack("{s:s}", "reason", "signature must be the base64 of 64 bytes"));
        buf_free(&sig);
        return;
    }
    r.signature = sig_text ? sig.data : NULL;
    snprintf(uj->running, sizeof uj->running, "%s", job);
    if (updater_submit(uj->u, &r, job_done, uj, err, sizeof err)) {
        uj->running[0] = '\0';
        LOGW("job %s: update refused: %s", job, err);
        report(uj, job, "FAILED", json_pack("{s:s}", "reason", err));
    } else {
        LOGI("job %s: updating from %s", job, r.url);
        snprintf(uj->last_phase, sizeof uj->last_phase, "downloading");
        uj->last_percent = 0;
        report(uj, job, "IN_PROGRESS",
               json_pack("{s:s, s:s}", "phase", "downloading", "percent", "0"));
        uv_timer_start(&uj->progress, progress_cb, PROGRESS_MS, PROGRESS_MS);
    }
    buf_free(&sig);
}

static void sched_cb(uv_timer_t *t)
{
    update_jobs_t *uj = t->data;
    json_t *doc = uj->scheduled_doc;
    char job[128];
    snprintf(job, sizeof job, "%s", uj->scheduled);
    uj->scheduled_doc = NULL;
    uj->scheduled[0] = '\0';
    if (doc)
        start(uj, job, doc);
    json_decref(doc);
}

void update_jobs_run(update_jobs_t *uj, const char *job, json_t *doc)
{
    bool known;
    updater_job_seen(uj->u, job, &known);
    if (known || strcmp(uj->scheduled, job) == 0 || strcmp(uj->running, job) == 0)
        return; /* its outcome is (or will be) reported */
    const char *url = json_string_value(json_object_get(doc, "url"));
    const char *sha = json_string_value(json_object_get(doc, "sha256"));
    char err[300];
    if (!url || !sha || strlen(job) >= sizeof uj->scheduled) {
        report(uj, job, "FAILED",
               json_pack("{s:s}", "reason",
                         "a sedge.update job needs \"url\" and \"sha256\" (the bundle's)"));
        return;
    }
    int64_t now = clock_wall_s(), due;
    if (ota_schedule_due(doc, now, &due, err, sizeof err)) {
        report(uj, job, "FAILED", json_pack("{s:s}", "reason", err));
        return;
    }
    if (due <= now) {
        start(uj, job, doc);
        return;
    }
    if (uj->scheduled[0]) {
        report(uj, job, "FAILED",
               json_pack("{s:s, s:s}", "reason", "another update is scheduled first", "after",
                         uj->scheduled));
        return;
    }
    char when[32];
    time_t t = (time_t)due;
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    LOGI("job %s: update scheduled for %s", job, when);
    snprintf(uj->scheduled, sizeof uj->scheduled, "%s", job);
    uj->scheduled_doc = json_incref(doc);
    report(uj, job, "IN_PROGRESS",
           json_pack("{s:s, s:s}", "phase", "scheduled", "not_before", when));
    uv_timer_start(&uj->sched, sched_cb, (uint64_t)(due - now) * 1000, 0);
}

sedge_err update_jobs_start(uv_loop_t *loop, updater_t *u,
                            void (*report_fn)(void *ctx, const char *job, const char *status,
                                              json_t *details),
                            void *ctx, update_jobs_t **out)
{
    update_jobs_t *uj = calloc(1, sizeof *uj);
    if (!uj)
        return SEDGE_ERR_NOMEM;
    uj->u = u;
    uj->report = report_fn;
    uj->ctx = ctx;
    uv_timer_init(loop, &uj->sched);
    uv_timer_init(loop, &uj->progress);
    uj->sched.data = uj->progress.data = uj;
    uj->open_handles = 2;
    *out = uj;
    return SEDGE_OK;
}

static void closed(uv_handle_t *h)
{
    update_jobs_t *uj = h->data;
    if (--uj->open_handles == 0 && uj->stop_done)
        uj->stop_done(uj->stop_ctx);
}

void update_jobs_stop(update_jobs_t *uj, void (*done)(void *ctx), void *ctx)
{
    uj->stop_done = done;
    uj->stop_ctx = ctx;
    uv_close((uv_handle_t *)&uj->sched, closed);
    uv_close((uv_handle_t *)&uj->progress, closed);
}

void update_jobs_free(update_jobs_t *uj)
{
    if (!uj)
        return;
    json_decref(uj->scheduled_doc);
    free(uj);
}
