/*
 * shadow_sync: keeping chosen local shadows and their copies in AWS IoT in
 * step, over AWS's shadow topics on the uplink. The group document lists
 * them: "shadows": {"sync": [{"thing", "names", "classic", "direction"}]},
 * direction between_device_and_cloud (default), device_to_cloud or
 * cloud_to_device.
 *
 * While the link is up, an accepted change on one side is applied to the
 * other (as the partial update it was, or a delete). When the link comes
 * up — after an outage, a restart or a new deployment — each shadow is
 * reconciled from both full documents: the cloud wins on `desired`, the
 * local copy on `reported` (one-way directions copy everything one way).
 * Reconciliation computes the difference and applies only that, so an
 * update is neither lost nor applied twice. Changes the sync makes carry
 * a client token "sedge-sync" and are not sent back: locally "sedge-sync",
 * in the cloud "sedge-sync:RUN-N", one per request, so that an answer the
 * cloud delivers again or late is not taken for the answer to a newer
 * request.
 *
 * The cloud's answers are taken for what they say: only a get/rejected
 * with 404 means there is no cloud shadow; a throttle (429) or a failure
 * (500, 503) is retried after a backoff, and reconciles; an update carries
 * the cloud version it was made against, so an edit made meanwhile in the
 * cloud is refused (409) and reconciled instead of silently overwritten;
 * other rejections are logged and counted. Requests to the cloud are
 * paced per thing (shadow_requests_per_s) and at most shadow_inflight are
 * unanswered at once (AWS IoT Core refuses an eleventh with 429).
 */
#ifndef SEDGE_SHADOW_SYNC_H
#define SEDGE_SHADOW_SYNC_H

#include "group/group.h"
#include "shadow/shadow.h"
#include "uplink/uplink.h"

typedef struct shadow_sync shadow_sync_t;

NODISCARD sedge_err shadow_sync_start(uv_loop_t *loop, uplink_t *u, shadow_svc_t *svc,
                                      shadow_sync_t **out);
/* Close the timer; `done` once closed. */
void shadow_sync_stop(shadow_sync_t *s, void (*done)(void *ctx), void *ctx);
void shadow_sync_free(shadow_sync_t *s);
/* The group's "shadows" section (NULL group: sync nothing). Reconciles
 * when the link is up. */
void shadow_sync_configure(shadow_sync_t *s, const group_t *g);
void shadow_sync_link_up(shadow_sync_t *s);
void shadow_sync_link_down(shadow_sync_t *s);
/* From the shadow service's on_change. */
void shadow_sync_local_change(shadow_sync_t *s, shadow_op_t op, bytes_t thing, bytes_t name,
                              bytes_t accepted);
/* {"shadows": [{"thing", "name", "cloud_version", ...}], "queued", "inflight"}
 * (a new reference) */
json_t *shadow_sync_status(shadow_sync_t *s);

#endif
