/*
 * lazylib: the dlopen of libcurl and libarchive, once each (lazylib.h).
 */
#include "lazylib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A table is its functions' addresses in order: dlsym's results are
 * copied into it as they are (POSIX lets a dlsym result be a function's
 * address). */
_Static_assert(sizeof(void (*)(void)) == sizeof(void *), "function and data pointers differ");

#define LAZY_NAME(field, function) #function,

typedef struct {
    const char *soname;       /* what is dlopened */
    const char *package;      /* the Debian package that ships it */
    const char *const *names; /* the table's functions, in its order */
    size_t count;
    void *table;
    pthread_once_t once;
    sedge_err err; /* the load's answer, set once */
    char why[512];
} lazy_lib_t;

static void open_lib(lazy_lib_t *lib)
{
    void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(lib->why, sizeof lib->why, "%s is not installed: %s", lib->package,
                 e ? e : lib->soname);
        lib->err = SEDGE_ERR_UNSUPPORTED;
        return;
    }
    for (size_t i = 0; i < lib->count; i++) {
        dlerror();
        void *f = dlsym(h, lib->names[i]);
        if (!f) {
            const char *e = dlerror();
            snprintf(lib->why, sizeof lib->why, "%s (%s) has no %s: %s", lib->soname, lib->package,
                     lib->names[i], e ? e : "not found");
            lib->err = SEDGE_ERR_UNSUPPORTED;
            return; /* the handle is kept, like a loaded one's */
        }
        memcpy((char *)lib->table + i * sizeof f, &f, sizeof f);
    }
    lib->err = SEDGE_OK;
}

static sedge_err load(lazy_lib_t *lib, void (*once)(void), char *why, size_t why_len)
{
    pthread_once(&lib->once, once);
    if (lib->err && why && why_len)
        snprintf(why, why_len, "%s", lib->why);
    return lib->err;
}

static const void *table(lazy_lib_t *lib, void (*once)(void))
{
    pthread_once(&lib->once, once);
    if (lib->err) {
        fprintf(stderr, "sedged: %s used without a successful load: %s\n", lib->soname, lib->why);
        abort();
    }
    return lib->table;
}

static lazy_curl_t curl_table;
static const char *const curl_names[] = {LAZY_CURL_FUNCTIONS(LAZY_NAME)};
_Static_assert(sizeof curl_table == sizeof curl_names, "one name per field");
static lazy_lib_t curl_lib = {"libcurl.so.4",
                              "libcurl4",
                              curl_names,
                              sizeof curl_names / sizeof curl_names[0],
                              &curl_table,
                              PTHREAD_ONCE_INIT,
                              SEDGE_ERR_UNSUPPORTED,
                              ""};

static void curl_once(void)
{
    open_lib(&curl_lib);
    CURLcode rc = curl_lib.err ? CURLE_OK : curl_table.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(curl_lib.why, sizeof curl_lib.why, "libcurl cannot start: %s",
                 curl_table.easy_strerror(rc));
        curl_lib.err = SEDGE_ERR_FAILED;
    }
}

sedge_err lazy_curl_load(char *why, size_t why_len)
{
    return load(&curl_lib, curl_once, why, why_len);
}

const lazy_curl_t *lazy_curl(void)
{
    return table(&curl_lib, curl_once);
}

static lazy_archive_t archive_table;
static const char *const archive_names[] = {LAZY_ARCHIVE_FUNCTIONS(LAZY_NAME)};
_Static_assert(sizeof archive_table == sizeof archive_names, "one name per field");
static lazy_lib_t archive_lib = {
    "libarchive.so.13",    "libarchive13",
    archive_names,         sizeof archive_names / sizeof archive_names[0],
    &archive_table,        PTHREAD_ONCE_INIT,
    SEDGE_ERR_UNSUPPORTED, ""};

static void archive_once(void)
{
    open_lib(&archive_lib);
}

sedge_err lazy_archive_load(char *why, size_t why_len)
{
    return load(&archive_lib, archive_once, why, why_len);
}

const lazy_archive_t *lazy_archive(void)
{
    return table(&archive_lib, archive_once);
}
