/*
 * sedged: the Sedge daemon. Runs in the foreground, logs to stderr, stops
 * cleanly on SIGTERM or SIGINT, reloads the TLS listeners' CRLs on SIGHUP,
 * and tells systemd it is ready when NOTIFY_SOCKET is set.
 */
#include "core.h"
#include "ota/ota.h"

#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LOG_TAG "sedged"

static void usage(FILE *out)
{
    fprintf(out, "usage: sedged [--config FILE] [--debug]\n"
                 "  Runs the Sedge edge runtime in the foreground.\n"
                 "  Without --config: data in ./sedge-data (a demo CA is created there on\n"
                 "  first start), MQTT on 127.0.0.1:1883 and mTLS on 0.0.0.0:8883.\n");
}

/* systemd's sd_notify, without linking libsystemd. */
static void notify_ready(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !path[0])
        return;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof addr.sun_path)
        return;
    memcpy(addr.sun_path, path, len);
    if (addr.sun_path[0] == '@')
        addr.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    const char msg[] = "READY=1";
    if (sendto(fd, msg, sizeof msg - 1, 0, (struct sockaddr *)&addr,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        LOGW("cannot notify systemd");
    close(fd);
}

typedef struct {
    core_t *core;
    uv_signal_t sigterm, sigint, sighup;
    bool stopping;
} app_t;

static void stopped(void *ctx)
{
    app_t *app = ctx;
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sighup, NULL);
}

/* The core asks to stop itself: an update restarts into another release. */
static void on_self_stop(void *ctx)
{
    app_t *app = ctx;
    if (app->stopping)
        return;
    app->stopping = true;
    LOGI("stopping for an update");
    core_stop(app->core, stopped, app);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    app_t *app = h->data;
    if (app->core && !app->stopping) {
        LOGI("SIGHUP: reloading the CRLs");
        core_reload(app->core);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    app_t *app = h->data;
    if (app->stopping)
        return;
    app->stopping = true;
    LOGI("%s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    core_stop(app->core, stopped, app);
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    bool debug = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--debug") == 0) {
            debug = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("sedged %s\n", SEDGE_VERSION);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
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
    app_t app = {0};
    /* Signals are caught before anything listens: a SIGTERM during start is
     * handled (once the loop runs) instead of killing the process. */
    uv_signal_init(loop, &app.sigterm);
    uv_signal_init(loop, &app.sigint);
    uv_signal_init(loop, &app.sighup);
    app.sigterm.data = app.sigint.data = app.sighup.data = &app;
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_signal_start(&app.sighup, on_sighup, SIGHUP);
    if (core_start(loop, &cfg, &app.core)) {
        uv_close((uv_handle_t *)&app.sigterm, NULL);
        uv_close((uv_handle_t *)&app.sigint, NULL);
        uv_close((uv_handle_t *)&app.sighup, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        return 1;
    }
    core_on_self_stop(app.core, on_self_stop, &app);
    notify_ready();
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
