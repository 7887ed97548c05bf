/*
 * sedgectl: the command-line tool. `sedgectl [--data-dir DIR] COMMAND`;
 * commands that need the daemon talk to it over DIR/admin.sock. Exit codes:
 * 0 success, 1 the operation failed, 2 bad usage.
 */
#include "admin_client.h"
#include "ota_cmds.h"
#include "pki/pki.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
            "        what the running sedged is doing, with the active group's routes\n"
            "  deploy FILE\n"
            "        validate a group document and make it the active group\n"
            "  deployments [--json]\n"
            "        the deployed versions: time, status, checksum\n"
            "  rollback [VERSION]\n"
            "        return to the previous good version (or to VERSION)\n"
            "  shadow get|delete THING [--name SHADOW]\n"
            "  shadow update THING [--name SHADOW] DOC\n"
            "        read, change (DOC: {\"state\": {...}}, or @FILE) or delete a device shadow\n"
            "  shadow list THING\n"
            "        the thing's named shadows\n"
            "  spool [--json]\n"
            "        the cloud link and its store-and-forward spool\n"
            "  functions [--json]\n"
            "        each function: state, instances, queue, invocations, errors, limits\n"
            "  invoke NAME [PAYLOAD]\n"
            "        invoke a function and print its result (PAYLOAD, @FILE, or - for stdin)\n"
            "  logs NAME [--lines N]\n"
            "        a function's captured output\n"
            "%s"
            "\n"
            "--data-dir DIR: the daemon's data directory (default ./sedge-data)\n",
            cli_ota_usage);
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

/* Flags every command takes: --json and --help. Returns -1 to go on, or
 * an exit code. */
static int common_flags(cli_t *cli, const char *usage_line, int max_positional,
                        const char **positional)
{
    int n = 0;
    for (int i = 0; i < cli->argc; i++) {
        const char *a = cli->argv[i];
        if (strcmp(a, "--json") == 0) {
            cli->json = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: %s\n", usage_line);
            return 0;
        } else if (a[0] != '-' && n < max_positional) {
            positional[n++] = a;
        } else {
            fprintf(stderr, "unexpected argument '%s'\nusage: %s\n", a, usage_line);
            return 2;
        }
    }
    return -1;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    buf_t b = {0};
    for (;;) {
        if (buf_reserve(&b, 65536)) {
            snprintf(err, errlen, "out of memory reading %s", path);
            break;
        }
        size_t got = fread(b.data + b.len, 1, b.cap - b.len, f);
        b.len += got;
        if (got == 0)
            break;
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed || !b.data) {
        if (failed)
            snprintf(err, errlen, "cannot read %s", path);
        buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return (char *)b.data;
}

static void print_json(json_t *r)
{
    json_object_del(r, "ok");
    char *text = json_dumps(r, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", text);
    free(text);
}

/* The reporting commands' common part: flags, the call, and --json
 * output. Returns the response for human output, or NULL when the command
 * is over (its exit code in *rc). */
static json_t *report(cli_t *cli, const char *usage_line, const char *cmd, int *rc)
{
    *rc = common_flags(cli, usage_line, 0, NULL);
    if (*rc >= 0)
        return NULL;
    json_t *r = NULL;
    if ((*rc = call(cli, cmd, NULL, &r))) {
        json_decref(r);
        return NULL;
    }
    if (cli->json) {
        print_json(r);
        json_decref(r);
        *rc = 0;
        return NULL;
    }
    *rc = 0;
    return r;
}

static int cmd_status(cli_t *cli)
{
    int rc;
    json_t *r = report(cli, "sedgectl status [--json]", "status", &rc);
    if (!r)
        return rc;
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
    json_t *g = json_object_get(r, "group");
    if (json_is_object(g))
        printf("group         %s, version %lld, %lld things (checksum %.12s)\n",
               json_string_value(json_object_get(g, "name")), num(g, "version"), num(g, "things"),
               json_string_value(json_object_get(g, "checksum")));
    else
        printf("group         none deployed: every authenticated client may publish and "
               "subscribe\n");
    size_t i;
    json_t *route;
    json_array_foreach(json_object_get(r, "routes"), i, route)
        printf("  route %-60s %lld messages\n", json_string_value(json_object_get(route, "route")),
               num(route, "messages"));
    const char *name;
    json_t *svc;
    json_object_foreach(json_object_get(r, "services"), name, svc)
    {
        if (json_is_true(json_object_get(svc, "attached")))
            printf("service %-20s %lld delivered\n", name, num(svc, "delivered"));
        else
            printf("service %-20s not available yet: %lld messages waiting, %lld dropped\n", name,
                   num(svc, "waiting"), num(svc, "dropped"));
    }
    json_decref(r);
    return 0;
}

static int cmd_deploy(cli_t *cli)
{
    const char *file = NULL;
    int rc = common_flags(cli, "sedgectl deploy FILE", 1, &file);
    if (rc >= 0)
        return rc;
    if (!file) {
        fprintf(stderr, "usage: sedgectl deploy FILE\n");
        return 2;
    }
    char err[512];
    size_t len = 0;
    char *text = read_file(file, &len, err, sizeof err);
    if (!text) {
        fprintf(stderr, "sedgectl deploy: %s\n", err);
        return 1;
    }
    json_t *req = json_object();
    json_t *doc = json_stringn_nocheck(text, len);
    free(text);
    if (!doc) {
        json_decref(req);
        fprintf(stderr, "sedgectl deploy: out of memory\n");
        return 1;
    }
    json_object_set_new(req, "document", doc);
    json_t *r = NULL;
    rc = call(cli, "deploy", req, &r);
    if (rc == 0) {
        if (cli->json)
            print_json(r);
        else
            printf("%s\n", json_string_value(json_object_get(r, "message")));
    }
    json_decref(r);
    return rc;
}

static int cmd_deployments(cli_t *cli)
{
    int rc;
    json_t *r = report(cli, "sedgectl deployments [--json]", "deployments", &rc);
    if (!r)
        return rc;
    json_t *list = json_object_get(r, "deployments");
    if (json_array_size(list) == 0)
        printf("no deployments yet (sedgectl deploy FILE)\n");
    else
        printf("%-8s %-20s %-12s %-20s %-14s %s\n", "VERSION", "TIME (UTC)", "STATUS", "GROUP",
               "CHECKSUM", "REASON");
    size_t i;
    json_t *d;
    json_array_foreach(list, i, d)
    {
        time_t t = (time_t)json_integer_value(json_object_get(d, "created_at"));
        struct tm tm;
        char when[32];
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        const char *reason = json_string_value(json_object_get(d, "reason"));
        printf("%-8lld %-20s %-12s %-20s %-14.12s %s\n",
               (long long)json_integer_value(json_object_get(d, "version")), when,
               json_string_value(json_object_get(d, "status")),
               json_string_value(json_object_get(d, "group")),
               json_string_value(json_object_get(d, "checksum")), reason ? reason : "");
    }
    json_decref(r);
    return 0;
}

static int cmd_rollback(cli_t *cli)
{
    const char *version = NULL;
    int rc = common_flags(cli, "sedgectl rollback [VERSION]", 1, &version);
    if (rc >= 0)
        return rc;
    json_t *req = json_object();
    if (version) {
        char *end;
        long long v = strtoll(version, &end, 10);
        if (*end || v < 1) {
            json_decref(req);
            fprintf(stderr, "sedgectl rollback: VERSION must be a positive number\n");
            return 2;
        }
        json_object_set_new(req, "version", json_integer(v));
    }
    json_t *r = NULL;
    rc = call(cli, "rollback", req, &r);
    if (rc == 0) {
        if (cli->json)
            print_json(r);
        else
            printf("%s\n", json_string_value(json_object_get(r, "message")));
    }
    json_decref(r);
    return rc;
}

static int cmd_shadow(cli_t *cli)
{
    static const char usage_line[] =
        "sedgectl shadow get|update|delete|list THING [--name SHADOW] [DOC]";
    const char *op = NULL, *thing = NULL, *name = NULL, *doc = NULL;
    for (int i = 0; i < cli->argc; i++) {
        const char *a = cli->argv[i];
        if (strcmp(a, "--name") == 0 && i + 1 < cli->argc)
            name = cli->argv[++i];
        else if (strcmp(a, "--json") == 0)
            cli->json = true;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: %s\n", usage_line);
            return 0;
        } else if (!op)
            op = a;
        else if (!thing)
            thing = a;
        else if (!doc)
            doc = a;
        else {
            fprintf(stderr, "unexpected argument '%s'\nusage: %s\n", a, usage_line);
            return 2;
        }
    }
    bool update = op && strcmp(op, "update") == 0;
    if (!op || !thing || (update && !doc) || (!update && doc)) {
        fprintf(stderr, "usage: %s\n", usage_line);
        return 2;
    }
    json_t *req = json_object();
    json_object_set_new(req, "op", json_string(op));
    json_object_set_new(req, "thing", json_string(thing));
    if (name)
        json_object_set_new(req, "name", json_string(name));
    if (doc) {
        size_t len = strlen(doc);
        char *text = NULL;
        char err[512];
        if (doc[0] == '@' && !(text = read_file(doc + 1, &len, err, sizeof err))) {
            fprintf(stderr, "sedgectl shadow: %s\n", err);
            json_decref(req);
            return 1;
        }
        json_object_set_new(req, "document", json_stringn(text ? text : doc, len));
        free(text);
    }
    json_t *r = NULL;
    int rc = call(cli, "shadow", req, &r);
    if (rc == 0) {
        json_t *out = json_object_get(r, strcmp(op, "list") == 0 ? "results" : "document");
        char *text = json_dumps(out, JSON_INDENT(2) | JSON_ENCODE_ANY);
        printf("%s\n", text ? text : "");
        free(text);
    }
    json_decref(r);
    return rc;
}

static int cmd_spool(cli_t *cli)
{
    int rc;
    json_t *r = report(cli, "sedgectl spool [--json]", "spool", &rc);
    if (!r)
        return rc;
    const char *err = json_string_value(json_object_get(r, "last_error"));
    printf("cloud        %s, %s (client id %s)\n",
           json_string_value(json_object_get(r, "endpoint")),
           json_string_value(json_object_get(r, "state")),
           json_string_value(json_object_get(r, "client_id")));
    if (err)
        printf("last error   %s\n", err);
    printf("spool        %lld messages, %.1f KB, oldest %lld s old\n", num(r, "queued"),
           num(r, "bytes") / 1024.0, num(r, "oldest_age_s"));
    printf("sent         %lld acknowledged by the cloud, %lld in flight\n", num(r, "sent"),
           num(r, "inflight"));
    printf("dropped      %lld\n", num(r, "dropped"));
    json_t *refused = json_object_get(r, "refused");
    printf("refused      %lld beyond the cloud's limits when routed (%lld topics, %lld payloads)\n",
           num(refused, "total"), num(refused, "topic"), num(refused, "payload"));
    json_t *dead = json_object_get(r, "dead_letters");
    printf("dead letters %lld since start, %lld kept in the store\n", num(dead, "total"),
           num(dead, "kept"));
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(dead, "recent"), i, d)
    {
        printf("             %s (%lld bytes): %s\n", json_string_value(json_object_get(d, "topic")),
               num(d, "bytes"), json_string_value(json_object_get(d, "reason")));
    }
    json_t *pace = json_object_get(r, "pace");
    json_t *thr = json_object_get(r, "throttled");
    if (num(pace, "publishes_per_s") || num(pace, "bytes_per_s"))
        printf("pace         %lld publishes/s, %lld bytes/s (limits %lld and %lld; 0: none)\n",
               num(pace, "publishes_per_s"), num(pace, "bytes_per_s"), num(pace, "limit_per_s"),
               num(pace, "limit_bytes_per_s"));
    else
        printf("pace         unpaced (the cloud states no rate)\n");
    if (num(pace, "paused_ms"))
        printf("             paused for %lld ms more (the cloud throttled)\n",
               num(pace, "paused_ms"));
    if (json_is_true(json_object_get(pace, "probing")))
        printf("             one message at a time: the cloud cut the link with several in "
               "flight\n");
    printf("throttled    %lld (%lld PUBACK 0x97, %lld acknowledgements that never came)\n",
           num(thr, "total"), num(thr, "puback_0x97"), num(thr, "ack_timeouts"));
    printf("received     %lld from the cloud\n", num(r, "received"));
    json_t *bo = json_object_get(r, "backoff");
    printf("reconnects   %lld; %lld failed attempts in a row, last wait %lld ms",
           num(r, "reconnects"), num(bo, "failures"), num(bo, "last_delay_ms"));
    if (num(bo, "next_attempt_in_ms"))
        printf(", next attempt in %lld ms", num(bo, "next_attempt_in_ms"));
    printf(" (backoff %lld..%lld ms)\n", num(bo, "min_ms"), num(bo, "max_ms"));
    json_t *lim = json_object_get(r, "limits");
    printf("limits       %s: topics of %lld bytes and %lld slashes, payloads of %lld bytes, "
           "%lld filters a SUBSCRIBE (0: none)\n",
           json_string_value(json_object_get(lim, "profile")), num(lim, "max_topic_bytes"),
           num(lim, "max_topic_slashes"), num(lim, "max_payload_bytes"),
           num(lim, "max_filters_per_subscribe"));
    json_array_foreach(json_object_get(json_object_get(r, "jobs"), "pending"), i, d)
    {
        printf("job update   %s %s waits for the cloud (sent %lld times)\n",
               json_string_value(json_object_get(d, "job")),
               json_string_value(json_object_get(d, "status")), num(d, "attempts"));
    }
    json_array_foreach(json_object_get(json_object_get(r, "shadow_sync"), "shadows"), i, d)
    {
        const char *name = json_string_value(json_object_get(d, "name"));
        printf("shadow sync  %s%s%s: cloud version %lld, %lld conflicts, %lld throttled, %lld "
               "rejected%s\n",
               json_string_value(json_object_get(d, "thing")), name && name[0] ? "/" : "",
               name ? name : "", num(d, "cloud_version"), num(d, "conflicts"), num(d, "throttled"),
               num(d, "rejected"), num(d, "retry_in_ms") ? ", retrying soon" : "");
    }
    json_decref(r);
    return 0;
}

/* "isolation  sandbox: namespaces mount pid ...; no_new_privs; ..." and
 * what the kernel reported of the last instance. */
static void print_isolation(json_t *iso)
{
    if (!iso)
        return;
    printf("  isolation  %s", json_string_value(json_object_get(iso, "mode")));
    json_t *ns = json_object_get(iso, "namespaces");
    if (json_array_size(ns)) {
        printf(": namespaces");
        size_t k;
        json_t *v;
        json_array_foreach(ns, k, v) printf(" %s", json_string_value(v));
        printf(";");
    } else {
        printf(": no namespaces;");
    }
    json_t *devices = json_object_get(iso, "devices");
    printf(" no_new_privs; capabilities %s; seccomp filter; devices by %s",
           json_string_value(json_object_get(iso, "capabilities")),
           json_string_value(json_object_get(devices, "enforced_by")));
    json_t *dev;
    size_t k;
    json_array_foreach(json_object_get(devices, "allowed"), k, dev)
    {
        const char *path = json_string_value(json_object_get(dev, "path"));
        if (k >= 5) /* past the basic ones: the declared devices */
            printf("%s%s %s", k == 5 ? ": " : ", ", path,
                   json_string_value(json_object_get(dev, "access")));
    }
    printf("\n");
    json_t *seen = json_object_get(iso, "observed");
    if (json_is_object(seen))
        printf("  observed   no_new_privs %s, seccomp %s, capabilities %s, bounding set %s\n",
               json_is_true(json_object_get(seen, "no_new_privs")) ? "on" : "OFF",
               json_is_true(json_object_get(seen, "seccomp")) ? "filter" : "NONE",
               json_is_true(json_object_get(seen, "no_capabilities")) ? "none" : "SOME",
               json_is_true(json_object_get(seen, "empty_bounding_set")) ? "empty" : "NOT EMPTY");
}

static int cmd_functions(cli_t *cli)
{
    int rc;
    json_t *r = report(cli, "sedgectl functions [--json]", "functions", &rc);
    if (!r)
        return rc;
    json_t *list = json_object_get(r, "functions");
    if (!json_array_size(list))
        printf("no functions in the active group\n");
    size_t i;
    json_t *f;
    json_array_foreach(list, i, f)
    {
        json_t *lim = json_object_get(f, "limits");
        printf("%s (%s): %s\n", json_string_value(json_object_get(f, "name")),
               json_string_value(json_object_get(f, "lifecycle")),
               json_string_value(json_object_get(f, "state")));
        size_t k;
        json_t *in;
        printf("  instances  ");
        if (!json_array_size(json_object_get(f, "instances")))
            printf("none");
        json_array_foreach(json_object_get(f, "instances"), k, in)
            printf("%spid %lld %s", k ? ", " : "", num(in, "pid"),
                   json_string_value(json_object_get(in, "state")));
        if (json_is_integer(json_object_get(f, "standby")))
            printf("%sstandby pid %lld",
                   json_array_size(json_object_get(f, "instances")) ? ", " : "", num(f, "standby"));
        printf("\n  queue      %lld\n", num(f, "queue"));
        printf("  invoked    %lld, %lld errors (%lld timeouts, %lld out of memory, %lld crashes), "
               "%lld refused, %lld publishes refused\n",
               num(f, "invocations"), num(f, "errors"), num(f, "timeouts"), num(f, "oom_kills"),
               num(f, "crashes"), num(f, "refused"), num(f, "publish_refused"));
        printf("  limits     %lld MB, %lld processes, %.1f s timeout, %lld instances, queue %lld; "
               "%s, run as %s, enforced by %s\n",
               num(lim, "memory_mb"), num(lim, "max_processes"),
               json_number_value(json_object_get(lim, "timeout_s")), num(lim, "max_instances"),
               num(lim, "max_queue"), json_string_value(json_object_get(lim, "isolation")),
               json_string_value(json_object_get(lim, "run_as")),
               json_string_value(json_object_get(lim, "enforced_by")));
        print_isolation(json_object_get(f, "isolation"));
    }
    json_decref(r);
    return 0;
}

static int cmd_invoke(cli_t *cli)
{
    /* The payload may start with '-' ("-5", or "-" for stdin): after the
     * name, anything is the payload. */
    const char *args[2] = {NULL, NULL};
    int n = 0;
    for (int i = 0; i < cli->argc; i++) {
        const char *a = cli->argv[i];
        if (n == 0 && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            printf("usage: sedgectl invoke NAME [PAYLOAD|@FILE|-]\n");
            return 0;
        }
        if (n < 2) {
            args[n++] = a;
        } else {
            fprintf(stderr, "usage: sedgectl invoke NAME [PAYLOAD|@FILE|-]\n");
            return 2;
        }
    }
    int rc;
    if (!args[0]) {
        fprintf(stderr, "usage: sedgectl invoke NAME [PAYLOAD|@FILE|-]\n");
        return 2;
    }
    size_t len = 0;
    char *data = NULL;
    char err[512];
    if (args[1] && (args[1][0] == '@' || strcmp(args[1], "-") == 0)) {
        data = read_file(args[1][0] == '@' ? args[1] + 1 : "/dev/stdin", &len, err, sizeof err);
        if (!data) {
            fprintf(stderr, "sedgectl invoke: %s\n", err);
            return 1;
        }
    }
    bytes_t payload =
        data ? (bytes_t){(uint8_t *)data, len} : bytes_of_cstr(args[1] ? args[1] : "");
    char *b64 = base64_encode(payload);
    free(data);
    json_t *req = json_object();
    json_object_set_new(req, "function", json_string(args[0]));
    json_object_set_new(req, "payload_b64", json_string(b64 ? b64 : ""));
    free(b64);
    json_t *r = NULL;
    rc = call(cli, "invoke", req, &r);
    if (rc == 0) {
        buf_t out = {0};
        const char *res = json_string_value(json_object_get(r, "result_b64"));
        if (res && base64_decode(res, &out) == SEDGE_OK && out.len)
            fwrite(out.data, 1, out.len, stdout);
        buf_free(&out);
    }
    json_decref(r);
    return rc;
}

static int cmd_logs(cli_t *cli)
{
    const char *name = NULL;
    long lines = 100;
    for (int i = 0; i < cli->argc; i++) {
        if (strcmp(cli->argv[i], "--lines") == 0 && i + 1 < cli->argc)
            lines = strtol(cli->argv[++i], NULL, 10);
        else if (strcmp(cli->argv[i], "--help") == 0) {
            printf("usage: sedgectl logs NAME [--lines N]\n");
            return 0;
        } else if (!name)
            name = cli->argv[i];
        else {
            fprintf(stderr, "usage: sedgectl logs NAME [--lines N]\n");
            return 2;
        }
    }
    if (!name) {
        fprintf(stderr, "usage: sedgectl logs NAME [--lines N]\n");
        return 2;
    }
    json_t *req = json_object();
    json_object_set_new(req, "function", json_string(name));
    json_t *r = NULL;
    int rc = call(cli, "logs", req, &r);
    if (rc) {
        json_decref(r);
        return rc;
    }
    const char *path = json_string_value(json_object_get(r, "path"));
    char err[512];
    size_t len = 0;
    char *text = path ? read_file(path, &len, err, sizeof err) : NULL;
    json_decref(r);
    if (!text) {
        fprintf(stderr, "sedgectl logs: %s\n", path ? err : "no log");
        return 1;
    }
    /* The last `lines` lines. */
    size_t start = len;
    long seen = 0;
    while (start > 0) {
        if (text[start - 1] == '\n' && start != len && ++seen >= lines)
            break;
        start--;
    }
    fwrite(text + start, 1, len - start, stdout);
    free(text);
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
    if (strcmp(verb, "bundle") == 0 && strcmp(noun, "create") == 0)
        return cli_bundle_create(argc - i - 1, argv + i + 1, cli.json);
    if (strcmp(verb, "bundle") == 0 && strcmp(noun, "verify") == 0)
        return cli_bundle_verify(argc - i - 1, argv + i + 1, cli.json);
    if (strcmp(verb, "update") == 0)
        return cli_update(argc - i, argv + i, cli.data_dir, cli.json);
    cli.argc = argc - i;
    cli.argv = argv + i;
    if (strcmp(verb, "status") == 0)
        return cmd_status(&cli);
    if (strcmp(verb, "deploy") == 0)
        return cmd_deploy(&cli);
    if (strcmp(verb, "deployments") == 0)
        return cmd_deployments(&cli);
    if (strcmp(verb, "rollback") == 0)
        return cmd_rollback(&cli);
    if (strcmp(verb, "shadow") == 0)
        return cmd_shadow(&cli);
    if (strcmp(verb, "spool") == 0)
        return cmd_spool(&cli);
    if (strcmp(verb, "functions") == 0)
        return cmd_functions(&cli);
    if (strcmp(verb, "invoke") == 0)
        return cmd_invoke(&cli);
    if (strcmp(verb, "logs") == 0)
        return cmd_logs(&cli);
    fprintf(stderr, "sedgectl: unknown command '%s'\n", verb);
    usage(stderr);
    return 2;
}
