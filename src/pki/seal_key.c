/*
 * seal_key: the key that seals the group's secrets at rest, derived from
 * the core's private key (HMAC-SHA256 over its DER encoding, a fixed
 * label as the message): the store alone — a copied database, a backup —
 * never reveals a secret; the store with the core's key does.
 */
#include "pki.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#define LABEL "sedge group secrets v1"

sedge_err pki_seal_key(const char *key_file, uint8_t out[32], char *err, size_t errlen)
{
    FILE *f = fopen(key_file, "r");
    EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (!key) {
        snprintf(err, errlen, "cannot read the core's private key %s", key_file);
        return SEDGE_ERR_NOT_FOUND;
    }
    unsigned char *der = NULL;
    int n = i2d_PrivateKey(key, &der);
    EVP_PKEY_free(key);
    unsigned len = 0;
    bool ok = n > 0 && HMAC(EVP_sha256(), der, n, (const unsigned char *)LABEL, strlen(LABEL),
                            out, &len) != NULL && len == 32;
    if (der) {
        OPENSSL_cleanse(der, (size_t)n);
        OPENSSL_free(der);
    }
    if (!ok) {
        snprintf(err, errlen, "cannot derive the sealing key from %s", key_file);
        return SEDGE_ERR_TLS;
    }
    return SEDGE_OK;
}
