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
    sedge_err rc = admin_call(data_dir, req, &resp, err, errlen);
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

static int status(const char *data_dir, bool json)
{
    char err[1024];
    json_t *s = call(data_dir, json_pack("{s:s}", "cmd", "update_status"), err, sizeof err);
    if (!s) {
        fprintf(stderr, "sedgectl update --status: %s\n", err);
        return 1;
    }
    if (json) {
        json_object_del(s, "ok");
        json_dumpf(s, stdout, JSON_COMPACT | JSON_SORT_KEYS);
        putchar('\n');
    } else {
        print_status(s);
    }
    json_decref(s);
    return 0;
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

static int usage_error(void)
{
    fprintf(stderr, "usage: sedgectl update FILE|URL [--sha256 HEX] [--allow-downgrade] "
                    "[--no-wait]\n"
                    "       sedgectl update --status [--json]\n"
                    "       sedgectl update --rollback [--no-wait]\n");
    return 2;
}

int cli_update(int argc, char **argv, const char *data_dir, bool json)
{
    const char *source = NULL, *sha256 = NULL;
    bool want_status = false, rollback = false, downgrade = false, wait = true;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--status") == 0)
            want_status = true;
        else if (strcmp(a, "--rollback") == 0)
            rollback = true;
        else if (strcmp(a, "--allow-downgrade") == 0)
            downgrade = true;
        else if (strcmp(a, "--no-wait") == 0)
            wait = false;
        else if (strcmp(a, "--sha256") == 0 && i + 1 < argc)
            sha256 = argv[++i];
        else if (strcmp(a, "--json") == 0)
            json = true;
        else if (strcmp(a, "--help") == 0) {
            printf(
                "usage: sedgectl update FILE|URL [--sha256 HEX] [--allow-downgrade] [--no-wait]\n"
                "       sedgectl update --status [--json]\n"
                "       sedgectl update --rollback [--no-wait]\n"
                "  Installs a signed bundle (sedgectl bundle create): verify, install into\n"
                "  the free slot, restart into it, health check, then commit, or roll back\n"
                "  by itself. Exit 0 only when the update is committed.\n");
            return 0;
        } else if (a[0] != '-' && !source)
            source = a;
        else
            return usage_error();
    }
    if (want_status + rollback + (source != NULL) != 1)
        return usage_error();
    if (want_status)
        return status(data_dir, json);
    char err[1024];
    long window = health_window(data_dir);
    json_t *req;
    if (rollback) {
        req = json_pack("{s:s}", "cmd", "update_rollback");
    } else if (strncmp(source, "https://", 8) == 0 || strncmp(source, "http://", 7) == 0) {
        req = json_pack("{s:s, s:s, s:b}", "cmd", "update", "url", source, "allow_downgrade",
                        downgrade);
        if (sha256)
            json_object_set_new(req, "sha256", json_string(sha256));
        if (!json)
            printf("downloading %s...\n", source);
    } else {
        char path[PATH_MAX];
        if (!realpath(source, path)) {
            fprintf(stderr, "sedgectl update: %s: no such file\n", source);
            return 1;
        }
        req = json_pack("{s:s, s:s, s:b}", "cmd", "update", "file", path, "allow_downgrade",
                        downgrade);
        if (!json)
            printf("verifying and installing %s...\n", source);
    }
    json_t *r = call(data_dir, req, err, sizeof err);
    if (!r) {
        fprintf(stderr, "sedgectl update: %s\n", err);
        return 1;
    }
    if (!json && rollback)
        printf("going back to %s\n", str(r, "version"));
    json_decref(r);
    if (!wait)
        return 0;
    return follow(data_dir, json, rollback ? "rolled-back" : "committed",
                  rollback ? "committed" : "installing", window);
}
