/*
 * router: the route trie and the decisions made with it.
 *
 * Each trie node is one filter level; a node's exact children are in a
 * hash map, its '+' and '#' children in their own fields. Matching a topic
 * follows, at each level, the exact child, '+' and '#', as MQTT matching
 * does ('$' topics are not matched by a first-level wildcard). Only '+'
 * levels recurse, and the group refuses filters of more than
 * MQTT_MAX_FILTER_LEVELS levels, so the depth is bounded whatever the
 * topic.
 */
#include "router.h"

#include "base/map.h"
#include "mqtt/mqtt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const route_t *route;
    size_t counter; /* index into counters: the group route it comes from */
    bool implicit;  /* a shadow reply route, not counted */
} entry_t;

typedef struct rnode {
    map_t children;
    struct rnode *plus, *hash;
    char *level;
    size_t level_len;
    entry_t **entries;
    size_t count, cap;
} rnode_t;

struct router {
    const group_t *group;
    rnode_t root;
    entry_t *entries; /* group routes, then implicit reverse routes */
    size_t entry_count;
    route_t *implicit; /* owned reverse routes */
    size_t implicit_count;
    uint64_t *counters;
    map_t things;  /* thing name -> group string */
    map_t revoked; /* thing name -> group string */
    /* match scratch */
    const route_t **found;
    size_t found_cap;
    uint64_t epoch;
    uint64_t *seen; /* per entry: epoch it was last collected in */
};

static bytes_t cbytes(const char *s, size_t len)
{
    return (bytes_t){(const uint8_t *)s, len};
}

static rnode_t *child(rnode_t *n, bytes_t level, bool create)
{
    if (level.len == 1 && level.data[0] == '+') {
        if (!n->plus && create)
            n->plus = calloc(1, sizeof *n->plus);
        return n->plus;
    }
    if (level.len == 1 && level.data[0] == '#') {
        if (!n->hash && create)
            n->hash = calloc(1, sizeof *n->hash);
        return n->hash;
    }
    rnode_t *c = map_get(&n->children, level);
    if (c || !create)
        return c;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->level = bytes_dup_cstr(level);
    c->level_len = level.len;
    if (!c->level || map_put(&n->children, cbytes(c->level, c->level_len), c)) {
        free(c->level);
        free(c);
        return NULL;
    }
    return c;
}

static bool next_level(bytes_t path, size_t *pos, bytes_t *level, bool *done)
{
    if (*done)
        return false;
    const uint8_t *start = path.len ? path.data + *pos : path.data; /* NULL + 0 is UB */
    size_t left = path.len - *pos;
    const uint8_t *slash = left ? memchr(start, '/', left) : NULL;
    size_t len = slash ? (size_t)(slash - start) : left;
    *level = (bytes_t){start, len};
    *pos += len + 1;
    if (!slash)
        *done = true;
    return true;
}

static sedge_err add_entry(router_t *r, entry_t *e)
{
    bytes_t filter = cbytes(e->route->filter, e->route->filter_len);
    rnode_t *n = &r->root;
    size_t pos = 0;
    bool done = false;
    bytes_t level;
    while (next_level(filter, &pos, &level, &done))
        if (!(n = child(n, level, true)))
            return SEDGE_ERR_NOMEM;
    entry_t **entries = array_room(n->entries, n->count, &n->cap, sizeof *entries, 2);
    if (!entries)
        return SEDGE_ERR_NOMEM;
    n->entries = entries;
    n->entries[n->count++] = e;
    return SEDGE_OK;
}

static void free_node(rnode_t *n)
{
    size_t pos = 0;
    rnode_t *c;
    while ((c = map_next(&n->children, &pos))) {
        free_node(c);
        free(c);
    }
    map_free(&n->children);
    if (n->plus) {
        free_node(n->plus);
        free(n->plus);
    }
    if (n->hash) {
        free_node(n->hash);
        free(n->hash);
    }
    free(n->entries);
    free(n->level);
}

void router_free(router_t *r)
{
    if (!r)
        return;
    free_node(&r->root);
    for (size_t i = 0; i < r->implicit_count; i++)
        free(r->implicit[i].text);
    free(r->implicit);
    free(r->entries);
    free(r->counters);
    free(r->found);
    free(r->seen);
    map_free(&r->things);
    map_free(&r->revoked);
    free(r);
}

sedge_err router_build(const group_t *g, router_t **out)
{
    router_t *r = calloc(1, sizeof *r);
    if (!r)
        return SEDGE_ERR_NOMEM;
    r->group = g;
    size_t reverse = 0;
    for (size_t i = 0; i < g->route_count; i++) {
        const route_t *rt = &g->routes[i];
        if (rt->target.kind == ENDPOINT_SHADOW &&
            (rt->source.kind == ENDPOINT_THING || rt->source.kind == ENDPOINT_ANY_THING))
            reverse++;
    }
    size_t total = g->route_count + reverse;
    r->entries = calloc(total ? total : 1, sizeof *r->entries);
    r->implicit = calloc(reverse ? reverse : 1, sizeof *r->implicit);
    r->counters = calloc(g->route_count ? g->route_count : 1, sizeof *r->counters);
    r->seen = calloc(total ? total : 1, sizeof *r->seen);
    r->found = calloc(total ? total : 1, sizeof *r->found);
    r->found_cap = total;
    sedge_err err = SEDGE_ERR_NOMEM;
    if (!r->entries || !r->implicit || !r->counters || !r->seen || !r->found)
        goto fail;
    for (size_t i = 0; i < g->route_count; i++) {
        const route_t *rt = &g->routes[i];
        r->entries[r->entry_count++] = (entry_t){rt, i, false};
        if (rt->target.kind == ENDPOINT_SHADOW &&
            (rt->source.kind == ENDPOINT_THING || rt->source.kind == ENDPOINT_ANY_THING)) {
            route_t *rev = &r->implicit[r->implicit_count++];
            rev->source = (endpoint_t){ENDPOINT_SHADOW, NULL, 0};
            rev->target = rt->source; /* names borrowed from the group */
            rev->filter = rt->filter;
            rev->filter_len = rt->filter_len;
            rev->qos = rt->qos;
            rev->own_shadow_only = rt->source.kind == ENDPOINT_ANY_THING;
            char target[160];
            endpoint_format(&rev->target, target, sizeof target);
            size_t len = strlen("shadow ->  -> ") + rt->filter_len + strlen(target) + 1;
            if (!(rev->text = malloc(len)))
                goto fail;
            snprintf(rev->text, len, "shadow -> %s -> %s", rt->filter, target);
            r->entries[r->entry_count++] = (entry_t){rev, i, true};
        }
    }
    for (size_t i = 0; i < r->entry_count; i++)
        if ((err = add_entry(r, &r->entries[i])))
            goto fail;
    r->things.seed = r->revoked.seed = (uint64_t)(uintptr_t)r;
    for (size_t i = 0; i < g->thing_count; i++)
        if ((err = map_put(&r->things, bytes_of_cstr(g->things[i]), g->things[i])))
            goto fail;
    for (size_t i = 0; i < g->revoked_count; i++)
        if ((err = map_put(&r->revoked, bytes_of_cstr(g->revoked[i]), g->revoked[i])))
            goto fail;
    *out = r;
    return SEDGE_OK;
fail:
    router_free(r);
    return err;
}

const group_t *router_group(const router_t *r)
{
    return r->group;
}

bool router_may_connect(const router_t *r, bytes_t thing)
{
    return map_get(&r->things, thing) && !map_get(&r->revoked, thing);
}

/* The NAME of "$aws/things/NAME/..." (a topic or a filter), or empty
 * when the topic is not a thing's. */
static bytes_t topic_thing(bytes_t topic)
{
    static const char prefix[] = "$aws/things/";
    if (!bytes_has_prefix(topic, prefix))
        return (bytes_t){0};
    const uint8_t *start = topic.data + sizeof prefix - 1;
    size_t left = topic.len - (sizeof prefix - 1);
    const uint8_t *slash = memchr(start, '/', left);
    return (bytes_t){start, slash ? (size_t)(slash - start) : left};
}

/* Does a route deliver to `thing`, for a message on `topic` (a topic, or
 * for subscriptions a filter: a wildcard thing level may match)? */
static bool delivers_to(const route_t *rt, bytes_t thing, bytes_t topic)
{
    const endpoint_t *target = &rt->target;
    if (target->kind == ENDPOINT_THING)
        return bytes_eq(cbytes(target->name, target->name_len), thing);
    if (target->kind != ENDPOINT_ANY_THING)
        return false;
    if (!rt->own_shadow_only)
        return true;
    bytes_t named = topic_thing(topic);
    return !named.len || bytes_eq(named, thing) || bytes_eq_cstr(named, "+") ||
           bytes_eq_cstr(named, "#");
}

bool router_may_subscribe(const router_t *r, bytes_t thing, bytes_t filter)
{
    bytes_t group, inner;
    if (mqtt_shared_split(filter, &group, &inner))
        filter = inner;
    for (size_t i = 0; i < r->entry_count; i++) {
        const route_t *rt = r->entries[i].route;
        if (delivers_to(rt, thing, filter) &&
            filters_overlap(cbytes(rt->filter, rt->filter_len), filter))
            return true;
    }
    return false;
}

/* Does a route's source accept a message from `source`? */
static bool source_matches(const endpoint_t *e, bytes_t source)
{
    switch (e->kind) {
    case ENDPOINT_ANY_THING: return bytes_has_prefix(source, "thing:");
    case ENDPOINT_CLOUD: return bytes_eq_cstr(source, "cloud");
    case ENDPOINT_SHADOW: return bytes_eq_cstr(source, "shadow");
    case ENDPOINT_THING:
    case ENDPOINT_FUNCTION:
    case ENDPOINT_CONNECTOR: {
        static const char *const prefixes[] = {"thing:", "", "function:", "connector:"};
        const char *prefix = prefixes[e->kind];
        size_t plen = strlen(prefix);
        return source.len == plen + e->name_len && bytes_has_prefix(source, prefix) &&
               memcmp(source.data + plen, e->name, e->name_len) == 0;
    }
    case ENDPOINT_KIND_COUNT: break;
    }
    return false;
}

typedef struct {
    router_t *r;
    bytes_t source;
    bytes_t topic;
    size_t found;
} match_t;

/* `thing:*` to `shadow` means each thing, its own shadows: a thing's
 * topic ($aws/things/NAME/...) must name the thing that sends it. (A route
 * from thing:NAME names the thing and reaches any shadow its filter
 * covers.) */
static bool own_shadow(const route_t *rt, bytes_t source, bytes_t topic)
{
    if (rt->source.kind != ENDPOINT_ANY_THING || rt->target.kind != ENDPOINT_SHADOW)
        return true;
    bytes_t named = topic_thing(topic);
    bytes_t thing = {source.data + 6, source.len - 6}; /* after "thing:" */
    return !named.len || bytes_eq(named, thing);
}

static void collect(match_t *m, rnode_t *n)
{
    router_t *r = m->r;
    for (size_t i = 0; i < n->count; i++) {
        entry_t *e = n->entries[i];
        size_t idx = (size_t)(e - r->entries);
        if (r->seen[idx] == r->epoch || !source_matches(&e->route->source, m->source) ||
            !own_shadow(e->route, m->source, m->topic))
            continue;
        r->seen[idx] = r->epoch;
        r->found[m->found++] = e->route;
        if (!e->implicit)
            r->counters[e->counter]++;
    }
}

static void match_from(match_t *m, rnode_t *n, bytes_t topic, size_t pos, bool done, bool root)
{
    bytes_t level;
    while (n) {
        if (!next_level(topic, &pos, &level, &done)) {
            collect(m, n);
            if (n->hash)
                collect(m, n->hash);
            return;
        }
        bool dollar = root && level.len && level.data[0] == '$';
        if (!dollar) {
            if (n->hash)
                collect(m, n->hash);
            if (n->plus)
                match_from(m, n->plus, topic, pos, done, false);
        }
        n = map_get(&n->children, level);
        root = false;
    }
}

bool router_match(router_t *r, bytes_t source, bytes_t topic, route_match_t *out)
{
    match_t m = {r, source, topic, 0};
    r->epoch++;
    match_from(&m, &r->root, topic, 0, false, true);
    out->routes = r->found;
    out->count = m.found;
    out->topic = topic;
    return m.found > 0;
}

bool route_match_reaches_thing(const route_match_t *m, bytes_t thing)
{
    for (size_t i = 0; i < m->count; i++)
        if (delivers_to(m->routes[i], thing, m->topic))
            return true;
    return false;
}

uint64_t router_route_count(const router_t *r, size_t route_index)
{
    return route_index < r->group->route_count ? r->counters[route_index] : 0;
}

bool filters_overlap(bytes_t a, bytes_t b)
{
    size_t pa = 0, pb = 0;
    bool da = false, db = false, first = true;
    bytes_t la, lb;
    for (;;) {
        bool ha = next_level(a, &pa, &la, &da);
        bool hb = next_level(b, &pb, &lb, &db);
        if (!ha && !hb)
            return true;
        if (!ha || !hb) {
            /* "x/#" also matches "x": only a lone remaining '#' fits. */
            bytes_t rest = ha ? la : lb;
            bool more = ha ? !da : !db;
            return !more && bytes_eq_cstr(rest, "#");
        }
        bool wa = bytes_eq_cstr(la, "+") || bytes_eq_cstr(la, "#");
        bool wb = bytes_eq_cstr(lb, "+") || bytes_eq_cstr(lb, "#");
        if (first && ((wa && lb.len && lb.data[0] == '$' && !wb) ||
                      (wb && la.len && la.data[0] == '$' && !wa)))
            return false;
        first = false;
        if (bytes_eq_cstr(la, "#") || bytes_eq_cstr(lb, "#"))
            return true;
        if (!wa && !wb && !bytes_eq(la, lb))
            return false;
    }
}
