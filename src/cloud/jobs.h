/*
 * jobs: deployments from the cloud, over AWS IoT Jobs' MQTT topics on the
 * uplink. The core listens on $aws/things/CORE/jobs/notify-next (and asks
 * for $next when the link comes up); a job whose document is a group
 * document is deployed exactly as `sedgectl deploy` does, and its status is
 * reported IN_PROGRESS, then SUCCEEDED or FAILED with the reason. A job
 * document that is not a valid group document fails the job and leaves the
 * running group untouched.
 *
 * A job whose document is {"operation": "sedge.update", ...} is an
 * over-the-air update of the core: it goes to the `update` handler, which
 * reports its progress and outcome with jobs_report (from this process
 * or, after the core restarted into another release, from that one).
 *
 * A status update is durable until the cloud accepts it: it is written to
 * the store, sent, and sent again — after each reconnect, after a restart,
 * and when no answer came in time — until JOBID/update/accepted (or a
 * rejection that retrying cannot change) answers it. A job whose final
 * status waits for the cloud is not run again when the cloud offers it.
 */
#ifndef SEDGE_JOBS_H
#define SEDGE_JOBS_H

#include "deploy/deploy.h"
#include "store/store.h"
#include "uplink/uplink.h"

typedef struct jobs jobs_t;

typedef struct {
    uv_loop_t *loop;
    uplink_t *uplink;
    deploy_t *deploy;
    store_t *store;
    const char *core_thing;
    uint32_t retry_min_ms; /* an unanswered update goes again after this, */
    uint32_t retry_max_ms; /* doubling up to this, with jitter */
    /* sedge.update jobs (NULL: refused, updates are off); `document` is
     * borrowed for the call. */
    void (*update)(void *ctx, const char *job, json_t *document);
    void *update_ctx;
} jobs_options_t;

/* Loads the updates still waiting for the cloud from the store. */
NODISCARD sedge_err jobs_start(const jobs_options_t *opts, jobs_t **out);
/* Report a job's status (IN_PROGRESS, SUCCEEDED, FAILED) with
 * `details` (an object of strings, or NULL; its reference is taken),
 * durably, as deployments' are. */
void jobs_report(jobs_t *j, const char *job, const char *status, json_t *details);
/* Call when the uplink's link comes up. */
void jobs_link_up(jobs_t *j);
/* Close the timer; `done` once closed. */
void jobs_stop(jobs_t *j, void (*done)(void *ctx), void *ctx);
void jobs_free(jobs_t *j);
/* {"pending": [{"job", "status", "attempts"}...]} (a new reference) */
json_t *jobs_status(const jobs_t *j);

#endif
