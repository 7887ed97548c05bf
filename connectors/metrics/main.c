/*
 * metrics: the machine's health every interval_ms on one topic (default
 * sedge/metrics): the whole machine's CPU use over the interval in percent,
 * memory total and available in bytes, load averages, uptime, each
 * network interface's counters, each thermal zone's temperature, and the
 * space of the filesystems it is given (paths it can see: a system
 * directory, or a volume declared in its resources).
 *
 * {"timestamp": 1733000000000, "thing": "edge-core", "interval_ms": 10000,
 *  "cpu": {"percent": 12.5, "count": 2},
 *  "memory": {"total_bytes": N, "available_bytes": N, "used_percent": 41.2},
 *  "load": [0.1, 0.2, 0.3], "uptime_s": 1234,
 *  "network": [{"interface": "eth0", "rx_bytes": N, "tx_bytes": N, ...}],
 *  "temperatures": [{"zone": "thermal_zone0", "type": "x86_pkg_temp", "celsius": 45.0}],
 *  "filesystems": [{"path": "/data", "total_bytes": N, "available_bytes": N}]}
 *
 * It publishes as connector:NAME; the routes decide where that goes.
 */
#include "connector.h"
#include "sample.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#define DEFAULT_TOPIC "sedge/metrics"
#define DEFAULT_INTERVAL_MS 10000

typedef struct {
    json_t *params;
    const char *topic;
    uint32_t interval_ms;
    uint64_t next_ms;
    cpu_times_t cpu;
    bool have_cpu;
} metrics_conn_t;

static char text[1 << 16];

static json_t *temperatures(void)
{
    json_t *list = json_array();
    DIR *d = opendir("/sys/class/thermal");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "thermal_zone", 12) != 0)
            continue;
        char path[300], type[64] = "";
        snprintf(path, sizeof path, "/sys/class/thermal/%s/temp", e->d_name);
        if (!metrics_read_file(path, text, sizeof text))
            continue;
        double celsius = strtod(text, NULL) / 1000.0;
        snprintf(path, sizeof path, "/sys/class/thermal/%s/type", e->d_name);
        if (metrics_read_file(path, type, sizeof type))
            type[strcspn(type, "\n")] = '\0';
        json_array_append_new(list, json_pack("{s:s, s:s, s:f}", "zone", e->d_name, "type", type,
                                              "celsius", celsius));
    }
    if (d)
        closedir(d);
    return list;
}

static json_t *filesystems(json_t *paths)
{
    json_t *list = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(paths, i, v)
    {
        struct statvfs st;
        const char *path = json_string_value(v);
        if (!path || statvfs(path, &st) != 0)
            continue;
        json_array_append_new(
            list, json_pack("{s:s, s:I, s:I}", "path", path, "total_bytes",
                            (json_int_t)((uint64_t)st.f_blocks * st.f_frsize), "available_bytes",
                            (json_int_t)((uint64_t)st.f_bavail * st.f_frsize)));
    }
    return list;
}

static void publish_sample(metrics_conn_t *m)
{
    json_t *doc = json_object();
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    json_object_set_new(doc, "timestamp",
                        json_integer((json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000));
    json_object_set_new(doc, "thing", json_string(conn_thing_name()));
    json_object_set_new(doc, "interval_ms", json_integer(m->interval_ms));
    cpu_times_t cpu;
    unsigned cpus;
    if (metrics_read_file("/proc/stat", text, sizeof text) &&
        metrics_parse_stat(text, &cpu, &cpus)) {
        json_t *c = json_object();
        json_object_set_new(c, "percent",
                            json_real(m->have_cpu ? metrics_cpu_percent(&m->cpu, &cpu) : 0.0));
        json_object_set_new(c, "count", json_integer(cpus));
        json_object_set_new(doc, "cpu", c);
        m->cpu = cpu;
        m->have_cpu = true;
    }
    uint64_t total, available;
    if (metrics_read_file("/proc/meminfo", text, sizeof text) &&
        metrics_parse_meminfo(text, &total, &available))
        json_object_set_new(doc, "memory",
                            json_pack("{s:I, s:I, s:f}", "total_bytes", (json_int_t)total,
                                      "available_bytes", (json_int_t)available, "used_percent",
                                      total ? 100.0 * (double)(total - available) / (double)total
                                            : 0.0));
    double l1, l5, l15;
    if (metrics_read_file("/proc/loadavg", text, sizeof text) &&
        sscanf(text, "%lf %lf %lf", &l1, &l5, &l15) == 3)
        json_object_set_new(doc, "load", json_pack("[f, f, f]", l1, l5, l15));
    double up;
    if (metrics_read_file("/proc/uptime", text, sizeof text) && sscanf(text, "%lf", &up) == 1)
        json_object_set_new(doc, "uptime_s", json_integer((json_int_t)up));
    if (metrics_read_file("/proc/net/dev", text, sizeof text))
        json_object_set_new(doc, "network", metrics_parse_net_dev(text));
    json_object_set_new(doc, "temperatures", temperatures());
    json_object_set_new(doc, "filesystems", filesystems(json_object_get(m->params, "filesystems")));
    (void)conn_publish_json(m->topic, doc);
    json_decref(doc);
}

static int64_t next_ms(void *ctx)
{
    metrics_conn_t *m = ctx;
    uint64_t now = conn_now_ms();
    return m->next_ms > now ? (int64_t)(m->next_ms - now) : 0;
}

static void tick(void *ctx)
{
    metrics_conn_t *m = ctx;
    publish_sample(m);
    uint64_t now = conn_now_ms();
    m->next_ms += m->interval_ms;
    if (m->next_ms <= now)
        m->next_ms = now + m->interval_ms;
}

/* A message routed to the connector asks for a sample now. */
static sedge_err handle(const sedge_event *ev, sedge_result *res, void *ctx)
{
    (void)ev;
    (void)res;
    publish_sample(ctx);
    return SEDGE_OK;
}

int main(void)
{
    metrics_conn_t m = {0};
    if (conn_parameters(&m.params)) {
        conn_log("error", "cannot read the parameters: %s", sedge_last_error());
        return 1;
    }
    m.topic = conn_param_str(m.params, "topic", DEFAULT_TOPIC);
    m.interval_ms = (uint32_t)conn_param_int(m.params, "interval_ms", DEFAULT_INTERVAL_MS);
    /* The first reading of the CPU starts the first interval. */
    unsigned cpus;
    if (metrics_read_file("/proc/stat", text, sizeof text))
        m.have_cpu = metrics_parse_stat(text, &m.cpu, &cpus);
    m.next_ms = conn_now_ms() + m.interval_ms;
    conn_ops_t ops = {.handle = handle, .next_ms = next_ms, .tick = tick, .ctx = &m};
    sedge_err err = conn_run(&ops);
    conn_log(err == SEDGE_ERR_CLOSED ? "info" : "error", "stopping: %s", sedge_last_error());
    json_decref(m.params);
    return err == SEDGE_ERR_CLOSED ? 0 : 1;
}
