/*
 * shadow_sync: realtime forwarding both ways, and reconciliation from the
 * two full documents when the link comes up.
 *
 * Reconciling one shadow: ask the cloud for its document (GET with the
 * sync's client token), then read the local one, then compute for each
 * side the patch that makes it what the rules say, and apply each patch
 * only if it is not empty.
 *
 * Requests to the cloud go through one queue: sent in order while fewer
 * than shadow_inflight are unanswered and the thing's pace (a pace_t per
 * thing) allows; an answer (accepted or rejected) ends one. An update's
 * "version" is set when it is sent: the cloud version last seen plus the
 * updates of ours still unanswered, as each accepted update adds one. A
 * shadow whose request failed for a reason that passes (throttled, the
 * service failing, no answer in ack_timeout_ms) is reconciled again after
 * a backoff.
 *
 * Each request carries a client token of its own, "sedge-sync:RUN-N", and
 * an answer counts only if its token is a request's still in flight. Our
 * answers come back at QoS 1 on a persistent session: one whose PUBACK was
 * lost with the link is delivered again after the reconnect, and one to a
 * request given up (no answer in time, the link lost) may still come.
 * Taken for the answer to the request now in flight, an old 404 would say
 * the cloud has no shadow and the local copy would overwrite the cloud's.
 * RUN is random per start of sedged, as the session outlives the process.
 *
 * A reconciliation is numbered (round): when it is given up (a failure, the
 * link lost) the answers still on their way to it, the local read
 * included, change nothing. A cloud change that comes while the local copy
 * is read makes it start over, as one that comes before the GET's answer.
 */
#include "shadow_sync.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define LOG_TAG "shadow-sync"

/* On the sync's local changes; its requests to the cloud add ":RUN-N". */
#define SYNC_TOKEN "sedge-sync"
#define QUEUE_MAX 1000

typedef enum { DIR_BOTH, DIR_TO_CLOUD, DIR_TO_DEVICE } direction_t;
typedef enum { OP_GET, OP_UPDATE, OP_DELETE } op_t;
static const char *const op_names[] = {"get", "update", "delete"};

/* One thing's request rate. */
typedef struct {
    char *thing;
    pace_t pace;
    bool blocked; /* in the current drain pass: later requests wait too */
} bucket_t;

typedef struct {
    struct shadow_sync *sync;
    char *thing;
    char *name; /* "" for the classic shadow */
    direction_t dir;
    bucket_t *bucket;
    char base[320];   /* $aws/things/T/shadow[/name/N] */
    char filter[330]; /* base + "/+/+" */
    json_t *cloud;    /* the cloud's document while reconciling */
    bool reconciling;
    uint32_t round; /* of the reconciliation under way or last given up */
    /* A change went either way while the cloud's answer was on its way:
     * that answer is stale, so reconciliation starts over. */
    bool changed_while_reconciling;
    /* Of the cloud's document as last seen; 0: there is none, -1: unknown
     * (not asked yet, or asked before the link was lost). */
    int64_t cloud_version;
    uint32_t updates_inflight; /* ours, unanswered */
    uint64_t retry_at_ms;      /* reconcile again then; 0: not planned */
    uint32_t failures;         /* in a row, for the backoff */
    uint64_t rejected;         /* refusals that retrying cannot change */
    uint64_t conflicts;        /* 409s: the cloud changed meanwhile */
    uint64_t throttled;        /* 429s and the service's failures */
} item_t;

typedef struct request {
    struct request *next;
    item_t *it;
    op_t op;
    json_t *payload; /* without clientToken and version, which sending adds */
    uint64_t sent_ms;
    char token[48]; /* set when sent */
} request_t;

/* A read of the local document for one round of reconciliation. */
typedef struct {
    item_t *it;
    uint32_t round;
} local_read_t;

struct shadow_sync {
    uplink_t *uplink;
    shadow_svc_t *svc;
    uv_timer_t timer;
    void (*stop_done)(void *);
    void *stop_ctx;
    item_t **items;
    size_t count;
    /* Items of earlier configurations: a request may still answer to one,
     * so they live until the sync is freed. */
    item_t **retired;
    size_t retired_count;
    bucket_t **buckets;
    size_t bucket_count;
    request_t *queue, *inflight; /* not yet sent; sent and unanswered */
    size_t queued, sent;
    uint32_t run;      /* in the tokens: this start of sedged */
    uint64_t requests; /* sent ever, numbering the tokens */
    bool draining;
};

static void drain(shadow_sync_t *s);
static void reconcile(item_t *it);
static void stop_reconciling(item_t *it);
static void retry_later(item_t *it, const char *why, bool throttled);

static void free_request(request_t *r)
{
    json_decref(r->payload);
    free(r);
}

/* Ask the cloud (queued; sent by drain). */
static void cloud_publish(item_t *it, op_t op, json_t *payload)
{
    shadow_sync_t *s = it->sync;
    request_t *r = calloc(1, sizeof *r);
    if (!r || s->queued >= QUEUE_MAX) {
        /* Too much waiting: this shadow is reconciled later instead. */
        LOGW("%s: too many requests waiting for the cloud; it will be reconciled", it->base);
        free(r);
        json_decref(payload);
        stop_reconciling(it);
        it->retry_at_ms = clock_mono_ms() + 1000;
        drain(s);
        return;
    }
    r->it = it;
    r->op = op;
    r->payload = payload;
    request_t **tail = &s->queue;
    while (*tail)
        tail = &(*tail)->next;
    *tail = r;
    s->queued++;
    drain(s);
}

static bool current(item_t *it);

static void local_done(void *ctx, int code, bytes_t response)
{
    item_t *it = ctx;
    if (!code || code == 404)
        return;
    LOGW("%s: applying the cloud's change locally failed: %.*s", it->base, (int)response.len,
         (const char *)response.data);
    if (current(it) && !it->reconciling) {
        retry_later(it, "the local shadow refused the change", false);
        drain(it->sync);
    }
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
    local_read_t *read = ctx;
    item_t *it = read->it;
    bool stale = read->round != it->round || !it->reconciling || !current(it);
    free(read);
    if (stale)
        return; /* that reconciliation was given up */
    if (code && code != 404) {
        char why[64];
        snprintf(why, sizeof why, "cannot read the local shadow (%d)", code);
        retry_later(it, why, false);
        drain(it->sync);
        return;
    }
    if (it->changed_while_reconciling) {
        /* The cloud changed while the local copy was read: its document
         * in hand is stale. */
        it->changed_while_reconciling = false;
        json_decref(it->cloud);
        it->cloud = NULL;
        cloud_publish(it, OP_GET, json_object());
        return;
    }
    json_error_t jerr;
    json_t *local =
        code == 0 ? json_loadb((const char *)response.data, response.len, 0, &jerr) : NULL;
    json_t *cloud = it->cloud;
    it->cloud = NULL;
    it->reconciling = false;
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
        LOGI("%s: reconciling (%s%s%s%s)", it->base, to_local ? "local update " : "",
             to_cloud ? "cloud update " : "", delete_local ? "local delete " : "",
             delete_cloud ? "cloud delete" : "");
    if (to_local)
        local_apply(it, SHADOW_UPDATE, to_local);
    if (delete_local)
        local_apply(it, SHADOW_DELETE, json_object());
    if (to_cloud)
        cloud_publish(it, OP_UPDATE, to_cloud);
    if (delete_cloud)
        cloud_publish(it, OP_DELETE, json_object());
    json_decref(local);
    json_decref(cloud);
}

/* The cloud's document is in (`cloud`, taken; NULL: there is none): read
 * the local one, then compare. */
static void read_local(item_t *it, json_t *cloud)
{
    local_read_t *read = malloc(sizeof *read);
    if (!read) {
        json_decref(cloud);
        retry_later(it, "out of memory", false);
        return;
    }
    it->failures = 0;
    json_decref(it->cloud);
    it->cloud = cloud;
    *read = (local_read_t){it, it->round};
    shadow_request(it->sync->svc, SHADOW_GET, bytes_of_cstr(it->thing), bytes_of_cstr(it->name),
                   BYTES_LIT(""), reconcile_with_local, read);
}

static void reconcile(item_t *it)
{
    it->retry_at_ms = 0;
    if (it->reconciling)
        return;
    it->reconciling = true;
    it->changed_while_reconciling = false;
    it->round++;
    json_decref(it->cloud);
    it->cloud = NULL;
    cloud_publish(it, OP_GET, json_object());
}

/* Give up the reconciliation under way: what still answers it is ignored. */
static void stop_reconciling(item_t *it)
{
    it->reconciling = false;
    it->changed_while_reconciling = false;
    it->round++;
    json_decref(it->cloud);
    it->cloud = NULL;
}

/* The cloud's state may differ from what the core believes: reconcile,
 * now or once the reconciliation under way is over. */
static void reconcile_again(item_t *it)
{
    if (it->reconciling)
        it->changed_while_reconciling = true;
    else
        reconcile(it);
}

/* A failure that passes (`why`): reconcile after a backoff. */
static void retry_later(item_t *it, const char *why, bool throttled)
{
    uint64_t now = clock_mono_ms();
    uint64_t pause = uplink_retry_ms(it->sync->uplink, ++it->failures);
    if (throttled) {
        it->throttled++;
        pace_throttled(&it->bucket->pace, now, pause);
    }
    stop_reconciling(it);
    it->retry_at_ms = now + pause;
    LOGW("%s: %s; reconciling again in %llu ms", it->base, why, (unsigned long long)pause);
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

static const char *token_of(json_t *msg)
{
    return json_string_value(json_object_get(msg, "clientToken"));
}

/* The sync's: "sedge-sync" (a local change) or "sedge-sync:..." (a request
 * to the cloud, of this run of sedged or of an earlier one). */
static bool is_ours(json_t *msg)
{
    const char *token = token_of(msg);
    size_t n = strlen(SYNC_TOKEN);
    return token && strncmp(token, SYNC_TOKEN, n) == 0 && (token[n] == '\0' || token[n] == ':');
}

static bool current(item_t *it)
{
    return it->sync->count &&
           find(it->sync, bytes_of_cstr(it->thing), bytes_of_cstr(it->name)) == it;
}

/* An answer of ours: the request it answers is over. False when no
 * request in flight has its token: the answer is an old one. */
static bool answered(item_t *it, op_t op, const char *token)
{
    shadow_sync_t *s = it->sync;
    for (request_t **pp = &s->inflight; *pp && token; pp = &(*pp)->next) {
        request_t *r = *pp;
        if (r->it == it && r->op == op && strcmp(r->token, token) == 0) {
            *pp = r->next;
            s->sent--;
            if (op == OP_UPDATE && it->updates_inflight)
                it->updates_inflight--;
            free_request(r);
            return true;
        }
    }
    return false;
}

/* A rejection of ours; true when it says there is no cloud shadow. */
static bool on_rejected(item_t *it, op_t op, json_t *msg)
{
    json_int_t code = json_integer_value(json_object_get(msg, "code"));
    const char *message = json_string_value(json_object_get(msg, "message"));
    if (op == OP_GET && code == 404) {
        it->cloud_version = 0;
        return true;
    }
    if (op == OP_DELETE && code == 404) {
        it->cloud_version = 0; /* already gone */
        return false;
    }
    if (code == 409 && op != OP_GET) {
        it->conflicts++;
        LOGI("%s: the cloud's shadow changed meanwhile (409 on %s); reconciling", it->base,
             op_names[op]);
        reconcile_again(it);
        return false;
    }
    if (code == 429 || code >= 500) {
        char why[64];
        snprintf(why, sizeof why, "the cloud answered %lld", (long long)code);
        retry_later(it, why, true);
        return false;
    }
    it->rejected++;
    LOGW("%s: the cloud rejected the %s: %lld %s; not retried", it->base, op_names[op],
         (long long)code, message ? message : "");
    if (op == OP_GET)
        stop_reconciling(it); /* the cloud's document is unknown: nothing to compare */
    return false;
}

static void on_cloud(void *ctx, bytes_t topic, bytes_t payload)
{
    item_t *it = ctx;
    size_t blen = strlen(it->base);
    if (topic.len <= blen + 1 || memcmp(topic.data, it->base, blen) != 0)
        return;
    bytes_t rest = {topic.data + blen + 1, topic.len - blen - 1};
    json_error_t jerr;
    json_t *msg = json_loadb((const char *)payload.data, payload.len, 0, &jerr);
    if (!msg)
        return;
    bool ours = is_ours(msg);
    op_t op;
    if (bytes_has_prefix(rest, "get/"))
        op = OP_GET;
    else if (bytes_has_prefix(rest, "update/"))
        op = OP_UPDATE;
    else if (bytes_has_prefix(rest, "delete/"))
        op = OP_DELETE;
    else {
        json_decref(msg);
        return;
    }
    bytes_t verdict = {rest.data + strlen(op_names[op]) + 1, rest.len - strlen(op_names[op]) - 1};
    bool accepted = bytes_eq_cstr(verdict, "accepted");
    bool rejected = bytes_eq_cstr(verdict, "rejected");
    if (!accepted && !rejected) { /* delta, documents */
        json_decref(msg);
        return;
    }
    json_t *version = json_object_get(msg, "version");
    const char *token = token_of(msg);
    if (ours && !answered(it, op, token)) {
        /* Delivered again after a reconnect, or late: what it says is old. */
        LOGD("%.*s: an old answer (%s); ignored", (int)topic.len, (const char *)topic.data,
             token ? token : "no token");
        json_decref(msg);
        return;
    }
    if (accepted && json_is_integer(version) && op != OP_DELETE)
        it->cloud_version = json_integer_value(version);
    if (accepted && op == OP_DELETE)
        it->cloud_version = 0;
    if (ours && accepted && op != OP_GET)
        it->failures = 0;
    bool absent = ours && rejected && current(it) && on_rejected(it, op, msg);
    if (op == OP_GET && ours && it->reconciling && current(it) && (accepted || absent)) {
        if (it->changed_while_reconciling) {
            it->changed_while_reconciling = false;
            cloud_publish(it, OP_GET, json_object());
        } else {
            read_local(it, accepted ? json_incref(msg) : NULL);
        }
    } else if (op == OP_UPDATE && accepted && !ours && it->dir != DIR_TO_CLOUD) {
        if (it->reconciling)
            it->changed_while_reconciling = true;
        json_t *state = json_object_get(msg, "state");
        if (json_is_object(state)) {
            json_t *p = json_object();
            json_object_set(p, "state", state);
            local_apply(it, SHADOW_UPDATE, p);
        }
    } else if (op == OP_DELETE && accepted && !ours && it->dir != DIR_TO_CLOUD) {
        if (it->reconciling)
            it->changed_while_reconciling = true;
        local_apply(it, SHADOW_DELETE, json_object());
    }
    json_decref(msg);
    drain(it->sync);
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
        cloud_publish(it, OP_DELETE, json_object());
    } else {
        json_t *p = json_object();
        json_object_set(p, "state", json_object_get(msg, "state"));
        cloud_publish(it, OP_UPDATE, p);
    }
    json_decref(msg);
}

/* Sending. */

static void timer_cb(uv_timer_t *t)
{
    drain(t->data);
}

/* Send what the limits allow, expire what went unanswered, start the
 * reconciliations that are due, and wake up when something else is. */
static void drain(shadow_sync_t *s)
{
    if (s->stop_done || s->draining)
        return;
    s->draining = true;
    uint64_t now = clock_mono_ms(), next = 0;
    const uplink_limits_t *l = uplink_limits(s->uplink);
    bool up = uplink_connected(s->uplink);
    /* Unanswered for too long: lost, or the cloud is struggling. */
    for (request_t **pp = &s->inflight; *pp;) {
        request_t *r = *pp;
        uint64_t due = r->sent_ms + (l->ack_timeout_ms ? l->ack_timeout_ms : 30000);
        if (now < due) {
            next = !next || due < next ? due : next;
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        s->sent--;
        item_t *it = r->it;
        if (r->op == OP_UPDATE && it->updates_inflight)
            it->updates_inflight--;
        free_request(r);
        if (current(it))
            retry_later(it, "no answer from the cloud", false);
    }
    for (size_t i = 0; i < s->count && up; i++) {
        item_t *it = s->items[i];
        if (it->retry_at_ms && it->retry_at_ms <= now)
            reconcile(it);
        if (it->retry_at_ms) /* still, or again: reconcile() found the queue full */
            next = !next || it->retry_at_ms < next ? it->retry_at_ms : next;
    }
    for (size_t i = 0; i < s->bucket_count; i++)
        s->buckets[i]->blocked = false;
    uint32_t limit = l->shadow_inflight ? l->shadow_inflight : 10;
    for (request_t **pp = &s->queue; *pp && up && s->sent < limit;) {
        request_t *r = *pp;
        item_t *it = r->it;
        bucket_t *b = it->bucket;
        if (b->blocked || !pace_may_send(&b->pace, now)) {
            /* Later requests for the thing wait too: their order holds. */
            b->blocked = true;
            uint64_t due = now + pace_wait_ms(&b->pace, now);
            next = !next || due < next ? due : next;
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        s->queued--;
        char topic[360];
        snprintf(topic, sizeof topic, "%s/%s", it->base, op_names[r->op]);
        snprintf(r->token, sizeof r->token, SYNC_TOKEN ":%08" PRIx32 "-%" PRIu64, s->run,
                 ++s->requests);
        json_object_set_new(r->payload, "clientToken", json_string(r->token));
        /* The cloud's version when this update reaches it. With the
         * document known absent, an update of ours still unanswered
         * creates it: a second one sent before that answer carries a
         * version too, so a change by someone else in between is a 409. */
        int64_t expected = it->cloud_version + (int64_t)it->updates_inflight;
        if (r->op == OP_UPDATE && it->cloud_version >= 0 && expected > 0)
            json_object_set_new(r->payload, "version", json_integer((json_int_t)expected));
        char *text = json_dumps(r->payload, JSON_COMPACT);
        pace_spend(&b->pace, text ? strlen(text) : 0, now);
        bool made = text != NULL;
        bool published =
            made && uplink_publish(s->uplink, bytes_of_cstr(topic), bytes_of_cstr(text), 1);
        free(text);
        if (!uplink_connected(s->uplink)) {
            /* Lost while sending: shadow_sync_link_down emptied the lists. */
            free_request(r);
            break;
        }
        if (!made) {
            retry_later(it, "out of memory", false);
            free_request(r);
            continue;
        }
        if (!published) {
            /* Refused by the uplink (over the cloud's limits, say): for good. */
            LOGW("%s: cannot be sent to the cloud; not retried", topic);
            it->rejected++;
            if (r->op == OP_GET)
                stop_reconciling(it);
            free_request(r);
            continue;
        }
        if (r->op == OP_UPDATE)
            it->updates_inflight++;
        r->sent_ms = now;
        r->next = s->inflight;
        s->inflight = r;
        s->sent++;
        uint64_t due = now + (l->ack_timeout_ms ? l->ack_timeout_ms : 30000);
        next = !next || due < next ? due : next;
    }
    if (next)
        uv_timer_start(&s->timer, timer_cb, next > now ? next - now : 1, 0);
    else
        uv_timer_stop(&s->timer);
    s->draining = false;
}

/* Configuration. */

static void free_item(item_t *it)
{
    json_decref(it->cloud);
    free(it->thing);
    free(it->name);
    free(it);
}

static void drop_requests(request_t **list)
{
    while (*list) {
        request_t *r = *list;
        *list = r->next;
        free_request(r);
    }
}

/* Stop syncing the current items; keep them until the end. */
static void retire_items(shadow_sync_t *s)
{
    /* Their answers would be ignored: they must not hold places. */
    drop_requests(&s->queue);
    drop_requests(&s->inflight);
    s->queued = s->sent = 0;
    item_t **bigger = realloc(s->retired, (s->retired_count + s->count + 1) * sizeof *bigger);
    for (size_t i = 0; i < s->count; i++) {
        item_t *it = s->items[i];
        uplink_unwatch(s->uplink, it->filter, it);
        stop_reconciling(it);
        it->reconciling = true; /* answers that still come are ignored */
        it->retry_at_ms = 0;
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

static bucket_t *bucket_of(shadow_sync_t *s, const char *thing)
{
    for (size_t i = 0; i < s->bucket_count; i++)
        if (strcmp(s->buckets[i]->thing, thing) == 0)
            return s->buckets[i];
    bucket_t **bigger = realloc(s->buckets, (s->bucket_count + 1) * sizeof *bigger);
    bucket_t *b = calloc(1, sizeof *b);
    char *name = strdup(thing);
    if (!bigger || !b || !name) {
        if (bigger)
            s->buckets = bigger;
        free(b);
        free(name);
        return NULL;
    }
    s->buckets = bigger;
    b->thing = name;
    pace_init(&b->pace, uplink_limits(s->uplink)->shadow_requests_per_s, 0, clock_mono_ms());
    s->buckets[s->bucket_count++] = b;
    return b;
}

static void add_item(shadow_sync_t *s, const char *thing, const char *name, direction_t dir)
{
    item_t *it = calloc(1, sizeof *it);
    item_t **bigger = realloc(s->items, (s->count + 1) * sizeof *bigger);
    bucket_t *b = bucket_of(s, thing);
    if (!it || !bigger || !b) {
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
    it->cloud_version = -1;
    it->bucket = b;
    if (name[0])
        snprintf(it->base, sizeof it->base, "$aws/things/%s/shadow/name/%s", thing, name);
    else
        snprintf(it->base, sizeof it->base, "$aws/things/%s/shadow", thing);
    snprintf(it->filter, sizeof it->filter, "%s/+/+", it->base);
    if (!it->thing || !it->name || uplink_watch(s->uplink, it->filter, on_cloud, it)) {
        free_item(it);
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
        item_t *it = s->items[i];
        stop_reconciling(it); /* what is under way belongs to an earlier link */
        reconcile(it);
    }
}

void shadow_sync_link_down(shadow_sync_t *s)
{
    /* What was queued or unanswered is reconciled when the link is back. */
    drop_requests(&s->queue);
    drop_requests(&s->inflight);
    s->queued = s->sent = 0;
    for (size_t i = 0; i < s->count; i++) {
        stop_reconciling(s->items[i]); /* its GET or local read answers nothing now */
        s->items[i]->updates_inflight = 0;
        s->items[i]->cloud_version = -1;
        s->items[i]->retry_at_ms = 0;
    }
    if (!s->stop_done)
        uv_timer_stop(&s->timer);
}

json_t *shadow_sync_status(shadow_sync_t *s)
{
    json_t *list = json_array();
    uint64_t now = clock_mono_ms();
    for (size_t i = 0; i < s->count; i++) {
        item_t *it = s->items[i];
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:o, s:b, s:I, s:I, s:I, s:I, s:I}", "thing", it->thing,
                            "name", it->name, "cloud_version",
                            it->cloud_version < 0 ? json_null()
                                                  : json_integer((json_int_t)it->cloud_version),
                            "reconciling", it->reconciling, "retry_in_ms",
                            (json_int_t)(it->retry_at_ms > now ? it->retry_at_ms - now : 0),
                            "rejected", (json_int_t)it->rejected, "conflicts",
                            (json_int_t)it->conflicts, "throttled", (json_int_t)it->throttled,
                            "requests_per_s", (json_int_t)it->bucket->pace.rate));
    }
    return json_pack("{s:o, s:I, s:I}", "shadows", list, "queued", (json_int_t)s->queued,
                     "inflight", (json_int_t)s->sent);
}

sedge_err shadow_sync_start(uv_loop_t *loop, uplink_t *u, shadow_svc_t *svc, shadow_sync_t **out)
{
    shadow_sync_t *s = calloc(1, sizeof *s);
    if (!s)
        return SEDGE_ERR_NOMEM;
    s->uplink = u;
    s->svc = svc;
    if (getrandom(&s->run, sizeof s->run, GRND_NONBLOCK) != (ssize_t)sizeof s->run)
        s->run = (uint32_t)clock_wall_s() ^ (uint32_t)getpid() << 16 ^ (uint32_t)clock_mono_ms();
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    *out = s;
    return SEDGE_OK;
}

static void timer_closed(uv_handle_t *h)
{
    shadow_sync_t *s = h->data;
    s->stop_done(s->stop_ctx);
}

void shadow_sync_stop(shadow_sync_t *s, void (*done)(void *ctx), void *ctx)
{
    s->stop_done = done;
    s->stop_ctx = ctx;
    uv_close((uv_handle_t *)&s->timer, timer_closed);
}

void shadow_sync_free(shadow_sync_t *s)
{
    if (!s)
        return;
    retire_items(s);
    drop_requests(&s->inflight);
    for (size_t i = 0; i < s->retired_count; i++)
        free_item(s->retired[i]);
    free(s->retired);
    for (size_t i = 0; i < s->bucket_count; i++) {
        free(s->buckets[i]->thing);
        free(s->buckets[i]);
    }
    free(s->buckets);
    free(s);
}
