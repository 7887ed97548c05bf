/*
 * routing: broker hooks over the active router, applying deployments, and
 * handing routed messages to services.
 */
#include "routing.h"

#include "base/map.h"
#include "router/router.h"

#include <stdlib.h>
#include <string.h>

#define LOG_TAG "routing"

/* A message waiting for a service that has not attached. */
typedef struct held {
    struct held *next;
    broker_message_t m;
    uint8_t data[]; /* source, topic, payload */
} held_t;

typedef struct service {
    struct service *next;
    char *endpoint;
    service_fn fn; /* NULL: not attached, messages are held */
    void *ctx;
    held_t *head, *tail;
    size_t held;
    uint64_t delivered, dropped;
} service_t;

struct routing {
    broker_t *broker;
    router_t *router; /* NULL: no group deployed, the broker is open */
    route_match_t match;
    service_t *services;
    char *prefix; /* a handler for endpoints starting with it */
    service_fn prefix_fn;
    void *prefix_ctx;
};

/* The decision when no group is deployed: everything may flow. */
static const char open_route = 0;

static service_t *service_get(routing_t *r, const char *endpoint, bool create)
{
    for (service_t *s = r->services; s; s = s->next)
        if (strcmp(s->endpoint, endpoint) == 0)
            return s;
    if (!create)
        return NULL;
    service_t *s = calloc(1, sizeof *s);
    if (!s || !(s->endpoint = strdup(endpoint))) {
        free(s);
        return NULL;
    }
    s->next = r->services;
    r->services = s;
    return s;
}

static void hold(service_t *s, const broker_message_t *m)
{
    if (s->held >= ROUTING_INBOX_MAX) {
        held_t *oldest = s->head;
        s->head = oldest->next;
        if (!s->head)
            s->tail = NULL;
        free(oldest);
        s->held--;
        if (s->dropped++ == 0)
            LOGW("%s: no service attached and its inbox is full (%d messages): dropping the "
                 "oldest, counted in sedgectl status",
                 s->endpoint, ROUTING_INBOX_MAX);
    }
    held_t *h = malloc(sizeof *h + m->source.len + m->topic.len + m->payload.len);
    if (!h) {
        s->dropped++;
        return;
    }
    uint8_t *p = h->data;
    h->next = NULL;
    h->m = *m;
    memcpy(p, m->source.data, m->source.len);
    h->m.source = (bytes_t){p, m->source.len};
    p += m->source.len;
    memcpy(p, m->topic.data, m->topic.len);
    h->m.topic = (bytes_t){p, m->topic.len};
    p += m->topic.len;
    if (m->payload.len)
        memcpy(p, m->payload.data, m->payload.len);
    h->m.payload = (bytes_t){p, m->payload.len};
    if (s->tail)
        s->tail->next = h;
    else
        s->head = h;
    s->tail = h;
    s->held++;
}

static int to_service(routing_t *r, const char *endpoint, const broker_message_t *m, int route_qos)
{
    service_t *s = service_get(r, endpoint, true);
    if (!s)
        return 0;
    if (!s->fn && r->prefix_fn && strncmp(endpoint, r->prefix, strlen(r->prefix)) == 0) {
        s->delivered++;
        return r->prefix_fn(r->prefix_ctx, endpoint, m, route_qos);
    }
    if (!s->fn) {
        hold(s, m);
        return 0;
    }
    s->delivered++;
    return s->fn(s->ctx, endpoint, m, route_qos);
}

void routing_attach(routing_t *r, const char *endpoint, service_fn fn, void *ctx)
{
    service_t *s = service_get(r, endpoint, true);
    if (!s)
        return;
    s->fn = fn;
    s->ctx = ctx;
    while (fn && s->head) {
        held_t *h = s->head;
        s->head = h->next;
        s->held--;
        s->delivered++;
        fn(ctx, endpoint, &h->m, -1);
        free(h);
    }
    if (!s->head)
        s->tail = NULL;
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
        if (is_shadow_topic(m->topic) && !bytes_eq_cstr(m->source, "shadow"))
            return to_service(r, "shadow", m, -1);
        return 0;
    }
    /* Collect the distinct service endpoints first: a service may publish
     * in turn, and that reuses the router's match. A target reached by a
     * route without "qos": 0 gets the message spooled (qos -1). */
    const route_match_t *match = decision;
    char targets[16][160];
    int qos[16];
    size_t n = 0;
    for (size_t i = 0; i < match->count; i++) {
        const route_t *rt = match->routes[i];
        const endpoint_t *t = &rt->target;
        if (t->kind == ENDPOINT_THING || t->kind == ENDPOINT_ANY_THING)
            continue;
        char name[160];
        endpoint_format(t, name, sizeof name);
        size_t k = 0;
        while (k < n && strcmp(targets[k], name) != 0)
            k++;
        if (k == n) {
            if (n == ARRAY_LEN(targets))
                continue;
            memcpy(targets[n], name, sizeof name);
            qos[n++] = rt->qos;
        } else if (rt->qos != 0) {
            qos[k] = rt->qos;
        }
    }
    int flags = 0;
    for (size_t i = 0; i < n; i++)
        flags |= to_service(r, targets[i], m, qos[i]);
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
        if (t->kind == ENDPOINT_THING || t->kind == ENDPOINT_ANY_THING)
            continue;
        char name[160];
        endpoint_format(t, name, sizeof name);
        service_get(r, name, true);
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

void routing_attach_prefix(routing_t *r, const char *prefix, service_fn fn, void *ctx)
{
    free(r->prefix);
    r->prefix = strdup(prefix);
    r->prefix_fn = fn;
    r->prefix_ctx = ctx;
}

bool routing_allows(routing_t *r, bytes_t source, bytes_t topic, const char *target)
{
    if (!r->router)
        return true;
    route_match_t m;
    if (!router_match(r->router, source, topic, &m))
        return false;
    for (size_t i = 0; i < m.count; i++) {
        char name[160];
        endpoint_format(&m.routes[i]->target, name, sizeof name);
        if (strcmp(name, target) == 0)
            return true;
    }
    return false;
}

bool routing_connects(routing_t *r, const char *source, const char *target)
{
    if (!r->router)
        return true;
    const group_t *g = router_group(r->router);
    for (size_t i = 0; i < g->route_count; i++) {
        char s_name[160], t_name[160];
        endpoint_format(&g->routes[i].source, s_name, sizeof s_name);
        endpoint_format(&g->routes[i].target, t_name, sizeof t_name);
        if (strcmp(s_name, source) == 0 && strcmp(t_name, target) == 0)
            return true;
    }
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
    for (service_t *s = r->services; s; s = s->next) {
        json_t *o = json_object();
        bool by_prefix = r->prefix_fn && strncmp(s->endpoint, r->prefix, strlen(r->prefix)) == 0;
        json_object_set_new(o, "attached", json_boolean(s->fn != NULL || by_prefix));
        json_object_set_new(o, "waiting", json_integer((json_int_t)s->held));
        json_object_set_new(o, "delivered", json_integer((json_int_t)s->delivered));
        json_object_set_new(o, "dropped", json_integer((json_int_t)s->dropped));
        json_object_set_new(services, s->endpoint, o);
    }
    json_object_set_new(status, "services", services);
}

void routing_free(routing_t *r)
{
    if (!r)
        return;
    while (r->services) {
        service_t *s = r->services;
        r->services = s->next;
        while (s->head) {
            held_t *h = s->head;
            s->head = h->next;
            free(h);
        }
        free(s->endpoint);
        free(s);
    }
    router_free(r->router);
    free(r->prefix);
    free(r);
}
