/*
 * sedged: the Sedge daemon. Runs in the foreground, logs to stderr (with
 * journald's priorities when stderr is the journal), stops cleanly on
 * SIGTERM or SIGINT, reloads on SIGHUP what can change without a restart
 * (core_reload), and tells systemd it is ready, reloading or stopping, and
 * that its loop turns (the watchdog), when NOTIFY_SOCKET is set.
 */
#include "core.h"
#include "notify.h"
#include "ota/ota.h"

#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_TAG "sedged"

static void usage(FILE *out)
{
    fprintf(out, "usage: sedged [--config FILE] [--debug]\n"
                 "  Runs the Sedge edge runtime in the foreground.\n"
                 "  Without --config: data in ./sedge-data (a demo CA is created there on\n"
                 "  first start), MQTT on 127.0.0.1:1883 and mTLS on 0.0.0.0:8883, the web\n"
                 "  console and /metrics on 127.0.0.1:8080.\n"
                 "\n"
                 "  -c, --config FILE  the configuration (sedge.json(5))\n"
                 "  -d, --debug        log at debug level, whatever the config says\n"
                 "  -h, --help         this text\n"
                 "  -V, --version      the version\n"
                 "\n"
                 "Signals: SIGTERM, SIGINT stop; SIGHUP reloads the log level, the limits,\n"
                 "the TLS listeners' certificates, CA and CRLs (see sedged(8)).\n");
}

typedef struct {
    core_t *core;
    const char *config_path; /* NULL: the embedded default */
    bool debug;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t watchdog;
    bool stopping;
} app_t;

static void close_handles(app_t *app)
{
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sighup, NULL);
    uv_close((uv_handle_t *)&app->watchdog, NULL);
}

static void stopped(void *ctx)
{
    close_handles(ctx);
}

/* The core asks to stop itself: an update restarts into another release. */
static void on_self_stop(void *ctx)
{
    app_t *app = ctx;
    if (app->stopping)
        return;
    app->stopping = true;
    LOGI("stopping for an update");
    /* The same PID comes back as another release: to systemd a reload. */
    notify_send("RELOADING=1");
    core_stop(app->core, stopped, app);
}

/* A timer on the loop itself: a loop that stops turning stops the pings,
 * and systemd restarts sedged. */
static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    notify_send("WATCHDOG=1");
}

/* SIGHUP: the config file is read again and validated whole; only a valid
 * one is applied (core_reload says what it applied and what takes a
 * restart). */
static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    app_t *app = h->data;
    if (!app->core || app->stopping)
        return;
    notify_send("RELOADING=1");
    if (!app->config_path) {
        LOGI("SIGHUP: no config file (the embedded default): reloading the certificates");
        core_reload(app->core, NULL);
        notify_send("READY=1");
        return;
    }
    config_t next;
    char *err = malloc(8192);
    sedge_err rc = err ? config_load(app->config_path, &next, err, 8192) : SEDGE_ERR_NOMEM;
    if (rc) {
        LOGE("SIGHUP: %s is not valid, nothing reloaded:", app->config_path);
        /* One line each: in the journal every line carries its priority. */
        for (char *line = err, *end; line && *line; line = end) {
            end = strchr(line, '\n');
            if (end)
                *end++ = '\0';
            LOGE("  %s", line);
        }
    } else {
        if (app->debug)
            next.log_level = LOG_DEBUG;
        LOGI("SIGHUP: reloading %s", app->config_path);
        core_reload(app->core, &next);
        config_free(&next);
    }
    free(err);
    notify_send("READY=1");
}

static void on_signal(uv_signal_t *h, int signum)
{
    app_t *app = h->data;
    if (app->stopping)
        return;
    app->stopping = true;
    LOGI("%s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    notify_send("STOPPING=1");
    core_stop(app->core, stopped, app);
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    bool debug = false;
    static const struct option options[] = {{"config", required_argument, NULL, 'c'},
                                            {"debug", no_argument, NULL, 'd'},
                                            {"help", no_argument, NULL, 'h'},
                                            {"version", no_argument, NULL, 'V'},
                                            {NULL, 0, NULL, 0}};
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":c:dhV", options, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'd': debug = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("sedged %s\n", SEDGE_VERSION); return 0;
        case ':':
            fprintf(stderr, "sedged: %s needs a value\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        default:
            fprintf(stderr, "sedged: unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sedged: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Big messages go through big output buffers, one per subscriber:
     * glibc would give each back to the kernel when freed and fault it in
     * again for the next. Keep freed memory for reuse instead (up to 64
     * MB), and give it back once the traffic has stopped (core's
     * trim_timer). */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    /* Everything sedged creates (database, keys, logs) is its own; the data
     * directory itself is made traversable for the function socket. */
    umask(077);
    config_t cfg;
    char err[8192];
    sedge_err rc =
        config_path ? config_load(config_path, &cfg, err, sizeof err) : config_default(&cfg);
    if (rc) {
        fprintf(stderr, "sedged: invalid configuration:\n%s",
                config_path ? err : "out of memory\n");
        return 2;
    }
    if (debug)
        cfg.log_level = LOG_DEBUG;
    /* An update on trial, rolled back or committed decides which release
     * runs before anything else starts (it may exec another binary). */
    char ota_root[PATH_MAX] = "";
    ota_config_t ota = {0};
    if (cfg.ota.enabled) {
        snprintf(ota_root, sizeof ota_root, "%s", cfg.ota.root);
        ota = (ota_config_t){.root = ota_root,
                             .health_timeout_s = (int)cfg.ota.health_timeout_s,
                             .tries = (int)cfg.ota.tries,
                             .base_version = SEDGE_VERSION};
        ota_boot(&ota, argv, &cfg.ota.trial);
    }
    uv_loop_t *loop = uv_default_loop();
    app_t app = {.config_path = config_path, .debug = debug};
    /* Signals are caught before anything listens: a SIGTERM during start is
     * handled (once the loop runs) instead of killing the process. */
    uv_signal_init(loop, &app.sigterm);
    uv_signal_init(loop, &app.sigint);
    uv_signal_init(loop, &app.sighup);
    app.sigterm.data = app.sigint.data = app.sighup.data = &app;
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_signal_start(&app.sighup, on_sighup, SIGHUP);
    uv_timer_init(loop, &app.watchdog);
    if (core_start(loop, &cfg, &app.core)) {
        close_handles(&app);
        uv_run(loop, UV_RUN_NOWAIT);
        return 1;
    }
    core_on_self_stop(app.core, on_self_stop, &app);
    uint64_t watchdog_usec = notify_watchdog_usec();
    if (watchdog_usec) {
        uint64_t every_ms = watchdog_usec / 2000 ? watchdog_usec / 2000 : 1;
        uv_timer_start(&app.watchdog, on_watchdog, every_ms, every_ms);
        uv_unref((uv_handle_t *)&app.watchdog);
    }
    notify_send("READY=1");
    uv_run(loop, UV_RUN_DEFAULT);
    core_then_t then = core_then(app.core);
    core_free(app.core);
    uv_run(loop, UV_RUN_DEFAULT); /* the close callbacks of what core_free closed */
    uv_loop_close(loop);
    if (then == CORE_THEN_TRIAL) {
        ota_exec_trial(&ota, argv);
        return 1;
    }
    if (then == CORE_THEN_ROLLBACK) {
        ota_exec_rollback(&ota, argv, "rolled back by sedgectl update --rollback");
        return 1;
    }
    LOGI("stopped");
    return 0;
}
