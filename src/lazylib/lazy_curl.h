/*
 * lazy_curl.h: libcurl's functions, by their own names, through the table
 * lazylib loads (lazylib.h): include this instead of <curl/curl.h>, and
 * call lazy_curl_load before the first curl_ call of a path. Not for
 * headers (it renames curl's functions for the file that includes it).
 * The #undefs drop typecheck-gcc.h's macros of the same names.
 */
#pragma once

#include "lazylib/lazylib.h"

#define curl_global_init (lazy_curl()->global_init)
#define curl_easy_init (lazy_curl()->easy_init)
#undef curl_easy_setopt
#define curl_easy_setopt (lazy_curl()->easy_setopt)
#undef curl_easy_getinfo
#define curl_easy_getinfo (lazy_curl()->easy_getinfo)
#define curl_easy_perform (lazy_curl()->easy_perform)
#define curl_easy_cleanup (lazy_curl()->easy_cleanup)
#define curl_easy_strerror (lazy_curl()->easy_strerror)
