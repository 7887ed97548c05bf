/*
 * tls_tune: what a TLS listener's context does once so that each handshake
 * does less, without changing what is verified or sent.
 *
 * Measured with callgrind on OpenSSL 3.0 (bench/connbench against the
 * listener), a full mutual-TLS handshake cost the broker about 11.7 M
 * instructions, of which:
 *   - 0.95 M rebuilding the server's own certificate chain: with a
 *     certificate file that holds only the leaf, OpenSSL verifies the leaf
 *     against the trust store on every handshake to find what to send. The
 *     chain is built here once; the same certificates go on the wire.
 *   - 3 M for the two stateless TLS 1.3 tickets: each is the session
 *     serialised, parsed back (with the client's certificate, whose public
 *     key OpenSSL 3.0 decodes through its slow provider lookup), serialised
 *     again and encrypted; resuming one parses it once more, and the two
 *     new tickets of a resumed handshake twice: half of a resumed
 *     handshake. Tickets here are stateful instead (SSL_OP_NO_TICKET, which
 *     in TLS 1.3 keeps tickets but makes each one a session id into the
 *     listener's session cache), one per handshake: the session object is
 *     kept as it is, never serialised.
 *   - 1.9 M verifying the client's chain: remembered per certificate
 *     (tls_verify.c).
 * The price of stateful tickets is memory: a live connection's session is
 * its own anyway, but a closed connection's cached session keeps the
 * client's certificate, parsed (about 7 KB a session, measured; a copy of
 * our CA that the client sent is not kept, tls_verify.c). So the cache is
 * bounded (TLS_SESSION_CACHE_MAX sessions, oldest out first) and a closed
 * connection's session is kept TLS_SESSION_CLOSED_S, enough for a client
 * that lost its network to come back, then freed by the tick. Resumed
 * sessions are checked against revocation again (conn.c), as before.
 */
#include "internal.h"

#include <openssl/err.h>
#include <time.h>

#define LOG_TAG "broker"

void tls_tune_server(SSL_CTX *ctx)
{
    /* Only when the certificate file gave no chain: then OpenSSL would
     * build it per handshake (a chain from the file is sent as it is). A
     * chain that does not verify is kept as far as it goes, as OpenSSL's
     * per-handshake building does. */
    STACK_OF(X509) *chain = NULL;
    if (SSL_CTX_get0_chain_certs(ctx, &chain) == 1 && sk_X509_num(chain) <= 0 &&
        SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR |
                                          SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR) <= 0) {
        LOGD("the server certificate's chain is built per handshake");
        ERR_clear_error();
    }
    if (tls_verify_attach(ctx))
        LOGW("out of memory for the certificate verification cache; verifying every handshake");
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, TLS_SESSION_CACHE_MAX);
}

void tls_tune_free(SSL *ssl, bool resumable)
{
    /* OpenSSL takes a session out of the cache when its connection ends
     * without a close_notify sent, which is how MQTT connections end (a
     * DISCONNECT, then the socket closed). A client that was let in keeps
     * its session, as a stateless ticket would; one refused or cut by a
     * TLS error loses it. */
    SSL_SESSION *s = SSL_get0_session(ssl);
    if (resumable && s) {
        SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN);
        time_t left = SSL_SESSION_get_time(s) + SSL_SESSION_get_timeout(s) - time(NULL);
        if (left > TLS_SESSION_CLOSED_S)
            SSL_SESSION_set_timeout(s, (long)(time(NULL) - SSL_SESSION_get_time(s)) +
                                           TLS_SESSION_CLOSED_S);
    }
    SSL_free(ssl);
}

void tls_tune_tick(broker_t *b)
{
    time_t now = time(NULL);
    for (listener_t *l = b->listeners; l; l = l->next)
        if (l->ssl_ctx)
            SSL_CTX_flush_sessions(l->ssl_ctx, (long)now);
}
