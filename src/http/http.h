/*
 * http: sedged's HTTP(S) and WebSocket server — libwebsockets on sedged's
 * own libuv loop (a foreign loop to it), with OpenSSL. No HTTP parsing of
 * our own: lws parses requests and frames; this module turns them into
 * plain calls (a request in, one response out; a WebSocket's bytes in and
 * out) for whoever registered the path.
 *
 * A site is one listening address, plain or TLS; TLS sites may require a
 * client certificate verified against their CA file (and CRL file), and
 * ask `cert_allowed` about it at the handshake (a group's revoked
 * certificates). Sites carry a set of route flags: a request whose path
 * is not routed on its site is answered 404.
 *
 * Knows nothing of MQTT, the broker or the services: the core registers
 * the handlers (discovery, metrics, the console, MQTT over WebSockets).
 *
 * Owns the lws context, its vhosts and every HTTP connection.
 */
#ifndef SEDGE_HTTP_H
#define SEDGE_HTTP_H

#include "base/base.h"

#include <netinet/in.h>
#include <uv.h>

typedef struct http_server http_server_t;
typedef struct http_request http_request_t;
typedef struct http_ws http_ws_t;

/* What a site serves (its route flags); a route registered for a flag is
 * reachable only on sites that carry it. */
enum {
    HTTP_ROUTE_DISCOVERY = 1,
    HTTP_ROUTE_METRICS = 2,
    HTTP_ROUTE_CONSOLE = 4,
    HTTP_ROUTE_MQTT = 8,
};

typedef enum {
    HTTP_CLIENT_CERT_NONE,     /* plain HTTP, or TLS without client certificates */
    HTTP_CLIENT_CERT_REQUIRED, /* refused in the handshake without a valid one */
} http_client_cert_t;

typedef struct {
    const char *name;      /* for logs: "discovery", "http", "ws", ... */
    const char *bind;      /* "host:port" or "[v6]:port" */
    const char *cert_file; /* NULL: plain HTTP */
    const char *key_file;
    const char *ca_file;  /* the CAs client certificates must chain to */
    const char *crl_file; /* NULL: none */
    http_client_cert_t client_cert;
    const char *alpn;   /* comma-separated protocols to select, e.g. "x-amzn-http-ca,http/1.1" */
    bool loopback_only; /* refuse to bind anything but a loopback address */
    unsigned routes;    /* HTTP_ROUTE_* */
} http_site_config_t;

typedef struct {
    uint32_t max_connections;  /* open HTTP and WebSocket connections, all sites */
    uint32_t max_header_bytes; /* a request's head (request line and headers) */
    uint32_t max_body_bytes;   /* a request's body */
    uint32_t timeout_s;        /* TLS handshake and request head, and an idle keep-alive */
    uint32_t max_ws_message;   /* largest WebSocket frame payload accepted */
    bool tls;                  /* some site will be TLS: lws sets up its OpenSSL side (memory) */
    /* Is a client certificate allowed (not revoked)? Asked at each TLS
     * handshake that presents one. NULL: all are. */
    bool (*cert_allowed)(void *ctx, const uint8_t sha256[32], bytes_t serial);
    void *ctx;
} http_options_t;

typedef struct {
    uint64_t connections;         /* open now, HTTP and WebSocket */
    uint64_t connections_total;   /* accepted */
    uint64_t connections_refused; /* over max_connections */
    uint64_t tls_refused;         /* handshakes refused: no, foreign or revoked certificates */
    uint64_t requests;            /* answered, by class below */
    uint64_t responses_2xx, responses_3xx, responses_4xx, responses_5xx;
    uint64_t bad_requests; /* malformed or over the limits, answered or closed by lws */
    uint64_t ws_open;      /* WebSockets open now */
    uint64_t ws_total;
    uint64_t ws_refused;
    uint64_t bytes_in, bytes_out; /* request and WebSocket payload bytes */
} http_stats_t;

/* What a handler sees of a request: valid during the call only. */
typedef struct {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* decoded path, without the query */
    const char *query;  /* raw query string after '?', or "" */
    const char *site;   /* the site's name */
    unsigned site_routes;
    const char *client_cn; /* the verified client certificate's CN, or NULL */
    bool tls;
    bool peer_loopback;
    char peer[72]; /* "address:port" */
    struct sockaddr_storage peer_addr;
    bytes_t body;
} http_request_info_t;

/* Answer a request: exactly once, now or later. `body` is copied;
 * `headers` is NULL or "Name: value\r\n" lines. After the connection has
 * gone the call just frees the request. */
void http_respond(http_request_t *req, int status, const char *content_type, const char *headers,
                  bytes_t body);
/* A request header's value into out[0..cap) (NUL-terminated); its length,
 * or -1 when absent or longer. Valid only during the handler's call. */
int http_request_header(http_request_t *req, const char *name, char *out, size_t cap);

typedef void (*http_handler_fn)(void *ctx, http_request_t *req, const http_request_info_t *info);

/* A WebSocket, served by whoever registered its path. The handler's
 * `open` returns its own pointer for the connection (NULL refuses it);
 * `receive` gets each piece of payload as it arrives (binary and text
 * alike, frames not reassembled); `written` follows each http_ws_write
 * once lws has taken all of it; `closed` is the last call. */
typedef struct {
    /* Before the upgrade is answered: false refuses it (403). Headers are
     * readable with http_ws_header. NULL: every upgrade is accepted. */
    bool (*accept)(void *ctx, http_ws_t *ws, const http_request_info_t *info);
    void *(*open)(void *ctx, http_ws_t *ws, const http_request_info_t *info);
    void (*receive)(void *conn, const uint8_t *data, size_t len);
    void (*written)(void *conn);
    void (*closed)(void *conn);
    void *ctx;
    bool text; /* send text frames (JSON for a browser) instead of binary */
} http_ws_handler_t;

/* Send `len` bytes as binary frames; one write at a time: the next only
 * after `written`. The bytes are copied. SEDGE_ERR_CLOSED when the
 * connection is going. */
NODISCARD sedge_err http_ws_write(http_ws_t *ws, const uint8_t *data, size_t len);
/* A header of the upgrade request, during `open` only (as
 * http_request_header). */
int http_ws_header(http_ws_t *ws, const char *name, char *out, size_t cap);
/* Stop or resume reading from the peer. */
void http_ws_pause(http_ws_t *ws, bool paused);
/* Close (after what was written); `closed` still follows. */
void http_ws_close(http_ws_t *ws);
/* The peer's certificate (an X509 *) on a TLS site, or NULL. */
void *http_ws_peer_certificate(http_ws_t *ws);

NODISCARD sedge_err http_create(uv_loop_t *loop, const http_options_t *opts, http_server_t **out);
/* Listen on a site (after the routes are registered or not: routes are
 * looked up per request). */
NODISCARD sedge_err http_add_site(http_server_t *s, const http_site_config_t *cfg);
/* Requests whose path starts with `prefix` on sites carrying `route`.
 * The longest matching prefix wins. */
NODISCARD sedge_err http_route(http_server_t *s, unsigned route, const char *prefix,
                               http_handler_fn fn, void *ctx);
/* WebSocket upgrades to exactly `path` with subprotocol `protocol` on
 * sites carrying `route`. One per protocol name. */
NODISCARD sedge_err http_ws_route(http_server_t *s, unsigned route, const char *path,
                                  const char *protocol, const http_ws_handler_t *h);
void http_get_stats(http_server_t *s, http_stats_t *out);
/* Close every connection and the listeners; `done` runs once lws has
 * closed its last handle on the loop. */
void http_stop(http_server_t *s, void (*done)(void *ctx), void *ctx);
/* After `done` (or when nothing was started). */
void http_free(http_server_t *s);

/* Parse "host:port" / "[v6]:port"; is it a loopback address? */
NODISCARD sedge_err http_parse_bind(const char *bind, char *host, size_t host_cap, int *port);
bool http_host_is_loopback(const char *host);

#endif
