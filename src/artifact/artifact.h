/*
 * artifact: archives named by a URL and their SHA-256 — a model resource
 * today, anything a deployment fetches tomorrow — brought into a
 * content-addressed cache: fetched (a local path, file://, http(s)://
 * through libcurl) into a private temporary file while hashed, refused
 * unless the hash is the one the document gives, unpacked with libarchive
 * (tar, gzip or not, and zip) under strict rules, made read-only, and
 * renamed into CACHE/<sha256> in one step. What is in the cache is
 * complete or not there at all.
 *
 * The unpacking rules: regular files, directories and symbolic links
 * only; no absolute path, no "..", no entry through a link; a link's
 * target must stay inside the tree; the bytes written (not the sizes
 * the archive claims) and the entries are capped. The calls block: the
 * caller runs them off its event loop.
 */
#ifndef SEDGE_ARTIFACT_H
#define SEDGE_ARTIFACT_H

#include "base/base.h"

typedef struct {
    uint64_t max_archive_bytes;  /* the download */
    uint64_t max_unpacked_bytes; /* all files together */
    uint32_t max_entries;
    uint32_t timeout_s; /* http(s) */
} artifact_limits_t;

#define ARTIFACT_LIMITS_DEFAULT                                                                    \
    ((artifact_limits_t){(uint64_t)1 << 30, (uint64_t)4 << 30, 10000, 300})

/* Is CACHE/<sha256> there (complete)? Fills `dir` with its path. */
bool artifact_cached(const char *cache, const char *sha256_hex, char *dir, size_t dir_len);

/* Bring the archive at `url` into CACHE/<sha256> (created if needed);
 * `dir` receives the unpacked tree's path. On failure `why` says what was
 * wrong in words for the user (a hash mismatch names both hashes). */
NODISCARD sedge_err artifact_fetch_unpack(const char *cache, const char *url,
                                          const char *sha256_hex, const artifact_limits_t *lim,
                                          char *dir, size_t dir_len, char *why, size_t why_len);

/* Unpack the archive file `archive` into the empty directory `dir` under
 * the rules above; on failure `dir` is removed. */
NODISCARD sedge_err artifact_unpack(const char *archive, const char *dir,
                                    const artifact_limits_t *lim, char *why, size_t why_len);

/* Remove a tree, read-only parts too (not following links). */
void artifact_remove_tree(const char *dir);

/* Remove the cache's entries whose hash is not in `keep` (count hashes,
 * hex), and leftovers of interrupted fetches. */
void artifact_cache_prune(const char *cache, const char *const *keep, size_t count);

#endif
