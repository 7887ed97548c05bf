/*
 * paths: where sedged's companion files are — sedge-sandbox, the
 * connectors' programs, the C SDK's shared library and the Python SDK —
 * found from sedged's own location (/proc/self/exe), so that neither a
 * build folder nor an installed prefix needs variables:
 *   - build folder (sedge-sandbox beside sedged): build/sedge-sandbox,
 *     build/connectors/, build/libsedge.so.0, ../sdk/python;
 *   - installed (PREFIX/sbin/sedged): PREFIX/libexec/sedge/sedge-sandbox,
 *     PREFIX/libexec/sedge/connectors/, PREFIX/LIBDIR/libsedge.so.0 and
 *     the Python SDK's directory (left to python3 itself when it is under
 *     /usr, where Debian's python3 looks).
 * SEDGE_SANDBOX, SEDGE_CONNECTORS and SEDGE_PYTHON_SDK override each.
 */
#ifndef SEDGE_PATHS_H
#define SEDGE_PATHS_H

#include <stdbool.h>
#include <stddef.h>

#define PATHS_MAX 4096

typedef struct {
    bool installed;              /* false: sedged runs from its build folder */
    char sandbox[PATHS_MAX];     /* the sedge-sandbox program */
    char connectors[PATHS_MAX];  /* the directory of the connectors' programs */
    char sdk_library[PATHS_MAX]; /* libsedge.so.0, or "" when there is none */
    char python_sdk[PATHS_MAX];  /* for PYTHONPATH, or "" when python3 finds it */
} paths_t;

/* Fill `out` for the program at `exe` (sedged's /proc/self/exe). */
void paths_find(const char *exe, paths_t *out);
/* The same for the running program. */
void paths_of_self(paths_t *out);

#endif
