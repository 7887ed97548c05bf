/*
 * metrics: GET /metrics, the Prometheus text format 0.0.4 — what
 * `sedgectl status`, `spool` and `functions` show, as counters (_total),
 * gauges and histograms in base units (seconds, bytes), each with # HELP
 * and # TYPE. Built from the same sources as those commands, at each
 * scrape.
 */
#include "front.h"

#include "base/histogram.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define LOG_TAG "metrics"

typedef struct {
    buf_t out;
    bool failed;
} text_t;

static void put(text_t *t, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void put(text_t *t, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) { /* a long label value: format again, on the heap */
        char *big = malloc((size_t)n + 1);
        if (!big) {
            t->failed = true;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        t->failed |= buf_append(&t->out, big, (size_t)n) != SEDGE_OK;
        free(big);
        return;
    }
    t->failed |= buf_append(&t->out, line, (size_t)n) != SEDGE_OK;
}

static void family(text_t *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric(text_t *t, const char *name, const char *type, const char *help, double v)
{
    family(t, name, type, help);
    put(t, "%s %.17g\n", name, v);
}

/* A label value, escaped as the format wants (\\, \", \n). */
static char *label(const char *v)
{
    size_t n = strlen(v);
    char *out = malloc(2 * n + 1), *p = out;
    if (!out)
        return NULL;
    for (const char *s = v; *s; s++) {
        if (*s == '\\' || *s == '"') {
            *p++ = '\\';
            *p++ = *s;
        } else if (*s == '\n') {
            *p++ = '\\';
            *p++ = 'n';
        } else {
            *p++ = *s;
        }
    }
    *p = '\0';
    return out;
}

/* A histogram's buckets, sum and count; `labels` is "" or `k="v",`. */
static void histogram(text_t *t, const char *name, const char *labels, const histogram_t *h)
{
    uint64_t cumulative = 0;
    for (size_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
        cumulative += h->counts[i];
        put(t, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, (double)histogram_bound_us(i) / 1e6,
            (unsigned long long)cumulative);
    }
    put(t, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)h->count);
    size_t ll = strlen(labels);
    char trimmed[512] = "";
    if (ll && ll < sizeof trimmed) { /* without the trailing comma */
        memcpy(trimmed, labels, ll - 1);
        trimmed[ll - 1] = '\0';
    }
    put(t, "%s_sum%s%s%s %.6f\n", name, ll ? "{" : "", trimmed, ll ? "}" : "",
        (double)h->sum_us / 1e6);
    put(t, "%s_count%s%s%s %llu\n", name, ll ? "{" : "", trimmed, ll ? "}" : "",
        (unsigned long long)h->count);
}

/* A histogram from functions_status's JSON (per-bucket counts). */
static histogram_t histogram_of(json_t *o)
{
    histogram_t h = {0};
    json_t *counts = json_object_get(o, "counts");
    for (size_t i = 0; i <= HISTOGRAM_BUCKETS && i < json_array_size(counts); i++)
        h.counts[i] = (uint64_t)json_integer_value(json_array_get(counts, i));
    h.count = (uint64_t)json_integer_value(json_object_get(o, "count"));
    h.sum_us = (uint64_t)json_integer_value(json_object_get(o, "sum_us"));
    return h;
}

static long page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? p : 4096;
}

/* Resident memory of a process, bytes (0 when gone). */
static uint64_t rss_of(long pid)
{
    char path[64];
    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%ld/statm", pid);
    else
        snprintf(path, sizeof path, "/proc/self/statm");
    FILE *f = fopen(path, "r");
    unsigned long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)page_size();
}

void metrics_process(uint64_t *rss_bytes, double *cpu_s)
{
    *rss_bytes = rss_of(0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static size_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    size_t n = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n ? n - 1 : 0; /* the directory's own descriptor aside */
}

static void broker_metrics(text_t *t, front_t *f)
{
    broker_stats_t b;
    broker_get_stats(f->core->broker, &b);
    metric(t, "sedge_start_time_seconds", "gauge", "When sedged started, Unix time.",
           (double)b.started_at);
    metric(t, "sedge_uptime_seconds", "gauge", "Seconds since sedged started.",
           (double)(clock_wall_s() - (int64_t)b.started_at));
    metric(t, "sedge_connections", "gauge", "MQTT connections open now (all transports).",
           (double)b.connections);
    metric(t, "sedge_connections_accepted_total", "counter", "MQTT connections accepted.",
           (double)b.connections_total);
    metric(t, "sedge_connections_refused_total", "counter",
           "MQTT connections refused (limits, TLS, CONNECT refused).",
           (double)b.refused_connections);
    metric(t, "sedge_sessions", "gauge", "MQTT sessions known, online or not.", (double)b.sessions);
    metric(t, "sedge_sessions_online", "gauge", "MQTT sessions with a connection.",
           (double)b.sessions_online);
    metric(t, "sedge_sessions_persistent", "gauge", "MQTT sessions kept in the store.",
           (double)b.sessions_persistent);
    metric(t, "sedge_subscriptions", "gauge", "Subscriptions of all sessions.",
           (double)b.subscriptions);
    metric(t, "sedge_retained_messages", "gauge", "Retained messages.", (double)b.retained);
    metric(t, "sedge_messages_received_total", "counter", "Messages routed into the broker.",
           (double)b.msgs_in);
    metric(t, "sedge_messages_sent_total", "counter", "Messages sent to subscribers.",
           (double)b.msgs_out);
    metric(t, "sedge_received_bytes_total", "counter", "MQTT bytes received.", (double)b.bytes_in);
    metric(t, "sedge_sent_bytes_total", "counter", "MQTT bytes sent.", (double)b.bytes_out);
    metric(t, "sedge_messages_queued", "gauge", "QoS 1/2 messages waiting in sessions.",
           (double)b.queued);
    metric(t, "sedge_protocol_errors_total", "counter", "Connections ended for a protocol error.",
           (double)b.protocol_errors);
    metric(t, "sedge_buffered_bytes", "gauge", "Input and output held by connections now.",
           (double)b.buffered_bytes);
    metric(t, "sedge_flow_pauses_total", "counter", "Publishers paused for a subscriber behind.",
           (double)b.flow_pauses);
    metric(t, "sedge_slow_readers_total", "counter",
           "Subscribers that read nothing for slow_reader_timeout_s.", (double)b.slow_readers);
}

static void dropped_metrics(text_t *t, front_t *f, json_t *functions, json_t *spool)
{
    broker_stats_t b;
    broker_get_stats(f->core->broker, &b);
    family(t, "sedge_messages_dropped_total", "counter",
           "Messages not delivered or kept, by reason.");
    put(t, "sedge_messages_dropped_total{reason=\"broker_limit\"} %llu\n",
        (unsigned long long)b.msgs_dropped);
    uint64_t fq = 0, fi = 0;
    size_t i;
    json_t *fn;
    json_array_foreach(functions, i, fn)
    {
        fq += (uint64_t)json_integer_value(json_object_get(fn, "refused"));
        fi += (uint64_t)json_integer_value(json_object_get(fn, "invalid"));
    }
    put(t, "sedge_messages_dropped_total{reason=\"function_queue_full\"} %llu\n",
        (unsigned long long)fq);
    put(t, "sedge_messages_dropped_total{reason=\"function_invalid_payload\"} %llu\n",
        (unsigned long long)fi);
    if (spool) {
        json_t *refused = json_object_get(spool, "refused");
        put(t, "sedge_messages_dropped_total{reason=\"cloud_limits\"} %lld\n",
            (long long)json_integer_value(json_object_get(refused, "total")));
        put(t, "sedge_messages_dropped_total{reason=\"spool\"} %lld\n",
            (long long)(json_integer_value(json_object_get(spool, "dropped")) -
                        json_integer_value(json_object_get(refused, "total"))));
    }
}

static void routing_metrics(text_t *t, front_t *f)
{
    json_t *st = json_object();
    routing_status(f->core->routing, st);
    json_t *routes = json_object_get(st, "routes");
    family(t, "sedge_route_messages_total", "counter",
           "Messages each route of the deployed group carried.");
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        char *l = label(json_string_value(json_object_get(r, "route")) ?: "");
        if (l)
            put(t, "sedge_route_messages_total{route=\"%s\"} %lld\n", l,
                (long long)json_integer_value(json_object_get(r, "messages")));
        free(l);
    }
    json_t *services = json_object_get(st, "services");
    const char *name;
    json_t *s;
    family(t, "sedge_service_messages_delivered_total", "counter",
           "Messages routed to each service (shadow, functions, cloud...) it took.");
    json_object_foreach(services, name, s)
        put(t, "sedge_service_messages_delivered_total{service=\"%s\"} %lld\n", name,
            (long long)json_integer_value(json_object_get(s, "delivered")));
    family(t, "sedge_service_messages_dropped_total", "counter",
           "Messages routed to each service dropped before it attached.");
    json_object_foreach(services, name, s)
        put(t, "sedge_service_messages_dropped_total{service=\"%s\"} %lld\n", name,
            (long long)json_integer_value(json_object_get(s, "dropped")));
    const group_t *g = deploy_active_group(f->core->deploy);
    metric(t, "sedge_group_version", "gauge", "The deployed group's version (0: none).",
           (double)deploy_active_version(f->core->deploy));
    metric(t, "sedge_group_things", "gauge", "Things in the deployed group.",
           g ? (double)g->thing_count : 0);
    json_decref(st);
}

static void store_metrics(text_t *t, front_t *f)
{
    store_stats_t s;
    store_get_stats(f->core->store, &s);
    metric(t, "sedge_store_commits_total", "counter", "Store batches committed (or failed).",
           (double)s.batches);
    metric(t, "sedge_store_writes_total", "counter", "Writes in those batches.", (double)s.writes);
    metric(t, "sedge_store_failures_total", "counter", "Store batches that failed to commit.",
           (double)s.failures);
    metric(t, "sedge_store_size_bytes", "gauge", "The store's size on disk.",
           (double)s.bytes_on_disk);
    family(t, "sedge_store_commit_duration_seconds", "histogram",
           "From a batch handed to the store's worker to its commit.");
    histogram(t, "sedge_store_commit_duration_seconds", "", &s.commit_latency);
}

static void spool_metrics(text_t *t, json_t *spool)
{
    if (!spool)
        return;
    metric(t, "sedge_cloud_connected", "gauge", "1 while the cloud link is up.",
           strcmp(json_string_value(json_object_get(spool, "state")) ?: "", "up") == 0 ? 1 : 0);
    metric(t, "sedge_cloud_reconnects_total", "counter", "Cloud link connections made.",
           (double)json_integer_value(json_object_get(spool, "reconnects")));
    metric(t, "sedge_spool_messages", "gauge", "Messages waiting in the spool for the cloud.",
           (double)json_integer_value(json_object_get(spool, "queued")));
    metric(t, "sedge_spool_bytes", "gauge", "Bytes waiting in the spool.",
           (double)json_integer_value(json_object_get(spool, "bytes")));
    metric(t, "sedge_spool_oldest_age_seconds", "gauge", "Age of the oldest spooled message.",
           (double)json_integer_value(json_object_get(spool, "oldest_age_s")));
    metric(t, "sedge_spool_appended_messages_total", "counter", "Messages put in the spool.",
           (double)json_integer_value(json_object_get(spool, "appended")));
    metric(t, "sedge_spool_sent_messages_total", "counter",
           "Spooled messages the cloud acknowledged (the drain; rate() gives its rate).",
           (double)json_integer_value(json_object_get(spool, "sent")));
    metric(t, "sedge_spool_drain_rate_messages_per_second", "gauge", "The drain's current pace.",
           (double)json_integer_value(
               json_object_get(json_object_get(spool, "pace"), "publishes_per_s")));
    metric(t, "sedge_spool_dead_letters_total", "counter", "Messages the cloud refused for good.",
           (double)json_integer_value(
               json_object_get(json_object_get(spool, "dead_letters"), "total")));
}

static void function_metrics(text_t *t, json_t *functions)
{
    static const struct {
        const char *key, *name, *type, *help;
    } counters[] = {
        {"invocations", "sedge_function_invocations_total", "counter", "Invocations finished."},
        {"errors", "sedge_function_errors_total", "counter", "Invocations that failed."},
        {"timeouts", "sedge_function_timeouts_total", "counter", "Invocations past timeout_s."},
        {"crashes", "sedge_function_crashes_total", "counter", "Instances that died."},
        {"oom_kills", "sedge_function_oom_kills_total", "counter", "Instances killed over memory."},
        {"queue", "sedge_function_queue", "gauge", "Invocations waiting for an instance."},
    };
    for (size_t k = 0; k < ARRAY_LEN(counters); k++) {
        family(t, counters[k].name, counters[k].type, counters[k].help);
        size_t i;
        json_t *fn;
        json_array_foreach(functions, i, fn)
        {
            char *l = label(json_string_value(json_object_get(fn, "name")) ?: "");
            if (l)
                put(t, "%s{function=\"%s\"} %lld\n", counters[k].name, l,
                    (long long)json_integer_value(json_object_get(fn, counters[k].key)));
            free(l);
        }
    }
    family(t, "sedge_function_instances", "gauge", "Instances running (standby aside).");
    family(t, "sedge_function_memory_bytes", "gauge", "Resident memory of its instances.");
    family(t, "sedge_function_duration_seconds", "histogram",
           "From an invocation's request to its result, queueing included.");
    /* The families above are declared once; their samples follow. */
    size_t i;
    json_t *fn;
    json_array_foreach(functions, i, fn)
    {
        char *l = label(json_string_value(json_object_get(fn, "name")) ?: "");
        if (!l)
            continue;
        json_t *instances = json_object_get(fn, "instances");
        uint64_t rss = 0;
        size_t k;
        json_t *in;
        json_array_foreach(instances, k, in) rss +=
            rss_of((long)json_integer_value(json_object_get(in, "pid")));
        put(t, "sedge_function_instances{function=\"%s\"} %zu\n", l, json_array_size(instances));
        put(t, "sedge_function_memory_bytes{function=\"%s\"} %llu\n", l, (unsigned long long)rss);
        char labels[400];
        snprintf(labels, sizeof labels, "function=\"%.380s\",", l);
        histogram_t h = histogram_of(json_object_get(fn, "duration"));
        histogram(t, "sedge_function_duration_seconds", labels, &h);
        free(l);
    }
}

static void http_metrics(text_t *t, front_t *f)
{
    http_stats_t h;
    http_get_stats(f->http, &h);
    metric(t, "sedge_http_connections", "gauge", "HTTP connections open now.",
           (double)h.connections);
    metric(t, "sedge_http_connections_accepted_total", "counter", "HTTP connections accepted.",
           (double)h.connections_total);
    metric(t, "sedge_http_connections_refused_total", "counter",
           "HTTP connections refused over http.max_connections.", (double)h.connections_refused);
    metric(t, "sedge_http_tls_refused_total", "counter",
           "TLS handshakes refused: no, foreign or revoked client certificate.",
           (double)h.tls_refused);
    family(t, "sedge_http_responses_total", "counter", "HTTP responses, by status class.");
    put(t, "sedge_http_responses_total{code=\"2xx\"} %llu\n", (unsigned long long)h.responses_2xx);
    put(t, "sedge_http_responses_total{code=\"3xx\"} %llu\n", (unsigned long long)h.responses_3xx);
    put(t, "sedge_http_responses_total{code=\"4xx\"} %llu\n", (unsigned long long)h.responses_4xx);
    put(t, "sedge_http_responses_total{code=\"5xx\"} %llu\n", (unsigned long long)h.responses_5xx);
    metric(t, "sedge_http_bad_requests_total", "counter",
           "Requests and WebSocket frames refused for their size.", (double)h.bad_requests);
    metric(t, "sedge_websocket_connections", "gauge", "WebSockets open now (MQTT, console).",
           (double)h.ws_open);
    metric(t, "sedge_websocket_connections_accepted_total", "counter", "WebSockets opened.",
           (double)h.ws_total);
    metric(t, "sedge_websocket_connections_refused_total", "counter",
           "WebSocket upgrades refused (path, subprotocol, limits).", (double)h.ws_refused);
    if (f->core->cfg.discovery.enabled) {
        static const char *const codes[] = {"200", "400", "403", "404", "405", "other"};
        family(t, "sedge_discovery_requests_total", "counter",
               "Discovery requests answered, by status.");
        for (size_t i = 0; i < ARRAY_LEN(codes); i++)
            put(t, "sedge_discovery_requests_total{code=\"%s\"} %llu\n", codes[i],
                (unsigned long long)f->discovery_counts[i]);
    }
    family(t, "sedge_console_logins_total", "counter", "Console logins, by outcome.");
    put(t, "sedge_console_logins_total{result=\"ok\"} %llu\n",
        (unsigned long long)f->console.logins);
    put(t, "sedge_console_logins_total{result=\"refused\"} %llu\n",
        (unsigned long long)f->console.logins_refused);
    metric(t, "sedge_console_csrf_refused_total", "counter",
           "Console changes refused for a missing or wrong CSRF token.",
           (double)f->console.csrf_refused);
}

char *metrics_render(front_t *f)
{
    text_t t = {0};
    json_t *functions = functions_status(f->core->functions);
    json_t *spool = f->core->cloud ? cloud_status(f->core->cloud) : NULL;
    broker_metrics(&t, f);
    dropped_metrics(&t, f, functions, spool);
    routing_metrics(&t, f);
    store_metrics(&t, f);
    spool_metrics(&t, spool);
    function_metrics(&t, functions);
    http_metrics(&t, f);
    uint64_t rss;
    double cpu;
    metrics_process(&rss, &cpu);
    metric(&t, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
           (double)rss);
    metric(&t, "process_cpu_seconds_total", "counter", "User and system CPU time in seconds.", cpu);
    metric(&t, "process_open_fds", "gauge", "Open file descriptors.", (double)open_fds());
    json_decref(functions);
    json_decref(spool);
    if (t.failed || buf_append(&t.out, "", 1)) {
        buf_free(&t.out);
        return NULL;
    }
    return (char *)t.out.data;
}

void metrics_handle(void *ctx, http_request_t *req, const http_request_info_t *info)
{
    front_t *f = ctx;
    if (strcmp(info->path, "/metrics") != 0) {
        http_respond(req, 404, "text/plain", NULL, BYTES_LIT("not found\n"));
        return;
    }
    if (strcmp(info->method, "GET") != 0 && strcmp(info->method, "HEAD") != 0) {
        http_respond(req, 405, "text/plain", "Allow: GET, HEAD\r\n",
                     BYTES_LIT("method not allowed\n"));
        return;
    }
    /* Over TLS, the admins' certificates only: /metrics tells a lot. */
    if (info->tls && !console_is_admin(f, info->client_cn)) {
        http_respond(req, 403, "text/plain", NULL, BYTES_LIT("forbidden\n"));
        return;
    }
    char *text = metrics_render(f);
    if (!text) {
        http_respond(req, 500, "text/plain", NULL, BYTES_LIT("out of memory\n"));
        return;
    }
    http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, bytes_of_cstr(text));
    free(text);
}
