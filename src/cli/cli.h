/*
 * cli: what every sedgectl command shares — its arguments parsed with
 * getopt_long (--help and --json everywhere, --opt=value, unknown options
 * named, numbers checked), its errors (on stderr, and as JSON on stdout
 * with --json) and the exit codes scripts rely on, and the call to sedged
 * over the admin socket.
 */
#ifndef SEDGE_CLI_H
#define SEDGE_CLI_H

#include "base/base.h"

#include <getopt.h>
#include <jansson.h>

enum {
    EXIT_OK = 0,          /* done */
    EXIT_FAILED = 1,      /* the operation ran and failed */
    EXIT_USAGE = 2,       /* the command line is wrong */
    EXIT_UNREACHABLE = 3, /* sedged cannot be reached */
};
#define CLI_CONTINUE (-1) /* parsing went well: carry on */

typedef struct {
    const char *data_dir;
    bool json;
    const char *name; /* "sedgectl shadow", for messages */
} cli_t;

/* One command's command line. */
typedef struct {
    const char *name;             /* "logs" */
    const char *usage;            /* "sedgectl logs NAME [--lines N]" */
    const char *about;            /* what it does, one or two lines */
    const char *options_help;     /* its own options, one per line; may be NULL */
    const struct option *options; /* its own long options (val >= 256); may be NULL */
    int min_args, max_args;       /* positional arguments */
} command_spec_t;

/* Called for each of the spec's own options; returns CLI_CONTINUE or an
 * exit code. */
typedef int (*option_fn)(cli_t *cli, const command_spec_t *spec, void *ctx, int key,
                         const char *value);

/* Parse argv (argv[0]: the command's word) for `spec`: --help prints the
 * command's help (exit 0), --json sets cli->json, its own options go to
 * `fn`, positional arguments (options and arguments mix; after "--"
 * everything is an argument) into args[0..max_args), their count in
 * *nargs. Returns CLI_CONTINUE, or the exit code when done or wrong. */
int cli_parse(cli_t *cli, const command_spec_t *spec, int argc, char **argv, option_fn fn,
              void *ctx, const char **args, int *nargs);

/* A bad command line: the message and the usage line; returns EXIT_USAGE. */
int cli_usage_error(cli_t *cli, const command_spec_t *spec, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* A failure: "sedgectl CMD: message" on stderr and, with --json,
 * {"ok": false, "error": ..., "exit": code} on stdout; returns `code`. */
int cli_fail(cli_t *cli, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* An integer option's value from min to max, else a usage error. */
int cli_number(cli_t *cli, const command_spec_t *spec, const char *option, const char *text,
               long long min, long long max, long long *out);
/* One request to sedged ({"cmd": cmd} plus req's fields; req is taken):
 * EXIT_OK with *response (the caller decrefs), or the failure reported
 * and its exit code (EXIT_UNREACHABLE, EXIT_FAILED). timeout_ms 0: none. */
int cli_call(cli_t *cli, const char *cmd, json_t *req, uint32_t timeout_ms, json_t **response);
/* A response as JSON on stdout, without its "ok". */
void cli_print_json(json_t *r);
/* A whole file, or "-" for stdin (malloc'd; NULL with `err` set). */
char *cli_read_file(const char *path, size_t *len, char *err, size_t errlen);

/* The commands (commands.c, pki_commands.c): each takes its argv from
 * its own word on. */
int cmd_ca(cli_t *cli, int argc, char **argv);
int cmd_cert(cli_t *cli, int argc, char **argv);
int cmd_status(cli_t *cli, int argc, char **argv);
int cmd_things(cli_t *cli, int argc, char **argv);
int cmd_deploy(cli_t *cli, int argc, char **argv);
int cmd_deployments(cli_t *cli, int argc, char **argv);
int cmd_rollback(cli_t *cli, int argc, char **argv);
int cmd_shadow(cli_t *cli, int argc, char **argv);
int cmd_spool(cli_t *cli, int argc, char **argv);
int cmd_functions(cli_t *cli, int argc, char **argv);
int cmd_invoke(cli_t *cli, int argc, char **argv);
int cmd_logs(cli_t *cli, int argc, char **argv);
int cmd_console(cli_t *cli, int argc, char **argv);

#endif
