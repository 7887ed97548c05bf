/*
 * cli: see cli.h. getopt_long runs in its "+" mode (stop at the first
 * argument) and is called again past each argument, so options and
 * arguments mix in any order while "--" still ends the options: a payload
 * or a value that starts with '-' goes after it.
 */
#include "cli.h"

#include "admin_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_HELP = 'h', OPT_JSON = 1 };

static void print_help(const command_spec_t *spec)
{
    printf("usage: %s\n", spec->usage);
    if (spec->about)
        printf("\n%s\n", spec->about);
    printf("\nOptions:\n");
    if (spec->options_help)
        printf("%s", spec->options_help);
    printf("  --json        machine-readable output (errors too)\n"
           "  -h, --help    this text\n");
}

static void json_error(int code, const char *msg)
{
    json_t *o = json_pack("{s:b, s:s, s:i}", "ok", 0, "error", msg, "exit", code);
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    if (text)
        printf("%s\n", text);
    free(text);
    json_decref(o);
}

static int report(cli_t *cli, int code, const char *usage, const char *fmt, va_list ap)
{
    /* Whole, however long: a refused deployment lists every problem. */
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    fprintf(stderr, "%s: %s\n", cli->name, msg ? msg : "out of memory");
    if (usage)
        fprintf(stderr, "usage: %s\n", usage);
    if (cli->json)
        json_error(code, msg ? msg : "out of memory");
    free(msg);
    return code;
}

int cli_usage_error(cli_t *cli, const command_spec_t *spec, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = report(cli, EXIT_USAGE, spec->usage, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_fail(cli_t *cli, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = report(cli, code, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_number(cli_t *cli, const command_spec_t *spec, const char *option, const char *text,
               long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!text[0] || *end || errno || v < min || v > max)
        return cli_usage_error(cli, spec, "%s: '%s' is not a number from %lld to %lld", option,
                               text, min, max);
    *out = v;
    return CLI_CONTINUE;
}

static size_t count_options(const struct option *o)
{
    size_t n = 0;
    while (o && o[n].name)
        n++;
    return n;
}

int cli_parse(cli_t *cli, const command_spec_t *spec, int argc, char **argv, option_fn fn,
              void *ctx, const char **args, int *nargs)
{
    size_t own = count_options(spec->options);
    struct option *all = calloc(own + 3, sizeof *all);
    if (!all)
        return cli_fail(cli, EXIT_FAILED, "out of memory");
    for (size_t i = 0; i < own; i++)
        all[i] = spec->options[i];
    all[own] = (struct option){"help", no_argument, NULL, OPT_HELP};
    all[own + 1] = (struct option){"json", no_argument, NULL, OPT_JSON};
    int rc = CLI_CONTINUE;
    *nargs = 0;
    opterr = 0;
    optind = 0;
    while (rc == CLI_CONTINUE) {
        /* "--" is looked for here, not left to getopt, which would take
         * the arguments skipped before it for its own. */
        int next = optind ? optind : 1;
        bool dashdash = next < argc && strcmp(argv[next], "--") == 0;
        int opt = dashdash ? -1 : getopt_long(argc, argv, "+:h", all, NULL);
        if (opt == -1) {
            if (dashdash)
                optind = next + 1;
            if (optind >= argc)
                break;
            int last = dashdash ? argc : optind + 1;
            for (; optind < last && rc == CLI_CONTINUE; optind++) {
                if (*nargs >= spec->max_args)
                    rc = cli_usage_error(cli, spec, "unexpected argument '%s'", argv[optind]);
                else
                    args[(*nargs)++] = argv[optind];
            }
            if (dashdash)
                break;
            continue;
        }
        if (opt == OPT_HELP) {
            print_help(spec);
            rc = EXIT_OK;
        } else if (opt == OPT_JSON) {
            cli->json = true;
        } else if (opt == ':') {
            rc = cli_usage_error(cli, spec, "%s needs a value", argv[optind - 1]);
        } else if (opt == '?') {
            rc = cli_usage_error(cli, spec, "unknown option '%s'", argv[optind - 1]);
        } else if (opt >= 256 && fn) {
            rc = fn(cli, spec, ctx, opt, optarg);
        } else {
            rc = cli_usage_error(cli, spec, "unknown option '%s'", argv[optind - 1]);
        }
    }
    free(all);
    if (rc == CLI_CONTINUE && *nargs < spec->min_args)
        rc = cli_usage_error(cli, spec, "missing arguments");
    return rc;
}

int cli_call(cli_t *cli, const char *cmd, json_t *req, uint32_t timeout_ms, json_t **response)
{
    *response = NULL;
    if (!req)
        req = json_object();
    json_object_set_new(req, "cmd", json_string(cmd));
    char err[1024];
    sedge_err rc = admin_call(cli->data_dir, req, timeout_ms, response, err, sizeof err);
    json_decref(req);
    if (rc)
        return cli_fail(cli, rc == SEDGE_ERR_CLOSED ? EXIT_UNREACHABLE : EXIT_FAILED, "%s", err);
    if (!json_is_true(json_object_get(*response, "ok"))) {
        const char *e = json_string_value(json_object_get(*response, "error"));
        int code = cli_fail(cli, EXIT_FAILED, "%s", e ? e : "failed");
        json_decref(*response);
        *response = NULL;
        return code;
    }
    return EXIT_OK;
}

void cli_print_json(json_t *r)
{
    json_object_del(r, "ok");
    char *text = json_dumps(r, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    printf("%s\n", text ? text : "null");
    free(text);
}

char *cli_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    bool in = strcmp(path, "-") == 0;
    FILE *f = in ? stdin : fopen(path, "rb");
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
    if (!in)
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
