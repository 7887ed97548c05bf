/*
 * update: the core's side of over-the-air updates (the ota module does the
 * work) — the admin commands `update` (install a bundle off the loop, then
 * have the core stop and exec the new release), `update_status` and
 * `update_rollback`, and the health check of a release on trial: once the
 * core has started (store open and migrated, listeners up), every
 * long-lived function runs, and the cloud link is up when it was before
 * the update, the release is committed.
 */
#ifndef SEDGE_CORE_UPDATE_H
#define SEDGE_CORE_UPDATE_H

#include "admin.h"
#include "config.h"

/* What sedged does once the core has stopped. */
typedef enum {
    CORE_THEN_EXIT = 0,
    CORE_THEN_TRIAL,    /* exec the release just installed (ota_exec_trial) */
    CORE_THEN_ROLLBACK, /* exec the previous release (ota_exec_rollback) */
} core_then_t;

typedef struct updater updater_t;

typedef struct {
    uv_loop_t *loop;
    const ota_settings_t *cfg; /* borrowed: outlives the updater */
    bool (*cloud_up)(void *ctx);
    bool (*functions_up)(void *ctx);              /* every long-lived function running */
    void (*restart)(void *ctx, core_then_t then); /* stop the core, then `then` */
    /* A cloud job's status (NULL: no cloud); `details` is given away. */
    void (*report)(void *ctx, const char *job, const char *status, json_t *details);
    void *ctx;
} updater_options_t;

typedef struct {
    const char *file;         /* an absolute path of a bundle, or */
    const char *url;          /* an http(s) URL of one */
    const char *sha256;       /* NULL, or the bundle file's expected SHA-256 */
    const char *job;          /* the cloud job it comes from, or NULL */
    const uint8_t *signature; /* NULL, or the bundle's Ed25519 signature (64 bytes) */
    bool allow_downgrade;
} update_request_t;

/* Called once, on the loop: `err` and `message` when the update was
 * refused or could not be fetched (nothing changed); SEDGE_OK with the
 * version installed, after which the core restarts into it. */
typedef void (*update_done_fn)(void *ctx, sedge_err err, const char *message, const char *version);

NODISCARD sedge_err updater_start(const updater_options_t *o, admin_t *admin, updater_t **out);
/* Close the health timer; `done` once closed. An install still running
 * off the loop finishes first. */
void updater_stop(updater_t *u, void (*done)(void *ctx), void *ctx);
void updater_free(updater_t *u);
/* Start an update; refused at once (busy, bad request): an error and
 * `err`, and `done` (may be NULL) is not called. */
NODISCARD sedge_err updater_submit(updater_t *u, const update_request_t *r, update_done_fn done,
                                   void *ctx, char *err, size_t errlen);
/* A cloud job offered again: `known` when it is the update in the state
 * (then its outcome, if there is one, is reported again). */
void updater_job_seen(updater_t *u, const char *job, bool *known);
/* The update under way: its phase ("downloading", "installing") and
 * bytes; false when none is. */
bool updater_progress(const updater_t *u, const char **phase, uint64_t *done, uint64_t *total);
/* What the updater asked sedged to do after the stop (NULL: exit). */
core_then_t updater_then(const updater_t *u);

/* update_jobs.c: sedge.update jobs from AWS IoT Jobs (see there). */
typedef struct update_jobs update_jobs_t;

NODISCARD sedge_err update_jobs_start(uv_loop_t *loop, updater_t *u,
                                      void (*report)(void *ctx, const char *job, const char *status,
                                                     json_t *details),
                                      void *ctx, update_jobs_t **out);
/* A sedge.update job from the cloud (`doc` borrowed). */
void update_jobs_run(update_jobs_t *uj, const char *job, json_t *doc);
void update_jobs_stop(update_jobs_t *uj, void (*done)(void *ctx), void *ctx);
void update_jobs_free(update_jobs_t *uj);

#endif
