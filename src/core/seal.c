/*
 * seal: the secrets' key (seal.h). The random key is written to a
 * temporary file and renamed, so a crash never leaves half a key (which
 * would make every stored secret unreadable).
 */
#include "seal.h"

#include "pki/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
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

sedge_err core_seal_key(const char *data_dir, const listener_config_t *listeners, size_t count,
                        uint8_t out[32])
{
    for (size_t i = 0; i < count; i++) {
        if (listeners[i].type != LISTENER_TLS || !listeners[i].key_file)
            continue;
        char err[300];
        sedge_err rc = pki_seal_key(listeners[i].key_file, out, err, sizeof err);
        if (rc)
            LOGE("secrets: %s", err);
        return rc;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/secrets.key", data_dir);
    return read_key(path, out) ? SEDGE_OK : make_key(path, out);
}
