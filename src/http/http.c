/*
 * http: libwebsockets on sedged's loop.
 *
 * One lws context, created with LWS_SERVER_OPTION_LIBUV and sedged's loop
 * as its foreign loop: lws watches its sockets with uv_poll handles, runs
 * its timers on a uv_timer and its deferred work on a uv_idle of that
 * loop, and never runs a loop of its own. Each site is an lws vhost.
 *
 * Stopping, on a foreign loop, takes two calls of lws_context_destroy: the
 * first closes every connection and listener and starts closing lws's own
 * handles; the loop runs their close callbacks; the second, once they are
 * all closed, frees the context. lws tells nobody when its handles are
 * closed, so a check handle of ours looks, after each turn's I/O, whether
 * lws's idle handle (the last it closes) is still on the loop.
 */
#include "http.h"

#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define LOG_TAG "http"

#define HTTP_MAX_ROUTES 16
#define HTTP_MAX_WS_ROUTES 4
#define HTTP_MAX_SITES 16
#define WS_CHUNK (64u * 1024u)
#define HTTP_BODY_CHUNK (64u * 1024u)

typedef struct {
    unsigned route;
    char *prefix;
    size_t prefix_len;
    http_handler_fn fn;
    void *ctx;
} route_t;

typedef struct {
    unsigned route;
    char *path;
    char *protocol;
    http_ws_handler_t h;
} ws_route_t;

typedef struct site {
    http_server_t *server;
    char *name;
    unsigned routes;
    bool tls;
    char *crl_file;
    struct lws_vhost *vhost;
    struct lws_protocols *protocols; /* http, then one per ws route */
} site_t;

struct http_server {
    uv_loop_t *loop;
    http_options_t o;
    struct lws_context *context;
    uv_handle_t *lws_idle; /* lws's idle handle: gone from the loop once lws has closed all */
    uv_timer_t stop_watch; /* polls, while stopping, for lws's handles to be closed */
    bool stopping, destroyed1;
    void (*stop_done)(void *);
    void *stop_ctx;
    route_t routes[HTTP_MAX_ROUTES];
    size_t route_count;
    ws_route_t ws_routes[HTTP_MAX_WS_ROUTES];
    size_t ws_route_count;
    site_t *sites[HTTP_MAX_SITES];
    size_t site_count;
    http_stats_t stats;
};

struct http_request {
    http_server_t *server;
    struct lws *wsi; /* NULL once the connection has gone */
    bool responded, headers_sent;
    int status;
    char *content_type;
    char *headers;
    buf_t body;
    size_t sent;
};

/* Per HTTP connection (lws's per-session data of the http protocol). */
typedef struct {
    http_request_t *req; /* the request being answered */
    buf_t body_in;       /* the body of a request being received */
    char method[8];
    char *path;
    bool too_large;
} http_pss_t;

struct http_ws {
    http_server_t *server;
    const ws_route_t *route;
    struct lws *wsi;
    void *conn;   /* the handler's */
    uint8_t *out; /* LWS_PRE + pending bytes */
    size_t out_len, out_sent;
    bool writing, closing, closed, frame_too_large;
    size_t frame_left; /* bytes of the current frame still to come */
};

static http_server_t *server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static site_t *site_of(struct lws *wsi)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    return vh ? lws_vhost_user(vh) : NULL;
}

/* ---- logging: lws's own lines at our levels ---- */

static void lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (level & LLL_ERR)
        LOGW("lws: %.*s", (int)n, line);
    else
        LOGD("lws: %.*s", (int)n, line);
}

/* ---- binds ---- */

sedge_err http_parse_bind(const char *bind, char *host, size_t host_cap, int *port)
{
    const char *colon = bind ? strrchr(bind, ':') : NULL;
    if (!colon || colon == bind)
        return SEDGE_ERR_INVALID;
    size_t hlen = (size_t)(colon - bind);
    const char *h = bind;
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= host_cap)
        return SEDGE_ERR_INVALID;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535)
        return SEDGE_ERR_INVALID;
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    if (uv_ip4_addr(host, (int)p, &a4) != 0 && uv_ip6_addr(host, (int)p, &a6) != 0)
        return SEDGE_ERR_INVALID;
    *port = (int)p;
    return SEDGE_OK;
}

bool http_host_is_loopback(const char *host)
{
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    if (uv_ip4_addr(host, 0, &a4) == 0)
        return (ntohl(a4.sin_addr.s_addr) >> 24) == 127;
    if (uv_ip6_addr(host, 0, &a6) == 0)
        return memcmp(&a6.sin6_addr, &in6addr_loopback, sizeof in6addr_loopback) == 0;
    return false;
}

/* ---- requests ---- */

static const route_t *find_route(const http_server_t *s, unsigned site_routes, const char *path)
{
    const route_t *best = NULL;
    for (size_t i = 0; i < s->route_count; i++) {
        const route_t *r = &s->routes[i];
        if (!(r->route & site_routes) || strncmp(path, r->prefix, r->prefix_len) != 0)
            continue;
        if (!best || r->prefix_len > best->prefix_len)
            best = r;
    }
    return best;
}

static void request_free(http_request_t *req)
{
    free(req->content_type);
    free(req->headers);
    buf_free(&req->body);
    free(req);
}

static void count_status(http_server_t *s, int status)
{
    s->stats.requests++;
    if (status < 300)
        s->stats.responses_2xx++;
    else if (status < 400)
        s->stats.responses_3xx++;
    else if (status < 500)
        s->stats.responses_4xx++;
    else
        s->stats.responses_5xx++;
}

void http_respond(http_request_t *req, int status, const char *content_type, const char *headers,
                  bytes_t body)
{
    if (!req || req->responded)
        return;
    req->responded = true;
    count_status(req->server, status);
    if (!req->wsi) {
        request_free(req);
        return;
    }
    req->status = status;
    req->content_type = strdup(content_type ? content_type : "text/plain; charset=utf-8");
    req->headers = headers ? strdup(headers) : NULL;
    if (body.len && buf_append(&req->body, body.data, body.len))
        req->status = 500;
    req->server->stats.bytes_out += body.len;
    lws_callback_on_writable(req->wsi);
}

static int header_copy(struct lws *wsi, const char *name, char *out, size_t cap);

int http_request_header(http_request_t *req, const char *name, char *out, size_t cap)
{
    if (!req || !req->wsi || cap == 0)
        return -1;
    return header_copy(req->wsi, name, out, cap);
}

int http_ws_header(http_ws_t *ws, const char *name, char *out, size_t cap)
{
    if (!ws || !ws->wsi || cap == 0)
        return -1;
    return header_copy(ws->wsi, name, out, cap);
}

static int header_copy(struct lws *wsi, const char *name, char *out, size_t cap)
{
    char lname[64];
    size_t n = strlen(name);
    if (n + 2 > sizeof lname)
        return -1;
    for (size_t i = 0; i < n; i++)
        lname[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    lname[n] = ':';
    lname[n + 1] = '\0';
    /* The headers lws knows by token first. */
    static const struct {
        const char *name;
        enum lws_token_indexes token;
    } known[] = {
        {"cookie:", WSI_TOKEN_HTTP_COOKIE},
        {"host:", WSI_TOKEN_HOST},
        {"origin:", WSI_TOKEN_ORIGIN},
        {"content-type:", WSI_TOKEN_HTTP_CONTENT_TYPE},
        {"authorization:", WSI_TOKEN_HTTP_AUTHORIZATION},
        {"accept:", WSI_TOKEN_HTTP_ACCEPT},
        {"user-agent:", WSI_TOKEN_HTTP_USER_AGENT},
        {"referer:", WSI_TOKEN_HTTP_REFERER},
    };
    for (size_t i = 0; i < ARRAY_LEN(known); i++) {
        if (strcmp(lname, known[i].name) != 0)
            continue;
        int len = lws_hdr_total_length(wsi, known[i].token);
        if (len <= 0 || (size_t)len >= cap)
            return -1;
        return lws_hdr_copy(wsi, out, (int)cap, known[i].token);
    }
    int len = lws_hdr_custom_length(wsi, lname, (int)n + 1);
    if (len < 0 || (size_t)len >= cap)
        return -1;
    return lws_hdr_custom_copy(wsi, out, (int)cap, lname, (int)n + 1);
}

static void peer_info(struct lws *wsi, http_request_info_t *info)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    info->peer[0] = '\0';
    info->peer_loopback = false;
    if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&ss, &len) != 0)
        return;
    info->peer_addr = ss;
    char host[48] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, host, sizeof host);
        port = ntohs(a->sin_port);
        info->peer_loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        snprintf(info->peer, sizeof info->peer, "%s:%d", host, port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, host, sizeof host);
        port = ntohs(a->sin6_port);
        info->peer_loopback =
            memcmp(&a->sin6_addr, &in6addr_loopback, sizeof in6addr_loopback) == 0 ||
            (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
        snprintf(info->peer, sizeof info->peer, "[%s]:%d", host, port);
    }
}

/* The verified client certificate's CN into cn[0..cap), or "" */
static void client_cn(struct lws *wsi, char *cn, size_t cap)
{
    cn[0] = '\0';
    SSL *ssl = lws_get_ssl(wsi);
    if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK)
        return;
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (!cert)
        return;
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, (int)cap);
    if (n <= 0 || memchr(cn, 0, (size_t)n))
        cn[0] = '\0';
}

static void fill_info(struct lws *wsi, const site_t *site, http_request_info_t *info, char *cn,
                      size_t cn_cap)
{
    peer_info(wsi, info);
    info->site = site ? site->name : "";
    info->site_routes = site ? site->routes : 0;
    info->tls = lws_get_ssl(wsi) != NULL;
    client_cn(wsi, cn, cn_cap);
    info->client_cn = cn[0] ? cn : NULL;
}

static void dispatch(struct lws *wsi, http_pss_t *pss)
{
    http_server_t *s = server_of(wsi);
    site_t *site = site_of(wsi);
    http_request_t *req = calloc(1, sizeof *req);
    if (!req)
        return;
    req->server = s;
    req->wsi = wsi;
    pss->req = req;
    /* lws keeps the query's arguments as fragments, decoded: join them
     * with '&' again. */
    char query[2048] = "";
    size_t qlen = 0;
    for (int i = 0; qlen + 1 < sizeof query; i++) {
        char frag[1024];
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n <= 0)
            break;
        int w = snprintf(query + qlen, sizeof query - qlen, "%s%s", qlen ? "&" : "", frag);
        if (w < 0 || (size_t)w >= sizeof query - qlen) {
            query[qlen] = '\0';
            break;
        }
        qlen += (size_t)w;
    }
    char cn[256];
    http_request_info_t info = {.method = pss->method,
                                .path = pss->path ? pss->path : "/",
                                .query = query,
                                .body = {pss->body_in.data, pss->body_in.len}};
    fill_info(wsi, site, &info, cn, sizeof cn);
    s->stats.bytes_in += pss->body_in.len;
    const route_t *r = site ? find_route(s, site->routes, info.path) : NULL;
    if (pss->too_large)
        http_respond(req, 413, "text/plain", NULL, BYTES_LIT("request body too large\n"));
    else if (!r)
        http_respond(req, 404, "text/plain", NULL, BYTES_LIT("not found\n"));
    else
        r->fn(r->ctx, req, &info);
    buf_free(&pss->body_in);
}

static const char *method_of(struct lws *wsi)
{
    static const struct {
        enum lws_token_indexes token;
        const char *name;
    } methods[] = {
        {WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},
        {WSI_TOKEN_PUT_URI, "PUT"},       {WSI_TOKEN_PATCH_URI, "PATCH"},
        {WSI_TOKEN_DELETE_URI, "DELETE"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
        {WSI_TOKEN_HEAD_URI, "HEAD"},
    };
    for (size_t i = 0; i < ARRAY_LEN(methods); i++)
        if (lws_hdr_total_length(wsi, methods[i].token) > 0)
            return methods[i].name;
    return NULL;
}

/* Write the response: headers first, then the body in pieces. */
static int write_response(struct lws *wsi, http_pss_t *pss)
{
    http_request_t *req = pss->req;
    if (!req || !req->responded)
        return 0;
    uint8_t buf[LWS_PRE + 4096];
    if (!req->headers_sent) {
        uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
        if (lws_add_http_header_status(wsi, (unsigned)req->status, &p, end) ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                         (const uint8_t *)req->content_type,
                                         (int)strlen(req->content_type), &p, end) ||
            lws_add_http_header_content_length(wsi, req->body.len, &p, end) ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                         (const uint8_t *)"no-store", 8, &p, end))
            return -1;
        /* Extra headers: "Name: value\r\n" lines. */
        for (const char *h = req->headers; h && *h;) {
            const char *eol = strstr(h, "\r\n");
            size_t line = eol ? (size_t)(eol - h) : strlen(h);
            const char *colon = memchr(h, ':', line);
            if (colon) {
                char name[128];
                size_t nlen = (size_t)(colon - h) + 1;
                const char *v = colon + 1;
                while (v < h + line && *v == ' ')
                    v++;
                if (nlen < sizeof name) {
                    memcpy(name, h, nlen);
                    name[nlen] = '\0';
                    if (lws_add_http_header_by_name(wsi, (const uint8_t *)name, (const uint8_t *)v,
                                                    (int)(h + line - v), &p, end))
                        return -1;
                }
            }
            h += line + (eol ? 2 : 0);
        }
        if (lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        req->headers_sent = true;
        if (strcmp(pss->method, "HEAD") == 0)
            req->sent = req->body.len;
    }
    /* The body follows at once (lws keeps what the socket does not take),
     * a chunk per call. */
    if (req->sent < req->body.len) {
        size_t n = req->body.len - req->sent;
        if (n > HTTP_BODY_CHUNK)
            n = HTTP_BODY_CHUNK;
        uint8_t *chunk = malloc(LWS_PRE + n);
        if (!chunk)
            return -1;
        memcpy(chunk + LWS_PRE, req->body.data + req->sent, n);
        req->sent += n;
        bool last = req->sent == req->body.len;
        int w = lws_write(wsi, chunk + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
        free(chunk);
        if (w != (int)n)
            return -1;
        if (!last) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    request_free(req);
    pss->req = NULL;
    free(pss->path);
    pss->path = NULL;
    if (lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

/* A connection let in or not: the cap on open connections. */
static int filter_connection(http_server_t *s)
{
    if (s->stopping || s->stats.connections >= s->o.max_connections) {
        s->stats.connections_refused++;
        if (!s->stopping)
            LOGW("refusing a connection: max_connections (%u) reached", s->o.max_connections);
        return 1;
    }
    return 0;
}

/* Is the presented chain acceptable? Asked by OpenSSL for each
 * certificate of the chain; the leaf also goes to cert_allowed. */
static int verify_client(http_server_t *s, X509_STORE_CTX *store, int preverify_ok)
{
    if (!preverify_ok) {
        s->stats.tls_refused++;
        int e = X509_STORE_CTX_get_error(store);
        LOGW("TLS client refused: %s", X509_verify_cert_error_string(e));
        return 1;
    }
    if (X509_STORE_CTX_get_error_depth(store) != 0 || !s->o.cert_allowed)
        return 0;
    X509 *cert = X509_STORE_CTX_get_current_cert(store);
    uint8_t sha256[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    if (!cert || X509_digest(cert, EVP_sha256(), sha256, &md_len) != 1 || md_len != 32) {
        s->stats.tls_refused++;
        return 1;
    }
    uint8_t serial[64];
    int serial_len = 0;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    if (bn && BN_num_bytes(bn) <= (int)sizeof serial)
        serial_len = BN_bn2bin(bn, serial);
    BN_free(bn);
    if (!s->o.cert_allowed(s->o.ctx, sha256, (bytes_t){serial, (size_t)serial_len})) {
        char cn[256] = "?";
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
        LOGW("TLS client '%s' refused: certificate revoked", cn);
        s->stats.tls_refused++;
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REVOKED);
        return 1;
    }
    return 0;
}

/* The site's SSL_CTX, once lws has made it: CRLs, no resumption (every
 * connection's certificate is checked in a full handshake). */
static void tune_ssl_ctx(site_t *site, SSL_CTX *ctx)
{
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (!site)
        return;
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (site->crl_file) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509_LOOKUP *lookup = store ? X509_STORE_add_lookup(store, X509_LOOKUP_file()) : NULL;
        if (!lookup || X509_load_crl_file(lookup, site->crl_file, X509_FILETYPE_PEM) <= 0) {
            LOGE("site %s: cannot load the CRL file %s", site->name, site->crl_file);
            ERR_clear_error();
        } else {
            X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
        }
    }
}

static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    http_pss_t *pss = user;
    http_server_t *s = lws_get_context(wsi) ? server_of(wsi) : NULL;
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION: return s ? filter_connection(s) : 0;
    case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
        return s ? verify_client(s, user, (int)len) : 0;
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        tune_ssl_ctx(in ? lws_vhost_user(in) : NULL, user);
        return 0;
    case LWS_CALLBACK_WSI_CREATE: /* an accepted connection (listeners are not) */
        if (s) {
            s->stats.connections++;
            s->stats.connections_total++;
        }
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (s && !s->stopping && s->stats.connections)
            s->stats.connections--;
        return 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (pss) {
            if (pss->req) {
                if (pss->req->responded)
                    request_free(pss->req);
                else
                    pss->req->wsi = NULL; /* freed by http_respond */
                pss->req = NULL;
            }
            buf_free(&pss->body_in);
            free(pss->path);
            pss->path = NULL;
        }
        return 0;
    case LWS_CALLBACK_HTTP: {
        if (!pss)
            return -1;
        const char *m = method_of(wsi);
        if (pss->req) /* a pipelined request while one is open */
            return -1;
        free(pss->path);
        pss->path = strndup(in ? (const char *)in : "/", in ? len : 1);
        pss->too_large = false;
        buf_free(&pss->body_in);
        if (!m) {
            snprintf(pss->method, sizeof pss->method, "?");
            dispatch(wsi, pss);
            return 0;
        }
        snprintf(pss->method, sizeof pss->method, "%s", m);
        /* A body comes with POST, PUT and PATCH: wait for it. */
        if (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
            int cl = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
            if (cl > 0)
                return 0;
        }
        dispatch(wsi, pss);
        /* Answered at once (most are): written now, not a turn later. */
        return pss->req && pss->req->responded ? write_response(wsi, pss) : 0;
    }
    case LWS_CALLBACK_HTTP_BODY:
        if (!pss)
            return -1;
        if (pss->body_in.len + len > s->o.max_body_bytes) {
            pss->too_large = true;
            return 0;
        }
        if (buf_append(&pss->body_in, in, len))
            return -1;
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!pss)
            return -1;
        if (pss->too_large)
            s->stats.bad_requests++;
        dispatch(wsi, pss);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE: return pss ? write_response(wsi, pss) : 0;
    case LWS_CALLBACK_CLOSED_HTTP: return 0;
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* ---- WebSockets ---- */

sedge_err http_ws_write(http_ws_t *ws, const uint8_t *data, size_t len)
{
    if (ws->closing || ws->closed || !ws->wsi)
        return SEDGE_ERR_CLOSED;
    if (ws->writing)
        return SEDGE_ERR_BUSY;
    uint8_t *p = malloc(LWS_PRE + len);
    if (!p)
        return SEDGE_ERR_NOMEM;
    memcpy(p + LWS_PRE, data, len);
    free(ws->out);
    ws->out = p;
    ws->out_len = len;
    ws->out_sent = 0;
    ws->writing = true;
    ws->server->stats.bytes_out += len;
    lws_callback_on_writable(ws->wsi);
    return SEDGE_OK;
}

void http_ws_pause(http_ws_t *ws, bool paused)
{
    if (ws->wsi && !ws->closed)
        lws_rx_flow_control(ws->wsi, paused ? 0 : 1);
}

void http_ws_close(http_ws_t *ws)
{
    if (ws->closing || ws->closed)
        return;
    ws->closing = true;
    if (ws->wsi)
        lws_callback_on_writable(ws->wsi);
}

void *http_ws_peer_certificate(http_ws_t *ws)
{
    SSL *ssl = ws->wsi ? lws_get_ssl(ws->wsi) : NULL;
    return ssl ? SSL_get0_peer_certificate(ssl) : NULL;
}

static const ws_route_t *ws_route_of(struct lws *wsi)
{
    http_server_t *s = server_of(wsi);
    const struct lws_protocols *p = lws_get_protocol(wsi);
    for (size_t i = 0; p && i < s->ws_route_count; i++)
        if (strcmp(s->ws_routes[i].protocol, p->name) == 0)
            return &s->ws_routes[i];
    return NULL;
}

static int ws_writeable(struct lws *wsi, http_ws_t *ws)
{
    if (ws->writing && ws->out_sent < ws->out_len) {
        size_t n = ws->out_len - ws->out_sent;
        if (n > WS_CHUNK)
            n = WS_CHUNK;
        /* Each piece in a frame of its own; lws keeps what the socket
         * does not take and calls back only once it has sent it. */
        /* lws writes the frame's header into the LWS_PRE bytes before
         * p: bytes already sent, or the room left at the front. */
        uint8_t *p = ws->out + LWS_PRE + ws->out_sent;
        int w = lws_write(wsi, p, n, ws->route->h.text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY);
        if (w < (int)n)
            return -1;
        ws->out_sent += n;
        if (ws->out_sent < ws->out_len) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        ws->writing = false;
        free(ws->out);
        ws->out = NULL;
        ws->out_len = ws->out_sent = 0;
        if (ws->conn && ws->route->h.written)
            ws->route->h.written(ws->conn);
        if (ws->writing || ws->closing)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (ws->closing && !ws->writing) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    return 0;
}

static int callback_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    http_ws_t *ws = user;
    http_server_t *s = lws_get_context(wsi) ? server_of(wsi) : NULL;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        const ws_route_t *r = ws_route_of(wsi);
        site_t *site = site_of(wsi);
        char uri[256] = "";
        if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) < (int)sizeof uri)
            lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
        if (!r || !site || !(site->routes & r->route) || strcmp(uri, r->path) != 0) {
            s->stats.ws_refused++;
            LOGD("WebSocket refused: path '%s' with subprotocol '%s'", uri, r ? r->protocol : "?");
            return 1;
        }
        if (r->h.accept) {
            http_ws_t probe = {.server = s, .route = r, .wsi = wsi};
            char cn[256];
            http_request_info_t info = {.method = "GET", .path = r->path, .query = ""};
            fill_info(wsi, site, &info, cn, sizeof cn);
            if (!r->h.accept(r->h.ctx, &probe, &info)) {
                s->stats.ws_refused++;
                return 1;
            }
        }
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        const ws_route_t *r = ws_route_of(wsi);
        memset(ws, 0, sizeof *ws);
        ws->server = s;
        ws->route = r;
        ws->wsi = wsi;
        char cn[256];
        http_request_info_t info = {.method = "GET", .path = r->path, .query = ""};
        fill_info(wsi, site_of(wsi), &info, cn, sizeof cn);
        s->stats.ws_total++;
        ws->conn = r->h.open(r->h.ctx, ws, &info);
        if (!ws->conn) {
            s->stats.ws_refused++;
            ws->closed = true;
            return -1;
        }
        s->stats.ws_open++;
        return 0;
    }
    case LWS_CALLBACK_RECEIVE:
        if (!ws || !ws->conn || ws->closed)
            return -1;
        if (lws_is_first_fragment(wsi) && ws->frame_left == 0) {
            size_t total = len + lws_remaining_packet_payload(wsi);
            if (total > s->o.max_ws_message) {
                s->stats.bad_requests++;
                LOGW("WebSocket frame of %zu bytes is over the limit (%u); closing", total,
                     s->o.max_ws_message);
                lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                                 (unsigned char *)"frame too large", 15);
                return -1;
            }
        }
        ws->frame_left = lws_remaining_packet_payload(wsi);
        s->stats.bytes_in += len;
        ws->route->h.receive(ws->conn, in, len);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE: return ws && ws->conn ? ws_writeable(wsi, ws) : 0;
    case LWS_CALLBACK_CLOSED:
        if (ws && ws->conn && !ws->closed) {
            ws->closed = true;
            ws->wsi = NULL;
            if (s->stats.ws_open)
                s->stats.ws_open--;
            void *conn = ws->conn;
            ws->conn = NULL;
            free(ws->out);
            ws->out = NULL;
            ws->route->h.closed(conn);
        }
        return 0;
    default: return 0;
    }
}

/* ---- the server ---- */

sedge_err http_create(uv_loop_t *loop, const http_options_t *opts, http_server_t **out)
{
    http_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return SEDGE_ERR_NOMEM;
    s->loop = loop;
    s->o = *opts;
    if (!s->o.max_connections)
        s->o.max_connections = 256;
    if (!s->o.max_header_bytes)
        s->o.max_header_bytes = 8192;
    if (!s->o.max_body_bytes)
        s->o.max_body_bytes = 1u << 20;
    if (!s->o.timeout_s)
        s->o.timeout_s = 10;
    if (!s->o.max_ws_message)
        s->o.max_ws_message = 1u << 20;
    int lws_levels = LLL_ERR | (log_get_level() >= LOG_DEBUG ? LLL_WARN | LLL_NOTICE : 0);
    lws_set_log_level(lws_levels, lws_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    void *loops[1] = {loop};
    info.foreign_loops = loops;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
                   LWS_SERVER_OPTION_NO_LWS_SYSTEM_STATES |
                   (s->o.tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
    info.user = s;
    info.pcontext = &s->context;
    info.port = CONTEXT_PORT_NO_LISTEN;
    /* lws sizes its tables by this: the descriptors of the HTTP
     * connections, the listeners and a few of its own. */
    info.fd_limit_per_thread = s->o.max_connections + HTTP_MAX_SITES + 8;
    info.max_http_header_data = (unsigned short)s->o.max_header_bytes;
    info.max_http_header_pool = 32;
    info.timeout_secs = s->o.timeout_s;
    info.pt_serv_buf_size = 16384;
    s->context = lws_create_context(&info);
    if (!s->context) {
        LOGE("cannot create the HTTP server (libwebsockets with its libuv event loop plugin)");
        free(s);
        return SEDGE_ERR_IO;
    }
    *out = s;
    return SEDGE_OK;
}

static void find_idle(uv_handle_t *h, void *arg)
{
    http_server_t *s = arg;
    if (h->type == UV_IDLE && !s->lws_idle)
        s->lws_idle = h;
}

sedge_err http_route(http_server_t *s, unsigned route, const char *prefix, http_handler_fn fn,
                     void *ctx)
{
    if (s->route_count == HTTP_MAX_ROUTES)
        return SEDGE_ERR_FULL;
    route_t *r = &s->routes[s->route_count];
    if (!(r->prefix = strdup(prefix)))
        return SEDGE_ERR_NOMEM;
    r->prefix_len = strlen(prefix);
    r->route = route;
    r->fn = fn;
    r->ctx = ctx;
    s->route_count++;
    return SEDGE_OK;
}

sedge_err http_ws_route(http_server_t *s, unsigned route, const char *path, const char *protocol,
                        const http_ws_handler_t *h)
{
    if (s->ws_route_count == HTTP_MAX_WS_ROUTES || s->site_count)
        return SEDGE_ERR_FULL;
    ws_route_t *r = &s->ws_routes[s->ws_route_count];
    r->path = strdup(path);
    r->protocol = strdup(protocol);
    if (!r->path || !r->protocol) {
        free(r->path);
        free(r->protocol);
        return SEDGE_ERR_NOMEM;
    }
    r->route = route;
    r->h = *h;
    s->ws_route_count++;
    return SEDGE_OK;
}

static void site_free(site_t *site)
{
    if (!site)
        return;
    free(site->name);
    free(site->crl_file);
    free(site->protocols);
    free(site);
}

sedge_err http_add_site(http_server_t *s, const http_site_config_t *cfg)
{
    char host[128];
    int port;
    if (s->site_count == HTTP_MAX_SITES)
        return SEDGE_ERR_FULL;
    if (http_parse_bind(cfg->bind, host, sizeof host, &port)) {
        LOGE("%s: bind '%s' is not host:port", cfg->name, cfg->bind);
        return SEDGE_ERR_INVALID;
    }
    if (cfg->loopback_only && !http_host_is_loopback(host)) {
        LOGE("%s: plain HTTP may only bind a loopback address, not '%s'; use TLS with client "
             "certificates",
             cfg->name, cfg->bind);
        return SEDGE_ERR_INVALID;
    }
    site_t *site = calloc(1, sizeof *site);
    if (!site)
        return SEDGE_ERR_NOMEM;
    site->server = s;
    site->routes = cfg->routes;
    site->tls = cfg->cert_file != NULL;
    site->name = strdup(cfg->name);
    site->crl_file = cfg->crl_file ? strdup(cfg->crl_file) : NULL;
    site->protocols = calloc(s->ws_route_count + 2, sizeof *site->protocols);
    if (!site->name || !site->protocols || (cfg->crl_file && !site->crl_file)) {
        site_free(site);
        return SEDGE_ERR_NOMEM;
    }
    site->protocols[0] = (struct lws_protocols){
        .name = "http", .callback = callback_http, .per_session_data_size = sizeof(http_pss_t)};
    size_t np = 1;
    for (size_t i = 0; i < s->ws_route_count; i++) {
        if (!(s->ws_routes[i].route & cfg->routes))
            continue;
        site->protocols[np++] = (struct lws_protocols){
            .name = s->ws_routes[i].protocol,
            .callback = callback_ws,
            .per_session_data_size = sizeof(http_ws_t),
            /* Reads and writes of up to a chunk at a time: lws sends at
             * most tx_packet_size per system call and keeps the rest. */
            .rx_buffer_size = WS_CHUNK,
            .tx_packet_size = WS_CHUNK + LWS_PRE + 16,
        };
    }
    struct lws_context_creation_info vi;
    memset(&vi, 0, sizeof vi);
    vi.vhost_name = site->name;
    vi.port = port;
    /* lws binds "iface" by name or address; all addresses when NULL. */
    vi.iface = (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) ? NULL : host;
    vi.protocols = site->protocols;
    vi.user = site;
    vi.keepalive_timeout = (int)s->o.timeout_s;
    vi.timeout_secs = s->o.timeout_s;
    vi.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    if (strchr(host, ':') == NULL && strcmp(host, "0.0.0.0") != 0)
        vi.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    if (site->tls && !s->o.tls) {
        LOGE("%s: TLS sites need http_options_t.tls", cfg->name);
        site_free(site);
        return SEDGE_ERR_INVALID;
    }
    if (site->tls) {
        /* No client side: lws would make one per vhost, with the system's
         * CA certificates loaded. */
        vi.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
        vi.ssl_cert_filepath = cfg->cert_file;
        vi.ssl_private_key_filepath = cfg->key_file;
        vi.alpn = cfg->alpn ? cfg->alpn : "http/1.1";
        if (cfg->client_cert == HTTP_CLIENT_CERT_REQUIRED) {
            vi.options |= LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT;
            vi.ssl_ca_filepath = cfg->ca_file;
        }
    }
    s->sites[s->site_count++] = site; /* before lws calls back about it */
    site->vhost = lws_create_vhost(s->context, &vi);
    if (!site->vhost) {
        LOGE("%s: cannot listen on %s%s", cfg->name, cfg->bind,
             site->tls ? " (or load its certificate, key or CA)" : "");
        s->site_count--;
        site_free(site);
        return SEDGE_ERR_IO;
    }
    if (!s->lws_idle)
        uv_walk(s->loop, find_idle, s);
    LOGI("listening on %s (%s%s)", cfg->bind, cfg->name,
         site->tls
             ? (cfg->client_cert == HTTP_CLIENT_CERT_REQUIRED ? ", TLS with client certificates"
                                                              : ", TLS")
             : "");
    return SEDGE_OK;
}

void http_get_stats(http_server_t *s, http_stats_t *out)
{
    *out = s->stats;
}

static bool idle_present;

static void look_for_idle(uv_handle_t *h, void *arg)
{
    if (h == arg)
        idle_present = true;
}

static void stop_watch_closed(uv_handle_t *h)
{
    http_server_t *s = h->data;
    if (s->stop_done)
        s->stop_done(s->stop_ctx);
}

/* Every millisecond while stopping (a check handle would not wake the
 * loop once lws's handles are gone): once lws's handles are all closed,
 * the second destroy frees the context. */
static void stop_watch_cb(uv_timer_t *h)
{
    http_server_t *s = h->data;
    idle_present = false;
    if (s->lws_idle)
        uv_walk(s->loop, look_for_idle, s->lws_idle);
    if (idle_present)
        return;
    if (s->context)
        lws_context_destroy(s->context); /* the second: frees it, sets s->context NULL */
    uv_timer_stop(h);
    uv_close((uv_handle_t *)h, stop_watch_closed);
}

void http_stop(http_server_t *s, void (*done)(void *ctx), void *ctx)
{
    s->stop_done = done;
    s->stop_ctx = ctx;
    s->stopping = true;
    if (!s->lws_idle)
        uv_walk(s->loop, find_idle, s);
    lws_context_destroy(s->context); /* the first: closes everything */
    uv_timer_init(s->loop, &s->stop_watch);
    s->stop_watch.data = s;
    uv_timer_start(&s->stop_watch, stop_watch_cb, 1, 1);
}

void http_free(http_server_t *s)
{
    if (!s)
        return;
    if (s->context) /* never stopped: nothing ran on the loop */
        lws_context_destroy(s->context);
    for (size_t i = 0; i < s->route_count; i++)
        free(s->routes[i].prefix);
    for (size_t i = 0; i < s->ws_route_count; i++) {
        free(s->ws_routes[i].path);
        free(s->ws_routes[i].protocol);
    }
    for (size_t i = 0; i < s->site_count; i++)
        site_free(s->sites[i]);
    free(s);
}
