/*
 * sedgectl: the command-line tool. `sedgectl [--data-dir DIR] COMMAND`;
 * commands that need the daemon talk to it over DIR/admin.sock. Exit codes:
 * 0 success, 1 the operation failed, 2 bad usage.
 */
#include "admin_client.h"
#include "pki/pki.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *data_dir;
    bool json;
    int argc;
    char **argv;
} cli_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sedgectl [--data-dir DIR] [--json] COMMAND [ARGS]\n"
            "\n"
            "Commands:\n"
            "  ca init --dir D [--core-name N] [--san HOST]... [--force]\n"
            "        create a group CA (D/ca.pem, D/ca.key) and the core's certificate\n"
            "        (D/core.pem, D/core.key)\n"
            "  cert issue NAME --dir D\n"
            "        issue a client certificate for thing NAME (D/NAME.pem, D/NAME.key)\n"
            "  status [--json]\n"
            "        what the running sedged is doing\n"
            "\n"
            "--data-dir DIR: the daemon's data directory (default ./sedge-data)\n");
}

static int cmd_ca_init(cli_t *cli)
{
    const char *dir = NULL, *core_name = "edge-core";
    const char *sans[32];
    size_t san_count = 0;
    bool force = false;
    for (int i = 0; i < cli->argc; i++) {
        const char *a = cli->argv[i];
        if (strcmp(a, "--dir") == 0 && i + 1 < cli->argc)
            dir = cli->argv[++i];
        else if (strcmp(a, "--core-name") == 0 && i + 1 < cli->argc)
            core_name = cli->argv[++i];
        else if (strcmp(a, "--san") == 0 && i + 1 < cli->argc && san_count < 32)
            sans[san_count++] = cli->argv[++i];
        else if (strcmp(a, "--force") == 0)
            force = true;
        else if (strcmp(a, "--help") == 0) {
            printf("usage: sedgectl ca init --dir D [--core-name N] [--san HOST]... [--force]\n");
            return 0;
        } else {
            fprintf(stderr, "sedgectl ca init: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "sedgectl ca init: --dir is required\n");
        return 2;
    }
    char err[512];
    if (pki_ca_init(dir, core_name, sans, san_count, force, err, sizeof err)) {
        fprintf(stderr, "sedgectl ca init: %s\n", err);
        return 1;
    }
    printf("wrote %s/ca.pem, %s/ca.key, %s/core.pem, %s/core.key (core CN=%s)\n", dir, dir, dir,
           dir, core_name);
    return 0;
}

static int cmd_cert_issue(cli_t *cli)
{
    const char *dir = NULL, *name = NULL;
    for (int i = 0; i < cli->argc; i++) {
        const char *a = cli->argv[i];
        if (strcmp(a, "--dir") == 0 && i + 1 < cli->argc)
            dir = cli->argv[++i];
        else if (strcmp(a, "--help") == 0) {
            printf("usage: sedgectl cert issue NAME --dir D\n");
            return 0;
        } else if (a[0] != '-' && !name)
            name = a;
        else {
            fprintf(stderr, "sedgectl cert issue: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!dir || !name) {
        fprintf(stderr, "usage: sedgectl cert issue NAME --dir D\n");
        return 2;
    }
    char err[512];
    if (pki_cert_issue(dir, name, err, sizeof err)) {
        fprintf(stderr, "sedgectl cert issue: %s\n", err);
        return 1;
    }
    printf("wrote %s/%s.pem and %s/%s.key (CN=%s)\n", dir, name, dir, name, name);
    return 0;
}

/* Send {"cmd": cmd} plus `extra`'s fields; print errors; 0 on success. */
static int call(cli_t *cli, const char *cmd, json_t *extra, json_t **response)
{
    json_t *req = extra ? extra : json_object();
    json_object_set_new(req, "cmd", json_string(cmd));
    char err[1024];
    sedge_err rc = admin_call(cli->data_dir, req, response, err, sizeof err);
    json_decref(req);
    if (rc) {
        fprintf(stderr, "sedgectl %s: %s\n", cmd, err);
        return 1;
    }
    if (!json_is_true(json_object_get(*response, "ok"))) {
        const char *e = json_string_value(json_object_get(*response, "error"));
        fprintf(stderr, "sedgectl %s: %s\n", cmd, e ? e : "failed");
        return 1;
    }
    return 0;
}

static long long num(json_t *r, const char *key)
{
    return (long long)json_integer_value(json_object_get(r, key));
}

static void print_duration(long long s)
{
    if (s >= 86400)
        printf("%lldd ", s / 86400);
    if (s >= 3600)
        printf("%lldh ", s / 3600 % 24);
    if (s >= 60)
        printf("%lldm ", s / 60 % 60);
    printf("%llds", s % 60);
}

static int cmd_status(cli_t *cli)
{
    for (int i = 0; i < cli->argc; i++) {
        if (strcmp(cli->argv[i], "--json") == 0)
            cli->json = true;
        else if (strcmp(cli->argv[i], "--help") == 0) {
            printf("usage: sedgectl status [--json]\n");
            return 0;
        } else {
            fprintf(stderr, "sedgectl status: unexpected argument '%s'\n", cli->argv[i]);
            return 2;
        }
    }
    json_t *r = NULL;
    int rc = call(cli, "status", NULL, &r);
    if (rc) {
        json_decref(r);
        return rc;
    }
    if (cli->json) {
        json_object_del(r, "ok");
        char *text = json_dumps(r, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("%s\n", text);
        free(text);
        json_decref(r);
        return 0;
    }
    printf("sedged %s (pid %lld, core %s), up ", json_string_value(json_object_get(r, "version")),
           num(r, "pid"), json_string_value(json_object_get(r, "thing_name")));
    print_duration(num(r, "uptime_s"));
    printf("\n");
    printf("connections   %lld open, %lld since start, %lld refused\n", num(r, "connections"),
           num(r, "connections_total"), num(r, "connections_refused"));
    printf("sessions      %lld (%lld persistent), %lld subscriptions, %lld retained\n",
           num(r, "sessions"), num(r, "sessions_persistent"), num(r, "subscriptions"),
           num(r, "retained"));
    printf("messages      %lld in, %lld out, %lld dropped, %lld queued\n", num(r, "messages_in"),
           num(r, "messages_out"), num(r, "messages_dropped"), num(r, "messages_queued"));
    printf("store         %.1f KB, %lld commits, %lld failures\n", num(r, "store_bytes") / 1024.0,
           num(r, "store_commits"), num(r, "store_failures"));
    json_decref(r);
    return 0;
}

int main(int argc, char **argv)
{
    cli_t cli = {.data_dir = "sedge-data"};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            cli.data_dir = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            cli.json = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    const char *verb = argv[i++];
    const char *noun = i < argc ? argv[i] : "";
    if (strcmp(verb, "ca") == 0 && strcmp(noun, "init") == 0) {
        cli.argc = argc - i - 1;
        cli.argv = argv + i + 1;
        return cmd_ca_init(&cli);
    }
    if (strcmp(verb, "cert") == 0 && strcmp(noun, "issue") == 0) {
        cli.argc = argc - i - 1;
        cli.argv = argv + i + 1;
        return cmd_cert_issue(&cli);
    }
    cli.argc = argc - i;
    cli.argv = argv + i;
    if (strcmp(verb, "status") == 0)
        return cmd_status(&cli);
    fprintf(stderr, "sedgectl: unknown command '%s'\n", verb);
    usage(stderr);
    return 2;
}
