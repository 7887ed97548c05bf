/*
 * revoke: certificates that may no longer connect — those the deployed
 * group lists in "revoked_certificates" (by SHA-256 fingerprint or serial
 * number, asked through the may_use_certificate hook) and those a TLS
 * listener's CRL file revokes. Both are enforced at the handshake and on
 * connections already open: a new deployment, or SIGHUP reloading the
 * CRLs, cuts the clients whose certificates are revoked.
 */
#include "internal.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <string.h>

#define LOG_TAG "broker"

bool client_certificate_revoked(client_t *c)
{
    broker_t *b = c->broker;
    X509 *cert = c->ssl ? SSL_get0_peer_certificate(c->ssl) : NULL;
    if (!cert && c->transport && !c->transport->gone && c->transport->ops->peer_certificate)
        cert = c->transport->ops->peer_certificate(c->transport->ctx);
    if (!cert || !b->hooks.may_use_certificate)
        return false;
    uint8_t sha256[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (X509_digest(cert, EVP_sha256(), sha256, &md_len) != 1 || md_len != 32)
        return true; /* cannot tell: refuse rather than let it through */
    uint8_t serial[64];
    int serial_len = 0;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    if (bn && BN_num_bytes(bn) <= (int)sizeof serial)
        serial_len = BN_bn2bin(bn, serial);
    BN_free(bn);
    return !b->hooks.may_use_certificate(b->hooks_ctx, sha256,
                                         (bytes_t){serial, (size_t)serial_len});
}

/* Add every CRL in a PEM file to the store. */
static sedge_err load_crls(X509_STORE *store, const char *crl_file)
{
    X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
    if (!lookup || X509_load_crl_file(lookup, crl_file, X509_FILETYPE_PEM) <= 0) {
        char err[256] = "no CRL in the file";
        unsigned long e = ERR_get_error();
        if (e)
            ERR_error_string_n(e, err, sizeof err);
        ERR_clear_error();
        LOGE("cannot load the CRL file %s: %s", crl_file, err);
        return SEDGE_ERR_TLS;
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    return SEDGE_OK;
}

sedge_err listener_trust_store(const char *ca_file, const char *crl_file, X509_STORE **out)
{
    X509_STORE *store = X509_STORE_new();
    if (!store)
        return SEDGE_ERR_NOMEM;
    if (X509_STORE_load_file(store, ca_file) != 1) {
        ERR_clear_error();
        LOGE("cannot load the CA file %s", ca_file);
        X509_STORE_free(store);
        return SEDGE_ERR_TLS;
    }
    if (crl_file && load_crls(store, crl_file)) {
        X509_STORE_free(store);
        return SEDGE_ERR_TLS;
    }
    *out = store;
    return SEDGE_OK;
}

/* Is the certificate of a connected client revoked by `store`'s CRLs?
 * The chain is verified again, its validity period aside. */
static bool revoked_by_crl(X509_STORE *store, client_t *c)
{
    X509 *cert = SSL_get0_peer_certificate(c->ssl);
    if (!cert)
        return false;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!ctx || X509_STORE_CTX_init(ctx, store, cert, SSL_get_peer_cert_chain(c->ssl)) != 1) {
        X509_STORE_CTX_free(ctx);
        return false;
    }
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
    bool revoked =
        X509_verify_cert(ctx) != 1 && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_CERT_REVOKED;
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return revoked;
}

bool client_revoked_by_crl(client_t *c)
{
    if (!c->listener->crl_file)
        return false;
    SSL_CTX *ctx = c->listener->ssl_ctx;
    /* Verified against these very CRLs, and the answer still holds. */
    if (tls_verify_known(ctx, SSL_get0_peer_certificate(c->ssl)))
        return false;
    return revoked_by_crl(SSL_CTX_get_cert_store(ctx), c);
}

size_t broker_reload_tls(broker_t *b, size_t *reloaded)
{
    size_t cut = 0;
    *reloaded = 0;
    for (listener_t *l = b->listeners; l; l = l->next) {
        if (l->type != LISTENER_TLS)
            continue;
        if (listener_reload_tls(l)) {
            LOGW("listener %s keeps its previous CRLs, certificate, key and CA", l->name);
            continue;
        }
        (*reloaded)++;
        if (l->crl_file)
            LOGI("listener %s: CRLs reloaded from %s", l->name, l->crl_file);
        X509_STORE *store = SSL_CTX_get_cert_store(l->ssl_ctx);
        client_t **all;
        size_t count = broker_clients(b, &all);
        for (size_t i = 0; i < count; i++) {
            client_t *c = all[i];
            if (!l->crl_file || c->state == CLIENT_CLOSING || c->listener != l ||
                c->state == CLIENT_TLS_HANDSHAKE || !revoked_by_crl(store, c))
                continue;
            c->send_will = false;
            client_disconnect(c, MQTT_RC_NOT_AUTHORIZED, "certificate revoked by the CRL");
            cut++;
        }
        free(all);
    }
    return cut;
}
