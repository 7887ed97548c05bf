/*
 * update: the core's side of over-the-air updates (the ota module does the
 * work) — the admin commands `update` (install a bundle off the loop, then
 * have the core stop and exec the new release), `update_status` and
 * `update_rollback`, and the health check of a release on trial: once the
 * core has started (store open and migrated, listeners up) and the cloud
 * link is up when it was before the update, the release is committed.
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
    void (*restart)(void *ctx, core_then_t then); /* stop the core, then `then` */
    void *ctx;
} updater_options_t;

typedef struct {
    const char *file;   /* an absolute path of a bundle, or */
    const char *url;    /* an http(s) URL of one */
    const char *sha256; /* NULL, or the bundle file's expected SHA-256 */
    const char *job;    /* the cloud job it comes from, or NULL */
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
/* What the updater asked sedged to do after the stop (NULL: exit). */
core_then_t updater_then(const updater_t *u);

#endif
