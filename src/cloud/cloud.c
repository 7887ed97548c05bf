/*
 * cloud: the uplink as a routing endpoint, and what starts and stops with
 * it (jobs, shadow sync, secrets from the cloud).
 */
#include "cloud.h"

#include "jobs.h"
#include "secrets.h"
#include "shadow_sync.h"

#include <stdlib.h>
#include <string.h>

#define LOG_TAG "cloud"

struct cloud {
    cloud_options_t o;
    uplink_t *uplink;
    jobs_t *jobs;
    shadow_sync_t *sync;
    cloud_secrets_t *secrets; /* NULL: no one to give them to */
    void (*update_job)(void *ctx, const char *job, json_t *document);
    void *update_ctx;
    int stopping;
    void (*stop_done)(void *);
    void *stop_ctx;
};

static int to_cloud(void *ctx, const endpoint_t *target, const broker_message_t *m, int route_qos)
{
    (void)target;
    cloud_t *c = ctx;
    uint64_t batch = 0;
    sedge_err err = uplink_send(c->uplink, m->topic, m->payload, route_qos, m->retain, &batch);
    if (err == SEDGE_ERR_FULL)
        return BROKER_ROUTED_REFUSED;
    /* Beyond the cloud's limits: never deliverable, so not to be resent. */
    if (err == SEDGE_ERR_TOO_LARGE || err == SEDGE_ERR_INVALID)
        return BROKER_ROUTED_INVALID;
    return batch ? BROKER_ROUTED_DURABLE : 0;
}

static void from_cloud(void *ctx, bytes_t topic, bytes_t payload, uint8_t qos)
{
    cloud_t *c = ctx;
    broker_message_t m = {
        .source = BYTES_LIT("cloud"), .topic = topic, .payload = payload, .qos = qos > 1 ? 1 : qos};
    if (broker_publish(c->o.broker, &m) == SEDGE_ERR_DENIED)
        LOGD("message from the cloud on %.*s: no route", (int)topic.len, (const char *)topic.data);
}

static void link_changed(void *ctx, bool up)
{
    cloud_t *c = ctx;
    if (up && c->jobs)
        jobs_link_up(c->jobs);
    if (up && c->sync)
        shadow_sync_link_up(c->sync);
    if (!up && c->sync)
        shadow_sync_link_down(c->sync);
}

sedge_err cloud_start(const cloud_options_t *o, cloud_t **out)
{
    cloud_t *c = calloc(1, sizeof *c);
    if (!c)
        return SEDGE_ERR_NOMEM;
    c->o = *o;
    uplink_options_t uo = {.loop = o->loop,
                           .store = o->store,
                           .cfg = o->cfg,
                           .deliver = from_cloud,
                           .on_link = link_changed,
                           .ctx = c};
    sedge_err err = uplink_start(&uo, &c->uplink);
    if (!err)
        err = shadow_sync_start(o->loop, c->uplink, o->shadow, &c->sync);
    if (!err && o->secret && !(c->secrets = cloud_secrets_new(c->uplink, o->secret, o->ctx)))
        err = SEDGE_ERR_NOMEM;
    if (err) {
        cloud_free(c);
        return err;
    }
    routing_attach(o->routing, ENDPOINT_CLOUD, &(routing_service_t){"cloud", to_cloud, c});
    *out = c;
    return SEDGE_OK;
}

void cloud_on_update_job(cloud_t *c, void (*fn)(void *ctx, const char *job, json_t *document),
                         void *ctx)
{
    c->update_job = fn;
    c->update_ctx = ctx;
}

void cloud_job_report(cloud_t *c, const char *job, const char *status, json_t *details)
{
    if (c->jobs)
        jobs_report(c->jobs, job, status, details);
    else
        json_decref(details);
}

sedge_err cloud_listen_for_jobs(cloud_t *c, deploy_t *deploy, const char *core_thing)
{
    const uplink_config_t *cfg = c->o.cfg;
    jobs_options_t jo = {.loop = c->o.loop,
                         .uplink = c->uplink,
                         .deploy = deploy,
                         .store = c->o.store,
                         .core_thing = core_thing,
                         .retry_min_ms =
                             cfg->limits.ack_timeout_ms ? cfg->limits.ack_timeout_ms : 30000,
                         .retry_max_ms = cfg->reconnect_max_ms,
                         .update = c->update_job,
                         .update_ctx = c->update_ctx};
    if (jo.retry_max_ms < jo.retry_min_ms)
        jo.retry_max_ms = jo.retry_min_ms;
    return jobs_start(&jo, &c->jobs);
}

static void part_stopped(void *ctx)
{
    cloud_t *c = ctx;
    if (--c->stopping > 0)
        return;
    if (c->stop_done)
        c->stop_done(c->stop_ctx);
}

void cloud_stop(cloud_t *c, void (*done)(void *ctx), void *ctx)
{
    c->stop_done = done;
    c->stop_ctx = ctx;
    c->stopping = 1; /* released at the end, so that no part ends the stop early */
    if (c->sync) {
        c->stopping++;
        shadow_sync_stop(c->sync, part_stopped, c);
    }
    if (c->jobs) {
        c->stopping++;
        jobs_stop(c->jobs, part_stopped, c);
    }
    c->stopping++;
    uplink_stop(c->uplink, part_stopped, c);
    part_stopped(c);
}

void cloud_free(cloud_t *c)
{
    if (!c)
        return;
    jobs_free(c->jobs);
    shadow_sync_free(c->sync);
    cloud_secrets_free(c->secrets);
    uplink_free(c->uplink);
    free(c);
}

void cloud_before_wait(cloud_t *c)
{
    uplink_before_wait(c->uplink);
}

void cloud_group_applied(cloud_t *c, const group_t *g)
{
    json_t *filters = routing_cloud_filters(c->o.routing);
    size_t n = json_array_size(filters);
    const char **list = calloc(n ? n : 1, sizeof *list);
    for (size_t i = 0; list && i < n; i++)
        list[i] = json_string_value(json_array_get(filters, i));
    if (list)
        uplink_set_subscriptions(c->uplink, list, n);
    else
        LOGE("out of memory subscribing to the cloud for the routes from it");
    free(list);
    json_decref(filters);
    shadow_sync_configure(c->sync, g);
    if (c->secrets)
        cloud_secrets_configure(c->secrets, g);
}

bool cloud_check_group(cloud_t *c, const group_t *g, buf_t *errors)
{
    bool ok = true;
    for (size_t i = 0; i < g->route_count; i++) {
        const route_t *rt = &g->routes[i];
        bool to = rt->target.kind == ENDPOINT_CLOUD, from = rt->source.kind == ENDPOINT_CLOUD;
        char why[200], line[600];
        if ((!to && !from) ||
            uplink_topic_fits(uplink_limits(c->uplink), bytes_of_cstr(rt->filter), true, why,
                              sizeof why))
            continue;
        int n = snprintf(line, sizeof line, "routes[%zu].filter: \"%.200s\" %s the cloud: %s\n", i,
                         rt->filter, to ? "goes to" : "comes from", why);
        if (n > 0 &&
            buf_append(errors, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1))
            return false;
        ok = false;
    }
    return ok;
}

void cloud_shadow_changed(cloud_t *c, shadow_op_t op, bytes_t thing, bytes_t name,
                          bytes_t accepted)
{
    shadow_sync_local_change(c->sync, op, thing, name, accepted);
}

bool cloud_connected(const cloud_t *c)
{
    return uplink_connected(c->uplink);
}

json_t *cloud_status(cloud_t *c)
{
    json_t *r = uplink_status(c->uplink);
    if (c->jobs)
        json_object_set_new(r, "jobs", jobs_status(c->jobs));
    json_object_set_new(r, "shadow_sync", shadow_sync_status(c->sync));
    return r;
}
