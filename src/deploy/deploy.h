/*
 * deploy: deployments of the group document — validate, store as a new
 * numbered version, apply, and record how it went; history; rollback to an
 * earlier good version; and, at start, re-applying the version that was
 * active.
 *
 * Applying is the core's business (swapping the route table, later
 * starting functions) and may take time, so it is a callback that answers
 * when done. A version that fails to apply is marked failed with the
 * reason and the previous version is applied again. Only one deployment
 * or rollback runs at a time; another is refused as busy.
 *
 * Crash safety: the active version is a meta value written in the same
 * store batch as the statuses, so after kill -9 at any point the core
 * restarts on either the old or the new version, whole.
 *
 * Owns the deployment history (its rows in the store) and the active group
 * document, which everyone else borrows until the next deployment.
 */
#ifndef SEDGE_DEPLOY_H
#define SEDGE_DEPLOY_H

#include "group/group.h"
#include "store/store.h"

#include <jansson.h>

typedef struct deploy deploy_t;

/* The core applies `g` (borrowed until the next apply succeeds; NULL: no
 * group, back to the open broker) and calls done(token, SEDGE_OK, NULL) —
 * or an error and why. After a successful apply the core must no longer
 * use the previously applied group. */
typedef void (*deploy_apply_fn)(void *ctx, const group_t *g,
                                void (*done)(void *token, sedge_err err, const char *why),
                                void *token);

typedef struct {
    store_t *store;
    size_t max_bytes; /* largest document accepted */
    deploy_apply_fn apply;
    /* More checks of a new document than the group's own (the cloud's
     * limits on its routes, say): append problems to `errors`, one per
     * line, each naming its JSON path; false refuses the deployment.
     * Optional. */
    bool (*check)(void *ctx, const group_t *g, buf_t *errors);
    void *ctx;
    /* The core's sealing key: secret values are sealed with it before a
     * document is stored (group_seal_secrets). No get: stored as given. */
    group_seal_key_t seal_key;
} deploy_options_t;

/* The result of a deployment or rollback: `message` is the errors (one per
 * line) on failure, or a summary on success. */
typedef void (*deploy_done_fn)(void *ctx, sedge_err err, const char *message, uint64_t version);

/* Loads the history and applies the active version, if any; the apply
 * callback must answer before this returns on that path. */
NODISCARD sedge_err deploy_open(const deploy_options_t *opts, deploy_t **out);
void deploy_free(deploy_t *d);

/* Deploy a document (copied). Answers through `done`, possibly later. */
void deploy_submit(deploy_t *d, const char *text, size_t len, deploy_done_fn done, void *ctx);
/* Return to `version`, or with 0 to the newest good version before the
 * active one. */
void deploy_rollback(deploy_t *d, uint64_t version, deploy_done_fn done, void *ctx);

uint64_t deploy_active_version(const deploy_t *d);
const group_t *deploy_active_group(const deploy_t *d);
/* [{"version", "group", "created_at", "status", "checksum", "reason"}...],
 * oldest first; a new reference. */
json_t *deploy_history(const deploy_t *d);

#endif
