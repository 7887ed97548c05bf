/*
 * fetch: an archive from its URL into a private temporary file of the
 * cache, hashed as it is written (the file that is unpacked is the file
 * that was hashed: a local source changed afterwards changes nothing),
 * then unpacked beside the cache entry it becomes and renamed into place.
 */
#include "artifact.h"

#include "lazylib/lazy_curl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_PREFIX ".part-"

typedef struct {
    int fd;
    EVP_MD_CTX *md;
    uint64_t bytes, max;
    bool too_large, write_failed;
} sink_t;

static bool sink_write(sink_t *s, const void *data, size_t len)
{
    s->bytes += len;
    if (s->bytes > s->max) {
        s->too_large = true;
        return false;
    }
    if (EVP_DigestUpdate(s->md, data, len) != 1) {
        s->write_failed = true;
        return false;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(s->fd, (const uint8_t *)data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->write_failed = true;
            return false;
        }
        off += (size_t)w;
    }
    return true;
}

static sedge_err copy_local(const char *path, sink_t *s, char *why, size_t why_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "cannot read %s: %s", path,
                 fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return SEDGE_ERR_NOT_FOUND;
    }
    uint8_t chunk[65536];
    sedge_err err = SEDGE_OK;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
            err = SEDGE_ERR_IO;
        }
        if (n <= 0 || !sink_write(s, chunk, (size_t)n))
            break;
    }
    close(fd);
    return err;
}

static size_t curl_write(char *data, size_t size, size_t n, void *ctx)
{
    return sink_write(ctx, data, size * n) ? size * n : 0;
}

static sedge_err download(const char *url, sink_t *s, const artifact_limits_t *lim, char *why,
                          size_t why_len)
{
    sedge_err err = lazy_curl_load(why, why_len);
    if (err)
        return err;
    CURL *curl = curl_easy_init();
    if (!curl)
        return SEDGE_ERR_NOMEM;
    char error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)lim->timeout_s);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, curl_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    if (rc == CURLE_OK || s->too_large)
        return SEDGE_OK; /* too_large is reported by the caller */
    snprintf(why, why_len, "cannot download %s: %s", url,
             error[0] ? error : curl_easy_strerror(rc));
    return rc == CURLE_OPERATION_TIMEDOUT ? SEDGE_ERR_TIMEOUT : SEDGE_ERR_IO;
}

bool artifact_cached(const char *cache, const char *sha256_hex, char *dir, size_t dir_len)
{
    char lower[65];
    size_t n = strlen(sha256_hex);
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)((sha256_hex[i] >= 'A' && sha256_hex[i] <= 'F') ? sha256_hex[i] + 32
                                                                         : sha256_hex[i]);
    lower[64] = '\0';
    int w = snprintf(dir, dir_len, "%s/%s", cache, lower);
    struct stat st;
    return w > 0 && (size_t)w < dir_len && lstat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

sedge_err artifact_fetch_unpack(const char *cache, const char *url, const char *sha256_hex,
                                const artifact_limits_t *lim, char *dir, size_t dir_len, char *why,
                                size_t why_len)
{
    if (artifact_cached(cache, sha256_hex, dir, dir_len))
        return SEDGE_OK;
    if (strlen(sha256_hex) != 64) {
        snprintf(why, why_len, "sha256: expected 64 hex digits");
        return SEDGE_ERR_INVALID;
    }
    /* 0711: a function without a sandbox may reach its model by its path
     * (sedged's umask would make it 0700), not list the others. */
    if ((mkdir(cache, 0711) != 0 && errno != EEXIST) || chmod(cache, 0711) != 0) {
        snprintf(why, why_len, "cannot make the cache %s: %s", cache, strerror(errno));
        return SEDGE_ERR_IO;
    }
    char file[4200], tree[4200];
    snprintf(file, sizeof file, "%s/" TMP_PREFIX "XXXXXX", cache);
    snprintf(tree, sizeof tree, "%s/" TMP_PREFIX "tree-XXXXXX", cache);
    sink_t s = {
        mkostemp(file, O_CLOEXEC), EVP_MD_CTX_new(), 0, lim->max_archive_bytes, false, false};
    if (s.fd < 0 || !s.md || EVP_DigestInit_ex(s.md, EVP_sha256(), NULL) != 1) {
        snprintf(why, why_len, "cannot write in the cache %s: %s", cache, strerror(errno));
        if (s.fd >= 0) {
            close(s.fd);
            unlink(file);
        }
        EVP_MD_CTX_free(s.md);
        return SEDGE_ERR_IO;
    }
    sedge_err err;
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)
        err = download(url, &s, lim, why, why_len);
    else
        err = copy_local(strncmp(url, "file://", 7) == 0 ? url + 7 : url, &s, why, why_len);
    uint8_t digest[32];
    unsigned digest_len = 0;
    char got[65] = "";
    if (!err && s.too_large) {
        snprintf(why, why_len, "the archive is larger than %llu bytes (the limit)",
                 (unsigned long long)lim->max_archive_bytes);
        err = SEDGE_ERR_TOO_LARGE;
    } else if (!err && s.write_failed) {
        snprintf(why, why_len, "cannot write in the cache %s: %s", cache, strerror(errno));
        err = SEDGE_ERR_IO;
    }
    if (!err && EVP_DigestFinal_ex(s.md, digest, &digest_len) == 1 && digest_len == 32) {
        hex(digest, 32, got);
        if (strcasecmp(got, sha256_hex) != 0) {
            snprintf(why, why_len,
                     "the archive's SHA-256 is %s, not the %.64s the document gives (a changed "
                     "or corrupted file: nothing was unpacked)",
                     got, sha256_hex);
            err = SEDGE_ERR_DENIED;
        }
    }
    EVP_MD_CTX_free(s.md);
    close(s.fd);
    if (!err && !mkdtemp(tree)) {
        snprintf(why, why_len, "cannot write in the cache %s: %s", cache, strerror(errno));
        err = SEDGE_ERR_IO;
    }
    if (!err)
        err = artifact_unpack(file, tree, lim, why, why_len);
    unlink(file);
    if (err)
        return err;
    int w = snprintf(dir, dir_len, "%s/%s", cache, got);
    if (w < 0 || (size_t)w >= dir_len) {
        artifact_remove_tree(tree);
        snprintf(why, why_len, "the cache's path is too long");
        return SEDGE_ERR_TOO_LARGE;
    }
    if (rename(tree, dir) != 0) {
        int e = errno;
        artifact_remove_tree(tree);
        if (e != EEXIST && e != ENOTEMPTY) { /* else another fetch of the same got there first */
            snprintf(why, why_len, "cannot move the model into the cache: %s", strerror(e));
            return SEDGE_ERR_IO;
        }
    }
    return SEDGE_OK;
}

static bool kept(const char *name, const char *const *keep, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strcasecmp(name, keep[i]) == 0)
            return true;
    return false;
}

void artifact_cache_prune(const char *cache, const char *const *keep, size_t count)
{
    DIR *d = opendir(cache);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        bool partial = strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0;
        if (!partial && kept(e->d_name, keep, count))
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", cache, e->d_name);
        if (e->d_type == DT_DIR)
            artifact_remove_tree(path);
        else
            unlink(path);
    }
    closedir(d);
}
