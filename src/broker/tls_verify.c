/*
 * tls_verify: a TLS listener's memory of the client certificates it has
 * verified, so that a thing reconnecting with the same certificate is not
 * verified from scratch each time.
 *
 * Verifying a client's chain (signatures up to the CA, validity periods,
 * the CRLs when the listener has some) was a fifth of a full handshake's
 * cost (callgrind, OpenSSL 3.0). Its answer depends only on the
 * certificate's bytes, the trust store, and the time. So a success is
 * remembered, keyed by the SHA-256 of the certificate's DER encoding (its
 * fingerprint: another certificate, with the same name or not, has
 * another), with the store it was verified against, for as long as the
 * answer cannot change: until the first certificate of the chain expires
 * or, with CRLs, until the first CRL's next update. A new store (CRLs
 * reloaded on SIGHUP) forgets everything. Failures are never remembered.
 * The group's revocation list is not part of this: it is checked after
 * every handshake (conn.c), remembered certificate or not.
 *
 * The memory is a direct-mapped table of TLS_VERIFY_SLOTS fingerprints,
 * allocated on the first success, owned by the listener's SSL_CTX (freed
 * with it).
 */
#include "internal.h"

#include <openssl/x509_vfy.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TLS_VERIFY_SLOTS 128

typedef struct {
    uint8_t fingerprint[32];
    const X509_STORE *store; /* verified against; NULL: an empty slot */
    time_t from, until;      /* the answer holds from `from` until before `until` */
} verified_t;

typedef struct {
    verified_t *slots; /* TLS_VERIFY_SLOTS, NULL until the first success */
    uint64_t hits;
} verify_cache_t;

static int cache_index = -1;

static void free_cache(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                       void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    verify_cache_t *vc = ptr;
    if (vc)
        free(vc->slots);
    free(vc);
}

static verify_cache_t *cache_of(SSL_CTX *ctx)
{
    return cache_index < 0 ? NULL : SSL_CTX_get_ex_data(ctx, cache_index);
}

static bool fingerprint(X509 *cert, uint8_t out[32])
{
    unsigned int len = 0;
    return X509_digest(cert, EVP_sha256(), out, &len) == 1 && len == 32;
}

static verified_t *slot_of(verify_cache_t *vc, const uint8_t fp[32])
{
    return &vc->slots[fp[0] % TLS_VERIFY_SLOTS];
}

static bool known(verify_cache_t *vc, const uint8_t fp[32], const X509_STORE *store, time_t now)
{
    if (!vc || !vc->slots)
        return false;
    const verified_t *v = slot_of(vc, fp);
    return v->store == store && now >= v->from && now < v->until &&
           memcmp(v->fingerprint, fp, 32) == 0;
}

/* `t` as a time_t (seconds from now added to now); false if unreadable. */
static bool asn1_time(const ASN1_TIME *t, time_t now, time_t *out)
{
    int days = 0, secs = 0;
    if (!t || ASN1_TIME_diff(&days, &secs, NULL, t) != 1)
        return false;
    *out = now + (time_t)days * 86400 + secs;
    return true;
}

/* The period in which a success just found stays one: the chain's
 * validity periods, and the store's CRLs' next updates when CRLs count. */
static bool answer_period(X509_STORE_CTX *xs, time_t now, time_t *from, time_t *until)
{
    *from = now;
    *until = now + TLS_SESSION_LIFETIME_S;
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(xs);
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        time_t nb, na;
        if (!asn1_time(X509_get0_notBefore(x), now, &nb) ||
            !asn1_time(X509_get0_notAfter(x), now, &na))
            return false;
        if (nb > *from)
            *from = nb;
        if (na < *until)
            *until = na;
    }
    if (X509_VERIFY_PARAM_get_flags(X509_STORE_CTX_get0_param(xs)) & X509_V_FLAG_CRL_CHECK) {
        STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(X509_STORE_CTX_get0_store(xs));
        for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
            X509_CRL *crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, i));
            time_t next;
            if (!crl)
                continue;
            if (!X509_CRL_get0_nextUpdate(crl))
                continue; /* no next update: valid until replaced (SIGHUP) */
            if (!asn1_time(X509_CRL_get0_nextUpdate(crl), now, &next))
                return false;
            if (next < *until)
                *until = next;
        }
    }
    return *from <= now && now < *until;
}

static void remember(verify_cache_t *vc, const uint8_t fp[32], X509_STORE_CTX *xs, time_t now)
{
    time_t from, until;
    if (!answer_period(xs, now, &from, &until))
        return;
    if (!vc->slots && !(vc->slots = calloc(TLS_VERIFY_SLOTS, sizeof *vc->slots)))
        return; /* out of memory: verified in full next time */
    verified_t *v = slot_of(vc, fp);
    memcpy(v->fingerprint, fp, 32);
    v->store = X509_STORE_CTX_get0_store(xs);
    v->from = from;
    v->until = until;
}

static bool is_anchor(X509_STORE *store, X509 *x)
{
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
    for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
        X509 *a = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        if (a && X509_cmp(a, x) == 0)
            return true;
    }
    return false;
}

/* A client that sends our CA certificate after its own (OpenSSL clients
 * do, when they trust that CA) adds nothing: the store's copy is the one
 * trusted. But the connection's session keeps what was sent, parsed
 * (about 5 KB a certificate), for the life of the connection and while
 * the session is cached. Those copies are dropped from what was sent
 * (the stack the session keeps as the peer's chain); intermediates stay.
 * Index 0 is the client's own certificate, which OpenSSL takes from there. */
static void drop_sent_anchors(X509_STORE_CTX *xs)
{
    STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(xs);
    X509_STORE *store = X509_STORE_CTX_get0_store(xs);
    for (int i = sk_X509_num(sent) - 1; i >= 1; i--) {
        X509 *x = sk_X509_value(sent, i);
        if (is_anchor(store, x)) {
            (void)sk_X509_delete(sent, i);
            X509_free(x);
        }
    }
}

/* OpenSSL's chain verification, replaced: a certificate remembered is
 * accepted as it was; anything else is verified in full. */
static int verify_chain(X509_STORE_CTX *xs, void *arg)
{
    verify_cache_t *vc = arg;
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    uint8_t fp[32];
    bool have_fp = leaf && fingerprint(leaf, fp);
    time_t now = time(NULL);
    int ok;
    if (have_fp && known(vc, fp, X509_STORE_CTX_get0_store(xs), now)) {
        vc->hits++;
        ok = 1; /* the context's error is X509_V_OK, as after a success */
    } else {
        ok = X509_verify_cert(xs);
        if (ok == 1 && have_fp)
            remember(vc, fp, xs, now);
    }
    if (ok == 1)
        drop_sent_anchors(xs);
    return ok;
}

sedge_err tls_verify_attach(SSL_CTX *ctx)
{
    if (cache_index < 0 &&
        (cache_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_cache)) < 0)
        return SEDGE_ERR_NOMEM;
    verify_cache_t *vc = calloc(1, sizeof *vc);
    if (!vc)
        return SEDGE_ERR_NOMEM;
    if (SSL_CTX_set_ex_data(ctx, cache_index, vc) != 1) {
        free(vc);
        return SEDGE_ERR_NOMEM;
    }
    SSL_CTX_set_cert_verify_callback(ctx, verify_chain, vc);
    return SEDGE_OK;
}

void tls_verify_forget(SSL_CTX *ctx)
{
    verify_cache_t *vc = cache_of(ctx);
    if (vc) {
        free(vc->slots);
        vc->slots = NULL;
    }
}

bool tls_verify_known(SSL_CTX *ctx, X509 *cert)
{
    uint8_t fp[32];
    return cert && fingerprint(cert, fp) &&
           known(cache_of(ctx), fp, SSL_CTX_get_cert_store(ctx), time(NULL));
}
