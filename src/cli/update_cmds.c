/*
 * update_cmds: `sedgectl update FILE`, `update --status [--json]`,
 * `update --rollback`. An update is handed to sedged (it reads the file
 * itself), then followed through the admin socket across the restart —
 * while sedged execs the new release the socket is briefly gone — until
 * the update is committed, rolled back or failed. Exit 0 only when it was
 * committed (or, for --rollback, when the previous release runs).
 */
#include "admin_client.h"
#include "ota_cmds.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 100
#define RESTART_GRACE_S 60 /* beyond the health window, for the stop and the start */

static json_t *call(const char *data_dir, json_t *req, char *err, size_t errlen)
{
    json_t *resp = NULL;
    sedge_err rc = admin_call(data_dir, req, 5000, &resp, err, errlen);
    json_decref(req);
    if (rc)
        return NULL;
    if (!json_is_true(json_object_get(resp, "ok"))) {
        const char *e = json_string_value(json_object_get(resp, "error"));
        snprintf(err, errlen, "%s", e ? e : "failed");
        json_decref(resp);
        return NULL;
    }
    return resp;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void print_status(json_t *s)
{
    printf("phase:    %s\n", str(s, "phase"));
    if (str(s, "version")[0])
        printf("version:  %s%s%s\n", str(s, "version"), str(s, "slot")[0] ? " in slot " : "",
               str(s, "slot"));
    printf("running:  %s (%s)\n", str(s, "running_version"),
           str(s, "running_slot")[0] ? str(s, "running_slot") : "the installed release");
    if (str(s, "previous_version")[0])
        printf("previous: %s\n", str(s, "previous_version"));
    if (str(s, "source")[0])
        printf("source:   %s\n", str(s, "source"));
    if (str(s, "reason")[0])
        printf("reason:   %s\n", str(s, "reason"));
    if (strcmp(str(s, "phase"), "health-check") == 0)
        printf("tries:    %lld left\n",
               (long long)json_integer_value(json_object_get(s, "tries_left")));
}

static int status(cli_t *cli)
{
    json_t *s = NULL;
    int rc = cli_call(cli, "update_status", NULL, 5000, &s);
    if (rc)
        return rc;
    if (cli->json)
        cli_print_json(s);
    else
        print_status(s);
    json_decref(s);
    return EXIT_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The download's bytes, rate and time left: one line, redrawn on a
 * terminal, printed every few seconds otherwise. */
static void show_progress(json_t *s)
{
    static double t0 = 0, last_print = 0;
    static uint64_t b0 = 0;
    uint64_t done = (uint64_t)json_integer_value(json_object_get(s, "bytes_done"));
    uint64_t total = (uint64_t)json_integer_value(json_object_get(s, "bytes_total"));
    double now = now_s();
    if (t0 == 0 || done < b0) {
        t0 = now;
        b0 = done;
    }
    bool tty = isatty(STDOUT_FILENO);
    if (!tty && now - last_print < 5)
        return;
    last_print = now;
    double rate = now > t0 + 0.2 ? (double)(done - b0) / (now - t0) : 0;
    printf("%sdownloading %.1f", tty ? "\r" : "", (double)done / 1e6);
    if (total)
        printf(" of %.1f MB (%d%%)", (double)total / 1e6, (int)(100 * done / total));
    else
        printf(" MB");
    if (rate > 0) {
        printf(", %.2f MB/s", rate / 1e6);
        if (total > done)
            printf(", %.0f s left", (double)(total - done) / rate);
    }
    printf("%s", tty ? "   " : "\n");
    fflush(stdout);
}

/* Follow the update until it ends; `want` is the phase that is success,
 * `before` the phase the core shows until it restarts (not an end). */
static int follow(const char *data_dir, bool json, const char *want, const char *before,
                  long window_s)
{
    double deadline = now_s() + (double)window_s + RESTART_GRACE_S;
    char last[64] = "", err[1024];
    bool restarting = false;
    while (now_s() < deadline) {
        json_t *s = call(data_dir, json_pack("{s:s}", "cmd", "update_status"), err, sizeof err);
        if (!s) {
            if (!restarting && !json)
                printf("restarting...\n");
            restarting = true;
            usleep(POLL_MS * 1000);
            continue;
        }
        const char *phase = str(s, "phase");
        if (strcmp(phase, "downloading") == 0 && !json)
            show_progress(s);
        if (strcmp(phase, last) != 0 && !json) {
            if (strcmp(last, "downloading") == 0)
                putchar('\n');
            if (strcmp(phase, "health-check") == 0)
                printf("health check of %s (up to %lld s)...\n", str(s, "version"),
                       (long long)json_integer_value(json_object_get(s, "health_timeout_s")));
            snprintf(last, sizeof last, "%s", phase);
        }
        bool done = strcmp(phase, before) != 0 &&
                    (strcmp(phase, "committed") == 0 || strcmp(phase, "rolled-back") == 0 ||
                     strcmp(phase, "failed") == 0);
        if (done) {
            int rc = strcmp(phase, want) == 0 ? 0 : 1;
            if (json) {
                json_object_del(s, "ok");
                json_dumpf(s, stdout, JSON_COMPACT | JSON_SORT_KEYS);
                putchar('\n');
            } else if (strcmp(phase, want) == 0) {
                printf("%s: version %s runs\n", phase, str(s, "running_version"));
            } else {
                fprintf(stderr, "sedgectl update: %s: %s; version %s runs\n", phase,
                        str(s, "reason"), str(s, "running_version"));
            }
            json_decref(s);
            return rc;
        }
        json_decref(s);
        usleep(POLL_MS * 1000);
    }
    fprintf(stderr, "sedgectl update: no outcome after %ld s; see `sedgectl update --status`\n",
            window_s + RESTART_GRACE_S);
    return 1;
}

static long health_window(const char *data_dir)
{
    char err[256];
    json_t *s = call(data_dir, json_pack("{s:s}", "cmd", "update_status"), err, sizeof err);
    long w = s ? (long)json_integer_value(json_object_get(s, "health_timeout_s")) : 60;
    json_decref(s);
    return w > 0 ? w : 60;
}

enum { OPT_STATUS = 256, OPT_ROLLBACK, OPT_DOWNGRADE, OPT_NO_WAIT, OPT_SHA256 };

typedef struct {
    bool status, rollback, downgrade, no_wait;
    const char *sha256;
} update_args_t;

static int update_option(cli_t *cli, const command_spec_t *spec, void *ctx, int key,
                         const char *value)
{
    (void)cli;
    (void)spec;
    update_args_t *a = ctx;
    switch (key) {
    case OPT_STATUS: a->status = true; break;
    case OPT_ROLLBACK: a->rollback = true; break;
    case OPT_DOWNGRADE: a->downgrade = true; break;
    case OPT_NO_WAIT: a->no_wait = true; break;
    case OPT_SHA256: a->sha256 = value; break;
    default: break;
    }
    return CLI_CONTINUE;
}

int cmd_update(cli_t *cli, int argc, char **argv)
{
    const command_spec_t spec = {
        .name = "update",
        .usage = "sedgectl update FILE|URL [--sha256 HEX] [--allow-downgrade] [--no-wait]\n"
                 "       sedgectl update --status [--json]\n"
                 "       sedgectl update --rollback [--no-wait]",
        .about = "Install a signed bundle (sedgectl bundle create) from a file or an http(s)\n"
                 "URL: verify, install into the free slot, restart into it, health check, then\n"
                 "commit, or roll back by itself. Exit 0 only when the update is committed.",
        .options_help = "  --status           the last update: phase, version, reason\n"
                        "  --rollback         go back to the previous release\n"
                        "  --sha256 HEX       the bundle's expected SHA-256\n"
                        "  --allow-downgrade  allow an older (or the same) version\n"
                        "  --no-wait          return once the update has started\n",
        .options = (const struct option[]){{"status", no_argument, NULL, OPT_STATUS},
                                           {"rollback", no_argument, NULL, OPT_ROLLBACK},
                                           {"allow-downgrade", no_argument, NULL, OPT_DOWNGRADE},
                                           {"no-wait", no_argument, NULL, OPT_NO_WAIT},
                                           {"sha256", required_argument, NULL, OPT_SHA256},
                                           {NULL, 0, NULL, 0}},
        .min_args = 0,
        .max_args = 1};
    update_args_t a = {0};
    const char *source = NULL;
    int n;
    int rc = cli_parse(cli, &spec, argc, argv, update_option, &a, &source, &n);
    if (rc != CLI_CONTINUE)
        return rc;
    if (a.status + a.rollback + (n == 1) != 1)
        return cli_usage_error(cli, &spec, "give FILE, URL, --status or --rollback");
    if (a.status)
        return status(cli);
    long window = health_window(cli->data_dir);
    json_t *req;
    if (a.rollback) {
        req = json_object();
    } else if (strncmp(source, "https://", 8) == 0 || strncmp(source, "http://", 7) == 0) {
        req = json_pack("{s:s, s:b}", "url", source, "allow_downgrade", a.downgrade);
        if (a.sha256)
            json_object_set_new(req, "sha256", json_string(a.sha256));
        if (!cli->json)
            printf("downloading %s...\n", source);
    } else {
        char path[PATH_MAX];
        if (!realpath(source, path))
            return cli_fail(cli, EXIT_FAILED, "%s: no such file", source);
        req = json_pack("{s:s, s:b}", "file", path, "allow_downgrade", a.downgrade);
        if (!cli->json)
            printf("verifying and installing %s...\n", source);
    }
    json_t *r = NULL;
    if ((rc = cli_call(cli, a.rollback ? "update_rollback" : "update", req, 0, &r)))
        return rc;
    if (!cli->json && a.rollback)
        printf("going back to %s\n", str(r, "version"));
    json_decref(r);
    if (a.no_wait)
        return EXIT_OK;
    return follow(cli->data_dir, cli->json, a.rollback ? "rolled-back" : "committed",
                  a.rollback ? "committed" : "installing", window);
}
