/*
 * libFuzzer target for the group document and the router built from it.
 *
 * The input is a group document. A refused one must say why, one problem
 * per line, each "PATH: what" with no control characters to break the
 * lines. An accepted one must hold only what the validator promises
 * (valid, unique names; routes between endpoints that exist, on valid
 * filters that are not shared subscriptions; a sha256 checksum), and the
 * router built from it must agree with a linear scan of the routes using
 * mqtt_topic_matches on topics made from the routes' own filters: every
 * route matches a topic made from its filter when sent by its source (a
 * thing:* route to the shadow only for the thing the topic names), the
 * shadow answers routes to it, and a thing may subscribe to the filters of
 * the routes that reach it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/mqtt.h"
#include "router/router.h"
#include "fuzz_check.h"

enum { MAX_BYTES = 1 << 16, MAX_TOPICS = 64 };

static void check_problems(const buf_t *errors)
{
    CHECK(errors->len > 0 && errors->data[errors->len - 1] == '\n');
    const uint8_t *line = errors->data, *end = errors->data + errors->len;
    while (line < end) {
        const uint8_t *nl = memchr(line, '\n', (size_t)(end - line));
        CHECK(nl);
        size_t len = (size_t)(nl - line);
        CHECK(len > 0);
        for (size_t i = 0; i < len; i++)
            CHECK(line[i] >= 0x20 && line[i] != 0x7f);
        /* "PATH: what" */
        bool sep = false;
        for (size_t i = 0; i + 1 < len && !sep; i++)
            sep = line[i] == ':' && line[i + 1] == ' ';
        CHECK(sep);
        line = nl + 1;
    }
}

static bool is_hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static json_t *named(json_t *doc, const char *section, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, section), i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && strcmp(n, name) == 0)
            return e;
    }
    return NULL;
}

static void check_endpoint(const group_t *g, const endpoint_t *e)
{
    switch (e->kind) {
    case ENDPOINT_THING:
        CHECK(e->name && e->name_len == strlen(e->name));
        CHECK(group_has_thing(g, bytes_of_cstr(e->name)));
        break;
    case ENDPOINT_FUNCTION: CHECK(e->name && named(g->doc, "functions", e->name)); break;
    case ENDPOINT_CONNECTOR: CHECK(e->name && named(g->doc, "connectors", e->name)); break;
    case ENDPOINT_ANY_THING:
    case ENDPOINT_CLOUD:
    case ENDPOINT_SHADOW: CHECK(!e->name); break;
    default: CHECK(!"an endpoint of no kind");
    }
}

static void check_group(const group_t *g)
{
    CHECK(g->name && group_valid_thing_name(g->name, strlen(g->name)));
    CHECK(is_hex64(g->checksum));
    CHECK(json_is_object(g->doc));
    for (size_t i = 0; i < g->thing_count; i++) {
        CHECK(group_valid_thing_name(g->things[i], strlen(g->things[i])));
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(g->things[i], g->things[j]) != 0);
    }
    CHECK(g->thing_count == json_array_size(json_object_get(g->doc, "things")));
    for (size_t i = 0; i < g->revoked_count; i++) {
        CHECK(group_valid_thing_name(g->revoked[i], strlen(g->revoked[i])));
        CHECK(group_is_revoked(g, bytes_of_cstr(g->revoked[i])));
    }
    CHECK(g->route_count == json_array_size(json_object_get(g->doc, "routes")));
    for (size_t i = 0; i < g->route_count; i++) {
        const route_t *r = &g->routes[i];
        check_endpoint(g, &r->source);
        check_endpoint(g, &r->target);
        CHECK(!(r->source.kind == ENDPOINT_SHADOW && r->target.kind == ENDPOINT_SHADOW));
        CHECK(r->filter && r->filter_len == strlen(r->filter));
        bytes_t f = {(const uint8_t *)r->filter, r->filter_len}, grp, inner;
        CHECK(mqtt_topic_filter_valid(f));
        CHECK(!mqtt_shared_split(f, &grp, &inner));
        CHECK(r->qos >= -1 && r->qos <= 1);
        CHECK(r->text && strstr(r->text, r->filter));
    }
}

/* A topic the filter matches: '+' and '#' become a word. */
static void topic_of(const char *filter, const char *word, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = filter; *p && n + strlen(word) + 1 < cap; p++) {
        if (*p == '+' || *p == '#') {
            memcpy(out + n, word, strlen(word));
            n += strlen(word);
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

static bool source_is(const endpoint_t *e, const char *sender)
{
    char s[200];
    if (e->kind == ENDPOINT_ANY_THING)
        return strncmp(sender, "thing:", 6) == 0;
    endpoint_format(e, s, sizeof s);
    return strcmp(s, sender) == 0;
}

/* The thing a topic belongs to ($aws/things/NAME/...), into out; "" when
 * none. */
static void topic_thing(const char *topic, char *out, size_t cap)
{
    out[0] = '\0';
    if (strncmp(topic, "$aws/things/", 12) != 0)
        return;
    const char *name = topic + 12;
    size_t n = strcspn(name, "/");
    if (n < cap)
        snprintf(out, cap, "%.*s", (int)n, name);
}

/* thing:* -> shadow: each thing, its own shadows (issue 11 item 6). */
static bool own_shadow(const route_t *r, const char *sender, const char *topic)
{
    if (r->source.kind != ENDPOINT_ANY_THING || r->target.kind != ENDPOINT_SHADOW)
        return true;
    char named[200];
    topic_thing(topic, named, sizeof named);
    return !named[0] || strcmp(sender + 6, named) == 0;
}

static bool answers_to_shadow(const route_t *r)
{
    return r->target.kind == ENDPOINT_SHADOW &&
           (r->source.kind == ENDPOINT_THING || r->source.kind == ENDPOINT_ANY_THING);
}

/* router_match against a linear scan; returns whether `must` was matched. */
static bool check_match(const group_t *g, router_t *rt, const char *sender, const char *topic,
                        const route_t *must)
{
    bytes_t t = bytes_of_cstr(topic);
    if (!mqtt_topic_name_valid(t))
        return true;
    route_match_t m;
    bool any = router_match(rt, bytes_of_cstr(sender), t, &m);
    CHECK(any == (m.count > 0));
    size_t want = 0;
    for (size_t i = 0; i < g->route_count; i++) {
        const route_t *r = &g->routes[i];
        bytes_t f = {(const uint8_t *)r->filter, r->filter_len};
        if (!mqtt_topic_matches(f, t))
            continue;
        want += source_is(&r->source, sender) && own_shadow(r, sender, topic);
        want += strcmp(sender, "shadow") == 0 && answers_to_shadow(r);
    }
    CHECK(m.count == want);
    bool found = false;
    for (size_t k = 0; k < m.count; k++) {
        const route_t *r = m.routes[k];
        CHECK(mqtt_topic_matches((bytes_t){(const uint8_t *)r->filter, r->filter_len}, t));
        for (size_t j = 0; j < k; j++)
            CHECK(m.routes[j] != r);
        found |= r == must;
        bool in_group = r >= g->routes && r < g->routes + g->route_count;
        if (in_group)
            CHECK(source_is(&r->source, sender) && own_shadow(r, sender, topic));
        else
            CHECK(r->source.kind == ENDPOINT_SHADOW && strcmp(sender, "shadow") == 0 && r->text);
    }
    return found;
}

static void check_router(const group_t *g)
{
    router_t *rt = NULL;
    CHECK(router_build(g, &rt) == SEDGE_OK);
    for (size_t i = 0; i < g->thing_count; i++)
        CHECK(router_may_connect(rt, bytes_of_cstr(g->things[i])) ==
              !group_is_revoked(g, bytes_of_cstr(g->things[i])));
    size_t n = g->route_count < MAX_TOPICS ? g->route_count : MAX_TOPICS;
    for (size_t i = 0; i < n; i++) {
        const route_t *r = &g->routes[i];
        char sender[200], topic[512];
        endpoint_format(&r->source, sender, sizeof sender);
        if (r->source.kind == ENDPOINT_ANY_THING)
            snprintf(sender, sizeof sender, "thing:someone");
        static const char *const words[] = {"w", "$w", ""};
        for (size_t k = 0; k < 3; k++) {
            topic_of(r->filter, words[k], topic, sizeof topic);
            char named[200];
            topic_thing(topic, named, sizeof named);
            if (r->source.kind == ENDPOINT_ANY_THING && r->target.kind == ENDPOINT_SHADOW &&
                named[0])
                snprintf(sender, sizeof sender, "thing:%s", named); /* its own shadow */
            bool hit = check_match(g, rt, sender, topic, r);
            if (r->source.kind == ENDPOINT_ANY_THING && r->target.kind == ENDPOINT_SHADOW &&
                named[0])
                CHECK(!check_match(g, rt, "thing:someone-else", topic, r) ||
                      strcmp(named, "someone-else") == 0);
            bytes_t f = {(const uint8_t *)r->filter, r->filter_len}, t = bytes_of_cstr(topic);
            if (mqtt_topic_name_valid(t) && mqtt_topic_matches(f, t))
                CHECK(hit);
            check_match(g, rt, "shadow", topic, NULL);
            check_match(g, rt, "cloud", topic, NULL);
        }
        /* A thing a route reaches may subscribe to its filter. */
        bytes_t f = {(const uint8_t *)r->filter, r->filter_len};
        if (r->target.kind == ENDPOINT_THING)
            CHECK(router_may_subscribe(
                rt, (bytes_t){(const uint8_t *)r->target.name, r->target.name_len}, f));
        if (r->target.kind == ENDPOINT_ANY_THING)
            CHECK(router_may_subscribe(rt, BYTES_LIT("anyone"), f));
        if (r->source.kind == ENDPOINT_THING && r->target.kind == ENDPOINT_SHADOW)
            CHECK(router_may_subscribe(
                rt, (bytes_t){(const uint8_t *)r->source.name, r->source.name_len}, f));
    }
    for (size_t i = 0; i < g->route_count; i++)
        (void)router_route_count(rt, i);
    router_free(rt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    group_t *g = NULL;
    buf_t errors = {0};
    sedge_err err = group_parse((const char *)data, size, MAX_BYTES, &g, &errors);
    if (err) {
        CHECK(err == SEDGE_ERR_INVALID || err == SEDGE_ERR_TOO_LARGE);
        CHECK(!g);
        check_problems(&errors);
        buf_free(&errors);
        return 0;
    }
    CHECK(g && errors.len == 0);
    check_group(g);
    check_router(g);
    group_free(g);

    /* The same text one byte over the limit. */
    if (size > 0) {
        CHECK(group_parse((const char *)data, size, size - 1, &g, &errors) == SEDGE_ERR_TOO_LARGE);
        CHECK(!g);
        check_problems(&errors);
        buf_free(&errors);
    }
    return 0;
}
