/*
 * commands: the sedgectl commands that talk to sedged — each parses its
 * command line (cli.h), makes one request over the admin socket and
 * prints the answer for people, or as JSON with --json.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long num(json_t *r, const char *key)
{
    return (long long)json_integer_value(json_object_get(r, key));
}

static const char *str(json_t *r, const char *key)
{
    const char *v = json_string_value(json_object_get(r, key));
    return v ? v : "";
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

static void print_time(long long t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char when[32];
    gmtime_r(&tt, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    printf("%s", when);
}

/* The reporting commands: no arguments, one request, --json or people's
 * output. Returns the response for the latter, or NULL when the command
 * is over (its exit code in *rc). */
static json_t *report(cli_t *cli, const command_spec_t *spec, int argc, char **argv, int *rc)
{
    const char *args[1];
    int n;
    if ((*rc = cli_parse(cli, spec, argc, argv, NULL, NULL, args, &n)) != CLI_CONTINUE)
        return NULL;
    json_t *r = NULL;
    if ((*rc = cli_call(cli, spec->name, NULL, 0, &r)))
        return NULL;
    *rc = EXIT_OK;
    if (cli->json) {
        cli_print_json(r);
        json_decref(r);
        return NULL;
    }
    return r;
}

/* A reporting command: its response printed for people by `print`
 * (which keeps the response), or as JSON with --json. */
static int reporting(cli_t *cli, int argc, char **argv, const command_spec_t *spec,
                     void (*print)(json_t *r))
{
    int rc;
    json_t *r = report(cli, spec, argc, argv, &rc);
    if (!r)
        return rc;
    print(r);
    json_decref(r);
    return EXIT_OK;
}

/* A command whose answer is one "message" (deploy, rollback). */
static int print_message(cli_t *cli, json_t *r)
{
    if (cli->json)
        cli_print_json(r);
    else
        printf("%s\n", str(r, "message"));
    json_decref(r);
    return EXIT_OK;
}

static const command_spec_t status_spec = {
    .name = "status",
    .usage = "sedgectl status [--json]",
    .about = "What the running sedged is doing: uptime, connections, sessions, messages,\n"
             "the store, the active group and its routes, the services."};

static void print_status(json_t *r)
{
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
}

int cmd_status(cli_t *cli, int argc, char **argv)
{
    return reporting(cli, argc, argv, &status_spec, print_status);
}

static const command_spec_t things_spec = {
    .name = "things",
    .usage = "sedgectl things [--json]",
    .about = "The connected things: identity (the certificate's CN on TLS, else the client\n"
             "id), client id, address, since when, MQTT version and session."};

static void print_things(json_t *r)
{
    json_t *list = json_object_get(r, "things");
    if (!json_array_size(list))
        printf("no things connected\n");
    else
        printf("%-24s %-24s %-28s %-20s %-6s %s\n", "IDENTITY", "CLIENT ID", "ADDRESS",
               "SINCE (UTC)", "MQTT", "SESSION");
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        json_t *session = json_object_get(t, "session");
        printf("%-24s %-24s %-28s ", str(t, "identity"), str(t, "client_id"), str(t, "address"));
        print_time(num(t, "since"));
        printf(" %-6s ", str(t, "protocol"));
        if (json_is_true(json_object_get(session, "persistent")))
            printf("persistent (expiry %lld s)\n", num(session, "expiry_s"));
        else
            printf("clean\n");
    }
}

int cmd_things(cli_t *cli, int argc, char **argv)
{
    return reporting(cli, argc, argv, &things_spec, print_things);
}

static const command_spec_t console_spec = {
    .name = "console",
    .usage = "sedgectl console [--json]",
    .about = "A one-time login URL for the web console (http.bind): open it in a browser\n"
             "within its lifetime; it logs in once and becomes a session cookie."};

static void print_console(json_t *r)
{
    printf("%s\n", str(r, "url"));
    fprintf(stderr, "open it in a browser within %lld s; it logs in once\n", num(r, "expires_in_s"));
}

int cmd_console(cli_t *cli, int argc, char **argv)
{
    return reporting(cli, argc, argv, &console_spec, print_console);
}

int cmd_deploy(cli_t *cli, int argc, char **argv)
{
    static const command_spec_t spec = {
        .name = "deploy",
        .usage = "sedgectl deploy FILE [--json]",
        .about = "Validate a group document (FILE, or - for stdin) and make it the active\n"
                 "group at once; on any error nothing changes.",
        .min_args = 1,
        .max_args = 1};
    const char *args[1];
    int n;
    int rc = cli_parse(cli, &spec, argc, argv, NULL, NULL, args, &n);
    if (rc != CLI_CONTINUE)
        return rc;
    char err[512];
    size_t len = 0;
    char *text = cli_read_file(args[0], &len, err, sizeof err);
    if (!text)
        return cli_fail(cli, EXIT_FAILED, "%s", err);
    json_t *doc = json_stringn_nocheck(text, len);
    free(text);
    if (!doc)
        return cli_fail(cli, EXIT_FAILED, "out of memory");
    json_t *req = json_object();
    json_object_set_new(req, "document", doc);
    json_t *r = NULL;
    if ((rc = cli_call(cli, "deploy", req, 0, &r)))
        return rc;
    return print_message(cli, r);
}

static const command_spec_t deployments_spec = {
    .name = "deployments",
    .usage = "sedgectl deployments [--json]",
    .about = "The deployed versions: time, status, group, checksum, reason."};

static void print_deployments(json_t *r)
{
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
}

int cmd_deployments(cli_t *cli, int argc, char **argv)
{
    return reporting(cli, argc, argv, &deployments_spec, print_deployments);
}

int cmd_rollback(cli_t *cli, int argc, char **argv)
{
    static const command_spec_t spec = {.name = "rollback",
                                        .usage = "sedgectl rollback [VERSION] [--json]",
                                        .about =
                                            "Return to the previous good version, or to VERSION.",
                                        .max_args = 1};
    const char *args[1];
    int n;
    int rc = cli_parse(cli, &spec, argc, argv, NULL, NULL, args, &n);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *req = json_object();
    if (n) {
        long long v;
        if ((rc = cli_number(cli, &spec, "VERSION", args[0], 1, INT64_MAX, &v)) != CLI_CONTINUE) {
            json_decref(req);
            return rc;
        }
        json_object_set_new(req, "version", json_integer(v));
    }
    json_t *r = NULL;
    if ((rc = cli_call(cli, "rollback", req, 0, &r)))
        return rc;
    return print_message(cli, r);
}

enum { OPT_NAME = 256, OPT_LINES, OPT_TIMEOUT };

static int name_option(cli_t *cli, const command_spec_t *spec, void *ctx, int key,
                       const char *value)
{
    (void)cli;
    (void)spec;
    if (key == OPT_NAME)
        *(const char **)ctx = value;
    return CLI_CONTINUE;
}

int cmd_shadow(cli_t *cli, int argc, char **argv)
{
    const command_spec_t spec = {
        .name = "shadow",
        .usage = "sedgectl shadow get|update|delete|list THING [--name SHADOW] [DOC] [--json]",
        .about = "Read, change or delete a device shadow, or list a thing's named shadows.\n"
                 "  get THING            the shadow document\n"
                 "  update THING DOC     DOC: {\"state\": {...}}, @FILE, or - for stdin\n"
                 "  delete THING         remove it\n"
                 "  list THING           the thing's named shadows",
        .options_help = "  --name SHADOW     a named shadow (default: the classic one)\n",
        .options = (const struct option[]){{"name", required_argument, NULL, OPT_NAME},
                                           {NULL, 0, NULL, 0}},
        .min_args = 2,
        .max_args = 3};
    const char *args[3], *name = NULL;
    int n;
    int rc = cli_parse(cli, &spec, argc, argv, name_option, &name, args, &n);
    if (rc != CLI_CONTINUE)
        return rc;
    const char *op = args[0], *thing = args[1], *doc = n > 2 ? args[2] : NULL;
    static const char *const ops[] = {"get", "update", "delete", "list"};
    bool known = false;
    for (size_t i = 0; i < 4; i++)
        known |= strcmp(op, ops[i]) == 0;
    if (!known)
        return cli_usage_error(cli, &spec, "unknown subcommand '%s' (get, update, delete, list)",
                               op);
    bool update = strcmp(op, "update") == 0;
    if (update && !doc)
        return cli_usage_error(cli, &spec, "update needs a document");
    if (!update && doc)
        return cli_usage_error(cli, &spec, "unexpected argument '%s'", doc);
    json_t *req = json_object();
    json_object_set_new(req, "op", json_string(op));
    json_object_set_new(req, "thing", json_string(thing));
    if (name)
        json_object_set_new(req, "name", json_string(name));
    if (doc) {
        size_t len = strlen(doc);
        char *text = NULL;
        char err[512];
        bool from_file = doc[0] == '@' || strcmp(doc, "-") == 0;
        if (from_file &&
            !(text = cli_read_file(doc[0] == '@' ? doc + 1 : "-", &len, err, sizeof err))) {
            json_decref(req);
            return cli_fail(cli, EXIT_FAILED, "%s", err);
        }
        json_object_set_new(req, "document", json_stringn(text ? text : doc, len));
        free(text);
    }
    json_t *r = NULL;
    if ((rc = cli_call(cli, "shadow", req, 0, &r)))
        return rc;
    if (cli->json) {
        cli_print_json(r);
    } else {
        json_t *out = json_object_get(r, strcmp(op, "list") == 0 ? "results" : "document");
        char *text = json_dumps(out, JSON_INDENT(2) | JSON_ENCODE_ANY);
        printf("%s\n", text ? text : "");
        free(text);
    }
    json_decref(r);
    return EXIT_OK;
}

static const command_spec_t spool_spec = {.name = "spool",
                                          .usage = "sedgectl spool [--json]",
                                          .about =
                                              "The cloud link and its store-and-forward spool."};

static void print_spool(json_t *r)
{
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
}

int cmd_spool(cli_t *cli, int argc, char **argv)
{
    return reporting(cli, argc, argv, &spool_spec, print_spool);
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

static const command_spec_t functions_spec = {
    .name = "functions",
    .usage = "sedgectl functions [--json]",
    .about = "Each function and connector: state, instances, queue, invocations, errors,\n"
             "limits and the isolation in force."};

static void print_functions(json_t *r)
{
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
}

int cmd_functions(cli_t *cli, int argc, char **argv)
{
    return reporting(cli, argc, argv, &functions_spec, print_functions);
}

typedef struct {
    long long timeout_s;
    long long lines;
} invoke_args_t;

static int invoke_option(cli_t *cli, const command_spec_t *spec, void *ctx, int key,
                         const char *value)
{
    invoke_args_t *a = ctx;
    if (key == OPT_TIMEOUT)
        return cli_number(cli, spec, "--timeout", value, 1, 86400, &a->timeout_s);
    if (key == OPT_LINES)
        return cli_number(cli, spec, "--lines", value, 1, 1000000, &a->lines);
    return CLI_CONTINUE;
}

int cmd_invoke(cli_t *cli, int argc, char **argv)
{
    const command_spec_t spec = {
        .name = "invoke",
        .usage = "sedgectl invoke NAME [PAYLOAD|@FILE|-] [--timeout S] [--json]",
        .about = "Invoke a function and print its result. PAYLOAD is the event as text, @FILE\n"
                 "a file's bytes, - stdin; one that starts with '-' goes after --.",
        .options_help = "  --timeout S       wait at most S seconds for the result (exit 1 "
                        "after)\n",
        .options = (const struct option[]){{"timeout", required_argument, NULL, OPT_TIMEOUT},
                                           {NULL, 0, NULL, 0}},
        .min_args = 1,
        .max_args = 2};
    const char *args[2];
    int n;
    invoke_args_t a = {0};
    int rc = cli_parse(cli, &spec, argc, argv, invoke_option, &a, args, &n);
    if (rc != CLI_CONTINUE)
        return rc;
    const char *payload_arg = n > 1 ? args[1] : "";
    size_t len = strlen(payload_arg);
    char *data = NULL;
    char err[512];
    if (payload_arg[0] == '@' || strcmp(payload_arg, "-") == 0) {
        data = cli_read_file(payload_arg[0] == '@' ? payload_arg + 1 : "-", &len, err, sizeof err);
        if (!data)
            return cli_fail(cli, EXIT_FAILED, "%s", err);
    }
    bytes_t payload = data ? (bytes_t){(uint8_t *)data, len} : bytes_of_cstr(payload_arg);
    char *b64 = base64_encode(payload);
    free(data);
    json_t *req = json_object();
    json_object_set_new(req, "function", json_string(args[0]));
    json_object_set_new(req, "payload_b64", json_string(b64 ? b64 : ""));
    free(b64);
    json_t *r = NULL;
    if ((rc = cli_call(cli, "invoke", req, (uint32_t)a.timeout_s * 1000u, &r)))
        return rc;
    buf_t out = {0};
    const char *res = json_string_value(json_object_get(r, "result_b64"));
    if (res && base64_decode(res, &out) != SEDGE_OK) {
        json_decref(r);
        return cli_fail(cli, EXIT_FAILED, "unreadable result from sedged");
    }
    if (cli->json) {
        if (out.len && !json_object_get(r, "result"))
            json_object_set_new(r, "result", json_stringn((const char *)out.data, out.len));
        cli_print_json(r);
    } else if (out.len) {
        fwrite(out.data, 1, out.len, stdout);
    }
    buf_free(&out);
    json_decref(r);
    return EXIT_OK;
}

int cmd_logs(cli_t *cli, int argc, char **argv)
{
    const command_spec_t spec = {
        .name = "logs",
        .usage = "sedgectl logs NAME [--lines N] [--json]",
        .about = "A function's captured output (connector:NAME for a connector's).",
        .options_help = "  --lines N         the last N lines (default 100)\n",
        .options = (const struct option[]){{"lines", required_argument, NULL, OPT_LINES},
                                           {NULL, 0, NULL, 0}},
        .min_args = 1,
        .max_args = 1};
    const char *args[1];
    int n;
    invoke_args_t a = {.lines = 100};
    int rc = cli_parse(cli, &spec, argc, argv, invoke_option, &a, args, &n);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *req = json_object();
    json_object_set_new(req, "function", json_string(args[0]));
    json_t *r = NULL;
    if ((rc = cli_call(cli, "logs", req, 0, &r)))
        return rc;
    const char *path = json_string_value(json_object_get(r, "path"));
    char err[512];
    size_t len = 0;
    char *text = path ? cli_read_file(path, &len, err, sizeof err) : NULL;
    if (!text) {
        rc = cli_fail(cli, EXIT_FAILED, "%s", path ? err : "no log");
        json_decref(r);
        return rc;
    }
    /* The last `lines` lines. */
    size_t start = len;
    long long seen = 0;
    while (start > 0) {
        if (text[start - 1] == '\n' && start != len && ++seen >= a.lines)
            break;
        start--;
    }
    if (cli->json) {
        json_object_set_new(r, "log", json_stringn(text + start, len - start));
        cli_print_json(r);
    } else {
        fwrite(text + start, 1, len - start, stdout);
    }
    free(text);
    json_decref(r);
    return EXIT_OK;
}
