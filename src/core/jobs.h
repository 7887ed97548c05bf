/*
 * jobs: deployments from the cloud, over AWS IoT Jobs' MQTT topics on the
 * uplink. The core listens on $aws/things/CORE/jobs/notify-next (and asks
 * for $next when the link comes up); a job whose document is a group
 * document is deployed exactly as `sedgectl deploy` does, and its status is
 * reported IN_PROGRESS, then SUCCEEDED or FAILED with the reason. A job
 * document that is not a valid group document fails the job and leaves the
 * running group untouched.
 */
#ifndef SEDGE_JOBS_H
#define SEDGE_JOBS_H

#include "deploy/deploy.h"
#include "uplink/uplink.h"

typedef struct jobs jobs_t;

NODISCARD sedge_err jobs_start(uplink_t *u, deploy_t *d, const char *core_thing, jobs_t **out);
/* Call when the uplink's link comes up. */
void jobs_link_up(jobs_t *j);
void jobs_free(jobs_t *j);

#endif
