/*
 * core: sedged as a whole — the configuration, the data directory (its
 * lock, the demo CA of the embedded default), the wiring of the modules
 * (which service attaches for which endpoint, what runs at the end of each
 * loop turn), the admin socket and the commands it answers — started and
 * stopped in the right order.
 *
 * Owns one of each module's objects (store, broker, routing, shadow
 * service, functions, deployments, cloud, admin) for the daemon's life.
 */
#ifndef SEDGE_CORE_H
#define SEDGE_CORE_H

#include "config.h"
#include "update.h"

typedef struct core core_t;

/* Start everything on `loop`; on failure everything started is stopped
 * and the reason has been logged. Takes ownership of `cfg`. */
NODISCARD sedge_err core_start(uv_loop_t *loop, config_t *cfg, core_t **out);
/* Graceful stop: clients are told, the store is flushed; `done` runs when
 * the loop has nothing of the core's left. */
void core_stop(core_t *c, void (*done)(void *ctx), void *ctx);
/* SIGHUP: apply what can change without a restart — from `next` (a
 * validated config, borrowed; NULL: none) the log level and the limits,
 * and from the files the TLS listeners' certificates, keys, CAs and CRLs
 * (a listener whose files do not load keeps its previous ones; clients
 * the new CRLs revoke are disconnected) — and log what was applied and
 * what was not (a changed listener address, data directory, store or
 * cloud takes a restart). */
void core_reload(core_t *c, const config_t *next);
void core_free(core_t *c);
/* How sedged stops the core when the core asks for it (an update): as a
 * SIGTERM would. */
void core_on_self_stop(core_t *c, void (*stop)(void *ctx), void *ctx);
/* After the stop: exit, or exec the release an update switched to. */
core_then_t core_then(const core_t *c);

#endif
