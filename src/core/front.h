/*
 * front: the core's HTTP front — what its handlers share (front.c owns
 * it): the HTTP server and, per handler, its state.
 */
#ifndef SEDGE_CORE_FRONT_H
#define SEDGE_CORE_FRONT_H

#include "http/http.h"
#include "internal.h"

#define CONSOLE_MAX_SESSIONS 16
#define CONSOLE_MAX_TOKENS 8
#define CONSOLE_SESSION_TTL_S (12 * 3600)

typedef struct {
    char token[65];
    int64_t expires;
} console_token_t;

typedef struct {
    char id[65];   /* the cookie */
    char csrf[65]; /* sent back in X-CSRF-Token by changing requests */
    int64_t expires;
    char who[128]; /* "token" or the admin's identity */
} console_session_t;

typedef struct {
    uint64_t tokens_issued, logins, logins_refused, csrf_refused, unauthorised;
} console_stats_t;

struct front {
    core_t *core;
    http_server_t *http;
    void (*stop_done)(void *);
    void *stop_ctx;
    /* discovery */
    json_t *cas;                  /* every CA the core's TLS listeners trust, PEM strings */
    uint16_t tls_port;            /* the TLS MQTT port advertised with the host's addresses */
    uint64_t discovery_counts[6]; /* 200, 400, 403, 404, 405, other */
    /* console */
    console_token_t tokens[CONSOLE_MAX_TOKENS];
    console_session_t sessions[CONSOLE_MAX_SESSIONS];
    console_stats_t console;
    char url[128];     /* the loopback console's base URL, for sedgectl console */
    json_t *last_seen; /* identity -> wall seconds it was last seen connected */
    /* MQTT over WebSockets */
    uint64_t ws_mqtt_open, ws_mqtt_total;
};

/* discovery.c */
NODISCARD sedge_err discovery_start(front_t *f);
void discovery_handle(void *ctx, http_request_t *req, const http_request_info_t *info);
/* The thing name of a discovery path ("/greengrass/discover/thing/NAME"):
 * 0 and the name in out[0..cap), or the HTTP status to answer (404: not
 * a discovery path, 400: a bad name). Pure: fuzzed. */
int discovery_parse_path(const char *path, char *out, size_t cap);

/* metrics.c */
void metrics_handle(void *ctx, http_request_t *req, const http_request_info_t *info);
/* The whole Prometheus text (malloc'd). */
char *metrics_render(front_t *f);
/* This process's resident memory (bytes) and CPU time (seconds). */
void metrics_process(uint64_t *rss_bytes, double *cpu_s);

/* console.c */
NODISCARD sedge_err console_start(front_t *f);
void console_handle(void *ctx, http_request_t *req, const http_request_info_t *info);
void console_stop(front_t *f);
bool console_is_admin(front_t *f, const char *cn);
/* A console API change (POST /api/WHAT with a JSON body) as the admin
 * command it stands for, or NULL with the reason in err. *shape tells how
 * to present the command's answer. Pure: fuzzed. */
json_t *console_request(const char *what, bytes_t body, int *shape, char *err, size_t errlen);
extern const http_ws_handler_t console_ws_handler;

#endif
