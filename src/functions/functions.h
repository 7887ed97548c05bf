/*
 * functions: the local function ("lambda") runtime — user code run by the
 * core as child processes, triggered by routed messages or direct
 * invocations, on-demand (instances started as needed, up to
 * max_instances, reused while warm, reaped when idle) or long-lived (one
 * instance started with the deployment, invocations queued in order,
 * restarted with backoff when it dies), each invocation under a timeout,
 * each instance under memory and process limits (cgroups, else rlimits),
 * sandboxed in its own namespaces with only its code directory and
 * declared resources, confined (no capabilities, no_new_privs, seccomp)
 * and allowed only its declared devices.
 *
 * Connectors (the group's "connectors": programs Sedge ships, one per
 * type, in connectors_dir) run here as long-lived functions named
 * "connector:NAME", with their parameters as their config.
 *
 * Instances talk to the core over their function's own socket (docs/
 * function-ipc.md) with a per-instance credential checked against the
 * peer's SO_PEERCRED. What a function may publish, which shadows it may
 * use and which functions it may invoke, the group's routes decide (source
 * function:NAME) — the core answers those requests through the callbacks
 * given here.
 */
#ifndef SEDGE_FUNCTIONS_H
#define SEDGE_FUNCTIONS_H

#include "base/base.h"
#include "group/group.h"
#include "shadow/shadow.h"

#include <jansson.h>
#include <uv.h>

typedef struct functions functions_t;

/* The end of an invocation: SEDGE_OK with the result, or an error with a
 * message ("timed out", "out of memory", "queue full", the function's own
 * error...). Views valid during the call. */
typedef void (*invoke_done_fn)(void *ctx, sedge_err err, const char *error, bytes_t result);

typedef struct {
    uv_loop_t *loop;
    const char *data_dir;
    const char *sandbox_program; /* sedge-sandbox */
    const char *python_sdk_dir;  /* added to PYTHONPATH; may be NULL */
    const char *sdk_library;     /* sedged's libsedge.so.0, shown to C functions that
                                    need it; may be NULL */
    const char *connectors_dir;  /* the connectors' programs, one per type */
    const char *thing_name;      /* the core's, given to functions as SEDGE_THING_NAME */
    bool allow_root;             /* may functions run as uid 0? */
    size_t max_frame_bytes;      /* largest frame a function may send */
    /* Publish as function:NAME (or as the connector `function` names,
     * "connector:NAME"); SEDGE_ERR_DENIED when no route allows it. */
    sedge_err (*publish)(void *ctx, const char *function, bytes_t topic, bytes_t payload,
                         uint8_t qos);
    /* A shadow request from a function: answer through done (403 when the
     * routes do not let the function reach that shadow). */
    void (*shadow)(void *ctx, const char *function, shadow_op_t op, bytes_t thing, bytes_t name,
                   bytes_t payload, shadow_done_fn done, void *done_ctx);
    /* May function `from` invoke function `to`? (a route function:FROM ->
     * function:TO) */
    bool (*may_invoke)(void *ctx, const char *from, const char *to);
    void *ctx;
    /* Unseals the group's secrets for the functions that list them
     * (group_unseal). No get: secrets are as deployed. */
    group_seal_key_t seal_key;
} functions_options_t;

NODISCARD sedge_err functions_start(const functions_options_t *opts, functions_t **out);
/* Stop every instance; `done` when all have exited. */
void functions_stop(functions_t *f, void (*done)(void *ctx), void *ctx);
void functions_free(functions_t *f);

/* Apply a deployment's functions: start new long-lived ones and wait for
 * them to connect, keep unchanged ones running, stop removed or changed
 * ones. done(token, err, why) with why naming the function that failed. */
void functions_apply(functions_t *f, const group_t *g,
                     void (*done)(void *token, sedge_err err, const char *why), void *token);

/* Invoke `name` with an event (copied). An error returned at once
 * (NOT_FOUND, FULL: its queue is full, INVALID: not JSON for a json
 * function, CLOSED: stopping) means `done` will not be called; otherwise
 * `done` reports the end. `done` NULL: asynchronous (the result is
 * dropped, failures are counted). `source`: "thing:x", "sedgectl"... */
NODISCARD sedge_err functions_invoke(functions_t *f, const char *name, bytes_t topic,
                                     bytes_t payload, bytes_t source, invoke_done_fn done,
                                     void *ctx);

/* A secret resource's value came from the cloud (its cloud_topic): kept,
 * sealed, for the functions that list it (copied). */
void functions_secret_arrived(functions_t *f, const char *id, bytes_t value);

/* [{name, lifecycle, state, instances: [...], queue, invocations, errors,
 *   timeouts, oom_kills, crashes, refused, limits: {...}}] (new reference) */
json_t *functions_status(functions_t *f);
/* The log file of a function (its stdout and stderr, and SDK log lines). */
NODISCARD sedge_err functions_log_path(functions_t *f, const char *name, char *path, size_t len);

#endif
