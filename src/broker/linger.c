/*
 * linger: closing a connection after the broker's last word without
 * destroying it. When the broker refuses a CONNECT or sends a DISCONNECT,
 * the peer may still be sending (pipelined packets, PUBRELs for the
 * PUBRECs it just got). Closing a socket with unread input makes the
 * kernel answer with a reset, and the reset can reach the peer before it
 * has read the reason code, which it then never sees. So once the last
 * word is written the connection is shut down for writing (FIN after the
 * data), and its input is read and dropped until the peer closes or
 * LINGER_MS pass.
 */
#include "internal.h"

#include <stdlib.h>

static void unlink_lingering(client_t *c)
{
    client_list_remove(&c->broker->lingering, c);
    c->broker->lingering_count--;
}

static void linger_end(client_t *c)
{
    if (c->linger != LINGER_ACTIVE)
        return;
    c->linger = LINGER_NONE;
    unlink_lingering(c);
    client_close_handle(c);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    client_t *c = req->data;
    free(req);
    /* Cancelled: the handle is closing, the client about to be freed. */
    if (status < 0 && status != UV_ECANCELED)
        linger_end(c);
}

static void drop_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0)
        linger_end(stream->data);
}

sedge_err linger_start(client_t *c)
{
    broker_t *b = c->broker;
    if (b->lingering_count >= LINGER_MAX)
        return SEDGE_ERR_FULL;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req)
        return SEDGE_ERR_NOMEM;
    req->data = c;
    if (uv_shutdown(req, &c->h.stream, shutdown_cb) != 0) {
        free(req);
        return SEDGE_ERR_IO;
    }
    if (uv_read_start(&c->h.stream, client_read_alloc_cb, drop_read_cb) != 0) {
        /* The shutdown request is cancelled when the handle closes. */
        return SEDGE_ERR_IO;
    }
    c->linger = LINGER_ACTIVE;
    b->lingering_count++;
    c->last_rx_ms = clock_mono_ms();
    client_list_push(&b->lingering, c);
    return SEDGE_OK;
}

void lingering_expire(broker_t *b, uint64_t now_ms)
{
    client_t *c = b->lingering;
    while (c) {
        client_t *next = c->next;
        if (now_ms - c->last_rx_ms >= LINGER_MS)
            linger_end(c);
        c = next;
    }
}

void lingering_close_all(broker_t *b)
{
    while (b->lingering)
        linger_end(b->lingering);
}
