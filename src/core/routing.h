/*
 * routing: the glue between the broker and the deployed group — the
 * broker's authorisation hooks answered from the active route table, the
 * swap of that table when a deployment is applied (and the disconnection
 * of things no longer allowed), and the hand-off of routed messages to the
 * services they target: the shadow service, and for targets whose service
 * has not attached (cloud, functions, connectors) a bounded inbox that
 * holds their messages and counts what it had to drop.
 *
 * Until a group is deployed the broker is open: any authenticated client
 * may publish and subscribe, and shadow topics go to the shadow service.
 */
#ifndef SEDGE_ROUTING_H
#define SEDGE_ROUTING_H

#include "broker/broker.h"
#include "group/group.h"

#include <jansson.h>

typedef struct routing routing_t;

#define ROUTING_INBOX_MAX 1000

/* A service taking routed messages; the views are valid during the call.
 * `route_qos` is the "qos" of the routes that brought it (-1 when none
 * says). Returns BROKER_ROUTED_* flags. */
typedef int (*service_fn)(void *ctx, const char *endpoint, const broker_message_t *m,
                          int route_qos);

NODISCARD sedge_err routing_create(broker_t *b, routing_t **out);
void routing_free(routing_t *r);

/* The deploy module's apply callback (see deploy_apply_fn). */
void routing_apply(void *ctx, const group_t *g,
                   void (*done)(void *token, sedge_err err, const char *why), void *token);

/* Attach the service behind an endpoint ("shadow", "cloud",
 * "function:NAME"...); messages waiting in its inbox are handed over. */
void routing_attach(routing_t *r, const char *endpoint, service_fn fn, void *ctx);

/* Attach one handler for every endpoint starting with `prefix` (e.g.
 * "function:"); an endpoint attached by name takes precedence. */
void routing_attach_prefix(routing_t *r, const char *prefix, service_fn fn, void *ctx);

/* May a message from `source` on `topic` reach `target` (an endpoint such
 * as "shadow")? Always true while no group is deployed. */
bool routing_allows(routing_t *r, bytes_t source, bytes_t topic, const char *target);

/* Does some route lead from `source` to `target` (endpoints such as
 * "function:a"), whatever its filter? Always true while no group is
 * deployed. */
bool routing_connects(routing_t *r, const char *source, const char *target);

/* The filters of the active group's routes whose source is `cloud` (a new
 * JSON array of strings). */
json_t *routing_cloud_filters(routing_t *r);

/* Adds "routes" (with counters) and "services" (inboxes) to `status`. */
void routing_status(routing_t *r, json_t *status);

#endif
