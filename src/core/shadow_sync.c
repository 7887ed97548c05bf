/*
 * shadow_sync: realtime forwarding both ways, and reconciliation from the
 * two full documents when the link comes up.
 *
 * Reconciling one shadow: ask the cloud for its document (GET with the
 * sync's client token), then read the local one, then compute for each
 * side the patch that makes it what the rules say, and apply each patch
 * only if it is not empty.
 */
#include "shadow_sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "shadow-sync"

#define SYNC_TOKEN "sedge-sync"

typedef enum { DIR_BOTH, DIR_TO_CLOUD, DIR_TO_DEVICE } direction_t;

typedef struct {
    struct shadow_sync *sync;
    char *thing;
    char *name; /* "" for the classic shadow */
    direction_t dir;
    char base[320];   /* $aws/things/T/shadow[/name/N] */
    char filter[330]; /* base + "/+/+" */
    json_t *cloud;    /* the cloud's document while reconciling */
    bool reconciling;
    /* A change went either way while the cloud's answer was on its way:
     * that answer is stale, so reconciliation starts over. */
    bool changed_while_reconciling;
} item_t;

struct shadow_sync {
    uplink_t *uplink;
    shadow_svc_t *svc;
    item_t **items;
    size_t count;
    /* Items of earlier configurations: a request may still answer to one,
     * so they live until the sync is freed. */
    item_t **retired;
    size_t retired_count;
};

static void cloud_publish(item_t *it, const char *op, json_t *payload)
{
    char topic[360];
    snprintf(topic, sizeof topic, "%s/%s", it->base, op);
    json_object_set_new(payload, "clientToken", json_string(SYNC_TOKEN));
    char *text = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    if (text && !uplink_publish(it->sync->uplink, bytes_of_cstr(topic), bytes_of_cstr(text), 1))
        LOGD("%s: link down; it will be reconciled when the link is back", topic);
    free(text);
}

static void local_done(void *ctx, int code, bytes_t response)
{
    item_t *it = ctx;
    if (code && code != 404)
        LOGW("%s: applying the cloud's change locally failed: %.*s", it->base, (int)response.len,
             (const char *)response.data);
}

static void local_apply(item_t *it, shadow_op_t op, json_t *payload)
{
    json_object_set_new(payload, "clientToken", json_string(SYNC_TOKEN));
    char *text = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    if (!text)
        return;
    shadow_request(it->sync->svc, op, bytes_of_cstr(it->thing), bytes_of_cstr(it->name),
                   op == SHADOW_DELETE ? BYTES_LIT("") : bytes_of_cstr(text), local_done, it);
    free(text);
}

/* The merge patch that turns `from` into `to` (either may be NULL for
 * empty); NULL when they are equal. */
static json_t *diff(const json_t *from, const json_t *to)
{
    json_t *patch = NULL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)to, k, v)
    {
        json_t *f = json_is_object(from) ? json_object_get(from, k) : NULL;
        json_t *change = NULL;
        if (json_is_object(f) && json_is_object(v))
            change = diff(f, v);
        else if (!f || !json_equal(f, v))
            change = json_deep_copy(v);
        if (!change)
            continue;
        if (!patch)
            patch = json_object();
        json_object_set_new(patch, k, change);
    }
    json_object_foreach((json_t *)from, k, v)
    {
        if (json_is_object(to) && json_object_get(to, k))
            continue;
        if (!patch)
            patch = json_object();
        json_object_set_new(patch, k, json_null());
    }
    return patch;
}

static json_t *section(json_t *doc, const char *name)
{
    return json_object_get(json_object_get(doc, "state"), name);
}

/* Patch {"state": {...}} for the sections that differ, or NULL. */
static json_t *state_patch(json_t *from, json_t *to, bool desired, bool reported)
{
    json_t *state = NULL;
    const char *names[] = {"desired", "reported"};
    bool wanted[] = {desired, reported};
    for (int i = 0; i < 2; i++) {
        if (!wanted[i])
            continue;
        json_t *d = diff(section(from, names[i]), section(to, names[i]));
        if (!d)
            continue;
        if (!state)
            state = json_object();
        json_object_set_new(state, names[i], d);
    }
    if (!state)
        return NULL;
    json_t *p = json_object();
    json_object_set_new(p, "state", state);
    return p;
}

static void reconcile_with_local(void *ctx, int code, bytes_t response)
{
    item_t *it = ctx;
    json_error_t jerr;
    json_t *local =
        code == 0 ? json_loadb((const char *)response.data, response.len, 0, &jerr) : NULL;
    json_t *cloud = it->cloud;
    it->cloud = NULL;
    it->reconciling = false;
    if (code && code != 404) {
        LOGW("%s: cannot read the local shadow (%d); not reconciled", it->base, code);
        json_decref(cloud);
        return;
    }
    json_t *to_local = NULL, *to_cloud = NULL;
    bool delete_local = false, delete_cloud = false;
    switch (it->dir) {
    case DIR_BOTH:
        if (!cloud && local)
            to_cloud = state_patch(NULL, local, true, true);
        else if (cloud && !local)
            to_local = state_patch(NULL, cloud, true, true);
        else if (cloud && local) {
            to_local = state_patch(local, cloud, true, false); /* the cloud wins desired */
            to_cloud = state_patch(cloud, local, false, true); /* the device wins reported */
        }
        break;
    case DIR_TO_CLOUD:
        if (!local && cloud)
            delete_cloud = true;
        else if (local)
            to_cloud = state_patch(cloud, local, true, true);
        break;
    case DIR_TO_DEVICE:
        if (!cloud && local)
            delete_local = true;
        else if (cloud)
            to_local = state_patch(local, cloud, true, true);
        break;
    }
    if (to_local || to_cloud || delete_local || delete_cloud)
        LOGI("%s: reconciling after the link came up (%s%s%s%s)", it->base,
             to_local ? "local update " : "", to_cloud ? "cloud update " : "",
             delete_local ? "local delete " : "", delete_cloud ? "cloud delete" : "");
    if (to_local)
        local_apply(it, SHADOW_UPDATE, to_local);
    if (delete_local)
        local_apply(it, SHADOW_DELETE, json_object());
    if (to_cloud)
        cloud_publish(it, "update", to_cloud);
    if (delete_cloud)
        cloud_publish(it, "delete", json_object());
    json_decref(local);
    json_decref(cloud);
}

static void reconcile(item_t *it)
{
    if (it->reconciling)
        return;
    it->reconciling = true;
    cloud_publish(it, "get", json_object());
}

static item_t *find(shadow_sync_t *s, bytes_t thing, bytes_t name)
{
    for (size_t i = 0; i < s->count; i++) {
        item_t *it = s->items[i];
        if (bytes_eq_cstr(thing, it->thing) && bytes_eq_cstr(name, it->name))
            return it;
    }
    return NULL;
}

static bool is_ours(json_t *msg)
{
    const char *token = json_string_value(json_object_get(msg, "clientToken"));
    return token && strcmp(token, SYNC_TOKEN) == 0;
}

static void on_cloud(void *ctx, bytes_t topic, bytes_t payload)
{
    item_t *it = ctx;
    size_t blen = strlen(it->base);
    if (topic.len <= blen + 1 || memcmp(topic.data, it->base, blen) != 0)
        return;
    bytes_t op = {topic.data + blen + 1, topic.len - blen - 1};
    json_error_t jerr;
    json_t *msg = json_loadb((const char *)payload.data, payload.len, 0, &jerr);
    if (!msg)
        return;
    bool ours = is_ours(msg);
    if (bytes_eq_cstr(op, "get/accepted") || bytes_eq_cstr(op, "get/rejected")) {
        bool current = it->sync->count &&
                       find(it->sync, bytes_of_cstr(it->thing), bytes_of_cstr(it->name)) == it;
        if (ours && it->reconciling && current && it->changed_while_reconciling) {
            it->changed_while_reconciling = false;
            cloud_publish(it, "get", json_object());
        } else if (ours && it->reconciling && current) {
            bool found = bytes_eq_cstr(op, "get/accepted");
            json_decref(it->cloud);
            it->cloud = found ? json_incref(msg) : NULL;
            shadow_request(it->sync->svc, SHADOW_GET, bytes_of_cstr(it->thing),
                           bytes_of_cstr(it->name), BYTES_LIT(""), reconcile_with_local, it);
        }
    } else if (bytes_eq_cstr(op, "update/accepted") && !ours && it->dir != DIR_TO_CLOUD) {
        if (it->reconciling)
            it->changed_while_reconciling = true;
        json_t *state = json_object_get(msg, "state");
        if (json_is_object(state)) {
            json_t *p = json_object();
            json_object_set(p, "state", state);
            local_apply(it, SHADOW_UPDATE, p);
        }
    } else if (bytes_eq_cstr(op, "delete/accepted") && !ours && it->dir != DIR_TO_CLOUD) {
        if (it->reconciling)
            it->changed_while_reconciling = true;
        local_apply(it, SHADOW_DELETE, json_object());
    }
    json_decref(msg);
}

void shadow_sync_local_change(shadow_sync_t *s, shadow_op_t op, bytes_t thing, bytes_t name,
                              bytes_t accepted)
{
    item_t *it = find(s, thing, name);
    if (!it || it->dir == DIR_TO_DEVICE || !uplink_connected(s->uplink))
        return; /* not synced, or the link is down: reconciled when it is back */
    json_error_t jerr;
    json_t *msg = json_loadb((const char *)accepted.data, accepted.len, 0, &jerr);
    if (!msg || is_ours(msg)) {
        json_decref(msg);
        return;
    }
    if (it->reconciling)
        it->changed_while_reconciling = true;
    if (op == SHADOW_DELETE) {
        cloud_publish(it, "delete", json_object());
    } else {
        json_t *p = json_object();
        json_object_set(p, "state", json_object_get(msg, "state"));
        cloud_publish(it, "update", p);
    }
    json_decref(msg);
}

static void free_item(item_t *it)
{
    json_decref(it->cloud);
    free(it->thing);
    free(it->name);
    free(it);
}

/* Stop syncing the current items; keep them until the end. */
static void retire_items(shadow_sync_t *s)
{
    item_t **bigger = realloc(s->retired, (s->retired_count + s->count + 1) * sizeof *bigger);
    for (size_t i = 0; i < s->count; i++) {
        item_t *it = s->items[i];
        uplink_unwatch(s->uplink, it->filter, it);
        it->reconciling = true; /* answers that still come are ignored */
        if (bigger)
            bigger[s->retired_count++] = it;
        else
            free_item(it);
    }
    if (bigger)
        s->retired = bigger;
    free(s->items);
    s->items = NULL;
    s->count = 0;
}

static void add_item(shadow_sync_t *s, const char *thing, const char *name, direction_t dir)
{
    item_t *it = calloc(1, sizeof *it);
    item_t **bigger = realloc(s->items, (s->count + 1) * sizeof *bigger);
    if (!it || !bigger) {
        free(it);
        if (bigger)
            s->items = bigger;
        return;
    }
    s->items = bigger;
    it->sync = s;
    it->thing = strdup(thing);
    it->name = strdup(name);
    it->dir = dir;
    if (name[0])
        snprintf(it->base, sizeof it->base, "$aws/things/%s/shadow/name/%s", thing, name);
    else
        snprintf(it->base, sizeof it->base, "$aws/things/%s/shadow", thing);
    snprintf(it->filter, sizeof it->filter, "%s/+/+", it->base);
    if (uplink_watch(s->uplink, it->filter, on_cloud, it)) {
        free(it->thing);
        free(it->name);
        free(it);
        return;
    }
    s->items[s->count++] = it;
}

void shadow_sync_configure(shadow_sync_t *s, const group_t *g)
{
    retire_items(s);
    json_t *sync = g ? json_object_get(json_object_get(g->doc, "shadows"), "sync") : NULL;
    size_t i;
    json_t *e;
    json_array_foreach(sync, i, e)
    {
        const char *thing = json_string_value(json_object_get(e, "thing"));
        const char *dir = json_string_value(json_object_get(e, "direction"));
        direction_t d = !dir || strcmp(dir, "between_device_and_cloud") == 0 ? DIR_BOTH
                        : strcmp(dir, "device_to_cloud") == 0                ? DIR_TO_CLOUD
                                                                             : DIR_TO_DEVICE;
        if (!thing)
            continue;
        json_t *classic = json_object_get(e, "classic");
        if (!classic || json_is_true(classic))
            add_item(s, thing, "", d);
        size_t k;
        json_t *n;
        json_array_foreach(json_object_get(e, "names"), k, n) if (json_is_string(n))
            add_item(s, thing, json_string_value(n), d);
    }
    if (s->count)
        LOGI("%zu shadows synchronised with the cloud", s->count);
    if (uplink_connected(s->uplink))
        shadow_sync_link_up(s);
}

void shadow_sync_link_up(shadow_sync_t *s)
{
    for (size_t i = 0; i < s->count; i++) {
        s->items[i]->reconciling = false; /* a GET lost with the last link */
        s->items[i]->changed_while_reconciling = false;
        reconcile(s->items[i]);
    }
}

sedge_err shadow_sync_start(uplink_t *u, shadow_svc_t *svc, shadow_sync_t **out)
{
    shadow_sync_t *s = calloc(1, sizeof *s);
    if (!s)
        return SEDGE_ERR_NOMEM;
    s->uplink = u;
    s->svc = svc;
    *out = s;
    return SEDGE_OK;
}

void shadow_sync_free(shadow_sync_t *s)
{
    if (!s)
        return;
    retire_items(s);
    for (size_t i = 0; i < s->retired_count; i++)
        free_item(s->retired[i]);
    free(s->retired);
    free(s);
}
