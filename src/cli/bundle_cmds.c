/*
 * bundle_cmds: `sedgectl bundle create DIR --version V --key KEY --out FILE
 * [--min-version V] [--arch A] [--store-schema N]` and `sedgectl bundle
 * verify FILE [--key PUB]...` — made and checked here, without sedged.
 */
#include "ota/ota.h"
#include "ota_cmds.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The store schema this release reads (see src/store: PRAGMA user_version). */
#define STORE_SCHEMA 2

const char cli_ota_usage[] =
    "  bundle create DIR --version V --key KEY --out FILE [--min-version V]\n"
    "        [--arch A] [--store-schema N]\n"
    "        sign the release tree DIR (bin/sedged, ...) into an update bundle\n"
    "  bundle verify FILE --key PUB [--key PUB]...\n"
    "        check a bundle's signature and every file it carries\n"
    "  update FILE|URL [--sha256 HEX] [--allow-downgrade] [--no-wait]\n"
    "        install a bundle: verify, install, restart, health check, commit or roll back\n"
    "  update --status [--json]\n"
    "        the last update: phase, version, reason\n"
    "  update --rollback\n"
    "        go back to the previous release\n";

int cli_bundle_create(int argc, char **argv, bool json)
{
    const char *dir = NULL, *key = NULL, *out = NULL;
    ota_bundle_params_t p = {.store_schema = STORE_SCHEMA};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--version") == 0 && has)
            p.version = argv[++i];
        else if (strcmp(a, "--key") == 0 && has)
            key = argv[++i];
        else if (strcmp(a, "--out") == 0 && has)
            out = argv[++i];
        else if (strcmp(a, "--min-version") == 0 && has)
            p.min_version = argv[++i];
        else if (strcmp(a, "--arch") == 0 && has)
            p.architecture = argv[++i];
        else if (strcmp(a, "--store-schema") == 0 && has)
            p.store_schema = atoi(argv[++i]);
        else if (strcmp(a, "--help") == 0) {
            printf("usage: sedgectl bundle create DIR --version V --key KEY --out FILE\n"
                   "         [--min-version V] [--arch A] [--store-schema N]\n"
                   "  KEY: an Ed25519 private key (openssl genpkey -algorithm ed25519)\n");
            return 0;
        } else if (a[0] != '-' && !dir)
            dir = a;
        else {
            fprintf(stderr, "sedgectl bundle create: unexpected '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!dir || !p.version || !key || !out) {
        fprintf(stderr, "usage: sedgectl bundle create DIR --version V --key KEY --out FILE\n");
        return 2;
    }
    char err[1024];
    if (ota_bundle_create(dir, &p, key, out, err, sizeof err)) {
        fprintf(stderr, "sedgectl bundle create: %s\n", err);
        return 1;
    }
    if (json)
        printf("{\"ok\": true, \"bundle\": \"%s\"}\n", out);
    else
        printf("wrote %s (version %s)\n", out, p.version);
    return 0;
}

int cli_bundle_verify(int argc, char **argv, bool json)
{
    const char *file = NULL;
    const char **keys = calloc((size_t)argc + 1, sizeof *keys);
    size_t nkeys = 0;
    if (!keys)
        return 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            keys[nkeys++] = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0) {
            printf("usage: sedgectl bundle verify FILE --key PUB [--key PUB]...\n");
            free(keys);
            return 0;
        } else if (argv[i][0] != '-' && !file) {
            file = argv[i];
        } else {
            fprintf(stderr, "sedgectl bundle verify: unexpected '%s' (see --help)\n", argv[i]);
            free(keys);
            return 2;
        }
    }
    if (!file || !nkeys) {
        fprintf(stderr, "usage: sedgectl bundle verify FILE --key PUB [--key PUB]...\n");
        free(keys);
        return 2;
    }
    char err[1024];
    ota_keys_t *k = NULL;
    ota_manifest_t m;
    int rc = 1;
    if (ota_keys_load(keys, nkeys, &k, err, sizeof err) ||
        ota_bundle_check(file, k, NULL, NULL, NULL, &m, err, sizeof err)) {
        if (json) {
            json_t *o = json_pack("{s:b, s:s}", "ok", 0, "error", err);
            json_dumpf(o, stdout, JSON_COMPACT);
            putchar('\n');
            json_decref(o);
        }
        fprintf(stderr, "sedgectl bundle verify: %s\n", err);
    } else {
        if (json) {
            json_t *o = ota_manifest_json(&m);
            json_object_set_new(o, "ok", json_true());
            json_dumpf(o, stdout, JSON_COMPACT);
            putchar('\n');
            json_decref(o);
        } else {
            printf("%s: good: version %s for %s (from %s), %zu files, signed by key %s\n", file,
                   m.version, m.architecture, m.min_version, m.file_count, m.key_id);
        }
        ota_manifest_free(&m);
        rc = 0;
    }
    ota_keys_free(k);
    free(keys);
    return rc;
}
