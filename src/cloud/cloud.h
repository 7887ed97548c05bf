/*
 * cloud: everything that rides on the uplink, and the cloud as one more
 * endpoint of the routes. Messages routed to `cloud` go to the uplink's
 * spool; messages from the cloud's subscriptions (those the routes from
 * `cloud` need) are published locally with the source "cloud"; routes to
 * and from the cloud are checked against its limits at deploy; AWS IoT
 * Jobs deploy group documents (jobs.c); chosen shadows are kept in step
 * with their cloud copies (shadow_sync.c). The coming OTA jobs land here.
 *
 * Owns the uplink (and through it the spool), the jobs listener and the
 * shadow sync; attaches itself to routing as the `cloud` service.
 */
#ifndef SEDGE_CLOUD_H
#define SEDGE_CLOUD_H

#include "broker/broker.h"
#include "deploy/deploy.h"
#include "group/group.h"
#include "routing/routing.h"
#include "shadow/shadow.h"
#include "uplink/uplink.h"

#include <jansson.h>

typedef struct cloud cloud_t;

typedef struct {
    uv_loop_t *loop;
    store_t *store;
    const uplink_config_t *cfg; /* borrowed: must outlive the cloud */
    broker_t *broker;
    routing_t *routing;
    shadow_svc_t *shadow;
    /* A secret resource's value arrived on its cloud_topic (secrets.c). */
    void (*secret)(void *ctx, const char *id, bytes_t value);
    void *ctx;
} cloud_options_t;

/* Start the uplink and the shadow sync, and attach to routing. */
NODISCARD sedge_err cloud_start(const cloud_options_t *o, cloud_t **out);
/* Who runs sedge.update jobs (before cloud_listen_for_jobs; see jobs.h). */
void cloud_on_update_job(cloud_t *c, void (*fn)(void *ctx, const char *job, json_t *document),
                         void *ctx);
/* Report a job's status durably (jobs_report); a no-op before jobs run. */
void cloud_job_report(cloud_t *c, const char *job, const char *status, json_t *details);
/* Once deployments exist: listen to AWS IoT Jobs for them. */
NODISCARD sedge_err cloud_listen_for_jobs(cloud_t *c, deploy_t *deploy, const char *core_thing);
/* Stop everything; `done` once all is closed. */
void cloud_stop(cloud_t *c, void (*done)(void *ctx), void *ctx);
void cloud_free(cloud_t *c);

/* The end of a loop turn (core's before-wait hook). */
void cloud_before_wait(cloud_t *c);
/* The deploy module's check: routes to and from the cloud within its
 * limits; problems appended to `errors`, one per line. */
bool cloud_check_group(cloud_t *c, const group_t *g, buf_t *errors);
/* A group was applied: subscribe to what its routes from `cloud` need,
 * sync the shadows it lists. */
void cloud_group_applied(cloud_t *c, const group_t *g);
/* A local shadow changed (the shadow service's on_change). */
void cloud_shadow_changed(cloud_t *c, shadow_op_t op, bytes_t thing, bytes_t name,
                          bytes_t accepted);
/* Is the link to the cloud up (an update's health check)? */
bool cloud_connected(const cloud_t *c);
/* The link, the spool, jobs and shadow sync, for sedgectl spool (new). */
json_t *cloud_status(cloud_t *c);

#endif
