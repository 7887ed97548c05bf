/*
 * sign: Ed25519 signatures of bundle manifests with OpenSSL 3's EVP
 * (EVP_DigestSign/Verify with no digest: Ed25519 hashes by itself). Keys
 * are PEM files: a PKCS#8 private key to sign, SubjectPublicKeyInfo public
 * keys to trust (`openssl genpkey -algorithm ed25519`, `openssl pkey
 * -pubout`). A key's id is the hex of the first 8 bytes of the SHA-256 of
 * its raw 32-byte public key: the manifest names the key that signed it.
 */
#include "ota.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    EVP_PKEY *pkey;
    char id[17];
} trusted_key_t;

struct ota_keys {
    trusted_key_t *keys;
    size_t count;
};

void ota_sha256_hex(bytes_t data, char hex[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    if (!EVP_Digest(data.data, data.len, md, &n, EVP_sha256(), NULL) || n != 32) {
        hex[0] = '\0';
        return;
    }
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

sedge_err ota_file_sha256(const char *path, uint64_t *size, char hex[65])
{
    FILE *f = fopen(path, "rb");
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!f || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        if (f)
            fclose(f);
        EVP_MD_CTX_free(md);
        return SEDGE_ERR_IO;
    }
    unsigned char block[16384], digest[32];
    size_t n;
    *size = 0;
    while ((n = fread(block, 1, sizeof block, f)) > 0) {
        *size += n;
        EVP_DigestUpdate(md, block, n);
    }
    bool ok = !ferror(f);
    fclose(f);
    EVP_DigestFinal_ex(md, digest, NULL);
    EVP_MD_CTX_free(md);
    for (unsigned k = 0; k < 32; k++)
        snprintf(hex + 2 * k, 3, "%02x", digest[k]);
    return ok ? SEDGE_OK : SEDGE_ERR_IO;
}

static bool key_id_of(EVP_PKEY *pkey, char id[17])
{
    uint8_t raw[32];
    size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != sizeof raw)
        return false;
    char hex[65];
    ota_sha256_hex((bytes_t){raw, len}, hex);
    memcpy(id, hex, 16);
    id[16] = '\0';
    return true;
}

static bool is_ed25519(EVP_PKEY *pkey)
{
    return EVP_PKEY_get_id(pkey) == EVP_PKEY_ED25519;
}

sedge_err ota_keys_load(const char *const *paths, size_t count, ota_keys_t **out, char *err,
                        size_t errlen)
{
    ota_keys_t *k = calloc(1, sizeof *k);
    if (!k || (count && !(k->keys = calloc(count, sizeof *k->keys)))) {
        free(k);
        snprintf(err, errlen, "out of memory");
        return SEDGE_ERR_NOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        FILE *f = fopen(paths[i], "r");
        EVP_PKEY *pkey = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
        if (f)
            fclose(f);
        ERR_clear_error();
        if (!pkey || !is_ed25519(pkey) || !key_id_of(pkey, k->keys[k->count].id)) {
            snprintf(err, errlen, "%s: %s", paths[i],
                     !f     ? "cannot be read"
                     : pkey ? "not an Ed25519 public key"
                            : "not a PEM public key (make one with `openssl pkey -pubout`)");
            EVP_PKEY_free(pkey);
            ota_keys_free(k);
            return SEDGE_ERR_INVALID;
        }
        k->keys[k->count++].pkey = pkey;
    }
    *out = k;
    return SEDGE_OK;
}

void ota_keys_free(ota_keys_t *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->count; i++)
        EVP_PKEY_free(k->keys[i].pkey);
    free(k->keys);
    free(k);
}

sedge_err ota_keys_verify(const ota_keys_t *k, const char *key_id, bytes_t msg, bytes_t sig)
{
    for (size_t i = 0; k && i < k->count; i++) {
        if (strcmp(k->keys[i].id, key_id) != 0)
            continue;
        if (sig.len != OTA_SIG_BYTES)
            return SEDGE_ERR_DENIED;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->keys[i].pkey) == 1 &&
                 EVP_DigestVerify(ctx, sig.data, sig.len, msg.data, msg.len) == 1;
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        return ok ? SEDGE_OK : SEDGE_ERR_DENIED;
    }
    return SEDGE_ERR_NOT_FOUND;
}

sedge_err ota_keys_verify_any(const ota_keys_t *k, bytes_t msg, bytes_t sig)
{
    for (size_t i = 0; k && i < k->count; i++)
        if (ota_keys_verify(k, k->keys[i].id, msg, sig) == SEDGE_OK)
            return SEDGE_OK;
    return SEDGE_ERR_DENIED;
}

sedge_err ota_sign(const char *key_path, bytes_t msg, uint8_t sig[OTA_SIG_BYTES], char key_id[17],
                   char *err, size_t errlen)
{
    FILE *f = fopen(key_path, "r");
    EVP_PKEY *pkey = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    ERR_clear_error();
    if (!pkey || !is_ed25519(pkey) || !key_id_of(pkey, key_id)) {
        snprintf(err, errlen, "%s: %s", key_path,
                 !f     ? "cannot be read"
                 : pkey ? "not an Ed25519 private key"
                        : "not a PEM private key (make one with `openssl genpkey -algorithm "
                          "ed25519`)");
        EVP_PKEY_free(pkey);
        return SEDGE_ERR_INVALID;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = OTA_SIG_BYTES;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestSign(ctx, sig, &len, msg.data, msg.len) == 1 && len == OTA_SIG_BYTES;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    if (!ok) {
        snprintf(err, errlen, "signing failed");
        return SEDGE_ERR_FAILED;
    }
    return SEDGE_OK;
}
