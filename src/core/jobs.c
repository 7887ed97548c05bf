/*
 * jobs: one job at a time — notify-next (or $next/get) names it; its
 * document comes with the notification or from JOBID/get; IN_PROGRESS,
 * deploy, then SUCCEEDED or FAILED on JOBID/update.
 */
#include "jobs.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "jobs"

struct jobs {
    uplink_t *uplink;
    deploy_t *deploy;
    char *thing;
    char prefix[200]; /* "$aws/things/CORE/jobs/" */
    char *current;    /* job being handled */
    char *finished;   /* last job reported, not to run again */
};

static void publish(jobs_t *j, const char *suffix, json_t *payload)
{
    char topic[400];
    snprintf(topic, sizeof topic, "%s%s", j->prefix, suffix);
    char *text = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    if (!text)
        return;
    if (!uplink_publish(j->uplink, bytes_of_cstr(topic), bytes_of_cstr(text), 1))
        LOGW("cannot publish %s: the cloud link is down", topic);
    free(text);
}

static void update_status(jobs_t *j, const char *job, const char *status, const char *key,
                          const char *detail)
{
    char suffix[300];
    snprintf(suffix, sizeof suffix, "%s/update", job);
    json_t *p = json_object();
    json_object_set_new(p, "status", json_string(status));
    if (key && detail) {
        json_t *details = json_object();
        char clipped[1000];
        snprintf(clipped, sizeof clipped, "%s", detail);
        json_object_set_new(details, key, json_string(clipped));
        json_object_set_new(p, "statusDetails", details);
    }
    publish(j, suffix, p);
}

static void finish(jobs_t *j)
{
    free(j->finished);
    j->finished = j->current;
    j->current = NULL;
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
    const group_t *g = deploy_active_group(j->deploy);
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
        snprintf(v, sizeof v, "%llu", (unsigned long long)deploy_active_version(j->deploy));
        update_status(j, j->current, "SUCCEEDED", "version", v);
        finish(j);
        free(text);
        return;
    }
    LOGI("job %s: deploying its group document", j->current);
    deploy_submit(j->deploy, text, strlen(text), deployed, j);
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
    json_t *doc = json_object_get(execution, "jobDocument");
    if (j->current) {
        if (strcmp(j->current, job) != 0 || !doc)
            return; /* one job at a time; the next is offered again later */
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

static void on_message(void *ctx, bytes_t topic, bytes_t payload)
{
    jobs_t *j = ctx;
    size_t plen = strlen(j->prefix);
    if (topic.len <= plen || memcmp(topic.data, j->prefix, plen) != 0)
        return;
    bytes_t rest = {topic.data + plen, topic.len - plen};
    bool notify = bytes_eq_cstr(rest, "notify-next");
    bool got = rest.len > 13 && memcmp(rest.data + rest.len - 13, "/get/accepted", 13) == 0;
    if (!notify && !got) {
        if (rest.len > 9 && memcmp(rest.data + rest.len - 9, "/rejected", 9) == 0)
            LOGW("the cloud rejected %.*s: %.*s", (int)rest.len, (const char *)rest.data,
                 (int)(payload.len > 300 ? 300 : payload.len), (const char *)payload.data);
        return;
    }
    json_error_t jerr;
    json_t *msg = json_loadb((const char *)payload.data, payload.len, 0, &jerr);
    json_t *execution = json_object_get(msg, "execution");
    if (json_is_object(execution))
        on_execution(j, execution);
    json_decref(msg);
}

sedge_err jobs_start(uplink_t *u, deploy_t *d, const char *core_thing, jobs_t **out)
{
    jobs_t *j = calloc(1, sizeof *j);
    if (!j || !(j->thing = strdup(core_thing))) {
        free(j);
        return SEDGE_ERR_NOMEM;
    }
    j->uplink = u;
    j->deploy = d;
    snprintf(j->prefix, sizeof j->prefix, "$aws/things/%s/jobs/", core_thing);
    char filter[220];
    snprintf(filter, sizeof filter, "%s#", j->prefix);
    sedge_err err = uplink_watch(u, filter, on_message, j);
    if (err) {
        jobs_free(j);
        return err;
    }
    *out = j;
    return SEDGE_OK;
}

void jobs_link_up(jobs_t *j)
{
    publish(j, "$next/get", json_pack("{s:s}", "clientToken", "sedge"));
}

void jobs_free(jobs_t *j)
{
    if (!j)
        return;
    free(j->thing);
    free(j->current);
    free(j->finished);
    free(j);
}
