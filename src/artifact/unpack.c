/*
 * unpack: an archive into an empty directory, by libarchive, without
 * trusting a byte of it. Each entry's path is checked level by level and
 * created with openat() from the directory above, never following a link
 * (O_NOFOLLOW, O_EXCL), so an entry cannot reach outside the tree even
 * through a link an earlier entry made; links may only point inside the
 * tree; what is written is counted as it is written, whatever the header
 * says, so a small archive that inflates without end stops at the cap.
 * At the end the tree is made read-only.
 */
#include "artifact.h"

#include "lazylib/lazy_archive.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ENTRY_PATH 4096
#define MAX_DEPTH 64

typedef struct {
    const artifact_limits_t *lim;
    uint64_t written;
    uint32_t entries;
    char *why;
    size_t why_len;
} unpack_t;

static sedge_err fail(unpack_t *u, sedge_err err, const char *fmt, ...) PRINTF_LIKE(3, 4);
static sedge_err fail(unpack_t *u, sedge_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->why, u->why_len, fmt, ap);
    va_end(ap);
    for (char *p = u->why; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return err;
}

/* Split an entry's path into its levels: "./a//b/" -> a, b. Refuses
 * absolute paths and "..". Returns the level count, or -1. */
static int split_levels(char *path, char **levels, int cap)
{
    if (path[0] == '/')
        return -1;
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(path, "/", &save); tok;
         tok = strtok_r(NULL, "/", &save)) {
        if (strcmp(tok, ".") == 0)
            continue;
        if (strcmp(tok, "..") == 0 || n == cap)
            return -1;
        levels[n++] = tok;
    }
    return n;
}

/* Open (creating as needed) the directory of levels[0..n) under root,
 * never through a link. */
static int open_parent(int root, char **levels, int n)
{
    int fd = dup(root);
    for (int i = 0; i < n && fd >= 0; i++) {
        if (mkdirat(fd, levels[i], 0700) != 0 && errno != EEXIST) {
            close(fd);
            return -1;
        }
        int next = openat(fd, levels[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        fd = next;
    }
    return fd;
}

/* Does a link at depth `depth` (levels above it inside the tree) with this
 * target stay inside the tree? */
static bool link_stays_inside(const char *target, int depth)
{
    if (!target[0] || target[0] == '/')
        return false;
    char copy[MAX_ENTRY_PATH];
    if (snprintf(copy, sizeof copy, "%s", target) >= (int)sizeof copy)
        return false;
    int level = depth;
    for (char *save = NULL, *tok = strtok_r(copy, "/", &save); tok;
         tok = strtok_r(NULL, "/", &save)) {
        if (strcmp(tok, "..") == 0) {
            if (--level < 0)
                return false;
        } else if (strcmp(tok, ".") != 0) {
            level++;
        }
    }
    return true;
}

static sedge_err write_file(unpack_t *u, struct archive *a, int dirfd, const char *name,
                            const char *shown, mode_t mode)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(u, SEDGE_ERR_INVALID, "archive entry %s: cannot create it: %s", shown,
                    errno == EEXIST ? "it is in the archive twice" : strerror(errno));
    uint8_t chunk[65536];
    sedge_err err = SEDGE_OK;
    for (;;) {
        la_ssize_t n = archive_read_data(a, chunk, sizeof chunk);
        if (n == 0)
            break;
        if (n < 0) {
            err = fail(u, SEDGE_ERR_MALFORMED, "archive entry %s: %s", shown,
                       archive_error_string(a));
            break;
        }
        u->written += (uint64_t)n;
        if (u->written > u->lim->max_unpacked_bytes) {
            err = fail(u, SEDGE_ERR_TOO_LARGE,
                       "the archive unpacks to more than %llu bytes (the limit)",
                       (unsigned long long)u->lim->max_unpacked_bytes);
            break;
        }
        for (la_ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, chunk + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                err = fail(u, SEDGE_ERR_IO, "archive entry %s: cannot write it: %s", shown,
                           strerror(errno));
                break;
            }
            off += w;
        }
        if (err)
            break;
    }
    /* Read-only; executable where the archive says so. */
    mode_t m = (mode & 0111) ? 0555 : 0444;
    if (!err && (fchmod(fd, m) != 0 || fsync(fd) != 0))
        err = fail(u, SEDGE_ERR_IO, "archive entry %s: %s", shown, strerror(errno));
    close(fd);
    return err;
}

static sedge_err unpack_entry(unpack_t *u, struct archive *a, struct archive_entry *e, int root)
{
    const char *raw = archive_entry_pathname(e);
    if (!raw || !raw[0])
        return fail(u, SEDGE_ERR_INVALID, "an archive entry has no name");
    char path[MAX_ENTRY_PATH], *levels[MAX_DEPTH];
    if (snprintf(path, sizeof path, "%s", raw) >= (int)sizeof path)
        return fail(u, SEDGE_ERR_INVALID, "an archive entry's name is too long");
    int n = split_levels(path, levels, MAX_DEPTH);
    if (n < 0)
        return fail(u, SEDGE_ERR_DENIED,
                    "archive entry %.300s: an absolute path or \"..\" (or deeper than %d levels): "
                    "an archive must stay in its own tree",
                    raw, MAX_DEPTH);
    if (archive_entry_hardlink(e))
        return fail(u, SEDGE_ERR_DENIED, "archive entry %.300s: hard links are not allowed", raw);
    mode_t type = archive_entry_filetype(e);
    if (n == 0) /* "." itself */
        return type == AE_IFDIR ? SEDGE_OK
                                : fail(u, SEDGE_ERR_INVALID, "archive entry %.300s: no name", raw);
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
        return fail(u, SEDGE_ERR_DENIED,
                    "archive entry %.300s: only files, directories and links are allowed", raw);
    int dirfd = open_parent(root, levels, n - 1);
    if (dirfd < 0)
        return fail(u, SEDGE_ERR_DENIED,
                    "archive entry %.300s: its directory cannot be made (%s; an entry may not go "
                    "through a link or a file)",
                    raw, strerror(errno));
    const char *name = levels[n - 1];
    sedge_err err = SEDGE_OK;
    if (type == AE_IFDIR) {
        int fd = -1;
        if ((mkdirat(dirfd, name, 0700) != 0 && errno != EEXIST) ||
            (fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
            err = fail(u, SEDGE_ERR_DENIED, "archive entry %.300s: cannot make the directory: %s",
                       raw, strerror(errno));
        if (fd >= 0)
            close(fd);
    } else if (type == AE_IFLNK) {
        const char *target = archive_entry_symlink(e);
        if (!target || !link_stays_inside(target, n - 1))
            err = fail(u, SEDGE_ERR_DENIED,
                       "archive entry %.300s: a link to %.300s, which leaves the archive's tree",
                       raw, target ? target : "nothing");
        else if (symlinkat(target, dirfd, name) != 0)
            err = fail(u, SEDGE_ERR_INVALID, "archive entry %.300s: %s", raw, strerror(errno));
    } else {
        err = write_file(u, a, dirfd, name, raw, archive_entry_perm(e));
    }
    close(dirfd);
    return err;
}

static int make_read_only(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        return chmod(path, 0555) == 0 ? 0 : -1;
    (void)st;
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        return rmdir(path) == 0 ? 0 : -1;
    return unlink(path) == 0 ? 0 : -1;
}

static int make_writable(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_D)
        (void)chmod(path, 0700);
    return 0;
}

void artifact_remove_tree(const char *dir)
{
    (void)nftw(dir, make_writable, 16, FTW_PHYS);
    (void)nftw(dir, remove_one, 16, FTW_PHYS | FTW_DEPTH);
}

sedge_err artifact_unpack(const char *archive, const char *dir, const artifact_limits_t *lim,
                          char *why, size_t why_len)
{
    unpack_t u = {lim, 0, 0, why, why_len};
    sedge_err loaded = lazy_archive_load(why, why_len);
    if (loaded)
        return loaded;
    struct archive *a = archive_read_new();
    if (!a)
        return fail(&u, SEDGE_ERR_NOMEM, "out of memory");
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_bzip2(a);
    archive_read_support_filter_xz(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_zip(a);
    sedge_err err = SEDGE_OK;
    int root = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root < 0)
        err = fail(&u, SEDGE_ERR_IO, "cannot open %s: %s", dir, strerror(errno));
    else if (archive_read_open_filename(a, archive, 65536) != ARCHIVE_OK)
        err = fail(&u, SEDGE_ERR_MALFORMED, "not a tar, tar.gz or zip archive: %s",
                   archive_error_string(a));
    while (!err) {
        struct archive_entry *e;
        int rc = archive_read_next_header(a, &e);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
            err = fail(&u, SEDGE_ERR_MALFORMED, "not a valid archive: %s", archive_error_string(a));
            break;
        }
        if (++u.entries > lim->max_entries) {
            err = fail(&u, SEDGE_ERR_TOO_LARGE, "the archive has more than %u entries (the limit)",
                       lim->max_entries);
            break;
        }
        err = unpack_entry(&u, a, e, root);
    }
    if (!err && u.entries == 0)
        err = fail(&u, SEDGE_ERR_MALFORMED, "the archive is empty or not a tar, tar.gz or zip");
    archive_read_free(a);
    if (root >= 0)
        close(root);
    if (!err && nftw(dir, make_read_only, 16, FTW_PHYS | FTW_DEPTH) != 0)
        err = fail(&u, SEDGE_ERR_IO, "cannot make %s read-only: %s", dir, strerror(errno));
    if (err)
        artifact_remove_tree(dir);
    return err;
}
