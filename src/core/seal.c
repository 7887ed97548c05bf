/*
 * seal: the secrets' key (seal.h). The random key is written to a
 * temporary file and renamed, so a crash never leaves half a key (which
 * would make every stored secret unreadable).
 */
#include "seal.h"

#include "pki/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_TAG "core"

static bool read_key(const char *path, uint8_t out[32])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, out, 32);
    close(fd);
    return n == 32;
}

static sedge_err make_key(const char *path, uint8_t out[32])
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (RAND_bytes(out, 32) != 1)
        return SEDGE_ERR_NOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    bool ok = fd >= 0 && write(fd, out, 32) == 32 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok || rename(tmp, path) != 0) {
        LOGE("cannot write the secrets key %s: %s", path, strerror(errno));
        unlink(tmp);
        return SEDGE_ERR_IO;
    }
    return SEDGE_OK;
}

sedge_err core_seal_init(core_seal_t *s, const char *data_dir, const listener_config_t *listeners,
                         size_t count)
{
    *s = (core_seal_t){0};
    for (size_t i = 0; i < count && !s->key_file; i++)
        if (listeners[i].type == LISTENER_TLS && listeners[i].key_file &&
            !(s->key_file = strdup(listeners[i].key_file)))
            return SEDGE_ERR_NOMEM;
    if (s->key_file)
        return SEDGE_OK;
    size_t n = strlen(data_dir) + sizeof "/secrets.key";
    if (!(s->path = malloc(n)))
        return SEDGE_ERR_NOMEM;
    snprintf(s->path, n, "%s/secrets.key", data_dir);
    return SEDGE_OK;
}

const uint8_t *core_seal_get(void *ctx)
{
    core_seal_t *s = ctx;
    if (s->tried)
        return s->ok ? s->key : NULL;
    s->tried = true;
    if (s->key_file) {
        char err[300];
        if (pki_seal_key(s->key_file, s->key, err, sizeof err) == SEDGE_OK)
            s->ok = true;
        else
            LOGE("secrets: %s", err);
    } else {
        s->ok = read_key(s->path, s->key) || make_key(s->path, s->key) == SEDGE_OK;
        if (!s->ok)
            LOGE("secrets: no key: %s can be neither read nor made", s->path);
    }
    return s->ok ? s->key : NULL;
}

void core_seal_free(core_seal_t *s)
{
    OPENSSL_cleanse(s->key, sizeof s->key);
    free(s->key_file);
    free(s->path);
    *s = (core_seal_t){0};
}
