/*
 * lazy_archive.h: libarchive's functions, by their own names, through the table
 * lazylib loads (lazylib.h): include this instead of <archive.h> and
 * <archive_entry.h>, and call lazy_archive_load before the first archive_
 * call of a path. Not for headers (it renames libarchive's functions for
 * the file that includes it).
 */
#pragma once

#include "lazylib/lazylib.h"

#define archive_error_string (lazy_archive()->error_string)
#define archive_read_new (lazy_archive()->read_new)
#define archive_read_free (lazy_archive()->read_free)
#define archive_read_support_filter_gzip (lazy_archive()->read_support_filter_gzip)
#define archive_read_support_filter_bzip2 (lazy_archive()->read_support_filter_bzip2)
#define archive_read_support_filter_xz (lazy_archive()->read_support_filter_xz)
#define archive_read_support_format_tar (lazy_archive()->read_support_format_tar)
#define archive_read_support_format_zip (lazy_archive()->read_support_format_zip)
#define archive_read_open (lazy_archive()->read_open)
#define archive_read_open_filename (lazy_archive()->read_open_filename)
#define archive_read_next_header (lazy_archive()->read_next_header)
#define archive_read_data (lazy_archive()->read_data)
#define archive_write_new (lazy_archive()->write_new)
#define archive_write_disk_new (lazy_archive()->write_disk_new)
#define archive_write_disk_set_options (lazy_archive()->write_disk_set_options)
#define archive_write_add_filter_gzip (lazy_archive()->write_add_filter_gzip)
#define archive_write_set_format_pax_restricted (lazy_archive()->write_set_format_pax_restricted)
#define archive_write_set_format_ustar (lazy_archive()->write_set_format_ustar)
#define archive_write_set_bytes_in_last_block (lazy_archive()->write_set_bytes_in_last_block)
#define archive_write_open_filename (lazy_archive()->write_open_filename)
#define archive_write_header (lazy_archive()->write_header)
#define archive_write_data (lazy_archive()->write_data)
#define archive_write_finish_entry (lazy_archive()->write_finish_entry)
#define archive_write_close (lazy_archive()->write_close)
#define archive_write_free (lazy_archive()->write_free)
#define archive_entry_new (lazy_archive()->entry_new)
#define archive_entry_clear (lazy_archive()->entry_clear)
#define archive_entry_free (lazy_archive()->entry_free)
#define archive_entry_pathname (lazy_archive()->entry_pathname)
#define archive_entry_filetype (lazy_archive()->entry_filetype)
#define archive_entry_perm (lazy_archive()->entry_perm)
#define archive_entry_size (lazy_archive()->entry_size)
#define archive_entry_size_is_set (lazy_archive()->entry_size_is_set)
#define archive_entry_hardlink (lazy_archive()->entry_hardlink)
#define archive_entry_symlink (lazy_archive()->entry_symlink)
#define archive_entry_set_pathname (lazy_archive()->entry_set_pathname)
#define archive_entry_set_filetype (lazy_archive()->entry_set_filetype)
#define archive_entry_set_perm (lazy_archive()->entry_set_perm)
#define archive_entry_set_size (lazy_archive()->entry_set_size)
#define archive_entry_set_symlink (lazy_archive()->entry_set_symlink)
#define archive_entry_set_uid (lazy_archive()->entry_set_uid)
#define archive_entry_set_gid (lazy_archive()->entry_set_gid)
