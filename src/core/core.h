/*
 * core: sedged as a whole — the event loop, the configuration, the data
 * directory (its lock, the demo CA of the embedded default), the store,
 * the broker, the admin socket and the commands it answers — started and
 * stopped in the right order.
 */
#ifndef SEDGE_CORE_H
#define SEDGE_CORE_H

#include "config.h"

typedef struct core core_t;

/* Start everything on `loop`; on failure everything started is stopped
 * and the reason has been logged. Takes ownership of `cfg`. */
NODISCARD sedge_err core_start(uv_loop_t *loop, config_t *cfg, core_t **out);
/* Graceful stop: clients are told, the store is flushed; `done` runs when
 * the loop has nothing of the core's left. */
void core_stop(core_t *c, void (*done)(void *ctx), void *ctx);
/* SIGHUP: reload what can be reloaded without a restart (the TLS
 * listeners' CRLs) and apply it to open connections. */
void core_reload(core_t *c);
void core_free(core_t *c);

#endif
