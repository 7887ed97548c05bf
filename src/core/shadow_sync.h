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
 * the client token "sedge-sync" and are not sent back.
 */
#ifndef SEDGE_SHADOW_SYNC_H
#define SEDGE_SHADOW_SYNC_H

#include "group/group.h"
#include "shadow/shadow.h"
#include "uplink/uplink.h"

typedef struct shadow_sync shadow_sync_t;

NODISCARD sedge_err shadow_sync_start(uplink_t *u, shadow_svc_t *svc, shadow_sync_t **out);
void shadow_sync_free(shadow_sync_t *s);
/* The group's "shadows" section (NULL group: sync nothing). Reconciles
 * when the link is up. */
void shadow_sync_configure(shadow_sync_t *s, const group_t *g);
void shadow_sync_link_up(shadow_sync_t *s);
/* From the shadow service's on_change. */
void shadow_sync_local_change(shadow_sync_t *s, shadow_op_t op, bytes_t thing, bytes_t name,
                              bytes_t accepted);

#endif
