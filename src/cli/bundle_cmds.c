/*
 * bundle_cmds: `sedgectl bundle create DIR --version V --key KEY --out FILE
 * [--min-version V] [--arch A] [--store-schema N]` and `sedgectl bundle
 * verify FILE [--key PUB]...` — made and checked here; without --key,
 * verify asks the running sedged which keys it trusts.
 */
#include "ota/ota.h"
#include "ota_cmds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The store schema this release reads (src/store: PRAGMA user_version). */
#define STORE_SCHEMA 2
#define MAX_KEYS 16

enum { OPT_VERSION = 256, OPT_KEY, OPT_OUT, OPT_MIN_VERSION, OPT_ARCH, OPT_STORE_SCHEMA };

typedef struct {
    ota_bundle_params_t p;
    const char *key, *out;
    const char *keys[MAX_KEYS];
    size_t nkeys;
} bundle_args_t;

static int bundle_option(cli_t *cli, const command_spec_t *spec, void *ctx, int key,
                         const char *value)
{
    bundle_args_t *a = ctx;
    long long n;
    int rc;
    switch (key) {
    case OPT_VERSION: a->p.version = value; break;
    case OPT_OUT: a->out = value; break;
    case OPT_MIN_VERSION: a->p.min_version = value; break;
    case OPT_ARCH: a->p.architecture = value; break;
    case OPT_STORE_SCHEMA:
        if ((rc = cli_number(cli, spec, "--store-schema", value, 0, 1000000, &n)) != CLI_CONTINUE)
            return rc;
        a->p.store_schema = (int)n;
        break;
    case OPT_KEY:
        if (a->nkeys == MAX_KEYS)
            return cli_usage_error(cli, spec, "at most %d --key", MAX_KEYS);
        a->key = a->keys[a->nkeys++] = value;
        break;
    default: break;
    }
    return CLI_CONTINUE;
}

static int create(cli_t *cli, int argc, char **argv)
{
    const command_spec_t spec = {
        .name = "bundle create",
        .usage = "sedgectl bundle create DIR --version V --key KEY --out FILE [--min-version V] "
                 "[--arch A] [--store-schema N]",
        .about = "Sign the release tree DIR (bin/sedged, ...) into an update bundle. KEY is an\n"
                 "Ed25519 private key (openssl genpkey -algorithm ed25519).",
        .options_help = "  --version V        the release's version (dotted numbers)\n"
                        "  --key KEY          the private key that signs\n"
                        "  --out FILE         the bundle to write\n"
                        "  --min-version V    the oldest version it updates (default 0)\n"
                        "  --arch A           the architecture (default this machine's)\n"
                        "  --store-schema N   the store schema it uses (default this build's)\n",
        .options =
            (const struct option[]){{"version", required_argument, NULL, OPT_VERSION},
                                    {"key", required_argument, NULL, OPT_KEY},
                                    {"out", required_argument, NULL, OPT_OUT},
                                    {"min-version", required_argument, NULL, OPT_MIN_VERSION},
                                    {"arch", required_argument, NULL, OPT_ARCH},
                                    {"store-schema", required_argument, NULL, OPT_STORE_SCHEMA},
                                    {NULL, 0, NULL, 0}},
        .min_args = 1,
        .max_args = 1};
    bundle_args_t a = {.p = {.store_schema = STORE_SCHEMA}};
    const char *dir;
    int n;
    int rc = cli_parse(cli, &spec, argc, argv, bundle_option, &a, &dir, &n);
    if (rc != CLI_CONTINUE)
        return rc;
    if (!a.p.version || !a.key || !a.out)
        return cli_usage_error(cli, &spec, "--version, --key and --out are needed");
    char err[1024];
    if (ota_bundle_create(dir, &a.p, a.key, a.out, err, sizeof err))
        return cli_fail(cli, EXIT_FAILED, "%s", err);
    if (cli->json) {
        json_t *o = json_pack("{s:s, s:s}", "bundle", a.out, "version", a.p.version);
        cli_print_json(o);
        json_decref(o);
    } else {
        printf("wrote %s (version %s)\n", a.out, a.p.version);
    }
    return EXIT_OK;
}

static int verify(cli_t *cli, int argc, char **argv)
{
    const command_spec_t spec = {
        .name = "bundle verify",
        .usage = "sedgectl bundle verify FILE [--key PUB]...",
        .about = "Check a bundle's signature against the public keys (default: the running\n"
                 "sedged's ota.trusted_keys), and every file it carries against its manifest.",
        .options_help = "  --key PUB          a trusted Ed25519 public key (PEM)\n",
        .options =
            (const struct option[]){{"key", required_argument, NULL, OPT_KEY}, {NULL, 0, NULL, 0}},
        .min_args = 1,
        .max_args = 1};
    bundle_args_t a = {0};
    const char *file;
    int n;
    int rc = cli_parse(cli, &spec, argc, argv, bundle_option, &a, &file, &n);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *status = NULL;
    if (!a.nkeys) {
        /* The keys the running sedged trusts (ota.trusted_keys). */
        if ((rc = cli_call(cli, "update_status", NULL, 5000, &status)) != EXIT_OK) {
            fprintf(stderr, "sedgectl bundle verify: give --key PUB, or run it beside sedged\n");
            return rc;
        }
        json_t *list = json_object_get(status, "trusted_keys");
        for (size_t i = 0; i < json_array_size(list) && a.nkeys < MAX_KEYS; i++)
            a.keys[a.nkeys++] = json_string_value(json_array_get(list, i));
    }
    char err[1024];
    ota_keys_t *k = NULL;
    ota_manifest_t m;
    rc = EXIT_OK;
    if (ota_keys_load(a.keys, a.nkeys, &k, err, sizeof err) ||
        ota_bundle_check(file, k, NULL, NULL, NULL, &m, err, sizeof err)) {
        ota_keys_free(k);
        json_decref(status);
        return cli_fail(cli, EXIT_FAILED, "%s", err);
    }
    if (cli->json) {
        json_t *o = ota_manifest_json(&m);
        cli_print_json(o);
        json_decref(o);
    } else {
        printf("%s: good: version %s for %s (from %s), %zu files, signed by key %s\n", file,
               m.version, m.architecture, m.min_version, m.file_count, m.key_id);
    }
    ota_manifest_free(&m);
    ota_keys_free(k);
    json_decref(status);
    return EXIT_OK;
}

int cmd_bundle(cli_t *cli, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "create") == 0)
        return create(cli, argc - 1, argv + 1);
    if (strcmp(sub, "verify") == 0)
        return verify(cli, argc - 1, argv + 1);
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        printf("usage: sedgectl bundle create|verify ... (sedgectl bundle create --help)\n");
        return EXIT_OK;
    }
    return cli_fail(cli, EXIT_USAGE, "bundle create or bundle verify? (see --help)");
}
