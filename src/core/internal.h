/*
 * internal: the core's own state, shared by its files (core.c: start-up,
 * shutdown and the admin commands; front.c: the HTTP front and MQTT over
 * WebSockets; discovery.c, metrics.c, console.c: its handlers).
 */
#ifndef SEDGE_CORE_INTERNAL_H
#define SEDGE_CORE_INTERNAL_H

#include "admin.h"
#include "cloud/cloud.h"
#include "config.h"
#include "core.h"
#include "deploy/deploy.h"
#include "functions/functions.h"
#include "routing/routing.h"
#include "seal.h"
#include "shadow/shadow.h"
#include "store/store.h"

typedef struct front front_t;

struct core {
    uv_loop_t *loop;
    uv_prepare_t before_wait; /* the end of every loop turn (before_wait_cb) */
    uv_timer_t trim_timer;    /* gives freed memory back once traffic stops */
    uint64_t bytes_at_trim;   /* the broker's byte counters at the last look */
    bool trimmed;             /* nothing moved since the last trim */
    config_t cfg;
    int lock_fd;
    store_t *store;
    broker_t *broker;
    routing_t *routing;
    deploy_t *deploy;
    shadow_svc_t *shadow;
    cloud_t *cloud; /* NULL: no cloud configured */
    functions_t *functions;
    admin_t *admin;
    front_t *front;     /* the HTTP front (front.c); NULL: none configured */
    updater_t *updater; /* over-the-air updates (update.c); NULL: no "ota" config */
    update_jobs_t *update_jobs;
    void (*self_stop)(void *); /* sedged's stop, for a restart into another release */
    void *self_stop_ctx;
    void (*stop_done)(void *);
    void *stop_ctx;
    int stopping_parts;
    core_seal_t seal; /* the key that seals the group's secrets */
};

/* front.c: the HTTP front, when the config asks for any of it. */
NODISCARD sedge_err front_start(core_t *c);
void front_stop(front_t *f, void (*done)(void *ctx), void *ctx);
void front_free(front_t *f);
/* `sedgectl console`: a one-time login URL for the console. */
void front_console_login(front_t *f, json_t *reply);

#endif
