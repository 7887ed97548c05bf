/* pki_commands: sedgectl ca init and cert issue — files, no daemon. */
#include "cli.h"

#include "pki/pki.h"

#include <stdio.h>
#include <string.h>

#define MAX_SANS 32

enum { OPT_DIR = 256, OPT_CORE_NAME, OPT_SAN, OPT_FORCE };

typedef struct {
    const char *dir, *core_name;
    const char *sans[MAX_SANS];
    size_t san_count;
    bool force;
} pki_args_t;

static int pki_option(cli_t *cli, const command_spec_t *spec, void *ctx, int key, const char *value)
{
    pki_args_t *a = ctx;
    switch (key) {
    case OPT_DIR: a->dir = value; break;
    case OPT_CORE_NAME: a->core_name = value; break;
    case OPT_SAN:
        if (a->san_count == MAX_SANS)
            return cli_usage_error(cli, spec, "at most %d --san", MAX_SANS);
        a->sans[a->san_count++] = value;
        break;
    case OPT_FORCE: a->force = true; break;
    default: break;
    }
    return CLI_CONTINUE;
}

/* {"ok": true, "files": [...]} or the human line. */
static int wrote(cli_t *cli, const char *dir, const char *const *names, size_t count,
                 const char *what)
{
    if (cli->json) {
        json_t *files = json_array();
        for (size_t i = 0; i < count; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            json_array_append_new(files, json_string(path));
        }
        json_t *r = json_pack("{s:o, s:s}", "files", files, "subject", what);
        cli_print_json(r);
        json_decref(r);
        return EXIT_OK;
    }
    printf("wrote");
    for (size_t i = 0; i < count; i++)
        printf("%s %s/%s", i ? (i + 1 == count ? " and" : ",") : "", dir, names[i]);
    printf(" (%s)\n", what);
    return EXIT_OK;
}

static const command_spec_t ca_init_spec = {
    .name = "ca init",
    .usage = "sedgectl ca init --dir D [--core-name N] [--san HOST]... [--force]",
    .about = "Create a group CA (D/ca.pem, D/ca.key) and the core's server certificate\n"
             "(D/core.pem, D/core.key) signed by it.",
    .options_help = "  --dir D           where the files go (created if missing)\n"
                    "  --core-name N     the core's certificate CN (default edge-core)\n"
                    "  --san HOST        a subject alternative name (repeatable; localhost\n"
                    "                    and 127.0.0.1 are always in)\n"
                    "  --force           replace an existing CA\n",
    .options = (const struct option[]){{"dir", required_argument, NULL, OPT_DIR},
                                       {"core-name", required_argument, NULL, OPT_CORE_NAME},
                                       {"san", required_argument, NULL, OPT_SAN},
                                       {"force", no_argument, NULL, OPT_FORCE},
                                       {NULL, 0, NULL, 0}},
};

static const command_spec_t cert_issue_spec = {
    .name = "cert issue",
    .usage = "sedgectl cert issue NAME --dir D",
    .about = "Issue a client certificate for thing NAME (CN=NAME): D/NAME.pem and D/NAME.key,\n"
             "signed by the CA in D (D/ca.pem, D/ca.key).",
    .options_help = "  --dir D           the CA's directory, where the files go\n",
    .options =
        (const struct option[]){{"dir", required_argument, NULL, OPT_DIR}, {NULL, 0, NULL, 0}},
    .min_args = 1,
    .max_args = 1,
};

static const command_spec_t ca_spec = {
    .name = "ca",
    .usage = "sedgectl ca init --dir D [--core-name N] [--san HOST]... [--force]",
    .about = "The group CA. Subcommands:\n  init    create the CA and the core's certificate "
             "(sedgectl ca init --help)",
    .max_args = 1,
};

static const command_spec_t cert_spec = {
    .name = "cert",
    .usage = "sedgectl cert issue NAME --dir D",
    .about = "Certificates. Subcommands:\n  issue   a client certificate for a thing "
             "(sedgectl cert issue --help)",
    .max_args = 1,
};

/* `sedgectl ca|cert [--help]` without (or with an unknown) subcommand. */
static int group_only(cli_t *cli, const command_spec_t *spec, int argc, char **argv,
                      const char *sub)
{
    const char *args[1];
    int n;
    int rc = cli_parse(cli, spec, argc, argv, NULL, NULL, args, &n);
    if (rc != CLI_CONTINUE)
        return rc;
    if (!n)
        return cli_usage_error(cli, spec, "which subcommand? (%s)", sub);
    return cli_usage_error(cli, spec, "unknown subcommand '%s' (%s)", args[0], sub);
}

int cmd_ca(cli_t *cli, int argc, char **argv)
{
    cli->name = "sedgectl ca";
    if (argc < 2 || strcmp(argv[1], "init") != 0)
        return group_only(cli, &ca_spec, argc, argv, "init");
    cli->name = "sedgectl ca init";
    pki_args_t a = {.core_name = "edge-core"};
    const char *args[1];
    int n;
    int rc = cli_parse(cli, &ca_init_spec, argc - 1, argv + 1, pki_option, &a, args, &n);
    if (rc != CLI_CONTINUE)
        return rc;
    if (!a.dir)
        return cli_usage_error(cli, &ca_init_spec, "--dir is required");
    char err[512];
    if (pki_ca_init(a.dir, a.core_name, a.sans, a.san_count, a.force, err, sizeof err))
        return cli_fail(cli, EXIT_FAILED, "%s", err);
    static const char *const files[] = {"ca.pem", "ca.key", "core.pem", "core.key"};
    char what[300];
    snprintf(what, sizeof what, "core CN=%s", a.core_name);
    return wrote(cli, a.dir, files, 4, what);
}

int cmd_cert(cli_t *cli, int argc, char **argv)
{
    cli->name = "sedgectl cert";
    if (argc < 2 || strcmp(argv[1], "issue") != 0)
        return group_only(cli, &cert_spec, argc, argv, "issue");
    cli->name = "sedgectl cert issue";
    pki_args_t a = {0};
    const char *args[1];
    int n;
    int rc = cli_parse(cli, &cert_issue_spec, argc - 1, argv + 1, pki_option, &a, args, &n);
    if (rc != CLI_CONTINUE)
        return rc;
    if (!a.dir)
        return cli_usage_error(cli, &cert_issue_spec, "--dir is required");
    char err[512];
    if (pki_cert_issue(a.dir, args[0], err, sizeof err))
        return cli_fail(cli, EXIT_FAILED, "%s", err);
    char pem[300], key[300], what[300];
    snprintf(pem, sizeof pem, "%s.pem", args[0]);
    snprintf(key, sizeof key, "%s.key", args[0]);
    snprintf(what, sizeof what, "CN=%s", args[0]);
    const char *const files[] = {pem, key};
    return wrote(cli, a.dir, files, 2, what);
}
