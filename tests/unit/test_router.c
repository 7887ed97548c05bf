/*
 * The router: who may connect, which routes a message from a source on a
 * topic matches (MQTT matching over a trie, '$' topics out of reach of a
 * leading wildcard), whom those routes reach, who may subscribe to what,
 * the implicit reply route of the shadow service and the per-route
 * counters. A 1000-route group is checked against a brute-force oracle
 * built on mqtt_topic_matches.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/mqtt.h"
#include "router/router.h"

/* ---- helpers ---- */

static bytes_t lit(const char *s)
{
    return bytes_of_cstr(s);
}

typedef struct {
    group_t *g;
    router_t *r;
} fixture_t;

/* Build a router from a document written with ' for ". */
static fixture_t build(const char *text)
{
    char *json = strdup(text);
    assert_non_null(json);
    for (char *p = json; *p; p++)
        if (*p == '\'')
            *p = '"';
    fixture_t f = {0};
    buf_t errors = {0};
    sedge_err err = group_parse(json, strlen(json), GROUP_MAX_BYTES_DEFAULT, &f.g, &errors);
    if (err)
        print_message("%.*s", (int)errors.len, (const char *)errors.data);
    assert_int_equal(err, SEDGE_OK);
    buf_free(&errors);
    free(json);
    assert_int_equal(router_build(f.g, &f.r), SEDGE_OK);
    assert_ptr_equal(router_group(f.r), f.g);
    return f;
}

static void destroy(fixture_t *f)
{
    router_free(f->r);
    group_free(f->g);
}

/* Index in the group of a matched route; -1 for an implicit one. */
static long route_index(const fixture_t *f, const route_t *rt)
{
    if (rt >= f->g->routes && rt < f->g->routes + f->g->route_count)
        return (long)(rt - f->g->routes);
    return -1;
}

/* The group routes matched, as a bit set (routes 0..63), implicit ones in
 * *implicit. */
static uint64_t matched(fixture_t *f, const char *source, const char *topic, size_t *implicit)
{
    route_match_t m = {0};
    bool any = router_match(f->r, lit(source), lit(topic), &m);
    assert_int_equal(any, m.count > 0);
    uint64_t set = 0;
    size_t n_implicit = 0;
    for (size_t i = 0; i < m.count; i++) {
        long idx = route_index(f, m.routes[i]);
        if (idx < 0) {
            n_implicit++;
            continue;
        }
        assert_true(idx < 64);
        assert_false(set & (1ull << idx)); /* each route once */
        set |= 1ull << idx;
    }
    if (implicit)
        *implicit = n_implicit;
    else
        assert_int_equal(n_implicit, 0);
    return set;
}

#define BIT(i) (1ull << (i))

static bool may_subscribe(fixture_t *f, const char *thing, const char *filter)
{
    return router_may_subscribe(f->r, lit(thing), lit(filter));
}

static bool overlap(const char *a, const char *b)
{
    bool ab = filters_overlap(lit(a), lit(b));
    assert_int_equal(ab, filters_overlap(lit(b), lit(a))); /* symmetric */
    return ab;
}

#define THINGS                                                                                     \
    "'things': [{'name': 'lamp'}, {'name': 'switch'}, {'name': 'old'}, {'name': 'lamp2'}],"        \
    "'functions': [{'name': 'alarm', 'exec': ['x']}, {'name': 'lamp', 'exec': ['x']}],"            \
    "'connectors': [{'name': 'modbus', 'type': 'metrics'}],"

/* ---- connecting ---- */

static void test_things_of_the_group_may_connect_unless_revoked(void **state)
{
    (void)state;
    fixture_t f = build("{'group': 'g'," THINGS "'revoked': ['old', 'stranger']}");
    assert_true(router_may_connect(f.r, lit("lamp")));
    assert_true(router_may_connect(f.r, lit("switch")));
    assert_true(router_may_connect(f.r, lit("lamp2")));
    assert_false(router_may_connect(f.r, lit("old")));      /* revoked */
    assert_false(router_may_connect(f.r, lit("stranger"))); /* not in the group either */
    assert_false(router_may_connect(f.r, lit("alarm")));    /* a function, not a thing */
    assert_false(router_may_connect(f.r, lit("lam")));
    assert_false(router_may_connect(f.r, lit("lamp22")));
    assert_false(router_may_connect(f.r, lit("LAMP")));
    assert_false(router_may_connect(f.r, lit("")));
    assert_false(router_may_connect(f.r, (bytes_t){(const uint8_t *)"lamp\0", 5}));
    destroy(&f);
}

static void test_an_empty_group_lets_nobody_in_and_nothing_through(void **state)
{
    (void)state;
    fixture_t f = build("{'group': 'g'}");
    assert_false(router_may_connect(f.r, lit("lamp")));
    route_match_t m = {0};
    assert_false(router_match(f.r, lit("thing:lamp"), lit("a"), &m));
    assert_int_equal(m.count, 0);
    assert_false(route_match_reaches_thing(&m, lit("lamp")));
    assert_false(may_subscribe(&f, "lamp", "#"));
    assert_int_equal(router_route_count(f.r, 0), 0);
    destroy(&f);
}

/* ---- matching ---- */

static void test_each_source_kind_matches_only_its_own_endpoint(void **state)
{
    (void)state;
    fixture_t f = build("{'group': 'g'," THINGS "'routes': ["
                        " {'source': 'thing:lamp', 'filter': 't', 'target': 'cloud'},"
                        " {'source': 'thing:*', 'filter': 't', 'target': 'cloud'},"
                        " {'source': 'function:lamp', 'filter': 't', 'target': 'cloud'},"
                        " {'source': 'function:alarm', 'filter': 't', 'target': 'cloud'},"
                        " {'source': 'connector:modbus', 'filter': 't', 'target': 'cloud'},"
                        " {'source': 'cloud', 'filter': 't', 'target': 'thing:*'},"
                        " {'source': 'shadow', 'filter': 't', 'target': 'thing:lamp'}]}");
    assert_int_equal(matched(&f, "thing:lamp", "t", NULL), BIT(0) | BIT(1));
    assert_int_equal(matched(&f, "thing:switch", "t", NULL), BIT(1));
    assert_int_equal(matched(&f, "thing:lamp2", "t", NULL), BIT(1));
    assert_int_equal(matched(&f, "function:lamp", "t", NULL), BIT(2));
    assert_int_equal(matched(&f, "function:alarm", "t", NULL), BIT(3));
    assert_int_equal(matched(&f, "connector:modbus", "t", NULL), BIT(4));
    assert_int_equal(matched(&f, "cloud", "t", NULL), BIT(5));
    assert_int_equal(matched(&f, "shadow", "t", NULL), BIT(6));
    /* thing:* takes any thing, known or not: connecting is where names are checked. */
    assert_int_equal(matched(&f, "thing:lam", "t", NULL), BIT(1));
    assert_int_equal(matched(&f, "thing:", "t", NULL), BIT(1));
    /* Near misses of a name or a kind. */
    static const char *const nobody[] = {"thing",     "function:lam", "function:alarm2",
                                         "function:", "connector:",   "connector:modbu",
                                         "modbus",    "lamp",         "clouds",
                                         "cloud:",    "shadow:",      "",
                                         "thing*",    "function:*",   "connector:modbus/x"};
    for (size_t i = 0; i < ARRAY_LEN(nobody); i++) {
        uint64_t got = matched(&f, nobody[i], "t", NULL);
        if (got)
            fail_msg("source \"%s\" matched routes %#llx", nobody[i], (unsigned long long)got);
    }
    /* Another topic matches nothing at all. */
    assert_int_equal(matched(&f, "thing:lamp", "u", NULL), 0);
    assert_int_equal(matched(&f, "thing:lamp", "t/u", NULL), 0);
    destroy(&f);
}

static void test_wildcard_filters_match_as_mqtt_does(void **state)
{
    (void)state;
    fixture_t f =
        build("{'group': 'g'," THINGS "'routes': ["
              " {'source': 'cloud', 'filter': 'sport/tennis/+', 'target': 'shadow'},"
              " {'source': 'cloud', 'filter': 'sport/#', 'target': 'shadow'},"
              " {'source': 'cloud', 'filter': '#', 'target': 'shadow'},"
              " {'source': 'cloud', 'filter': '+/+', 'target': 'shadow'},"
              " {'source': 'cloud', 'filter': '+', 'target': 'shadow'},"
              " {'source': 'cloud', 'filter': 'sport/tennis/player1', 'target': 'shadow'},"
              " {'source': 'cloud', 'filter': '+/tennis/#', 'target': 'shadow'},"
              " {'source': 'cloud', 'filter': '/finance', 'target': 'shadow'},"
              " {'source': 'cloud', 'filter': 'sport/+/player1/#', 'target': 'shadow'}]}");
    assert_int_equal(matched(&f, "cloud", "sport/tennis/player1", NULL),
                     BIT(0) | BIT(1) | BIT(2) | BIT(5) | BIT(6) | BIT(8));
    assert_int_equal(matched(&f, "cloud", "sport/tennis/player1/ranking", NULL),
                     BIT(1) | BIT(2) | BIT(6) | BIT(8));
    assert_int_equal(matched(&f, "cloud", "sport", NULL), BIT(1) | BIT(2) | BIT(4));
    assert_int_equal(matched(&f, "cloud", "sport/", NULL), BIT(1) | BIT(2) | BIT(3));
    assert_int_equal(matched(&f, "cloud", "sport/tennis", NULL), BIT(1) | BIT(2) | BIT(3) | BIT(6));
    assert_int_equal(matched(&f, "cloud", "sport/tennis/", NULL),
                     BIT(0) | BIT(1) | BIT(2) | BIT(6));
    assert_int_equal(matched(&f, "cloud", "/finance", NULL), BIT(2) | BIT(3) | BIT(7));
    assert_int_equal(matched(&f, "cloud", "/", NULL), BIT(2) | BIT(3));
    assert_int_equal(matched(&f, "cloud", "a/tennis/b/c", NULL), BIT(2) | BIT(6));
    assert_int_equal(matched(&f, "cloud", "sport/x/player1", NULL), BIT(1) | BIT(2) | BIT(8));
    assert_int_equal(matched(&f, "cloud", "x", NULL), BIT(2) | BIT(4));
    destroy(&f);
}

static void test_dollar_topics_escape_leading_wildcards_only(void **state)
{
    (void)state;
    fixture_t f = build("{'group': 'g'," THINGS "'routes': ["
                        " {'source': 'cloud', 'filter': '#', 'target': 'shadow'},"
                        " {'source': 'cloud', 'filter': '+/monitor/Clients', 'target': 'shadow'},"
                        " {'source': 'cloud', 'filter': '$SYS/#', 'target': 'shadow'},"
                        " {'source': 'cloud', 'filter': '$SYS/monitor/+', 'target': 'shadow'},"
                        " {'source': 'cloud', 'filter': 'a/+', 'target': 'shadow'},"
                        " {'source': 'cloud', 'filter': '+', 'target': 'shadow'},"
                        " {'source': 'cloud', 'filter': '$aws/things/+/shadow/#',"
                        "  'target': 'shadow'}]}");
    assert_int_equal(matched(&f, "cloud", "$SYS/monitor/Clients", NULL), BIT(2) | BIT(3));
    assert_int_equal(matched(&f, "cloud", "$SYS", NULL), BIT(2));
    assert_int_equal(matched(&f, "cloud", "$", NULL), 0);
    assert_int_equal(matched(&f, "cloud", "$aws/things/lamp/shadow/get", NULL), BIT(6));
    assert_int_equal(matched(&f, "cloud", "$aws/things/lamp/shadow", NULL), BIT(6));
    /* Only the first level is special. */
    assert_int_equal(matched(&f, "cloud", "a/$x", NULL), BIT(0) | BIT(4));
    assert_int_equal(matched(&f, "cloud", "x/monitor/Clients", NULL), BIT(0) | BIT(1));
    assert_int_equal(matched(&f, "cloud", "x$", NULL), BIT(0) | BIT(5));
    destroy(&f);
}

static void test_overlapping_routes_each_match_once(void **state)
{
    (void)state;
    fixture_t f = build("{'group': 'g'," THINGS "'routes': ["
                        " {'source': 'thing:lamp', 'filter': 'a/b', 'target': 'cloud'},"
                        " {'source': 'thing:lamp', 'filter': 'a/b', 'target': 'function:alarm'},"
                        " {'source': 'thing:*', 'filter': 'a/b', 'target': 'thing:switch'},"
                        " {'source': 'thing:lamp', 'filter': 'a/#', 'target': 'cloud'},"
                        " {'source': 'thing:switch', 'filter': 'a/#', 'target': 'cloud'},"
                        " {'source': 'thing:lamp', 'filter': '+/b', 'target': 'cloud'},"
                        " {'source': 'thing:lamp', 'filter': '+/+', 'target': 'cloud'}]}");
    route_match_t m;
    assert_true(router_match(f.r, lit("thing:lamp"), lit("a/b"), &m));
    assert_int_equal(m.count, 6);
    assert_int_equal(matched(&f, "thing:lamp", "a/b", NULL),
                     BIT(0) | BIT(1) | BIT(2) | BIT(3) | BIT(5) | BIT(6));
    assert_int_equal(matched(&f, "thing:switch", "a/b", NULL), BIT(2) | BIT(4));
    destroy(&f);
}

static void test_a_match_reaches_the_things_its_routes_target(void **state)
{
    (void)state;
    fixture_t f = build("{'group': 'g'," THINGS "'routes': ["
                        " {'source': 'thing:lamp', 'filter': 'x/#', 'target': 'thing:switch'},"
                        " {'source': 'thing:lamp', 'filter': 'x/y', 'target': 'function:lamp'},"
                        " {'source': 'cloud', 'filter': 'all', 'target': 'thing:*'},"
                        " {'source': 'cloud', 'filter': 'fn', 'target': 'function:lamp'},"
                        " {'source': 'cloud', 'filter': 'fn', 'target': 'connector:modbus'}]}");
    route_match_t m;
    assert_true(router_match(f.r, lit("thing:lamp"), lit("x/y"), &m));
    assert_int_equal(m.count, 2);
    assert_true(route_match_reaches_thing(&m, lit("switch")));
    assert_false(route_match_reaches_thing(&m, lit("lamp"))); /* function:lamp is no thing */
    assert_false(route_match_reaches_thing(&m, lit("switc")));
    assert_true(router_match(f.r, lit("thing:lamp"), lit("x/z"), &m));
    assert_int_equal(m.count, 1);
    assert_true(route_match_reaches_thing(&m, lit("switch")));
    assert_true(router_match(f.r, lit("cloud"), lit("all"), &m));
    assert_true(route_match_reaches_thing(&m, lit("lamp")));
    assert_true(route_match_reaches_thing(&m, lit("anyone")));
    assert_true(router_match(f.r, lit("cloud"), lit("fn"), &m));
    assert_int_equal(m.count, 2);
    assert_false(route_match_reaches_thing(&m, lit("lamp")));
    assert_false(route_match_reaches_thing(&m, lit("modbus")));
    assert_false(router_match(f.r, lit("cloud"), lit("none"), &m));
    assert_false(route_match_reaches_thing(&m, lit("lamp")));
    destroy(&f);
}

/* ---- subscribing ---- */

static void test_a_thing_may_subscribe_where_a_route_could_deliver(void **state)
{
    (void)state;
    fixture_t f = build("{'group': 'g'," THINGS "'routes': ["
                        " {'source': 'cloud', 'filter': 'cmd/lamp/#', 'target': 'thing:lamp'},"
                        " {'source': 'function:alarm', 'filter': 'siren/+/on',"
                        "  'target': 'thing:switch'},"
                        " {'source': 'cloud', 'filter': 'broadcast', 'target': 'thing:*'},"
                        " {'source': 'thing:lamp', 'filter': 'to/cloud/#', 'target': 'cloud'}]}");
    static const struct {
        const char *thing, *filter;
        bool ok;
    } cases[] = {
        {"lamp", "cmd/lamp/on", true},
        {"lamp", "cmd/lamp", true}, /* "cmd/lamp/#" covers its parent */
        {"lamp", "cmd/lamp/#", true},
        {"lamp", "cmd/#", true},
        {"lamp", "cmd/+/x", true},
        {"lamp", "+/lamp/+/+", true},
        {"lamp", "#", true},
        {"lamp", "cmd/switch/on", false},
        {"lamp", "cmd", false},
        {"lamp", "to/cloud/#", false}, /* a route from it, not to it */
        {"lamp", "siren/1/on", false},
        {"lamp", "broadcast", true},
        {"lamp", "broadcast/x", false},
        {"lamp", "+", true},
        {"switch", "siren/1/on", true},
        {"switch", "siren/+/+", true},
        {"switch", "siren/1", false},
        {"switch", "siren/1/off", false},
        {"switch", "siren/1/on/x", false},
        {"switch", "cmd/lamp/on", false},
        {"switch", "broadcast", true},
        {"lamp2", "cmd/lamp/on", false},
        {"lamp2", "broadcast", true},
        {"lamp", "$share/grp/cmd/lamp/x", true},
        {"lamp", "$share/grp/#", true},
        {"switch", "$share/grp/cmd/lamp/x", false},
        {"lamp", "$SYS/#", false},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        if (may_subscribe(&f, cases[i].thing, cases[i].filter) != cases[i].ok)
            fail_msg("%s subscribing to %s: expected %s", cases[i].thing, cases[i].filter,
                     cases[i].ok ? "allowed" : "refused");
    destroy(&f);
}

static void test_a_wildcard_subscription_does_not_reach_dollar_routes(void **state)
{
    (void)state;
    fixture_t f = build("{'group': 'g'," THINGS "'routes': ["
                        " {'source': 'cloud', 'filter': '$aws/things/lamp/jobs/#',"
                        "  'target': 'thing:lamp'}]}");
    assert_true(may_subscribe(&f, "lamp", "$aws/things/lamp/jobs/notify"));
    assert_true(may_subscribe(&f, "lamp", "$aws/#"));
    assert_true(may_subscribe(&f, "lamp", "$aws/+/+/jobs"));
    assert_false(may_subscribe(&f, "lamp", "#"));
    assert_false(may_subscribe(&f, "lamp", "+/things/lamp/jobs/x"));
    assert_false(may_subscribe(&f, "lamp", "$share/g/#"));
    destroy(&f);
}

static void test_filters_overlap_when_some_topic_matches_both(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        bool ok;
    } cases[] = {
        {"a/b", "a/b", true},       {"a/b", "a/c", false},    {"a/+", "a/b", true},
        {"a/+", "+/b", true},       {"+/+", "a", false},      {"#", "a/b/c", true},
        {"a/#", "a", true},         {"a/#", "a/b/c", true},   {"a/#", "b/#", false},
        {"a/+/c", "a/b/d", false},  {"a/+/c", "+/b/+", true}, {"a/b", "a/b/c", false},
        {"a/b/#", "a/+", true},     {"+", "a/b", false},      {"+/#", "a", true},
        {"#", "$SYS/x", false},     {"+/x", "$SYS/x", false}, {"$SYS/#", "$SYS/x", true},
        {"$SYS/+", "$SYS/#", true}, {"#", "#", true},         {"+", "+", true},
        {"a//b", "a/+/b", true},    {"a//b", "a/b", false},   {"/", "+/+", true},
        {"/", "+", false},          {"#", "$SYS", false},     {"+", "$", false},
        {"a/$x", "a/+", true},      {"x/#", "x/y/#", true},   {"$a/#", "$b/#", false},
        {"+/#", "#", true},         {"a/+/#", "a", false},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        if (overlap(cases[i].a, cases[i].b) != cases[i].ok)
            fail_msg("overlap(\"%s\", \"%s\"): expected %d", cases[i].a, cases[i].b, cases[i].ok);
}

static void test_empty_views_match_and_overlap_nothing_they_should_not(void **state)
{
    (void)state;
    bytes_t none = {NULL, 0};
    assert_false(filters_overlap(none, lit("a")));
    assert_false(filters_overlap(lit("a/b"), none));
    fixture_t f = build("{'group': 'g'," THINGS "'routes': ["
                        " {'source': 'cloud', 'filter': 'a/#', 'target': 'thing:lamp'}]}");
    route_match_t m;
    assert_false(router_match(f.r, lit("cloud"), none, &m));
    assert_false(router_match(f.r, none, lit("a/b"), &m));
    assert_false(router_may_subscribe(f.r, lit("lamp"), none));
    assert_false(router_may_subscribe(f.r, none, lit("a/b")));
    assert_false(router_may_connect(f.r, none));
    destroy(&f);
}

/* ---- the shadow's reply route ---- */

static void test_a_route_to_shadow_lets_the_shadow_answer_its_source(void **state)
{
    (void)state;
    fixture_t f = build("{'group': 'g'," THINGS "'routes': ["
                        " {'source': 'thing:lamp', 'filter': '$aws/things/lamp/shadow/#',"
                        "  'target': 'shadow', 'qos': 1},"
                        " {'source': 'thing:*', 'filter': 'shadows/+/#', 'target': 'shadow'},"
                        " {'source': 'cloud', 'filter': 'cloud/shadow/#', 'target': 'shadow'},"
                        " {'source': 'function:alarm', 'filter': 'fn/shadow/#',"
                        "  'target': 'shadow'}]}");
    size_t implicit = 0;
    route_match_t m;

    /* The request flows to the shadow, counted. */
    assert_int_equal(matched(&f, "thing:lamp", "$aws/things/lamp/shadow/update", NULL), BIT(0));
    /* The reply flows back on the same filter, to the source only. */
    assert_true(
        router_match(f.r, lit("shadow"), lit("$aws/things/lamp/shadow/update/accepted"), &m));
    assert_int_equal(m.count, 1);
    assert_int_equal(route_index(&f, m.routes[0]), -1);
    assert_int_equal(m.routes[0]->source.kind, ENDPOINT_SHADOW);
    assert_int_equal(m.routes[0]->target.kind, ENDPOINT_THING);
    assert_string_equal(m.routes[0]->target.name, "lamp");
    assert_string_equal(m.routes[0]->filter, "$aws/things/lamp/shadow/#");
    assert_int_equal(m.routes[0]->qos, 1);
    assert_string_equal(m.routes[0]->text, "shadow -> $aws/things/lamp/shadow/# -> thing:lamp");
    assert_true(route_match_reaches_thing(&m, lit("lamp")));
    assert_false(route_match_reaches_thing(&m, lit("switch")));
    /* The thing may subscribe to its replies; another thing may not. */
    assert_true(may_subscribe(&f, "lamp", "$aws/things/lamp/shadow/update/accepted"));
    assert_false(may_subscribe(&f, "switch", "$aws/things/lamp/shadow/update/accepted"));

    /* thing:* -> shadow answers any thing. */
    assert_int_equal(matched(&f, "shadow", "shadows/switch/get/accepted", &implicit), 0);
    assert_int_equal(implicit, 1);
    assert_true(router_match(f.r, lit("shadow"), lit("shadows/switch/get"), &m));
    assert_int_equal(m.routes[0]->target.kind, ENDPOINT_ANY_THING);
    assert_string_equal(m.routes[0]->text, "shadow -> shadows/+/# -> thing:*");
    assert_true(route_match_reaches_thing(&m, lit("switch")));
    assert_true(may_subscribe(&f, "lamp2", "shadows/lamp2/#"));

    /* Only routes from things get a reply route. */
    assert_false(router_match(f.r, lit("shadow"), lit("cloud/shadow/x"), &m));
    assert_false(router_match(f.r, lit("shadow"), lit("fn/shadow/x"), &m));
    /* The reply route carries nothing from anyone but the shadow. */
    assert_int_equal(matched(&f, "thing:switch", "$aws/things/lamp/shadow/update", NULL), 0);
    assert_int_equal(matched(&f, "cloud", "$aws/things/lamp/shadow/update", NULL), 0);

    /* Replies are not counted against the group's routes. */
    assert_int_equal(router_route_count(f.r, 0), 1);
    assert_int_equal(router_route_count(f.r, 1), 0);
    destroy(&f);
}

static void test_an_explicit_shadow_route_and_the_reply_route_both_match(void **state)
{
    (void)state;
    fixture_t f = build("{'group': 'g'," THINGS "'routes': ["
                        " {'source': 'thing:lamp', 'filter': 's/#', 'target': 'shadow'},"
                        " {'source': 'shadow', 'filter': 's/+/delta', 'target': 'thing:*'}]}");
    size_t implicit = 0;
    assert_int_equal(matched(&f, "shadow", "s/lamp/delta", &implicit), BIT(1));
    assert_int_equal(implicit, 1);
    assert_int_equal(matched(&f, "shadow", "s/lamp/get", &implicit), 0);
    assert_int_equal(implicit, 1);
    assert_int_equal(router_route_count(f.r, 1), 1);
    assert_int_equal(router_route_count(f.r, 0), 0);
    destroy(&f);
}

/* Issue 11 item 6: with thing:* -> $aws/things/+/shadow/# -> shadow, each
 * thing reaches its own shadows only, both ways; a route from a named
 * thing may reach another's. */
static void test_any_thing_to_shadow_means_each_thing_its_own_shadows(void **state)
{
    (void)state;
    fixture_t f = build("{'group': 'g'," THINGS "'routes': ["
                        " {'source': 'thing:*', 'filter': '$aws/things/+/shadow/#',"
                        "  'target': 'shadow'},"
                        " {'source': 'thing:switch', 'filter': '$aws/things/lamp/shadow/update',"
                        "  'target': 'shadow'},"
                        " {'source': 'thing:*', 'filter': '$aws/things/+/shadow/#',"
                        "  'target': 'cloud'}]}");
    /* Its own shadow, classic and named. */
    assert_int_equal(matched(&f, "thing:lamp", "$aws/things/lamp/shadow/update", NULL),
                     BIT(0) | BIT(2));
    assert_int_equal(matched(&f, "thing:lamp", "$aws/things/lamp/shadow/name/cfg/delete", NULL),
                     BIT(0) | BIT(2));
    /* Another thing's: not to the shadow (the route to the cloud is not
     * about shadows and still matches). */
    assert_int_equal(matched(&f, "thing:lamp2", "$aws/things/lamp/shadow/update", NULL), BIT(2));
    assert_int_equal(matched(&f, "thing:lamp", "$aws/things/lamp2/shadow/delete", NULL), BIT(2));
    /* Unless a route from the thing by name covers it. */
    assert_int_equal(matched(&f, "thing:switch", "$aws/things/lamp/shadow/update", NULL),
                     BIT(1) | BIT(2));
    assert_int_equal(matched(&f, "thing:switch", "$aws/things/lamp/shadow/delete", NULL), BIT(2));
    /* The replies: each thing its own. */
    route_match_t m;
    assert_true(
        router_match(f.r, lit("shadow"), lit("$aws/things/lamp/shadow/update/accepted"), &m));
    assert_true(route_match_reaches_thing(&m, lit("lamp")));
    assert_false(route_match_reaches_thing(&m, lit("lamp2")));
    assert_true(may_subscribe(&f, "lamp2", "$aws/things/lamp2/shadow/#"));
    assert_false(may_subscribe(&f, "lamp2", "$aws/things/lamp/shadow/update/accepted"));
    destroy(&f);
}

/* ---- counters ---- */

static void test_counters_count_matched_messages_per_route(void **state)
{
    (void)state;
    fixture_t f = build("{'group': 'g'," THINGS "'routes': ["
                        " {'source': 'thing:lamp', 'filter': 'a/#', 'target': 'cloud'},"
                        " {'source': 'thing:lamp', 'filter': 'a/b', 'target': 'cloud'},"
                        " {'source': 'thing:*', 'filter': '#', 'target': 'cloud'}]}");
    route_match_t m;
    for (int i = 0; i < 3; i++)
        assert_true(router_match(f.r, lit("thing:lamp"), lit("a/b"), &m));
    assert_true(router_match(f.r, lit("thing:lamp"), lit("a/c"), &m));
    assert_true(router_match(f.r, lit("thing:switch"), lit("a/b"), &m));
    assert_false(router_match(f.r, lit("cloud"), lit("a/b"), &m));
    assert_false(router_match(f.r, lit("thing:switch"), lit("$SYS/x"), &m));
    assert_int_equal(router_route_count(f.r, 0), 4);
    assert_int_equal(router_route_count(f.r, 1), 3);
    assert_int_equal(router_route_count(f.r, 2), 5);
    assert_int_equal(router_route_count(f.r, 3), 0); /* past the end */
    assert_int_equal(router_route_count(f.r, (size_t)-1), 0);

    /* A new router starts from zero. */
    router_t *again = NULL;
    assert_int_equal(router_build(f.g, &again), SEDGE_OK);
    assert_int_equal(router_route_count(again, 0), 0);
    router_free(again);
    router_free(NULL);
    destroy(&f);
}

/* ---- a big group against a brute-force oracle ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static const char *const levels[] = {"a", "b", "c", "$x", "", "dd"};
static const char *const sources[] = {"thing:t0",     "thing:t1",    "thing:t2",
                                      "thing:*",      "function:f0", "function:f1",
                                      "connector:c0", "cloud",       "shadow"};
static const char *const targets[] = {"thing:t0",     "thing:t1", "thing:*", "function:f0",
                                      "connector:c0", "cloud",    "shadow"};
static const char *const senders[] = {"thing:t0",    "thing:t1",    "thing:t2",    "thing:t3",
                                      "function:f0", "function:f1", "function:f2", "connector:c0",
                                      "cloud",       "shadow",      "thing:",      "nobody"};

static void random_filter(char *out, size_t cap)
{
    do {
        size_t n = 1 + rnd(4), len = 0;
        for (size_t i = 0; i < n; i++) {
            const char *level;
            uint32_t pick = rnd(10);
            if (pick < 2)
                level = "+";
            else if (pick == 2 && i == n - 1)
                level = "#";
            else
                level = levels[rnd(ARRAY_LEN(levels))];
            len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "/" : "", level);
        }
    } while (!out[0]);
}

static void random_topic(char *out, size_t cap)
{
    do {
        size_t n = 1 + rnd(5), len = 0;
        for (size_t i = 0; i < n; i++)
            len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "/" : "",
                                    levels[rnd(ARRAY_LEN(levels))]);
    } while (!out[0]);
}

static bool oracle_source(const endpoint_t *e, const char *sender)
{
    char name[160];
    endpoint_format(e, name, sizeof name);
    if (e->kind == ENDPOINT_ANY_THING)
        return strncmp(sender, "thing:", 6) == 0;
    return strcmp(name, sender) == 0;
}

static void test_a_thousand_routes_match_like_a_linear_scan(void **state)
{
    (void)state;
    enum { ROUTES = 1000, TOPICS = 3000 };
    json_t *doc = json_pack("{s:s}", "group", "big");
    json_t *things = json_array(), *functions = json_array(), *routes = json_array();
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        json_array_append_new(things, json_pack("{s:s}", "name", name));
    }
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        json_array_append_new(functions, json_pack("{s:s,s:[s]}", "name", name, "exec", "x"));
    }
    for (int i = 0; i < ROUTES; i++) {
        char filter[64];
        random_filter(filter, sizeof filter);
        const char *source = sources[rnd(ARRAY_LEN(sources))];
        const char *target = targets[rnd(ARRAY_LEN(targets))];
        if (!strcmp(source, "shadow") && !strcmp(target, "shadow"))
            target = "cloud";
        json_array_append_new(routes, json_pack("{s:s,s:s,s:s}", "source", source, "filter", filter,
                                                "target", target));
    }
    json_object_set_new(doc, "things", things);
    json_object_set_new(doc, "functions", functions);
    json_object_set_new(doc, "connectors", json_pack("[{s:s, s:s}]", "name", "c0", "type", "metrics"));
    json_object_set_new(doc, "routes", routes);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    assert_non_null(text);

    group_t *g = NULL;
    buf_t errors = {0};
    sedge_err err = group_parse(text, strlen(text), GROUP_MAX_BYTES_DEFAULT, &g, &errors);
    if (err)
        print_message("%.*s", (int)errors.len, (const char *)errors.data);
    assert_int_equal(err, SEDGE_OK);
    free(text);
    assert_int_equal(g->route_count, ROUTES);
    router_t *r = NULL;
    assert_int_equal(router_build(g, &r), SEDGE_OK);

    uint64_t *want_count = calloc(ROUTES, sizeof *want_count);
    uint8_t *want = calloc(ROUTES, 1), *want_reply = calloc(ROUTES, 1);
    assert_non_null(want_count);
    assert_non_null(want);
    assert_non_null(want_reply);
    size_t total_matched = 0;
    for (int t = 0; t < TOPICS; t++) {
        char topic[64];
        random_topic(topic, sizeof topic);
        const char *sender = senders[rnd(ARRAY_LEN(senders))];
        size_t n_want = 0;
        for (size_t i = 0; i < ROUTES; i++) {
            const route_t *rt = &g->routes[i];
            bool hit = mqtt_topic_matches(lit(rt->filter), lit(topic));
            want[i] = hit && oracle_source(&rt->source, sender);
            /* The implicit reply route: shadow -> same filter -> the source thing(s). */
            want_reply[i] =
                hit && !strcmp(sender, "shadow") && rt->target.kind == ENDPOINT_SHADOW &&
                (rt->source.kind == ENDPOINT_THING || rt->source.kind == ENDPOINT_ANY_THING);
            n_want += want[i] + want_reply[i];
            want_count[i] += want[i];
        }
        route_match_t m;
        bool any = router_match(r, lit(sender), lit(topic), &m);
        if (m.count != n_want)
            fail_msg("%s on \"%s\": %zu routes, the oracle says %zu", sender, topic, m.count,
                     n_want);
        assert_int_equal(any, n_want > 0);
        total_matched += m.count;
        for (size_t k = 0; k < m.count; k++) {
            const route_t *rt = m.routes[k];
            if (rt >= g->routes && rt < g->routes + ROUTES) {
                size_t i = (size_t)(rt - g->routes);
                if (!want[i])
                    fail_msg("%s on \"%s\": matched %s", sender, topic, rt->text);
                want[i] = 0; /* and so no route twice */
                continue;
            }
            /* A reply route borrows its filter from the route it answers. */
            size_t i = 0;
            while (i < ROUTES && !(want_reply[i] && g->routes[i].filter == rt->filter &&
                                   rt->target.kind == g->routes[i].source.kind &&
                                   rt->target.name == g->routes[i].source.name))
                i++;
            if (i == ROUTES)
                fail_msg("shadow on \"%s\": an unexpected reply route on %s", topic, rt->filter);
            assert_int_equal(rt->source.kind, ENDPOINT_SHADOW);
            want_reply[i] = 0;
        }
        /* Reaching a thing agrees with the routes matched. */
        bool reaches = false;
        for (size_t k = 0; k < m.count; k++)
            reaches |= m.routes[k]->target.kind == ENDPOINT_ANY_THING ||
                       (m.routes[k]->target.kind == ENDPOINT_THING &&
                        !strcmp(m.routes[k]->target.name, "t1"));
        assert_int_equal(route_match_reaches_thing(&m, lit("t1")), reaches);
    }
    assert_true(total_matched > TOPICS); /* the test means something */
    for (size_t i = 0; i < ROUTES; i++)
        if (router_route_count(r, i) != want_count[i])
            fail_msg("route %zu (%s): counted %llu, the oracle says %llu", i, g->routes[i].text,
                     (unsigned long long)router_route_count(r, i),
                     (unsigned long long)want_count[i]);
    free(want_count);
    free(want);
    free(want_reply);
    router_free(r);
    group_free(g);
}

/* filters_overlap against a search for a topic that both filters match,
 * over every topic of up to five levels made of the words the random
 * filters use plus a fresh one (standing for any word neither names). */
static void test_filters_overlap_agrees_with_a_search_for_a_witness(void **state)
{
    (void)state;
    static const char *const words[] = {"a", "b", "c", "$x", "", "dd", "zz"};
    enum { N = ARRAY_LEN(words), MAXL = 5 };
    size_t count = 0, cap = 0;
    for (size_t l = 1, p = N; l <= MAXL; l++, p *= N)
        cap += p;
    char(*topics)[32] = calloc(cap, sizeof *topics);
    assert_non_null(topics);
    for (size_t l = 1; l <= MAXL; l++) {
        size_t idx[MAXL] = {0};
        for (;;) {
            size_t len = 0;
            for (size_t i = 0; i < l; i++)
                len += (size_t)snprintf(topics[count] + len, 32 - len, "%s%s", i ? "/" : "",
                                        words[idx[i]]);
            if (len)
                count++;
            size_t i = 0;
            while (i < l && ++idx[i] == N)
                idx[i++] = 0;
            if (i == l)
                break;
        }
    }
    size_t overlapping = 0;
    for (int pair = 0; pair < 400; pair++) {
        char a[64], b[64];
        random_filter(a, sizeof a);
        random_filter(b, sizeof b);
        bool witness = false;
        for (size_t t = 0; t < count && !witness; t++)
            witness = mqtt_topic_matches(lit(a), lit(topics[t])) &&
                      mqtt_topic_matches(lit(b), lit(topics[t]));
        if (filters_overlap(lit(a), lit(b)) != witness)
            fail_msg("overlap(\"%s\", \"%s\"): a topic matching both %s", a, b,
                     witness ? "exists" : "does not exist");
        overlapping += witness;
    }
    assert_true(overlapping > 20 && overlapping < 380); /* both answers were tried */
    free(topics);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_things_of_the_group_may_connect_unless_revoked),
        cmocka_unit_test(test_an_empty_group_lets_nobody_in_and_nothing_through),
        cmocka_unit_test(test_each_source_kind_matches_only_its_own_endpoint),
        cmocka_unit_test(test_wildcard_filters_match_as_mqtt_does),
        cmocka_unit_test(test_dollar_topics_escape_leading_wildcards_only),
        cmocka_unit_test(test_overlapping_routes_each_match_once),
        cmocka_unit_test(test_a_match_reaches_the_things_its_routes_target),
        cmocka_unit_test(test_a_thing_may_subscribe_where_a_route_could_deliver),
        cmocka_unit_test(test_a_wildcard_subscription_does_not_reach_dollar_routes),
        cmocka_unit_test(test_filters_overlap_when_some_topic_matches_both),
        cmocka_unit_test(test_empty_views_match_and_overlap_nothing_they_should_not),
        cmocka_unit_test(test_a_route_to_shadow_lets_the_shadow_answer_its_source),
        cmocka_unit_test(test_an_explicit_shadow_route_and_the_reply_route_both_match),
        cmocka_unit_test(test_any_thing_to_shadow_means_each_thing_its_own_shadows),
        cmocka_unit_test(test_counters_count_matched_messages_per_route),
        cmocka_unit_test(test_a_thousand_routes_match_like_a_linear_scan),
        cmocka_unit_test(test_filters_overlap_agrees_with_a_search_for_a_witness),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
