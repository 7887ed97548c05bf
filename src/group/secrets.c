/*
 * secrets: the values of the group's secret resources, sealed before the
 * document is stored — AES-256-GCM under the core's sealing key (derived
 * from the core's private key, src/core), a fresh nonce per value, the
 * resource's id as associated data so that a sealed value cannot be moved
 * to another id. The stored document holds {"sealed": "sedge-sealed:v1:
 * BASE64(nonce | ciphertext | tag)"} in place of {"value": ...}; the
 * value is unsealed only in memory, when a function that lists the secret
 * asks for it.
 */
#include "group.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "sedge-sealed:v1:"
#define NONCE 12
#define TAG 16

static sedge_err gcm(bool seal, const uint8_t key[GROUP_SEAL_KEY_BYTES], const uint8_t *nonce,
                     const char *id, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    bool ok = ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, seal) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE, NULL) == 1 &&
              EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, seal) == 1 &&
              EVP_CipherUpdate(ctx, NULL, &n, (const uint8_t *)id, (int)strlen(id)) == 1 &&
              (len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1);
    if (ok && !seal)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(ctx, out + (len ? n : 0), &n) == 1;
    if (ok && seal)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? SEDGE_OK : seal ? SEDGE_ERR_NOMEM : SEDGE_ERR_DENIED;
}

char *group_seal_value(const char *id, const uint8_t *value, size_t len,
                       const uint8_t key[GROUP_SEAL_KEY_BYTES])
{
    uint8_t *box = malloc(NONCE + len + TAG);
    if (!box)
        return NULL;
    sedge_err err = RAND_bytes(box, NONCE) == 1 ? SEDGE_OK : SEDGE_ERR_NOMEM;
    if (!err)
        err = gcm(true, key, box, id, value, len, box + NONCE, box + NONCE + len);
    char *text = err ? NULL : base64_encode((bytes_t){box, NONCE + len + TAG});
    free(box);
    size_t n = text ? strlen(PREFIX) + strlen(text) + 1 : 0;
    char *sealed = text ? malloc(n) : NULL;
    if (sealed)
        snprintf(sealed, n, "%s%s", PREFIX, text);
    free(text);
    return sealed;
}

sedge_err group_seal_secrets(json_t *doc, const group_seal_key_t *key, bool *changed)
{
    *changed = false;
    const uint8_t *bytes = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(doc, "resources"), i, r)
    {
        json_t *value = json_object_get(r, "value");
        const char *id = json_string_value(json_object_get(r, "id"));
        const char *type = json_string_value(json_object_get(r, "type"));
        if (!json_is_string(value) || !id || !type || strcmp(type, "secret") != 0)
            continue;
        if (!bytes && !(bytes = key->get ? key->get(key->ctx) : NULL))
            return SEDGE_ERR_DENIED;
        char *sealed = group_seal_value(id, (const uint8_t *)json_string_value(value),
                                        json_string_length(value), bytes);
        if (!sealed || json_object_set_new(r, "sealed", json_string(sealed)) != 0) {
            free(sealed);
            return SEDGE_ERR_NOMEM;
        }
        free(sealed);
        json_object_del(r, "value");
        *changed = true;
    }
    return SEDGE_OK;
}

sedge_err group_unseal(const char *id, const char *sealed, const uint8_t key[GROUP_SEAL_KEY_BYTES],
                       buf_t *out)
{
    size_t plen = strlen(PREFIX);
    if (strncmp(sealed, PREFIX, plen) != 0)
        return SEDGE_ERR_MALFORMED;
    buf_t box = {0};
    sedge_err err = base64_decode(sealed + plen, &box);
    if (!err && box.len < NONCE + TAG)
        err = SEDGE_ERR_MALFORMED;
    size_t len = err ? 0 : box.len - NONCE - TAG;
    if (!err)
        err = buf_reserve(out, len + 1);
    if (!err)
        err = gcm(false, key, box.data, id, box.data + NONCE, len, out->data + out->len,
                  box.data + NONCE + len);
    if (!err)
        out->len += len;
    buf_free(&box);
    return err;
}
