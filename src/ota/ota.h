/*
 * ota: over-the-air updates of the core — signed update bundles, the two
 * release slots with their atomically switched `current`, the durable
 * update state, and the guard that rolls a release back when it does not
 * become healthy in time.
 *
 * A bundle is a plain tar of three members, in this order:
 *   manifest.json   product, version, architecture, min_version,
 *                   store_schema, key_id, the payload's size and SHA-256,
 *                   and every file of the release tree with size, SHA-256
 *                   and mode
 *   manifest.sig    the 64-byte Ed25519 signature of manifest.json
 *   release.tar.gz  the release tree: an installed prefix (sbin/sedged,
 *                   libexec/sedge/..., lib/...) or a build's layout
 *                   (bin/sedged beside sedge-sandbox)
 * The signature is checked against the trusted keys before the payload is
 * opened; the payload's hash before it is unpacked; every unpacked file's
 * hash and size against the manifest while it is written. Only regular
 * files, directories and links that stay inside the tree are accepted.
 *
 * Owns: the files under the OTA root (ROOT/slots/{a,b}, ROOT/current,
 * ROOT/state.json) and the guard process of a health window.
 */
#ifndef SEDGE_OTA_H
#define SEDGE_OTA_H

#include "base/base.h"

#include <jansson.h>
#include <limits.h>
#include <sys/types.h>

#define OTA_MAX_MANIFEST_BYTES (1u << 20)
#define OTA_MAX_FILES 4096u
#define OTA_MAX_PATH 255u
#define OTA_MAX_FILE_BYTES (1ull << 30)
#define OTA_MAX_TREE_BYTES (2ull << 30)
#define OTA_SIG_BYTES 64u
#define OTA_VERSION_MAX 32u

/* ---- manifest (manifest.c): a pure parser, fuzzed */

typedef struct {
    char *path; /* relative, normalised: no "", ".", ".." components */
    uint64_t size;
    char sha256[65];
    uint32_t mode; /* 0644 or 0755 */
    char *link;    /* a symlink's target (relative, inside the tree) or NULL */
} ota_file_t;

typedef struct {
    int format; /* 1 */
    char product[OTA_VERSION_MAX];
    char version[OTA_VERSION_MAX];
    char min_version[OTA_VERSION_MAX];
    char architecture[OTA_VERSION_MAX];
    int store_schema;
    char key_id[17];
    uint64_t payload_size;
    char payload_sha256[65];
    ota_file_t *files;
    size_t file_count;
    uint8_t signature[OTA_SIG_BYTES]; /* filled by ota_bundle_check */
} ota_manifest_t;

/* Parse and validate manifest.json; on failure `err` names the key. The
 * manifest owns its files; free with ota_manifest_free. */
NODISCARD sedge_err ota_manifest_parse(bytes_t text, ota_manifest_t *out, char *err, size_t errlen);
/* A new JSON object with the manifest's fields (for status output). */
json_t *ota_manifest_json(const ota_manifest_t *m);
void ota_manifest_free(ota_manifest_t *m);
/* Compare dotted numeric versions ("1.10.2" > "1.9"); invalid sorts low. */
int ota_version_cmp(const char *a, const char *b);
bool ota_version_valid(const char *v);
/* A relative path a release tree may hold. */
bool ota_path_valid(const char *path);
/* Does `target`, a link at `path`, stay inside the tree? */
bool ota_link_inside(const char *path, const char *target);

/* ---- keys and signatures (sign.c): Ed25519 through OpenSSL 3 EVP */

typedef struct ota_keys ota_keys_t;

NODISCARD sedge_err ota_keys_load(const char *const *paths, size_t count, ota_keys_t **out,
                                  char *err, size_t errlen);
void ota_keys_free(ota_keys_t *k);
/* Check `sig` over `msg` with the trusted key whose id is `key_id`:
 * SEDGE_ERR_NOT_FOUND: no such key; SEDGE_ERR_DENIED: bad signature. */
NODISCARD sedge_err ota_keys_verify(const ota_keys_t *k, const char *key_id, bytes_t msg,
                                    bytes_t sig);
/* Check `sig` over `msg` with any of the trusted keys: SEDGE_ERR_DENIED
 * when none verifies it. */
NODISCARD sedge_err ota_keys_verify_any(const ota_keys_t *k, bytes_t msg, bytes_t sig);
/* Sign with the PEM private key at `key_path`; `sig` gets 64 bytes and
 * `key_id` the key's id (hex of the first 8 bytes of SHA-256(public)). */
NODISCARD sedge_err ota_sign(const char *key_path, bytes_t msg, uint8_t sig[OTA_SIG_BYTES],
                             char key_id[17], char *err, size_t errlen);
/* SHA-256 of `data` as 64 hex digits. */
void ota_sha256_hex(bytes_t data, char hex[65]);
/* SHA-256 and size of the file at `path`. */
NODISCARD sedge_err ota_file_sha256(const char *path, uint64_t *size, char hex[65]);

/* ---- downloads (download.c): libcurl, resumed with Range */

typedef struct {
    const char *url;     /* http:// or https:// */
    const char *dest;    /* filled through DEST.part, kept for a resume */
    const char *ca_file; /* NULL: the system's CAs */
    uint64_t max_bytes;  /* larger: refused, DEST.part removed */
    uint64_t max_rate;   /* bytes/s; 0: unlimited */
    uint32_t stall_s;    /* no byte for this long: a cut (default 60) */
    int attempts;        /* cuts resumed within one call */
    void (*progress)(void *ctx, uint64_t done, uint64_t total); /* downloading thread */
    void *ctx;
    const volatile int *cancel; /* set: stop at the next chance */
} ota_download_t;

/* Fetch `url` into `dest`. SEDGE_ERR_CLOSED: cancelled (DEST.part kept);
 * SEDGE_ERR_AGAIN: cut too often (kept); SEDGE_ERR_TLS: the server's
 * certificate or the URL; SEDGE_ERR_TOO_LARGE, SEDGE_ERR_NOT_FOUND. */
NODISCARD sedge_err ota_download(const ota_download_t *d, char *err, size_t errlen);

/* ---- bundles (bundle.c, create.c) */

typedef struct {
    const char *version;
    const char *min_version;  /* NULL: "0" */
    const char *architecture; /* NULL: this machine's */
    int store_schema;
} ota_bundle_params_t;

/* Make a bundle of the release tree `dir`, signed with `key_path`. */
NODISCARD sedge_err ota_bundle_create(const char *dir, const ota_bundle_params_t *p,
                                      const char *key_path, const char *out, char *err,
                                      size_t errlen);
/* Called with the signed manifest before the payload is opened: a refusal
 * (non-zero, `err` set) stops the check there. */
typedef sedge_err (*ota_accept_fn)(void *ctx, const ota_manifest_t *m, char *err, size_t errlen);

/* Check a bundle (signature, payload hash, every entry against the
 * manifest) and, with `dest` set, unpack its tree into `dest` (created; it
 * must not exist). `accept` (may be NULL) vets the manifest first. On
 * success `*manifest` is filled (free it); on failure `err` says why and
 * nothing is left at `dest`. */
NODISCARD sedge_err ota_bundle_check(const char *bundle, const ota_keys_t *keys, const char *dest,
                                     ota_accept_fn accept, void *ctx, ota_manifest_t *manifest,
                                     char *err, size_t errlen);
/* This machine's architecture name (uname's machine: x86_64, aarch64...). */
const char *ota_machine(void);
/* Remove a tree (no link followed); missing is fine. */
sedge_err ota_remove_tree(const char *path);

/* ---- schedules of cloud jobs (schedule.c) */

/* When a job document {"not_before", "window"} lets the update start:
 * `*due` >= `now` (`now` itself when neither is given); an error names the
 * key that is wrong. */
NODISCARD sedge_err ota_schedule_due(json_t *doc, int64_t now, int64_t *due, char *err,
                                     size_t errlen);

/* ---- the release root and the update state (slots.c) */

typedef enum {
    OTA_IDLE = 0,
    OTA_DOWNLOADING,
    OTA_INSTALLING,
    OTA_TRYING,    /* switched; the health window is open */
    OTA_COMMITTED, /* healthy: the release is the current one */
    OTA_ROLLED_BACK,
    OTA_FAILED, /* refused or broken before the switch: nothing changed */
} ota_phase_t;

const char *ota_phase_name(ota_phase_t p);

typedef struct {
    ota_phase_t phase;
    char source[512]; /* where the update came from (a path, a URL, job:ID) */
    char job[128];    /* the cloud job, if any */
    char version[OTA_VERSION_MAX];
    char slot[2];             /* the slot being tried or committed: "a"/"b" */
    char prev_exec[PATH_MAX]; /* the binary to go back to */
    char prev_version[OTA_VERSION_MAX];
    char prev_slot[2]; /* "" when the previous is the installed base */
    int tries_left;
    int64_t deadline; /* wall seconds: end of the health window */
    int64_t started, finished;
    uint64_t bytes_done, bytes_total;
    char reason[1024];
    bool was_connected; /* the cloud link was up before the update */
    bool job_reported;  /* the outcome went to the cloud job (`job`) */
    pid_t guard_pid;
    pid_t core_pid;
    char bad[8][OTA_VERSION_MAX]; /* versions marked bad, never retried by themselves */
    int bad_count;
} ota_state_t;

/* Read ROOT/state.json; a missing file is an idle state. */
NODISCARD sedge_err ota_state_load(const char *root, ota_state_t *st);
/* Write it atomically (temporary file, fsync, rename, fsync of the dir). */
NODISCARD sedge_err ota_state_save(const char *root, const ota_state_t *st);
json_t *ota_state_json(const ota_state_t *st);
bool ota_state_is_bad(const ota_state_t *st, const char *version);
void ota_state_mark_bad(ota_state_t *st, const char *version);

/* The slot `current` points at ("a", "b"), or "" when there is none. */
void ota_current_slot(const char *root, char slot[2]);
/* Point `current` at `slot` ("" removes it) with one rename(2). */
NODISCARD sedge_err ota_switch(const char *root, const char *slot);
/* ROOT/slots/SLOT/sbin/sedged, or bin/sedged when there is no sbin/. */
void ota_slot_exec(const char *root, const char *slot, char *out, size_t len);
/* The version of the release in `slot` (its manifest), "" if none. */
void ota_slot_version(const char *root, const char *slot, char *out, size_t len);

/* ---- installing a bundle into the free slot (install.c) */

typedef struct {
    const char *root;
    const ota_keys_t *keys;
    const char *running_version;
    int store_schema;         /* the schema the running release uses */
    bool allow_downgrade;     /* the update may go to an older (or equal) version */
    const uint8_t *signature; /* NULL, or the signature the bundle must carry */
} ota_install_t;

/* Check `bundle` and unpack it into the slot `current` does not point at
 * (replacing what was there), refusing before anything is installed: bad
 * signature, unknown key, another architecture, a downgrade, a version
 * marked bad, a running version below min_version, a store schema more
 * than one step away, less free disk than twice the bundle. Blocking: run
 * it off the event loop. `slot` gets the slot and `version` the version. */
NODISCARD sedge_err ota_install(const ota_install_t *in, const char *bundle, char slot[2],
                                char version[OTA_VERSION_MAX], char *err, size_t errlen);
/* The version of the release this process runs: its slot's, or `base`
 * when it runs from outside the slots. `slot` gets "" for the base. */
void ota_running(const char *root, const char *base, char version[OTA_VERSION_MAX], char slot[2]);

/* ---- boot, trial, guard and rollback (boot.c) */

typedef struct {
    const char *root;
    int health_timeout_s;
    int tries;                /* starts a release on trial gets */
    const char *base_version; /* this binary's own version */
} ota_config_t;

/* First thing at start: follow the update state. A release on trial gets
 * one try fewer (out of tries: it is rolled back); a rollback or a switch
 * cut short is finished; when this binary is not the release `current`
 * names, it hands over (exec). Returns when this binary is the one to run;
 * `*trial` says whether it runs on trial (then ota_commit once healthy). */
void ota_boot(const ota_config_t *cfg, char *const argv[], bool *trial);
/* The release on trial is healthy: commit it. */
NODISCARD sedge_err ota_commit(const char *root);
/* Switch `current` to the installed slot in the state, record the trial
 * and exec the new release, with a guard watching the health window.
 * Returns only if the new release cannot be started (then the state says
 * why and the caller carries on as before). */
void ota_exec_trial(const ota_config_t *cfg, char *const argv[]);
/* Go back to the previous release (sedgectl update --rollback): record it,
 * switch and exec the previous binary. Returns only on failure. */
void ota_exec_rollback(const ota_config_t *cfg, char *const argv[], const char *reason);

#endif
