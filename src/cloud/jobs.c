/*
 * jobs: one job at a time — notify-next (or $next/get) names it; its
 * document comes with the notification or from JOBID/get; IN_PROGRESS,
 * deploy, then SUCCEEDED or FAILED on JOBID/update.
 *
 * Status updates waiting for the cloud are a list, one per job (a newer
 * status replaces an older one not yet accepted), mirrored in the store's
 * job_update table. Each carries the client token "sedge:STATUS", which
 * the cloud echoes, so an answer to an older status of the same job is
 * not taken for an answer to the newer one.
 */
#include "jobs.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "jobs"

typedef struct pending {
    struct pending *next;
    char *job;
    char *payload; /* the update's JSON, clientToken included */
    char token[48];
    bool terminal;   /* SUCCEEDED or FAILED */
    uint64_t due_ms; /* when to send it (again); 0: at the next link up */
    uint32_t attempts;
} pending_t;

struct jobs {
    jobs_options_t o;
    char *thing;
    char prefix[200]; /* "$aws/things/CORE/jobs/" */
    char *current;    /* job being handled */
    bool deploying;   /* current's group document went to deploy */
    char *finished;   /* last job reported, not to run again */
    pending_t *pending;
    uv_timer_t timer;
    void (*stop_done)(void *);
    void *stop_ctx;
};

static void publish(jobs_t *j, const char *suffix, json_t *payload)
{
    char topic[400];
    snprintf(topic, sizeof topic, "%s%s", j->prefix, suffix);
    char *text = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    if (!text)
        return;
    if (!uplink_publish(j->o.uplink, bytes_of_cstr(topic), bytes_of_cstr(text), 1))
        LOGW("cannot publish %s: the cloud link is down", topic);
    free(text);
}

static pending_t *find_pending(jobs_t *j, const char *job, size_t len)
{
    for (pending_t *p = j->pending; p; p = p->next)
        if (strlen(p->job) == len && memcmp(p->job, job, len) == 0)
            return p;
    return NULL;
}

static void free_pending(pending_t *p)
{
    free(p->job);
    free(p->payload);
    free(p);
}

static void drop_pending(jobs_t *j, pending_t *gone)
{
    for (pending_t **pp = &j->pending; *pp; pp = &(*pp)->next) {
        if (*pp == gone) {
            *pp = gone->next;
            break;
        }
    }
    store_del_job_update(j->o.store, bytes_of_cstr(gone->job));
    free_pending(gone);
}

static void timer_cb(uv_timer_t *t);

/* Send what is due, and wake up for the next one. */
static void send_due(jobs_t *j)
{
    uint64_t now = clock_mono_ms(), next = 0;
    bool up = uplink_connected(j->o.uplink);
    for (pending_t *p = j->pending; p; p = p->next) {
        if (up && p->due_ms <= now) {
            char topic[400];
            snprintf(topic, sizeof topic, "%s%s/update", j->prefix, p->job);
            if (uplink_publish(j->o.uplink, bytes_of_cstr(topic), bytes_of_cstr(p->payload), 1)) {
                if (p->attempts++)
                    LOGI("job %s: %s sent again (attempt %u): no answer from the cloud yet", p->job,
                         p->token + 6, p->attempts);
                p->due_ms =
                    now + uplink_backoff_ms(j->o.retry_min_ms, j->o.retry_max_ms, p->attempts);
            }
        }
        if (up && (!next || p->due_ms < next))
            next = p->due_ms;
    }
    if (j->stop_done)
        return;
    if (next)
        uv_timer_start(&j->timer, timer_cb, next > now ? next - now : 1, 0);
    else
        uv_timer_stop(&j->timer);
}

static void timer_cb(uv_timer_t *t)
{
    send_due(t->data);
}

static sedge_err add_pending(jobs_t *j, const char *job, const char *payload, const char *status)
{
    pending_t *p = find_pending(j, job, strlen(job));
    if (!p) {
        if (!(p = calloc(1, sizeof *p)) || !(p->job = strdup(job))) {
            free(p);
            return SEDGE_ERR_NOMEM;
        }
        pending_t **tail = &j->pending;
        while (*tail)
            tail = &(*tail)->next;
        *tail = p;
    }
    char *copy = strdup(payload);
    if (!copy)
        return SEDGE_ERR_NOMEM;
    free(p->payload);
    p->payload = copy;
    snprintf(p->token, sizeof p->token, "sedge:%s", status);
    p->terminal = strcmp(status, "IN_PROGRESS") != 0;
    p->due_ms = 0;
    p->attempts = 0;
    return SEDGE_OK;
}

void jobs_report(jobs_t *j, const char *job, const char *status, json_t *details)
{
    char token[48];
    snprintf(token, sizeof token, "sedge:%s", status);
    json_t *p = json_object();
    json_object_set_new(p, "status", json_string(status));
    json_object_set_new(p, "clientToken", json_string(token));
    if (details)
        json_object_set_new(p, "statusDetails", details);
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    if (!text || add_pending(j, job, text, status)) {
        LOGE("job %s: out of memory recording status %s", job, status);
        free(text);
        return;
    }
    store_put_job_update(j->o.store, bytes_of_cstr(job), bytes_of_cstr(text));
    free(text);
    if (!uplink_connected(j->o.uplink))
        LOGI("job %s: %s will be reported when the cloud link is back", job, status);
    send_due(j);
}

static void update_status(jobs_t *j, const char *job, const char *status, const char *key,
                          const char *detail)
{
    json_t *details = NULL;
    if (key && detail) {
        char clipped[1000];
        snprintf(clipped, sizeof clipped, "%s", detail);
        details = json_pack("{s:s}", key, clipped);
    }
    jobs_report(j, job, status, details);
}

static void finish(jobs_t *j)
{
    free(j->finished);
    j->finished = j->current;
    j->current = NULL;
    j->deploying = false;
}

static void deployed(void *ctx, sedge_err err, const char *message, uint64_t version)
{
    jobs_t *j = ctx;
    if (!j->current)
        return;
    if (err) {
        LOGW("job %s failed: %s", j->current, message ? message : sedge_strerror(err));
        update_status(j, j->current, "FAILED", "reason", message ? message : sedge_strerror(err));
    } else {
        char v[32];
        snprintf(v, sizeof v, "%llu", (unsigned long long)version);
        LOGI("job %s succeeded: group version %s is active", j->current, v);
        update_status(j, j->current, "SUCCEEDED", "version", v);
    }
    finish(j);
}

static bool same_as_active(jobs_t *j, const char *text)
{
    const group_t *g = deploy_active_group(j->o.deploy);
    if (!g)
        return false;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    if (!EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL))
        return false;
    for (unsigned i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return strcmp(hex, g->checksum) == 0;
}

static void run(jobs_t *j, json_t *document)
{
    const char *op = json_string_value(json_object_get(document, "operation"));
    if (op && strcmp(op, "sedge.update") == 0) {
        if (j->o.update)
            j->o.update(j->o.update_ctx, j->current, document);
        else
            update_status(j, j->current, "FAILED", "reason",
                          "updates are off on this core: its config has no \"ota\" section");
        finish(j); /* the updater reports from here on */
        return;
    }
    update_status(j, j->current, "IN_PROGRESS", NULL, NULL);
    char *text = json_is_object(document) ? json_dumps(document, JSON_COMPACT) : NULL;
    if (!text) {
        update_status(j, j->current, "FAILED", "reason",
                      "the job document is not a JSON object (a group document)");
        finish(j);
        return;
    }
    if (same_as_active(j, text)) {
        /* Already deployed (the core stopped before reporting it). */
        char v[32];
        snprintf(v, sizeof v, "%llu", (unsigned long long)deploy_active_version(j->o.deploy));
        update_status(j, j->current, "SUCCEEDED", "version", v);
        finish(j);
        free(text);
        return;
    }
    LOGI("job %s: deploying its group document", j->current);
    j->deploying = true;
    deploy_submit(j->o.deploy, text, strlen(text), deployed, j);
    free(text);
}

/* An execution from notify-next, $next/get or JOBID/get. */
static void on_execution(jobs_t *j, json_t *execution)
{
    const char *job = json_string_value(json_object_get(execution, "jobId"));
    const char *status = json_string_value(json_object_get(execution, "status"));
    if (!job || !status)
        return;
    if (strcmp(status, "QUEUED") != 0 && strcmp(status, "IN_PROGRESS") != 0)
        return;
    if (j->finished && strcmp(j->finished, job) == 0)
        return;
    pending_t *p = find_pending(j, job, strlen(job));
    if (p && p->terminal)
        return; /* done here; the cloud has not taken the news yet */
    json_t *doc = json_object_get(execution, "jobDocument");
    if (j->current) {
        /* One job at a time: the next is offered again later. The one in
         * hand comes again with its document (notify-next and the
         * answer to $next/get after a reconnect): running it twice would
         * fail the second run as a deployment already in progress. */
        if (strcmp(j->current, job) != 0 || !doc || j->deploying)
            return;
    } else {
        j->current = strdup(job);
        if (!j->current)
            return;
    }
    if (!doc) {
        char suffix[300];
        snprintf(suffix, sizeof suffix, "%s/get", job);
        publish(j, suffix, json_pack("{s:s}", "clientToken", "sedge"));
        return;
    }
    run(j, doc);
}

/* Rejections retrying can change: the service was busy. */
static bool worth_retrying(const char *code)
{
    return code &&
           (strcmp(code, "RequestThrottled") == 0 || strcmp(code, "InternalError") == 0 ||
            strcmp(code, "ThrottlingException") == 0 || strcmp(code, "ServiceUnavailable") == 0);
}

/* JOBID/update/accepted or /rejected. */
static void on_update_answer(jobs_t *j, bytes_t job, bool accepted, json_t *msg)
{
    pending_t *p = find_pending(j, (const char *)job.data, job.len);
    const char *token = json_string_value(json_object_get(msg, "clientToken"));
    if (!p || (token && strcmp(token, p->token) != 0))
        return; /* an answer to an earlier status, or to an earlier run */
    const char *status = p->token + 6;
    if (accepted) {
        LOGI("job %s: the cloud accepted %s", p->job, status);
        drop_pending(j, p);
        return;
    }
    const char *code = json_string_value(json_object_get(msg, "code"));
    const char *message = json_string_value(json_object_get(msg, "message"));
    if (worth_retrying(code)) {
        LOGW("job %s: the cloud could not take %s now (%s); trying again", p->job, status, code);
        p->due_ms = clock_mono_ms() + uplink_retry_ms(j->o.uplink, p->attempts);
        send_due(j);
        return;
    }
    LOGW("job %s: the cloud rejected %s: %s (%s); not retried", p->job, status,
         code ? code : "no code", message ? message : "no message");
    drop_pending(j, p);
}

static void on_message(void *ctx, bytes_t topic, bytes_t payload)
{
    jobs_t *j = ctx;
    size_t plen = strlen(j->prefix);
    if (topic.len <= plen || memcmp(topic.data, j->prefix, plen) != 0)
        return;
    bytes_t rest = {topic.data + plen, topic.len - plen};
    static const char accepted[] = "/update/accepted", rejected[] = "/update/rejected";
    size_t alen = sizeof accepted - 1, rlen = sizeof rejected - 1;
    bool notify = bytes_eq_cstr(rest, "notify-next");
    bool got = rest.len > 13 && memcmp(rest.data + rest.len - 13, "/get/accepted", 13) == 0;
    bool upd_ok = rest.len > alen && memcmp(rest.data + rest.len - alen, accepted, alen) == 0;
    bool upd_no = rest.len > rlen && memcmp(rest.data + rest.len - rlen, rejected, rlen) == 0;
    if (!notify && !got && !upd_ok && !upd_no) {
        if (rest.len > 9 && memcmp(rest.data + rest.len - 9, "/rejected", 9) == 0)
            LOGW("the cloud rejected %.*s: %.*s", (int)rest.len, (const char *)rest.data,
                 (int)(payload.len > 300 ? 300 : payload.len), (const char *)payload.data);
        return;
    }
    json_error_t jerr;
    json_t *msg = json_loadb((const char *)payload.data, payload.len, 0, &jerr);
    if (upd_ok || upd_no) {
        bytes_t job = {rest.data, rest.len - (upd_ok ? alen : rlen)};
        if (json_is_object(msg))
            on_update_answer(j, job, upd_ok, msg);
    } else {
        json_t *execution = json_object_get(msg, "execution");
        if (json_is_object(execution))
            on_execution(j, execution);
    }
    json_decref(msg);
}

static sedge_err load_pending(void *ctx, bytes_t job, bytes_t payload)
{
    jobs_t *j = ctx;
    char *id = bytes_dup_cstr(job), *text = bytes_dup_cstr(payload);
    json_error_t jerr;
    json_t *msg = text ? json_loads(text, 0, &jerr) : NULL;
    const char *status = json_string_value(json_object_get(msg, "status"));
    sedge_err err = SEDGE_ERR_NOMEM;
    if (id && text && status)
        err = add_pending(j, id, text, status);
    else if (id && text)
        err = SEDGE_OK; /* unreadable: nothing to resend */
    if (!err && status)
        LOGI("job %s: %s waits for the cloud from before the restart", id, status);
    json_decref(msg);
    free(id);
    free(text);
    return err;
}

sedge_err jobs_start(const jobs_options_t *opts, jobs_t **out)
{
    jobs_t *j = calloc(1, sizeof *j);
    if (!j || !(j->thing = strdup(opts->core_thing))) {
        free(j);
        return SEDGE_ERR_NOMEM;
    }
    j->o = *opts;
    j->o.core_thing = j->thing;
    snprintf(j->prefix, sizeof j->prefix, "$aws/things/%s/jobs/", opts->core_thing);
    char filter[220];
    snprintf(filter, sizeof filter, "%s#", j->prefix);
    sedge_err err = store_load_job_updates(opts->store, load_pending, j);
    if (!err)
        err = uplink_watch(opts->uplink, filter, on_message, j);
    if (err) {
        jobs_free(j);
        return err;
    }
    uv_timer_init(opts->loop, &j->timer);
    j->timer.data = j;
    *out = j;
    return SEDGE_OK;
}

void jobs_link_up(jobs_t *j)
{
    uint64_t now = clock_mono_ms();
    for (pending_t *p = j->pending; p; p = p->next)
        p->due_ms = now;
    send_due(j);
    publish(j, "$next/get", json_pack("{s:s}", "clientToken", "sedge"));
}

static void timer_closed(uv_handle_t *h)
{
    jobs_t *j = h->data;
    j->stop_done(j->stop_ctx);
}

void jobs_stop(jobs_t *j, void (*done)(void *ctx), void *ctx)
{
    j->stop_done = done;
    j->stop_ctx = ctx;
    uv_close((uv_handle_t *)&j->timer, timer_closed);
}

json_t *jobs_status(const jobs_t *j)
{
    json_t *list = json_array();
    for (const pending_t *p = j->pending; p; p = p->next)
        json_array_append_new(list, json_pack("{s:s, s:s, s:I}", "job", p->job, "status",
                                              p->token + 6, "attempts", (json_int_t)p->attempts));
    return json_pack("{s:o}", "pending", list);
}

void jobs_free(jobs_t *j)
{
    if (!j)
        return;
    while (j->pending) {
        pending_t *p = j->pending;
        j->pending = p->next;
        free_pending(p);
    }
    free(j->thing);
    free(j->current);
    free(j->finished);
    free(j);
}
