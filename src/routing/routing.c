/*
 * routing: the broker's hooks answered from the active route table, the
 * swap of that table at a deployment, and the hand-off of each routed
 * message to the service of each kind of endpoint it targets.
 */
#include "routing.h"

#include "base/map.h"
#include "router/router.h"

#include <stdlib.h>
#include <string.h>

#define LOG_TAG "routing"

/* A message waiting in an inbox. */
typedef struct held {
    struct held *next;
    broker_message_t m;
    int route_qos;
    uint8_t data[]; /* source, topic, payload */
} held_t;

/* One endpoint a route targets (a function, a connector, the cloud, the
 * shadow service): what it was handed, and an inbox holding its messages
 * while no service of its kind has attached (bounded, oldest dropped). */
typedef struct inbox {
    struct inbox *next;
    endpoint_t endpoint; /* the name is owned */
    char *label;         /* "function:NAME": for status and logs */
    held_t *head, *tail;
    size_t held;
    uint64_t delivered, dropped;
} inbox_t;

struct routing {
    broker_t *broker;
    router_t *router; /* NULL: no group deployed, the broker is open */
    route_match_t match;
    routing_service_t services[ENDPOINT_KIND_COUNT]; /* by the kind they serve */
    inbox_t *inboxes;
};

/* The decision when no group is deployed: everything may flow. */
static const char open_route = 0;

static bool same_endpoint(const endpoint_t *a, const endpoint_t *b)
{
    return a->kind == b->kind && a->name_len == b->name_len &&
           (a->name_len == 0 || memcmp(a->name, b->name, a->name_len) == 0);
}

static inbox_t *inbox_get(routing_t *r, const endpoint_t *e)
{
    for (inbox_t *in = r->inboxes; in; in = in->next)
        if (same_endpoint(&in->endpoint, e))
            return in;
    inbox_t *in = calloc(1, sizeof *in);
    char label[GROUP_MAX_NAME + 16];
    endpoint_format(e, label, sizeof label);
    if (!in || !(in->label = strdup(label)) ||
        (e->name && !(in->endpoint.name = strndup(e->name, e->name_len)))) {
        if (in)
            free(in->label);
        free(in);
        return NULL;
    }
    in->endpoint.kind = e->kind;
    in->endpoint.name_len = e->name_len;
    in->next = r->inboxes;
    r->inboxes = in;
    return in;
}

static void hold(inbox_t *in, const broker_message_t *m, int route_qos)
{
    if (in->held >= ROUTING_INBOX_MAX) {
        held_t *oldest = in->head;
        in->head = oldest->next;
        if (!in->head)
            in->tail = NULL;
        free(oldest);
        in->held--;
        if (in->dropped++ == 0)
            LOGW("%s: no service attached and its inbox is full (%d messages): dropping the "
                 "oldest, counted in sedgectl status",
                 in->label, ROUTING_INBOX_MAX);
    }
    held_t *h = malloc(sizeof *h + m->source.len + m->topic.len + m->payload.len);
    if (!h) {
        in->dropped++;
        return;
    }
    uint8_t *p = h->data;
    h->next = NULL;
    h->m = *m;
    h->route_qos = route_qos;
    if (m->source.len)
        memcpy(p, m->source.data, m->source.len);
    h->m.source = (bytes_t){p, m->source.len};
    p += m->source.len;
    memcpy(p, m->topic.data, m->topic.len);
    h->m.topic = (bytes_t){p, m->topic.len};
    p += m->topic.len;
    if (m->payload.len)
        memcpy(p, m->payload.data, m->payload.len);
    h->m.payload = (bytes_t){p, m->payload.len};
    if (in->tail)
        in->tail->next = h;
    else
        in->head = h;
    in->tail = h;
    in->held++;
}

/* Hand `m` to the service of the target's kind, or hold it. */
static int to_service(routing_t *r, const endpoint_t *target, const broker_message_t *m,
                      int route_qos)
{
    inbox_t *in = inbox_get(r, target);
    const routing_service_t *svc = &r->services[target->kind];
    if (!svc->deliver) {
        if (in)
            hold(in, m, route_qos);
        return 0;
    }
    if (in)
        in->delivered++;
    return svc->deliver(svc->ctx, target, m, route_qos);
}

void routing_attach(routing_t *r, endpoint_kind_t kind, const routing_service_t *service)
{
    r->services[kind] = *service;
    for (inbox_t *in = r->inboxes; in; in = in->next) {
        if (in->endpoint.kind != kind)
            continue;
        while (in->head) {
            held_t *h = in->head;
            in->head = h->next;
            in->held--;
            in->delivered++;
            service->deliver(service->ctx, &in->endpoint, &h->m, h->route_qos);
            free(h);
        }
        in->tail = NULL;
    }
}

static bool may_connect(void *ctx, bytes_t identity)
{
    routing_t *r = ctx;
    return !r->router || router_may_connect(r->router, identity);
}

static bool may_use_certificate(void *ctx, const uint8_t sha256[32], bytes_t serial)
{
    routing_t *r = ctx;
    return !r->router || !group_cert_revoked(router_group(r->router), sha256, serial);
}

static bool may_subscribe(void *ctx, bytes_t identity, bytes_t filter)
{
    routing_t *r = ctx;
    return !r->router || router_may_subscribe(r->router, identity, filter);
}

static const void *route(void *ctx, bytes_t source, bytes_t topic)
{
    routing_t *r = ctx;
    if (!r->router)
        return &open_route;
    return router_match(r->router, source, topic, &r->match) ? &r->match : NULL;
}

static bool reaches(void *ctx, const void *decision, bytes_t identity)
{
    (void)ctx;
    if (decision == &open_route)
        return true;
    return route_match_reaches_thing(decision, identity);
}

static bool is_shadow_topic(bytes_t topic)
{
    return bytes_has_prefix(topic, "$aws/things/") &&
           memmem(topic.data, topic.len, "/shadow/", 8) != NULL;
}

static int on_routed(void *ctx, const void *decision, const broker_message_t *m)
{
    routing_t *r = ctx;
    if (decision == &open_route) {
        static const endpoint_t shadow = {.kind = ENDPOINT_SHADOW};
        if (is_shadow_topic(m->topic) && !bytes_eq_cstr(m->source, "shadow"))
            return to_service(r, &shadow, m, -1);
        return 0;
    }
    /* The distinct service endpoints first, in arrays of this call's own:
     * a service may publish in turn, and that reuses the router's match.
     * A target reached by a route without "qos": 0 gets the message
     * spooled (qos -1). */
    const route_match_t *match = decision;
    const route_t *targets_stack[16];
    int qos_stack[16];
    bool on_stack = match->count <= ARRAY_LEN(targets_stack);
    const route_t **targets = on_stack ? targets_stack : malloc(match->count * sizeof *targets);
    int *qos = on_stack ? qos_stack : malloc(match->count * sizeof *qos);
    if (!targets || !qos) {
        if (!on_stack) {
            free(targets);
            free(qos);
        }
        LOGE("out of memory routing a message on %.*s to services", (int)m->topic.len,
             (const char *)m->topic.data);
        return BROKER_ROUTED_REFUSED;
    }
    size_t n = 0;
    for (size_t i = 0; i < match->count; i++) {
        const route_t *rt = match->routes[i];
        if (rt->target.kind == ENDPOINT_THING || rt->target.kind == ENDPOINT_ANY_THING)
            continue;
        size_t k = 0;
        while (k < n && !same_endpoint(&targets[k]->target, &rt->target))
            k++;
        if (k == n) {
            targets[n] = rt;
            qos[n++] = rt->qos;
        } else if (rt->qos != 0) {
            qos[k] = rt->qos;
        }
    }
    int flags = 0;
    for (size_t i = 0; i < n; i++)
        flags |= to_service(r, &targets[i]->target, m, qos[i]);
    if (!on_stack) {
        free(targets);
        free(qos);
    }
    return flags;
}

sedge_err routing_create(broker_t *b, routing_t **out)
{
    routing_t *r = calloc(1, sizeof *r);
    if (!r)
        return SEDGE_ERR_NOMEM;
    r->broker = b;
    broker_hooks_t hooks = {
        .may_connect = may_connect,
        .may_use_certificate = may_use_certificate,
        .may_subscribe = may_subscribe,
        .route = route,
        .reaches = reaches,
        .on_routed = on_routed,
    };
    broker_set_hooks(b, &hooks, r);
    *out = r;
    return SEDGE_OK;
}

void routing_apply(void *ctx, const group_t *g,
                   void (*done)(void *token, sedge_err err, const char *why), void *token)
{
    routing_t *r = ctx;
    router_t *next = NULL;
    sedge_err err = g ? router_build(g, &next) : SEDGE_OK;
    if (err) {
        done(token, err, "cannot build the route table");
        return;
    }
    /* Every service a route targets is listed in status from now on, even
     * before its first message. */
    for (size_t i = 0; g && i < g->route_count; i++) {
        const endpoint_t *t = &g->routes[i].target;
        if (t->kind != ENDPOINT_THING && t->kind != ENDPOINT_ANY_THING)
            (void)inbox_get(r, t);
    }
    router_t *old = r->router;
    r->router = next;
    r->match = (route_match_t){0};
    router_free(old);
    size_t gone = broker_recheck_connections(r->broker);
    if (gone)
        LOGI("disconnected %zu things no longer allowed by group %s", gone, g ? g->name : "-");
    done(token, SEDGE_OK, NULL);
}

bool routing_allows(routing_t *r, bytes_t source, bytes_t topic, const endpoint_t *target)
{
    if (!r->router)
        return true;
    route_match_t m;
    if (!router_match(r->router, source, topic, &m))
        return false;
    for (size_t i = 0; i < m.count; i++)
        if (same_endpoint(&m.routes[i]->target, target))
            return true;
    return false;
}

bool routing_connects(routing_t *r, const endpoint_t *source, const endpoint_t *target)
{
    if (!r->router)
        return true;
    const group_t *g = router_group(r->router);
    for (size_t i = 0; i < g->route_count; i++)
        if (same_endpoint(&g->routes[i].source, source) &&
            same_endpoint(&g->routes[i].target, target))
            return true;
    return false;
}

json_t *routing_cloud_filters(routing_t *r)
{
    json_t *list = json_array();
    if (!r->router)
        return list;
    const group_t *g = router_group(r->router);
    for (size_t i = 0; i < g->route_count; i++) {
        if (g->routes[i].source.kind != ENDPOINT_CLOUD)
            continue;
        bool seen = false;
        size_t k;
        json_t *v;
        json_array_foreach(list, k, v) seen |=
            strcmp(json_string_value(v), g->routes[i].filter) == 0;
        if (!seen)
            json_array_append_new(list, json_string(g->routes[i].filter));
    }
    return list;
}

void routing_status(routing_t *r, json_t *status)
{
    json_t *routes = json_array();
    if (r->router) {
        const group_t *g = router_group(r->router);
        for (size_t i = 0; i < g->route_count; i++) {
            json_t *o = json_object();
            json_object_set_new(o, "route", json_string(g->routes[i].text));
            json_object_set_new(o, "messages",
                                json_integer((json_int_t)router_route_count(r->router, i)));
            json_array_append_new(routes, o);
        }
    }
    json_object_set_new(status, "routes", routes);
    json_t *services = json_object();
    for (inbox_t *in = r->inboxes; in; in = in->next) {
        json_t *o = json_object();
        bool attached = r->services[in->endpoint.kind].deliver != NULL;
        json_object_set_new(o, "attached", json_boolean(attached));
        json_object_set_new(o, "waiting", json_integer((json_int_t)in->held));
        json_object_set_new(o, "delivered", json_integer((json_int_t)in->delivered));
        json_object_set_new(o, "dropped", json_integer((json_int_t)in->dropped));
        json_object_set_new(services, in->label, o);
    }
    json_object_set_new(status, "services", services);
}

void routing_free(routing_t *r)
{
    if (!r)
        return;
    while (r->inboxes) {
        inbox_t *in = r->inboxes;
        r->inboxes = in->next;
        while (in->head) {
            held_t *h = in->head;
            in->head = h->next;
            free(h);
        }
        free(in->endpoint.name);
        free(in->label);
        free(in);
    }
    router_free(r->router);
    free(r);
}
