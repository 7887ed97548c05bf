/*
 * create: `sedgectl bundle create` — a release tree into a signed bundle.
 * The tree's regular files (0755 when any execute bit is set, else 0644),
 * its directories, and its relative links that stay inside it go into
 * release.tar.gz (files in path order, owner root); anything else in the
 * tree is refused. The manifest lists each with its SHA-256, and is signed.
 */
#include "ota.h"

#include "lazylib/lazy_archive.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    ota_file_t *files;
    size_t count, cap;
    char *err;
    size_t errlen;
} walk_t;

static int cmp_files(const void *a, const void *b)
{
    return strcmp(((const ota_file_t *)a)->path, ((const ota_file_t *)b)->path);
}

/* "a/b" into `out`; false when it does not fit. */
static bool join(char *out, size_t len, const char *a, const char *b)
{
    int n = snprintf(out, len, "%s%s%s", a, a[0] && b[0] ? "/" : "", b);
    return n >= 0 && (size_t)n < len;
}

static sedge_err add(walk_t *w, const char *rel, const struct stat *st, const char *root)
{
    if (w->count == OTA_MAX_FILES) {
        snprintf(w->err, w->errlen, "the tree has more than %u files", OTA_MAX_FILES);
        return SEDGE_ERR_TOO_LARGE;
    }
    ota_file_t *files = array_room(w->files, w->count, &w->cap, sizeof *files, 64);
    if (!files)
        return SEDGE_ERR_NOMEM;
    w->files = files;
    ota_file_t *f = &w->files[w->count];
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(rel)))
        return SEDGE_ERR_NOMEM;
    w->count++;
    if (S_ISLNK(st->st_mode)) {
        char full[PATH_MAX], target[PATH_MAX];
        ssize_t n =
            join(full, sizeof full, root, rel) ? readlink(full, target, sizeof target - 1) : -1;
        if (n < 0)
            return SEDGE_ERR_IO;
        target[n] = '\0';
        if (!ota_link_inside(rel, target)) {
            snprintf(w->err, w->errlen, "%s: a link that leaves the tree (%s)", rel, target);
            return SEDGE_ERR_INVALID;
        }
        return (f->link = strdup(target)) ? SEDGE_OK : SEDGE_ERR_NOMEM;
    }
    f->size = (uint64_t)st->st_size;
    f->mode = (st->st_mode & 0111) ? 0755 : 0644;
    return SEDGE_OK;
}

static sedge_err walk(walk_t *w, const char *root, const char *rel)
{
    char dir[PATH_MAX];
    DIR *d = join(dir, sizeof dir, root, rel) ? opendir(dir) : NULL;
    if (!d) {
        snprintf(w->err, w->errlen, "%s: %s", dir, strerror(errno));
        return SEDGE_ERR_IO;
    }
    sedge_err rc = SEDGE_OK;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char child[PATH_MAX], full[PATH_MAX];
        struct stat st;
        if (!join(child, sizeof child, rel, de->d_name) || !join(full, sizeof full, root, child) ||
            !ota_path_valid(child)) {
            snprintf(w->err, w->errlen, "%s: a name a bundle cannot hold", child);
            rc = SEDGE_ERR_INVALID;
        } else if (lstat(full, &st) != 0) {
            snprintf(w->err, w->errlen, "%s: %s", full, strerror(errno));
            rc = SEDGE_ERR_IO;
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk(w, root, child);
        } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
            rc = add(w, child, &st, root);
        } else {
            snprintf(w->err, w->errlen, "%s: not a file, directory or link", child);
            rc = SEDGE_ERR_INVALID;
        }
    }
    closedir(d);
    return rc;
}

/* Write the payload to `out`, filling each file's sha256. */
static sedge_err write_payload(walk_t *w, const char *root, const char *out)
{
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    sedge_err rc = SEDGE_ERR_NOMEM;
    if (!a || !e)
        goto done;
    rc = SEDGE_ERR_IO;
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    if (archive_write_open_filename(a, out) != ARCHIVE_OK) {
        snprintf(w->err, w->errlen, "%s: %s", out, archive_error_string(a));
        goto done;
    }
    for (size_t i = 0; i < w->count; i++) {
        ota_file_t *f = &w->files[i];
        archive_entry_clear(e);
        archive_entry_set_pathname(e, f->path);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        if (f->link) {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_perm(e, 0777);
            archive_entry_set_symlink(e, f->link);
            if (archive_write_header(a, e) != ARCHIVE_OK)
                goto fail;
            continue;
        }
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, f->mode);
        archive_entry_set_size(e, (la_int64_t)f->size);
        if (archive_write_header(a, e) != ARCHIVE_OK)
            goto fail;
        char full[PATH_MAX];
        FILE *in = join(full, sizeof full, root, f->path) ? fopen(full, "rb") : NULL;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        if (!in || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
            snprintf(w->err, w->errlen, "%s: %s", full, strerror(errno));
            if (in)
                fclose(in);
            EVP_MD_CTX_free(md);
            goto done;
        }
        unsigned char block[16384];
        size_t n;
        uint64_t total = 0;
        while ((n = fread(block, 1, sizeof block, in)) > 0 && total + n <= f->size) {
            total += n;
            EVP_DigestUpdate(md, block, n);
            if (archive_write_data(a, block, n) != (la_ssize_t)n)
                break;
        }
        fclose(in);
        unsigned char digest[32];
        EVP_DigestFinal_ex(md, digest, NULL);
        EVP_MD_CTX_free(md);
        if (total != f->size) {
            snprintf(w->err, w->errlen, "%s changed while it was packed", full);
            goto done;
        }
        for (unsigned k = 0; k < 32; k++)
            snprintf(f->sha256 + 2 * k, 3, "%02x", digest[k]);
    }
    if (archive_write_close(a) != ARCHIVE_OK)
        goto fail;
    rc = SEDGE_OK;
    goto done;
fail:
    snprintf(w->err, w->errlen, "%s: %s", out, archive_error_string(a));
done:
    archive_entry_free(e);
    archive_write_free(a);
    return rc;
}

static json_t *manifest_of(const walk_t *w, const ota_bundle_params_t *p, const char *key_id,
                           uint64_t psize, const char *psha)
{
    json_t *files = json_array();
    for (size_t i = 0; i < w->count; i++) {
        const ota_file_t *f = &w->files[i];
        json_array_append_new(files, f->link
                                         ? json_pack("{s:s, s:s}", "path", f->path, "link", f->link)
                                         : json_pack("{s:s, s:I, s:s, s:i}", "path", f->path,
                                                     "size", (json_int_t)f->size, "sha256",
                                                     f->sha256, "mode", (int)f->mode));
    }
    return json_pack(
        "{s:i, s:s, s:s, s:s, s:s, s:i, s:s, s:{s:I, s:s}, s:o}", "format", 1, "product", "sedge",
        "version", p->version, "min_version", p->min_version ? p->min_version : "0", "architecture",
        p->architecture ? p->architecture : ota_machine(), "store_schema", p->store_schema,
        "key_id", key_id, "payload", "size", (json_int_t)psize, "sha256", psha, "files", files);
}

static bool write_member(struct archive *a, const char *name, const void *data, size_t len)
{
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return false;
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)len);
    bool ok = archive_write_header(a, e) == ARCHIVE_OK &&
              (len == 0 || archive_write_data(a, data, len) == (la_ssize_t)len);
    archive_entry_free(e);
    return ok;
}

static sedge_err write_bundle(const char *out, const char *manifest, const uint8_t *sig,
                              const char *payload, uint64_t psize, char *err, size_t errlen)
{
    struct archive *a = archive_write_new();
    if (!a)
        return SEDGE_ERR_NOMEM;
    archive_write_set_format_ustar(a);
    archive_write_set_bytes_in_last_block(a, 1);
    FILE *in = NULL;
    bool ok = archive_write_open_filename(a, out) == ARCHIVE_OK &&
              write_member(a, "manifest.json", manifest, strlen(manifest)) &&
              write_member(a, "manifest.sig", sig, OTA_SIG_BYTES);
    struct archive_entry *e = archive_entry_new();
    if (ok && e && (in = fopen(payload, "rb"))) {
        archive_entry_set_pathname(e, "release.tar.gz");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)psize);
        ok = archive_write_header(a, e) == ARCHIVE_OK;
        unsigned char block[16384];
        size_t n;
        while (ok && (n = fread(block, 1, sizeof block, in)) > 0)
            ok = archive_write_data(a, block, n) == (la_ssize_t)n;
        fclose(in);
    } else {
        ok = false;
    }
    archive_entry_free(e);
    ok = archive_write_close(a) == ARCHIVE_OK && ok;
    if (!ok)
        snprintf(err, errlen, "%s: %s", out,
                 archive_error_string(a) ? archive_error_string(a) : strerror(errno));
    archive_write_free(a);
    return ok ? SEDGE_OK : SEDGE_ERR_IO;
}

sedge_err ota_bundle_create(const char *dir, const ota_bundle_params_t *p, const char *key_path,
                            const char *out, char *err, size_t errlen)
{
    walk_t w = {.err = err, .errlen = errlen};
    char payload[PATH_MAX], tmp[PATH_MAX], key_id[17], psha[65];
    uint8_t sig[OTA_SIG_BYTES];
    uint64_t psize = 0;
    char *text = NULL;
    snprintf(payload, sizeof payload, "%s.payload.tmp", out);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    sedge_err rc = SEDGE_ERR_INVALID;
    if (!ota_version_valid(p->version) || (p->min_version && !ota_version_valid(p->min_version))) {
        snprintf(err, errlen, "versions are dotted numbers such as 1.2.3");
        goto done;
    }
    /* Sign something first: a bad key fails before the tree is packed. */
    if ((rc = ota_sign(key_path, BYTES_LIT("probe"), sig, key_id, err, errlen)) ||
        (rc = walk(&w, dir, "")))
        goto done;
    qsort(w.files, w.count, sizeof *w.files, cmp_files);
    if ((rc = lazy_archive_load(err, errlen)) || (rc = write_payload(&w, dir, payload)))
        goto done;
    if ((rc = ota_file_sha256(payload, &psize, psha))) {
        snprintf(err, errlen, "%s: cannot be read back", payload);
        goto done;
    }
    json_t *m = manifest_of(&w, p, key_id, psize, psha);
    text = m ? json_dumps(m, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    json_decref(m);
    rc = SEDGE_ERR_NOMEM;
    if (!text)
        goto done;
    /* What we made must be a manifest we accept (e.g. sedged is there). */
    ota_manifest_t check;
    char perr[300];
    if ((rc = ota_manifest_parse(bytes_of_cstr(text), &check, perr, sizeof perr))) {
        snprintf(err, errlen, "%s: %s", dir, perr);
        goto done;
    }
    ota_manifest_free(&check);
    if ((rc = ota_sign(key_path, bytes_of_cstr(text), sig, key_id, err, errlen)) ||
        (rc = write_bundle(tmp, text, sig, payload, psize, err, errlen)))
        goto done;
    if (rename(tmp, out) != 0) {
        snprintf(err, errlen, "%s: %s", out, strerror(errno));
        rc = SEDGE_ERR_IO;
    }
done:
    unlink(payload);
    if (rc)
        unlink(tmp);
    free(text);
    for (size_t i = 0; i < w.count; i++) {
        free(w.files[i].path);
        free(w.files[i].link);
    }
    free(w.files);
    return rc;
}
