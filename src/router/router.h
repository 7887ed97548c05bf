/*
 * router: the compiled route table of the deployed group, and the
 * authorisation decisions it makes — who may connect, publish where,
 * subscribe to what, and which endpoints a message reaches.
 *
 * Routes are compiled into a topic trie keyed by their filters, so finding
 * the routes a message matches costs a walk over the topic's levels, not a
 * scan of every route. A router is immutable once built except for its
 * per-route counters; a deployment builds a new one and swaps it in whole.
 *
 * Sources are endpoint strings: "thing:NAME", "function:NAME",
 * "connector:NAME", "cloud", "shadow". A route to `shadow` also lets the
 * service answer its source on the same filter (an implicit reverse route).
 * From `thing:*`, a route to `shadow` lets each thing use only its own
 * shadows ($aws/things/ITS-NAME/...), both ways; a route from thing:NAME
 * reaches whatever shadows its filter covers.
 */
#ifndef SEDGE_ROUTER_H
#define SEDGE_ROUTER_H

#include "group/group.h"

typedef struct router router_t;

/* The routes one message matched; valid until the router's next match. */
typedef struct {
    const route_t **routes;
    size_t count;
    bytes_t topic; /* the message's, valid while it is being routed */
} route_match_t;

/* Build from a validated group (borrowed: it must outlive the router). */
NODISCARD sedge_err router_build(const group_t *g, router_t **out);
void router_free(router_t *r);
const group_t *router_group(const router_t *r);

bool router_may_connect(const router_t *r, bytes_t thing);
/* Some route to this thing could deliver on a topic matching `filter`. */
bool router_may_subscribe(const router_t *r, bytes_t thing, bytes_t filter);
/* The routes from `source` whose filter matches `topic`; false when there
 * are none (the message may not flow). Counts each matched route. */
bool router_match(router_t *r, bytes_t source, bytes_t topic, route_match_t *out);
/* Does a matched route deliver to this thing? */
bool route_match_reaches_thing(const route_match_t *m, bytes_t thing);

/* Messages each route has carried since the router was built, in the
 * order of group->routes (implicit reverse routes are not counted). */
uint64_t router_route_count(const router_t *r, size_t route_index);

/* Could some topic match both filters? */
bool filters_overlap(bytes_t a, bytes_t b);

#endif
