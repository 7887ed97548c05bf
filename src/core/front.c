/*
 * front: the core's HTTP front. One HTTP server (src/http) on sedged's
 * loop, with a site for each address the config names:
 *   http.bind         plain HTTP on loopback: /metrics and the console
 *   http.tls_bind     HTTPS with client certificates: the same, the
 *                     console for the identities in http.admins
 *   discovery.bind    HTTPS with client certificates: the Greengrass
 *                     discovery API (ALPN x-amzn-http-ca selected)
 *   ws / wss listeners MQTT over WebSockets at /mqtt (subprotocol mqtt)
 * and the bridge between a WebSocket and the broker's transport seam
 * (broker_conn_*): the broker reads and writes bytes, the bridge moves
 * them in and out of WebSocket frames.
 */
#include "front.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "front"

/* ---- MQTT over WebSockets ---- */

/* One WebSocket carrying MQTT: alive while either side holds it. */
typedef struct {
    front_t *front;
    http_ws_t *ws;
    broker_conn_t *conn;
    bool broker_done; /* the broker called close: no call into it any more */
    bool ws_done;     /* the WebSocket closed: no call into it any more */
} ws_link_t;

static int link_write(void *ctx, const uint8_t *data, size_t len)
{
    ws_link_t *l = ctx;
    if (l->ws_done)
        return -1;
    return http_ws_write(l->ws, data, len) ? -1 : 0;
}

static void link_pause(void *ctx, bool paused)
{
    ws_link_t *l = ctx;
    if (!l->ws_done)
        http_ws_pause(l->ws, paused);
}

static void link_close(void *ctx)
{
    ws_link_t *l = ctx;
    l->broker_done = true;
    if (l->ws_done) {
        free(l);
        return;
    }
    http_ws_close(l->ws);
}

static void *link_certificate(void *ctx)
{
    ws_link_t *l = ctx;
    return l->ws_done ? NULL : http_ws_peer_certificate(l->ws);
}

static const broker_transport_t ws_transport = {
    .write = link_write,
    .pause = link_pause,
    .close = link_close,
    .peer_certificate = link_certificate,
};

static void *mqtt_ws_open(void *ctx, http_ws_t *ws, const http_request_info_t *info)
{
    front_t *f = ctx;
    if (info->tls && !info->client_cn)
        return NULL; /* the handshake requires a certificate: not reached */
    ws_link_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->front = f;
    l->ws = ws;
    broker_conn_info_t ci = {
        .kind = info->tls ? "wss" : "ws",
        .peer = info->peer[0] ? &info->peer_addr : NULL,
        .identity = info->client_cn ? bytes_of_cstr(info->client_cn) : (bytes_t){0},
    };
    l->conn = broker_conn_open(f->core->broker, &ws_transport, l, &ci);
    if (!l->conn) {
        free(l);
        return NULL;
    }
    f->ws_mqtt_open++;
    f->ws_mqtt_total++;
    return l;
}

static void mqtt_ws_receive(void *conn, const uint8_t *data, size_t len)
{
    ws_link_t *l = conn;
    if (!l->broker_done)
        broker_conn_input(l->conn, data, len);
}

static void mqtt_ws_written(void *conn)
{
    ws_link_t *l = conn;
    if (!l->broker_done)
        broker_conn_written(l->conn, 0);
}

static void mqtt_ws_closed(void *conn)
{
    ws_link_t *l = conn;
    l->ws_done = true;
    if (l->front->ws_mqtt_open)
        l->front->ws_mqtt_open--;
    if (l->broker_done) {
        free(l);
        return;
    }
    broker_conn_gone(l->conn); /* the broker makes no call on the link after this */
    free(l);
}

/* ---- the server ---- */

/* May a client certificate be used (the deployed group's revocations)? */
static bool cert_allowed(void *ctx, const uint8_t sha256[32], bytes_t serial)
{
    front_t *f = ctx;
    const group_t *g = deploy_active_group(f->core->deploy);
    return !g || !group_cert_revoked(g, sha256, serial);
}

/* The first tls listener: the default CA, certificate and key of the
 * TLS sites. */
static const listener_config_t *first_tls(const config_t *cfg)
{
    for (size_t i = 0; i < cfg->listener_count; i++)
        if (cfg->listeners[i].type == LISTENER_TLS)
            return &cfg->listeners[i];
    return NULL;
}

static bool wanted(const config_t *cfg)
{
    return cfg->http.bind || cfg->http.tls_bind || cfg->discovery.enabled || cfg->ws_listener_count;
}

static sedge_err tls_site(front_t *f, const char *name, const char *bind, const char *ca,
                          const char *cert, const char *key, const char *crl, const char *alpn,
                          unsigned routes)
{
    const listener_config_t *tls = first_tls(&f->core->cfg);
    http_site_config_t sc = {
        .name = name,
        .bind = bind,
        .ca_file = ca    ? ca
                   : tls ? tls->ca_file
                         : NULL,
        .cert_file = cert  ? cert
                     : tls ? tls->cert_file
                           : NULL,
        .key_file = key   ? key
                    : tls ? tls->key_file
                          : NULL,
        .crl_file = crl            ? crl
                    : (tls && !ca) ? tls->crl_file
                                   : NULL,
        .client_cert = HTTP_CLIENT_CERT_REQUIRED,
        .alpn = alpn,
        .routes = routes,
    };
    if (!sc.ca_file || !sc.cert_file || !sc.key_file) {
        LOGE("%s on %s needs ca_file, cert_file and key_file (or a tls listener to take them "
             "from)",
             name, bind);
        return SEDGE_ERR_INVALID;
    }
    return http_add_site(f->http, &sc);
}

sedge_err front_start(core_t *c)
{
    const config_t *cfg = &c->cfg;
    if (!wanted(cfg))
        return SEDGE_OK;
    front_t *f = calloc(1, sizeof *f);
    if (!f)
        return SEDGE_ERR_NOMEM;
    f->core = c;
    c->front = f;
    const http_config_t *h = &cfg->http;
    http_options_t o = {
        .max_connections = h->max_connections,
        .max_header_bytes = 8192,
        .max_body_bytes = GROUP_MAX_BYTES_DEFAULT + 65536,
        .timeout_s = h->timeout_s,
        .max_ws_message = h->max_ws_frame_bytes,
        .cert_allowed = cert_allowed,
        .ctx = f,
        .tls = h->tls_bind || cfg->discovery.enabled,
    };
    for (size_t i = 0; i < cfg->ws_listener_count; i++)
        o.tls |= cfg->ws_listeners[i].type == LISTENER_TLS;
    sedge_err err = http_create(c->loop, &o, &f->http);
    if (err)
        return err;
    unsigned site_routes =
        (h->metrics ? HTTP_ROUTE_METRICS : 0) | (h->console ? HTTP_ROUTE_CONSOLE : 0);
    http_ws_handler_t mqtt = {.open = mqtt_ws_open,
                              .receive = mqtt_ws_receive,
                              .written = mqtt_ws_written,
                              .closed = mqtt_ws_closed,
                              .ctx = f};
    http_ws_handler_t console_ws = console_ws_handler;
    console_ws.ctx = f;
    if ((err = http_route(f->http, HTTP_ROUTE_DISCOVERY, "/", discovery_handle, f)) ||
        (err = http_route(f->http, HTTP_ROUTE_METRICS, "/metrics", metrics_handle, f)) ||
        (err = http_route(f->http, HTTP_ROUTE_CONSOLE, "/", console_handle, f)) ||
        (err = http_ws_route(f->http, HTTP_ROUTE_MQTT, "/mqtt", "mqtt", &mqtt)) ||
        (err = http_ws_route(f->http, HTTP_ROUTE_CONSOLE, "/console/ws", "sedge-console",
                             &console_ws)))
        return err;
    if (cfg->discovery.enabled && (err = discovery_start(f)))
        return err;
    if ((err = console_start(f)))
        return err;
    if (h->bind) {
        http_site_config_t sc = {
            .name = "http", .bind = h->bind, .loopback_only = true, .routes = site_routes};
        if ((err = http_add_site(f->http, &sc)))
            return err;
        char host[128];
        int port;
        if (http_parse_bind(h->bind, host, sizeof host, &port) == SEDGE_OK)
            snprintf(f->url, sizeof f->url, strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d",
                     host, port);
    }
    if (h->tls_bind && (err = tls_site(f, "https", h->tls_bind, h->ca_file, h->cert_file,
                                       h->key_file, h->crl_file, NULL, site_routes)))
        return err;
    const discovery_config_t *d = &cfg->discovery;
    for (size_t i = 0; d->enabled && i < d->bind_count; i++)
        if ((err = tls_site(f, "discovery", d->binds[i], d->ca_file, d->cert_file, d->key_file,
                            d->crl_file, "x-amzn-http-ca,http/1.1", HTTP_ROUTE_DISCOVERY)))
            return err;
    for (size_t i = 0; i < cfg->ws_listener_count; i++) {
        const listener_config_t *l = &cfg->ws_listeners[i];
        if (l->type == LISTENER_TLS) {
            if ((err = tls_site(f, "wss", l->bind, l->ca_file, l->cert_file, l->key_file,
                                l->crl_file, NULL, HTTP_ROUTE_MQTT)))
                return err;
        } else {
            http_site_config_t sc = {
                .name = "ws", .bind = l->bind, .loopback_only = true, .routes = HTTP_ROUTE_MQTT};
            if ((err = http_add_site(f->http, &sc)))
                return err;
        }
    }
    return SEDGE_OK;
}

static void http_stopped(void *ctx)
{
    front_t *f = ctx;
    if (f->stop_done)
        f->stop_done(f->stop_ctx);
}

void front_stop(front_t *f, void (*done)(void *ctx), void *ctx)
{
    f->stop_done = done;
    f->stop_ctx = ctx;
    console_stop(f);
    if (!f->http) {
        done(ctx);
        return;
    }
    http_stop(f->http, http_stopped, f);
}

void front_free(front_t *f)
{
    if (!f)
        return;
    http_free(f->http);
    json_decref(f->cas);
    json_decref(f->last_seen);
    free(f);
}
