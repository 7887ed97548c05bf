/*
 * bundle: checking and unpacking an update bundle with libarchive.
 *
 * Two passes over the outer tar. The first reads manifest.json and
 * manifest.sig (both capped), checks the signature with the trusted key
 * the manifest names, and hashes release.tar.gz as it streams by. Only
 * when signature and hash are right does the second pass open the payload,
 * reading it straight out of the outer tar: each entry is checked against
 * the manifest (type, path, size) before a byte is written, written
 * through a fresh libarchive entry built from the manifest (never the
 * archive's own header), and its hash compared at its end. Anything the
 * manifest does not list, a link that leaves the tree, a device, a
 * hardlink, a file larger than listed: the whole unpack is refused and
 * removed.
 */
#include "ota.h"

#include "lazylib/lazy_archive.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define BLOCK (64 * 1024)
#define MAX_ENTRIES (2 * OTA_MAX_FILES)

const char *ota_machine(void)
{
    static char machine[sizeof((struct utsname *)0)->machine];
    struct utsname u;
    if (!machine[0] && uname(&u) == 0)
        snprintf(machine, sizeof machine, "%s", u.machine);
    return machine;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

sedge_err ota_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? SEDGE_OK : SEDGE_ERR_IO;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? SEDGE_OK : SEDGE_ERR_IO;
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? SEDGE_OK : SEDGE_ERR_IO;
}

static void hex_of(const unsigned char *md, char hex[65])
{
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static struct archive *open_outer(const char *bundle, char *err, size_t errlen)
{
    if (lazy_archive_load(err, errlen))
        return NULL;
    struct archive *a = archive_read_new();
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, bundle, BLOCK) != ARCHIVE_OK) {
        snprintf(err, errlen, "%s: cannot be read as a bundle: %s", bundle,
                 archive_error_string(a) ? archive_error_string(a) : "unknown error");
        archive_read_free(a);
        return NULL;
    }
    return a;
}

/* The next outer member, which must be the regular file `name`. */
static bool next_member(struct archive *a, const char *name, struct archive_entry **e, char *err,
                        size_t errlen)
{
    int r = archive_read_next_header(a, e);
    if (r != ARCHIVE_OK || archive_entry_filetype(*e) != AE_IFREG || !archive_entry_pathname(*e) ||
        strcmp(archive_entry_pathname(*e), name) != 0 || archive_entry_size(*e) < 0) {
        snprintf(err, errlen, "not a Sedge bundle: expected %s as the next member%s%s", name,
                 r == ARCHIVE_OK ? "" : ": ",
                 r == ARCHIVE_OK ? ""
                                 : (archive_error_string(a) ? archive_error_string(a) : "end"));
        return false;
    }
    return true;
}

static bool read_small(struct archive *a, struct archive_entry *e, size_t max, buf_t *out)
{
    int64_t size = archive_entry_size(e);
    if (size < 0 || (uint64_t)size > max || buf_reserve(out, (size_t)size + 1))
        return false;
    la_ssize_t n = archive_read_data(a, out->data, (size_t)size);
    if (n != size)
        return false;
    out->len = (size_t)n;
    out->data[n] = 0;
    return true;
}

/* Pass 1: manifest, signature, payload hash. */
static sedge_err check_signed(const char *bundle, const ota_keys_t *keys, ota_manifest_t *m,
                              char *err, size_t errlen)
{
    struct archive *a = open_outer(bundle, err, errlen);
    if (!a)
        return SEDGE_ERR_INVALID;
    struct archive_entry *e;
    buf_t text = {0}, sig = {0};
    sedge_err rc = SEDGE_ERR_INVALID;
    char perr[300];
    bool parsed = false;
    if (!next_member(a, "manifest.json", &e, err, errlen))
        goto done;
    if (!read_small(a, e, OTA_MAX_MANIFEST_BYTES, &text)) {
        snprintf(err, errlen, "manifest.json is unreadable or larger than %u bytes",
                 OTA_MAX_MANIFEST_BYTES);
        goto done;
    }
    if (!next_member(a, "manifest.sig", &e, err, errlen))
        goto done;
    if (archive_entry_size(e) != OTA_SIG_BYTES || !read_small(a, e, OTA_SIG_BYTES, &sig)) {
        snprintf(err, errlen, "bad signature: manifest.sig is not a %u-byte Ed25519 signature",
                 OTA_SIG_BYTES);
        goto done;
    }
    if ((rc = ota_manifest_parse((bytes_t){text.data, text.len}, m, perr, sizeof perr))) {
        snprintf(err, errlen, "invalid %s", perr);
        goto done;
    }
    parsed = true;
    rc = ota_keys_verify(keys, m->key_id, (bytes_t){text.data, text.len},
                         (bytes_t){sig.data, sig.len});
    if (rc == SEDGE_ERR_NOT_FOUND) {
        snprintf(err, errlen,
                 "unknown key: the bundle is signed by key %s, which is not in ota.trusted_keys",
                 m->key_id);
        goto done;
    }
    if (rc) {
        snprintf(err, errlen, "bad signature: the manifest's signature does not verify with key %s",
                 m->key_id);
        goto done;
    }
    rc = SEDGE_ERR_INVALID;
    if (!next_member(a, "release.tar.gz", &e, err, errlen))
        goto done;
    if ((uint64_t)archive_entry_size(e) != m->payload_size) {
        snprintf(err, errlen,
                 "tampered bundle: release.tar.gz is %lld bytes, the manifest says %llu",
                 (long long)archive_entry_size(e), (unsigned long long)m->payload_size);
        goto done;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *block = malloc(BLOCK);
    bool ok = md && block && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    la_ssize_t n;
    while (ok && (n = archive_read_data(a, block, BLOCK)) > 0)
        ok = EVP_DigestUpdate(md, block, (size_t)n) == 1;
    unsigned char digest[32];
    char hex[65] = "";
    if (ok && n == 0 && EVP_DigestFinal_ex(md, digest, NULL))
        hex_of(digest, hex);
    EVP_MD_CTX_free(md);
    free(block);
    if (strcmp(hex, m->payload_sha256) != 0) {
        snprintf(err, errlen,
                 "tampered bundle: release.tar.gz does not have the manifest's SHA-256");
        goto done;
    }
    if (archive_read_next_header(a, &e) != ARCHIVE_EOF) {
        snprintf(err, errlen, "not a Sedge bundle: members after release.tar.gz");
        goto done;
    }
    memcpy(m->signature, sig.data, OTA_SIG_BYTES);
    rc = SEDGE_OK;
done:
    if (rc && parsed)
        ota_manifest_free(m);
    buf_free(&text);
    buf_free(&sig);
    archive_read_free(a);
    return rc;
}

typedef struct {
    struct archive *outer;
    unsigned char block[BLOCK];
} inner_src_t;

static la_ssize_t inner_read(struct archive *a, void *ctx, const void **buf)
{
    (void)a;
    inner_src_t *s = ctx;
    *buf = s->block;
    return archive_read_data(s->outer, s->block, sizeof s->block);
}

static int cmp_path(const void *key, const void *item)
{
    return strcmp(key, ((const ota_file_t *)item)->path);
}

static const ota_file_t *find_file(const ota_manifest_t *m, const char *path)
{
    return bsearch(path, m->files, m->file_count, sizeof *m->files, cmp_path);
}

/* An archive's name for an entry, made canonical: "./" in front and "/"
 * behind (a directory) are dropped. `out` holds OTA_MAX_PATH + 1. */
static bool entry_path(const char *name, char *out)
{
    if (!name)
        return false;
    while (name[0] == '.' && name[1] == '/')
        name += 2;
    size_t len = strlen(name);
    while (len > 0 && name[len - 1] == '/')
        len--;
    if (len == 0 || len > OTA_MAX_PATH)
        return false;
    memcpy(out, name, len);
    out[len] = '\0';
    return ota_path_valid(out);
}

/* Is `dir` the directory of some listed file? */
static bool listed_dir(const ota_manifest_t *m, const char *dir)
{
    size_t len = strlen(dir);
    for (size_t i = 0; i < m->file_count; i++)
        if (strncmp(m->files[i].path, dir, len) == 0 && m->files[i].path[len] == '/')
            return true;
    return false;
}

typedef struct {
    const ota_manifest_t *m;
    struct archive *in, *disk;
    const char *dest;
    bool *seen;
    char *err;
    size_t errlen;
} unpack_t;

#define REFUSE(...)                                                                                \
    do {                                                                                           \
        snprintf(u->err, u->errlen, __VA_ARGS__);                                                  \
        return SEDGE_ERR_INVALID;                                                                  \
    } while (0)

/* Write one checked entry (to disk when unpacking), hashing a file's data. */
static sedge_err put_entry(unpack_t *u, const char *path, const ota_file_t *f, mode_t type)
{
    struct archive_entry *out = NULL;
    if (u->disk) {
        char full[PATH_MAX];
        if ((size_t)snprintf(full, sizeof full, "%s/%s", u->dest, path) >= sizeof full)
            REFUSE("%s: the path is too long here", path);
        if (!(out = archive_entry_new()))
            return SEDGE_ERR_NOMEM;
        archive_entry_set_pathname(out, full);
        archive_entry_set_filetype(out, type);
        if (type == AE_IFREG) {
            archive_entry_set_perm(out, f->mode);
            archive_entry_set_size(out, (la_int64_t)f->size);
        } else if (type == AE_IFLNK) {
            archive_entry_set_perm(out, 0777);
            archive_entry_set_symlink(out, f->link);
        } else {
            archive_entry_set_perm(out, 0755);
        }
        if (archive_write_header(u->disk, out) != ARCHIVE_OK) {
            snprintf(u->err, u->errlen, "%s: cannot be written: %s", path,
                     archive_error_string(u->disk));
            archive_entry_free(out);
            return SEDGE_ERR_IO;
        }
        archive_entry_free(out);
    }
    if (type != AE_IFREG)
        return u->disk && archive_write_finish_entry(u->disk) != ARCHIVE_OK ? SEDGE_ERR_IO
                                                                            : SEDGE_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(md);
        return SEDGE_ERR_NOMEM;
    }
    unsigned char block[BLOCK / 4];
    uint64_t total = 0;
    la_ssize_t n;
    sedge_err rc = SEDGE_OK;
    while ((n = archive_read_data(u->in, block, sizeof block)) > 0) {
        total += (uint64_t)n;
        if (total > f->size) {
            snprintf(u->err, u->errlen, "%s: more data than the manifest's %llu bytes", path,
                     (unsigned long long)f->size);
            rc = SEDGE_ERR_INVALID;
            break;
        }
        EVP_DigestUpdate(md, block, (size_t)n);
        if (u->disk && archive_write_data(u->disk, block, (size_t)n) != n) {
            snprintf(u->err, u->errlen, "%s: cannot be written: %s", path,
                     archive_error_string(u->disk));
            rc = SEDGE_ERR_IO;
            break;
        }
    }
    unsigned char digest[32];
    char hex[65] = "";
    if (!rc && n < 0) {
        snprintf(u->err, u->errlen, "%s: the payload is damaged: %s", path,
                 archive_error_string(u->in));
        rc = SEDGE_ERR_INVALID;
    }
    if (!rc && total != f->size) {
        snprintf(u->err, u->errlen, "%s: %llu bytes, the manifest says %llu", path,
                 (unsigned long long)total, (unsigned long long)f->size);
        rc = SEDGE_ERR_INVALID;
    }
    if (!rc && EVP_DigestFinal_ex(md, digest, NULL))
        hex_of(digest, hex);
    EVP_MD_CTX_free(md);
    if (!rc && strcmp(hex, f->sha256) != 0) {
        snprintf(u->err, u->errlen, "tampered bundle: %s does not have the manifest's SHA-256",
                 path);
        rc = SEDGE_ERR_INVALID;
    }
    if (!rc && u->disk && archive_write_finish_entry(u->disk) != ARCHIVE_OK)
        rc = SEDGE_ERR_IO;
    return rc;
}

/* One entry of the payload: refused unless the manifest says exactly it. */
static sedge_err unpack_entry(unpack_t *u, struct archive_entry *e)
{
    char path[OTA_MAX_PATH + 1];
    const char *name = archive_entry_pathname(e);
    if (!entry_path(name, path))
        REFUSE("hostile archive: entry \"%.200s\" is not a relative path inside the tree",
               name ? name : "");
    if (archive_entry_hardlink(e))
        REFUSE("hostile archive: %s is a hard link", path);
    mode_t type = archive_entry_filetype(e);
    if (type == AE_IFDIR) {
        if (!listed_dir(u->m, path))
            REFUSE("hostile archive: directory %s holds nothing the manifest lists", path);
        return put_entry(u, path, NULL, type);
    }
    if (type != AE_IFREG && type != AE_IFLNK)
        REFUSE("hostile archive: %s is a device, fifo or socket", path);
    const ota_file_t *f = find_file(u->m, path);
    if (!f)
        REFUSE("hostile archive: %s is not in the manifest", path);
    bool *seen = &u->seen[f - u->m->files];
    if (*seen)
        REFUSE("hostile archive: %s appears twice", path);
    *seen = true;
    if (type == AE_IFLNK) {
        const char *target = archive_entry_symlink(e);
        if (!f->link || !target || strcmp(target, f->link) != 0 || !ota_link_inside(path, target))
            REFUSE("hostile archive: link %s leaves the tree or differs from the manifest", path);
        return put_entry(u, path, f, type);
    }
    if (f->link)
        REFUSE("tampered bundle: %s is a file, the manifest says a link", path);
    if (archive_entry_size_is_set(e) && (uint64_t)archive_entry_size(e) != f->size)
        REFUSE("tampered bundle: %s is %lld bytes, the manifest says %llu", path,
               (long long)archive_entry_size(e), (unsigned long long)f->size);
    return put_entry(u, path, f, type);
}

/* Pass 2: the payload's entries, read out of the outer tar. */
static sedge_err unpack(const char *bundle, const ota_manifest_t *m, const char *dest, char *err,
                        size_t errlen)
{
    struct archive *outer = open_outer(bundle, err, errlen);
    if (!outer)
        return SEDGE_ERR_INVALID;
    inner_src_t *src = malloc(sizeof *src);
    unpack_t u = {.m = m, .dest = dest, .err = err, .errlen = errlen};
    u.seen = calloc(m->file_count, sizeof *u.seen);
    u.in = archive_read_new();
    sedge_err rc = SEDGE_ERR_NOMEM;
    struct archive_entry *e;
    if (!src || !u.seen || !u.in)
        goto done;
    rc = SEDGE_ERR_INVALID;
    for (int i = 0; i < 3; i++)
        if (archive_read_next_header(outer, &e) != ARCHIVE_OK) {
            snprintf(err, errlen, "the bundle changed while it was read");
            goto done;
        }
    src->outer = outer;
    archive_read_support_filter_gzip(u.in);
    archive_read_support_format_tar(u.in);
    if (archive_read_open(u.in, src, NULL, inner_read, NULL) != ARCHIVE_OK) {
        snprintf(err, errlen, "release.tar.gz is not a gzip'd tar: %s", archive_error_string(u.in));
        goto done;
    }
    if (dest) {
        rc = SEDGE_ERR_IO;
        if (mkdir(dest, 0755) != 0) {
            snprintf(err, errlen, "%s: %s", dest, strerror(errno));
            dest = NULL; /* not ours to remove */
            goto done;
        }
        if (!(u.disk = archive_write_disk_new()))
            goto done;
        /* Entries go to DEST/PATH with PATH checked relative; DEST itself
         * is absolute, so absolute paths are not refused here. */
        archive_write_disk_set_options(
            u.disk, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                        ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_NO_OVERWRITE);
    }
    rc = SEDGE_OK;
    size_t entries = 0;
    int r = ARCHIVE_EOF;
    while (!rc && (r = archive_read_next_header(u.in, &e)) == ARCHIVE_OK) {
        if (++entries > MAX_ENTRIES) {
            snprintf(err, errlen, "hostile archive: more than %u entries", MAX_ENTRIES);
            rc = SEDGE_ERR_TOO_LARGE;
            break;
        }
        rc = unpack_entry(&u, e);
    }
    if (!rc && r != ARCHIVE_EOF) {
        snprintf(err, errlen, "release.tar.gz is damaged: %s", archive_error_string(u.in));
        rc = SEDGE_ERR_INVALID;
    }
    for (size_t i = 0; !rc && i < m->file_count; i++) {
        if (!u.seen[i]) {
            snprintf(err, errlen, "tampered bundle: %s is in the manifest but not in the bundle",
                     m->files[i].path);
            rc = SEDGE_ERR_INVALID;
        }
    }
done:
    if (u.disk) {
        archive_write_close(u.disk);
        archive_write_free(u.disk);
    }
    archive_read_free(u.in);
    archive_read_free(outer);
    free(src);
    free(u.seen);
    if (rc && dest)
        ota_remove_tree(dest);
    return rc;
}

sedge_err ota_bundle_check(const char *bundle, const ota_keys_t *keys, const char *dest,
                           ota_accept_fn accept, void *ctx, ota_manifest_t *manifest, char *err,
                           size_t errlen)
{
    sedge_err rc = check_signed(bundle, keys, manifest, err, errlen);
    if (rc)
        return rc;
    if ((accept && (rc = accept(ctx, manifest, err, errlen))) ||
        (rc = unpack(bundle, manifest, dest, err, errlen)))
        ota_manifest_free(manifest);
    return rc;
}
