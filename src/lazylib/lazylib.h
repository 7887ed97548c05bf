/*
 * lazylib: libcurl and libarchive, loaded on first use instead of at
 * sedged's start. Linked directly they (and what they pull in: gnutls,
 * krb5, ldap, libxml2, ICU, libstdc++...) made an idle sedged map ~50
 * shared libraries instead of ~9; most devices never download a model or
 * an update. The first download, unpack or bundle check dlopens the
 * Debian soname (libcurl.so.4, libarchive.so.13) with RTLD_NOW |
 * RTLD_LOCAL and resolves exactly the functions below into a table, once
 * (pthread_once: downloads run on libuv's worker threads); libcurl's
 * curl_global_init runs there too. A library that is missing or lacks a
 * function is an error with a message ("libcurl4 is not installed: ..."),
 * the same at every later call.
 *
 * Owns: the two dlopen handles and their tables. Neither is ever
 * dlclosed: a table handed out stays valid for the life of the process.
 *
 * The prototypes come from curl/curl.h and archive.h (__typeof__), so the
 * calls are type-checked as they were (except curl's setopt/getinfo value
 * checks, typecheck-gcc.h, which are macros on the direct functions). The
 * call sites keep their names through lazy_curl.h and lazy_archive.h;
 * each path into them calls lazy_curl_load / lazy_archive_load first.
 */
#pragma once

#include "base/base.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>

/* Field, function: the functions sedge uses, and nothing else. */
#define LAZY_CURL_FUNCTIONS(X)                                                                     \
    X(global_init, curl_global_init)                                                               \
    X(easy_init, curl_easy_init)                                                                   \
    X(easy_setopt, curl_easy_setopt)                                                               \
    X(easy_getinfo, curl_easy_getinfo)                                                             \
    X(easy_perform, curl_easy_perform)                                                             \
    X(easy_cleanup, curl_easy_cleanup)                                                             \
    X(easy_strerror, curl_easy_strerror)

#define LAZY_ARCHIVE_FUNCTIONS(X)                                                                  \
    X(error_string, archive_error_string)                                                          \
    X(read_new, archive_read_new)                                                                  \
    X(read_free, archive_read_free)                                                                \
    X(read_support_filter_gzip, archive_read_support_filter_gzip)                                  \
    X(read_support_filter_bzip2, archive_read_support_filter_bzip2)                                \
    X(read_support_filter_xz, archive_read_support_filter_xz)                                      \
    X(read_support_format_tar, archive_read_support_format_tar)                                    \
    X(read_support_format_zip, archive_read_support_format_zip)                                    \
    X(read_open, archive_read_open)                                                                \
    X(read_open_filename, archive_read_open_filename)                                              \
    X(read_next_header, archive_read_next_header)                                                  \
    X(read_data, archive_read_data)                                                                \
    X(write_new, archive_write_new)                                                                \
    X(write_disk_new, archive_write_disk_new)                                                      \
    X(write_disk_set_options, archive_write_disk_set_options)                                      \
    X(write_add_filter_gzip, archive_write_add_filter_gzip)                                        \
    X(write_set_format_pax_restricted, archive_write_set_format_pax_restricted)                    \
    X(write_set_format_ustar, archive_write_set_format_ustar)                                      \
    X(write_set_bytes_in_last_block, archive_write_set_bytes_in_last_block)                        \
    X(write_open_filename, archive_write_open_filename)                                            \
    X(write_header, archive_write_header)                                                          \
    X(write_data, archive_write_data)                                                              \
    X(write_finish_entry, archive_write_finish_entry)                                              \
    X(write_close, archive_write_close)                                                            \
    X(write_free, archive_write_free)                                                              \
    X(entry_new, archive_entry_new)                                                                \
    X(entry_clear, archive_entry_clear)                                                            \
    X(entry_free, archive_entry_free)                                                              \
    X(entry_pathname, archive_entry_pathname)                                                      \
    X(entry_filetype, archive_entry_filetype)                                                      \
    X(entry_perm, archive_entry_perm)                                                              \
    X(entry_size, archive_entry_size)                                                              \
    X(entry_size_is_set, archive_entry_size_is_set)                                                \
    X(entry_hardlink, archive_entry_hardlink)                                                      \
    X(entry_symlink, archive_entry_symlink)                                                        \
    X(entry_set_pathname, archive_entry_set_pathname)                                              \
    X(entry_set_filetype, archive_entry_set_filetype)                                              \
    X(entry_set_perm, archive_entry_set_perm)                                                      \
    X(entry_set_size, archive_entry_set_size)                                                      \
    X(entry_set_symlink, archive_entry_set_symlink)                                                \
    X(entry_set_uid, archive_entry_set_uid)                                                        \
    X(entry_set_gid, archive_entry_set_gid)

#define LAZY_FIELD(field, function) __typeof__(function) *field;
typedef struct {
    LAZY_CURL_FUNCTIONS(LAZY_FIELD)
} lazy_curl_t;
typedef struct {
    LAZY_ARCHIVE_FUNCTIONS(LAZY_FIELD)
} lazy_archive_t;
#undef LAZY_FIELD

/* Load libcurl (and curl_global_init it) or libarchive, the first time;
 * later calls answer what the first did. SEDGE_ERR_UNSUPPORTED with
 * `why` when the library or one of its functions is missing. Safe from
 * any thread. */
NODISCARD sedge_err lazy_curl_load(char *why, size_t why_len);
NODISCARD sedge_err lazy_archive_load(char *why, size_t why_len);

/* The table, after a successful load (aborts, naming the library, if the
 * load failed: a call site reached without its load check). */
const lazy_curl_t *lazy_curl(void);
const lazy_archive_t *lazy_archive(void);
