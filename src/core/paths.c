/*
 * paths: the build folder is told from an install by sedge-sandbox lying
 * beside sedged (an install puts it under libexec, not beside a program in
 * sbin). The install layout relative to the prefix comes from CMake
 * (GNUInstallDirs) as compile definitions; a prefix moved as a whole
 * (cmake --install --prefix, DESTDIR) still finds itself.
 */
#include "paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SEDGE_SBIN_TO_PREFIX
#define SEDGE_SBIN_TO_PREFIX ".."
#endif
#ifndef SEDGE_LIBEXECDIR
#define SEDGE_LIBEXECDIR "libexec"
#endif
#ifndef SEDGE_LIBDIR
#define SEDGE_LIBDIR "lib"
#endif
#ifndef SEDGE_PYTHONDIR
#define SEDGE_PYTHONDIR "lib/python3/dist-packages"
#endif

/* PREFIX/REL, or REL itself when it is absolute. */
static void under(char *out, size_t len, const char *prefix, const char *rel, const char *tail)
{
    if (rel[0] == '/')
        snprintf(out, len, "%s%s", rel, tail);
    else
        snprintf(out, len, "%.2000s/%s%s", prefix, rel, tail);
}

static void set_env_or(char *out, size_t len, const char *var, const char *fallback)
{
    const char *env = getenv(var);
    snprintf(out, len, "%s", env ? env : fallback);
}

static bool is_file(const char *path)
{
    return access(path, F_OK) == 0;
}

void paths_find(const char *exe, paths_t *out)
{
    char dir[2048];
    snprintf(dir, sizeof dir, "%s", exe);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    char sandbox[PATHS_MAX], connectors[PATHS_MAX], python[PATHS_MAX];
    snprintf(sandbox, sizeof sandbox, "%s/sedge-sandbox", dir);
    out->installed = !is_file(sandbox);
    if (!out->installed) {
        snprintf(connectors, sizeof connectors, "%s/connectors", dir);
        snprintf(out->sdk_library, sizeof out->sdk_library, "%s/libsedge.so.0", dir);
        snprintf(python, sizeof python, "%s/../sdk/python", dir);
    } else {
        char prefix[PATHS_MAX];
        snprintf(prefix, sizeof prefix, "%s/%s", dir, SEDGE_SBIN_TO_PREFIX);
        char *real = realpath(prefix, NULL);
        if (real) {
            snprintf(prefix, sizeof prefix, "%s", real);
            free(real);
        }
        under(sandbox, sizeof sandbox, prefix, SEDGE_LIBEXECDIR, "/sedge/sedge-sandbox");
        under(connectors, sizeof connectors, prefix, SEDGE_LIBEXECDIR, "/sedge/connectors");
        under(out->sdk_library, sizeof out->sdk_library, prefix, SEDGE_LIBDIR, "/libsedge.so.0");
        under(python, sizeof python, prefix, SEDGE_PYTHONDIR, "");
        /* Debian's python3 searches /usr/lib/python3/dist-packages and
         * /usr/local/lib/python3.X/dist-packages itself, and the sandbox
         * shows /usr: nothing to add. */
        if (strncmp(python, "/usr/", 5) == 0)
            python[0] = '\0';
    }
    if (!is_file(out->sdk_library))
        out->sdk_library[0] = '\0';
    char init[PATHS_MAX + 32];
    snprintf(init, sizeof init, "%s/sedge/__init__.py", python);
    char *resolved = python[0] && is_file(init) ? realpath(python, NULL) : NULL;
    snprintf(python, sizeof python, "%s", resolved ? resolved : "");
    free(resolved);
    set_env_or(out->sandbox, sizeof out->sandbox, "SEDGE_SANDBOX", sandbox);
    set_env_or(out->connectors, sizeof out->connectors, "SEDGE_CONNECTORS", connectors);
    set_env_or(out->python_sdk, sizeof out->python_sdk, "SEDGE_PYTHON_SDK", python);
}

void paths_of_self(paths_t *out)
{
    char exe[2048];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    paths_find(exe, out);
}
