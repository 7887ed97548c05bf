/*
 * seal: which key seals the group's secrets on this core — derived from
 * the private key of the first TLS listener (the core's own key), or,
 * on a core with no TLS listener, a random key kept 0600 in the data
 * directory (DATA/secrets.key). Made or derived when a secret is first
 * sealed or opened, not at start: a core with no secrets never reads the
 * key for it nor writes one (a start costs about 3 ms less, and OpenSSL's
 * encoders are not loaded). Owns the key's bytes, wiped when freed.
 */
#ifndef SEDGE_CORE_SEAL_H
#define SEDGE_CORE_SEAL_H

#include "broker/broker.h"

typedef struct {
    char *key_file; /* the first TLS listener's private key, as at start; NULL: none */
    char *path;     /* DATA/secrets.key, used when key_file is NULL */
    bool tried;     /* a failure is not retried: it was logged */
    bool ok;
    uint8_t key[32];
} core_seal_t;

/* Where the key will come from (nothing is read yet). */
NODISCARD sedge_err core_seal_init(core_seal_t *s, const char *data_dir,
                                   const listener_config_t *listeners, size_t count);
/* The key (ctx: a core_seal_t), made or derived on the first call; NULL
 * when it cannot be had. For group_seal_key_t. */
const uint8_t *core_seal_get(void *ctx);
void core_seal_free(core_seal_t *s);

#endif
