/*
 * listener: the sockets the broker accepts connections on — TCP (loopback
 * only: it trusts the client id), TLS (a client certificate signed by the
 * configured CA, and not revoked by its CRL file when there is one, is
 * required; its CN is the client's identity) and unix sockets (trusted
 * local processes).
 */
#include "internal.h"

#include <sys/un.h>

#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_TAG "broker"

static void on_connection(uv_stream_t *server, int status)
{
    listener_t *l = server->data;
    broker_t *b = l->broker;
    if (status < 0) {
        LOGW("listener %s: accept failed: %s", l->name, uv_strerror(status));
        return;
    }
    client_t *c = calloc(1, sizeof *c);
    if (!c) {
        LOGE("listener %s: out of memory accepting a connection", l->name);
        return;
    }
    int rc = l->type == LISTENER_UNIX ? uv_pipe_init(b->loop, &c->h.pipe, 0)
                                      : uv_tcp_init(b->loop, &c->h.tcp);
    if (rc == 0)
        rc = uv_accept(server, &c->h.stream);
    if (rc) {
        LOGW("listener %s: accept failed: %s", l->name, uv_strerror(rc));
        free(c);
        return;
    }
    client_accepted(l, c);
}

/* "host:port" or "[v6]:port" into a socket address. */
static sedge_err parse_bind(const char *bind, struct sockaddr_storage *out)
{
    char host[256];
    const char *colon = strrchr(bind, ':');
    if (!colon || colon == bind)
        return SEDGE_ERR_INVALID;
    size_t hlen = (size_t)(colon - bind);
    if (bind[0] == '[' && hlen >= 2 && bind[hlen - 1] == ']') {
        bind++;
        hlen -= 2;
    }
    if (hlen >= sizeof host)
        return SEDGE_ERR_INVALID;
    memcpy(host, bind, hlen);
    host[hlen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || end == colon + 1)
        return SEDGE_ERR_INVALID;
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0)
        return SEDGE_OK;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0)
        return SEDGE_OK;
    return SEDGE_ERR_INVALID;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
    return memcmp(&a6->sin6_addr, &in6addr_loopback, sizeof in6addr_loopback) == 0;
}

sedge_err broker_check_bind(listener_type_t type, const char *bind, char *why, size_t len)
{
    if (type == LISTENER_UNIX) {
        struct sockaddr_un un;
        if (strlen(bind) >= sizeof un.sun_path) {
            snprintf(why, len, "the socket path '%.80s...' is longer than %zu bytes", bind,
                     sizeof un.sun_path - 1);
            return SEDGE_ERR_INVALID;
        }
        return SEDGE_OK;
    }
    struct sockaddr_storage addr;
    if (parse_bind(bind, &addr)) {
        snprintf(why, len,
                 "'%s' is not ADDRESS:PORT (an IPv4 address or [IPv6] address, not a host "
                 "name, and a port from 0 to 65535)",
                 bind);
        return SEDGE_ERR_INVALID;
    }
    if (type == LISTENER_TCP && !is_loopback(&addr)) {
        snprintf(why, len,
                 "a plain tcp listener identifies clients by what they claim, so it may only "
                 "bind a loopback address (127.0.0.1, [::1]), not '%s'; use a tls listener",
                 bind);
        return SEDGE_ERR_INVALID;
    }
    return SEDGE_OK;
}

static void log_ssl_error(const char *what, const char *file)
{
    char err[256] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, err, sizeof err);
    LOGE("%s %s: %s", what, file ? file : "", err);
    ERR_clear_error();
}

static SSL_CTX *server_tls_context(const listener_config_t *cfg)
{
    if (!cfg->ca_file || !cfg->cert_file || !cfg->key_file) {
        LOGE("a tls listener needs ca_file, cert_file and key_file");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        log_ssl_error("cannot create a TLS context", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
        log_ssl_error("cannot load certificate", cfg->cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
        log_ssl_error("cannot load private key", cfg->key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        log_ssl_error("private key does not match certificate", cfg->cert_file);
        goto fail;
    }
    X509_STORE *trust;
    if (listener_trust_store(cfg->ca_file, cfg->crl_file, &trust))
        goto fail;
    SSL_CTX_set_cert_store(ctx, trust);
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
    if (names)
        SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* Sessions may be resumed (TLS 1.3 tickets): a client that caches its
     * session reconnects with a short handshake. Without a session id
     * context OpenSSL refuses any resumption when it verifies peers. A
     * resumed session is checked against revocation again at the end of
     * its handshake (conn.c), since no chain is verified then. */
    static const unsigned char sid_ctx[] = "sedge-mqtt";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    SSL_CTX_set_timeout(ctx, TLS_SESSION_LIFETIME_S);
    tls_tune_server(ctx);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static void free_listener(listener_t *l)
{
    if (l->ssl_ctx)
        SSL_CTX_free(l->ssl_ctx);
    free(l->name);
    free(l->path);
    free(l->ca_file);
    free(l->crl_file);
    free(l->cert_file);
    free(l->key_file);
    free(l);
}

sedge_err listener_reload_tls(listener_t *l)
{
    listener_config_t cfg = {.type = LISTENER_TLS,
                             .bind = l->name,
                             .ca_file = l->ca_file,
                             .cert_file = l->cert_file,
                             .key_file = l->key_file,
                             .crl_file = l->crl_file};
    SSL_CTX *ctx = server_tls_context(&cfg);
    if (!ctx)
        return SEDGE_ERR_TLS;
    SSL_CTX_free(l->ssl_ctx); /* each connection's SSL holds a reference of its own */
    l->ssl_ctx = ctx;
    return SEDGE_OK;
}

static void on_listener_closed(uv_handle_t *h)
{
    listener_t *l = h->data;
    broker_t *b = l->broker;
    if (l->path)
        unlink(l->path);
    free_listener(l);
    broker_handle_closed(b);
}

sedge_err broker_listen(broker_t *b, const listener_config_t *cfg)
{
    listener_t *l = calloc(1, sizeof *l);
    if (!l || !(l->name = strdup(cfg->bind))) {
        free(l);
        return SEDGE_ERR_NOMEM;
    }
    l->broker = b;
    l->type = cfg->type;
    l->h.stream.data = l;
    int rc;
    if (cfg->type == LISTENER_UNIX) {
        if (!(l->path = strdup(cfg->bind))) {
            free_listener(l);
            return SEDGE_ERR_NOMEM;
        }
        unlink(cfg->bind); /* a socket left by a previous run */
        uv_pipe_init(b->loop, &l->h.pipe, 0);
        rc = uv_pipe_bind(&l->h.pipe, cfg->bind);
        if (rc == 0)
            chmod(cfg->bind, 0660);
    } else {
        struct sockaddr_storage addr;
        char why[256];
        if (broker_check_bind(cfg->type, cfg->bind, why, sizeof why) ||
            parse_bind(cfg->bind, &addr)) {
            LOGE("listener %s", why);
            free_listener(l);
            return SEDGE_ERR_INVALID;
        }
        if (cfg->type == LISTENER_TLS && !(l->ssl_ctx = server_tls_context(cfg))) {
            free_listener(l);
            return SEDGE_ERR_TLS;
        }
        if (cfg->type == LISTENER_TLS &&
            (!(l->ca_file = strdup(cfg->ca_file)) || !(l->cert_file = strdup(cfg->cert_file)) ||
             !(l->key_file = strdup(cfg->key_file)) ||
             (cfg->crl_file && !(l->crl_file = strdup(cfg->crl_file))))) {
            free_listener(l);
            return SEDGE_ERR_NOMEM;
        }
        uv_tcp_init(b->loop, &l->h.tcp);
        rc = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&addr, 0);
    }
    if (rc == 0)
        rc = uv_listen(&l->h.stream, 1024, on_connection);
    if (rc) {
        LOGE("cannot listen on %s: %s", cfg->bind, uv_strerror(rc));
        b->handles_open++;
        l->path = NULL; /* it may be another process's socket */
        uv_close((uv_handle_t *)&l->h.stream, on_listener_closed);
        return SEDGE_ERR_IO;
    }
    b->handles_open++;
    l->next = b->listeners;
    b->listeners = l;
    static const char *const kinds[] = {"tcp", "tls", "unix"};
    LOGI("listening on %s (%s)", cfg->bind, kinds[cfg->type]);
    return SEDGE_OK;
}

void listeners_close(broker_t *b)
{
    while (b->listeners) {
        listener_t *l = b->listeners;
        b->listeners = l->next;
        uv_close((uv_handle_t *)&l->h.stream, on_listener_closed);
    }
}
