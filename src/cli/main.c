/*
 * sedgectl: the command-line tool. `sedgectl [--data-dir DIR | --config
 * FILE] [--json] COMMAND [ARGS]`; commands that need the daemon talk to it
 * over DIR/admin.sock (datadir.h says which DIR when neither option does).
 * Exit codes: 0 success, 1 the operation failed, 2 bad usage, 3 sedged
 * cannot be reached.
 */
#include "cli.h"
#include "datadir.h"
#include "ota_cmds.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: sedgectl [--data-dir DIR | --config FILE] [--json] COMMAND [ARGS]\n"
                 "\n"
                 "Commands (sedgectl COMMAND --help for each):\n"
                 "  ca init --dir D [--core-name N] [--san HOST]... [--force]\n"
                 "        create a group CA and the core's certificate\n"
                 "  cert issue NAME --dir D\n"
                 "        issue a client certificate for thing NAME\n"
                 "  status                  what the running sedged is doing\n"
                 "  things                  the connected things\n"
                 "  deploy FILE             validate a group document and make it active\n"
                 "  deployments             the deployed versions\n"
                 "  rollback [VERSION]      back to the previous good version (or VERSION)\n"
                 "  shadow get|update|delete|list THING [--name SHADOW] [DOC]\n"
                 "                          device shadows\n"
                 "  spool                   the cloud link and its spool\n"
                 "  functions               functions and connectors\n"
                 "  invoke NAME [PAYLOAD] [--timeout S]\n"
                 "                          invoke a function, print its result\n"
                 "  logs NAME [--lines N]   a function's captured output\n"
                 "  console                 a one-time login URL for the web console\n"
                 "  bundle create|verify    make or check a signed update bundle\n"
                 "  update FILE|URL         update sedged: install, restart, health check, commit\n"
                 "                          or roll back (--status, --rollback)\n"
                 "\n"
                 "Options:\n"
                 "  --data-dir DIR   the daemon's data directory; default: ./sedge-data when it\n"
                 "                   exists, else the data_dir of " SEDGE_CONFIG_FILE "\n"
                 "  --config FILE    the data directory of the config sedged runs with\n"
                 "  --json           machine-readable output, errors included\n"
                 "  -h, --help       this text\n"
                 "  -V, --version    the version\n"
                 "\n"
                 "Exit codes: 0 done, 1 failed, 2 bad usage, 3 sedged cannot be reached.\n");
}

typedef struct {
    const char *name;
    int (*run)(cli_t *cli, int argc, char **argv);
} command_t;

static const command_t commands[] = {
    {"ca", cmd_ca},
    {"cert", cmd_cert},
    {"status", cmd_status},
    {"things", cmd_things},
    {"deploy", cmd_deploy},
    {"deployments", cmd_deployments},
    {"rollback", cmd_rollback},
    {"shadow", cmd_shadow},
    {"spool", cmd_spool},
    {"functions", cmd_functions},
    {"invoke", cmd_invoke},
    {"logs", cmd_logs},
    {"console", cmd_console},
    {"bundle", cmd_bundle},
    {"update", cmd_update},
};

enum { OPT_DATA_DIR = 256, OPT_CONFIG, OPT_JSON };

int main(int argc, char **argv)
{
    cli_t cli = {.name = "sedgectl"};
    const char *config = NULL;
    static const struct option options[] = {{"data-dir", required_argument, NULL, OPT_DATA_DIR},
                                            {"config", required_argument, NULL, OPT_CONFIG},
                                            {"json", no_argument, NULL, OPT_JSON},
                                            {"help", no_argument, NULL, 'h'},
                                            {"version", no_argument, NULL, 'V'},
                                            {NULL, 0, NULL, 0}};
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+:hV", options, NULL)) != -1) {
        switch (opt) {
        case OPT_DATA_DIR: cli.data_dir = optarg; break;
        case OPT_CONFIG: config = optarg; break;
        case OPT_JSON: cli.json = true; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V':
            if (cli.json)
                printf("{\n  \"version\": \"%s\"\n}\n", SEDGE_VERSION);
            else
                printf("sedgectl %s\n", SEDGE_VERSION);
            return EXIT_OK;
        case ':':
            usage(stderr);
            return cli_fail(&cli, EXIT_USAGE, "%s needs a value", argv[optind - 1]);
        default:
            usage(stderr);
            return cli_fail(&cli, EXIT_USAGE, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return cli_fail(&cli, EXIT_USAGE, "which command?");
    }
    if (cli.data_dir && config)
        return cli_fail(&cli, EXIT_USAGE, "--data-dir and --config both say where sedged is");
    char found[4096];
    if (!cli.data_dir) {
        char err[512];
        if (datadir_find(config, found, sizeof found, err, sizeof err) != 0)
            return cli_fail(&cli, EXIT_USAGE, "%s", err);
        cli.data_dir = found;
    }
    const char *verb = argv[optind];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(verb, commands[i].name) == 0) {
            char name[64];
            snprintf(name, sizeof name, "sedgectl %s", verb);
            cli.name = name;
            return commands[i].run(&cli, argc - optind, argv + optind);
        }
    }
    usage(stderr);
    return cli_fail(&cli, EXIT_USAGE, "unknown command '%s'", verb);
}
