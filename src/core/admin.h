/*
 * admin: the admin socket sedgectl talks to — a unix socket in the data
 * directory (mode 0600), one JSON object per line each way:
 *   request  {"cmd": "status", ...}
 *   response {"ok": true, ...} or {"ok": false, "error": "what went wrong"}
 * Services register the commands they answer. A handler may answer later
 * (a deployment waits for functions to start): the request stays valid
 * until admin_reply is called, even if the client has gone.
 */
#ifndef SEDGE_ADMIN_H
#define SEDGE_ADMIN_H

#include "base/base.h"

#include <jansson.h>
#include <uv.h>

#define ADMIN_MAX_REQUEST (8u << 20)

typedef struct admin admin_t;
typedef struct admin_request admin_request_t;

/* `request` is borrowed for the call; answer with exactly one admin_reply*. */
typedef void (*admin_handler)(void *ctx, json_t *request, admin_request_t *req);

NODISCARD sedge_err admin_start(uv_loop_t *loop, const char *path, admin_t **out);
NODISCARD sedge_err admin_register(admin_t *a, const char *cmd, admin_handler fn, void *ctx);
/* Takes the reference to `response` (an object); sets "ok": true unless it
 * has "error". */
void admin_reply(admin_request_t *req, json_t *response);
void admin_reply_error(admin_request_t *req, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Run a command as if it came through the socket (the web console uses
 * the same commands as sedgectl, with the same checks and errors): `done`
 * gets the response (a reference it owns), now or later. */
typedef void (*admin_result_fn)(void *ctx, json_t *response);
void admin_call(admin_t *a, json_t *request, admin_result_fn done, void *ctx);
/* Stop listening and close connections; `done` when all handles closed. */
void admin_close(admin_t *a, void (*done)(void *ctx), void *ctx);
/* After admin_close's `done`. */
void admin_free(admin_t *a);

#endif
