/*
 * routing: the live half of routing, above the broker and the route table
 * (router). It answers the broker's authorisation hooks from the deployed
 * group's routes, swaps the table when a deployment is applied (and
 * disconnects the things no longer allowed), and hands every routed
 * message to the service behind each endpoint its routes target.
 *
 * Services attach one way: one routing_service_t per kind of endpoint
 * (shadow, cloud, function, connector...), whose deliver() gets the
 * message and the typed endpoint it was routed to. Until a kind's service
 * attaches, its endpoints' messages wait in bounded inboxes (oldest
 * dropped, counted). It owns the route table in force and the inboxes.
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

/* The service behind one kind of endpoint. */
typedef struct {
    const char *name; /* for logs */
    /* Take `m` (views valid during the call), routed to `target`;
     * `route_qos` is the "qos" of the routes that brought it (-1 when none
     * says). Returns BROKER_ROUTED_* flags: whether it was written to the
     * store (durable), refused for lack of room, or refused as invalid. */
    int (*deliver)(void *ctx, const endpoint_t *target, const broker_message_t *m, int route_qos);
    void *ctx;
} routing_service_t;

NODISCARD sedge_err routing_create(broker_t *b, routing_t **out);
void routing_free(routing_t *r);

/* The deploy module's apply callback (see deploy_apply_fn). */
void routing_apply(void *ctx, const group_t *g,
                   void (*done)(void *token, sedge_err err, const char *why), void *token);

/* Attach the service for every endpoint of `kind` (copied); messages
 * waiting in their inboxes are handed over. */
void routing_attach(routing_t *r, endpoint_kind_t kind, const routing_service_t *service);

/* May a message from `source` on `topic` reach `target`? Always true
 * while no group is deployed. */
bool routing_allows(routing_t *r, bytes_t source, bytes_t topic, const endpoint_t *target);

/* Does some route lead from `source` to `target`, whatever its filter?
 * Always true while no group is deployed. */
bool routing_connects(routing_t *r, const endpoint_t *source, const endpoint_t *target);

/* The filters of the active group's routes whose source is `cloud` (a new
 * JSON array of strings). */
json_t *routing_cloud_filters(routing_t *r);

/* Adds "routes" (with counters) and "services" (inboxes) to `status`. */
void routing_status(routing_t *r, json_t *status);

#endif
