/*
 * options: sedge-sandbox's command line (see sandbox.h). Anything it does
 * not understand ends the start: a sandbox that silently ignored an option
 * would run a function with less isolation than asked for.
 */
#include "sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noreturn)) static void usage(void)
{
    sandbox_fail("usage: sedge-sandbox [--uid U --gid G [--group G]...] [--cgroup DIR]... [--isolate] "
                 "[--network] [--ro P] [--rw P] [--code DIR] [--volume S:D:ro|rw] "
                 "[--device P:ro|rw] [--sysfs] [--standby] [--root DIR] [--memory-mb N] "
                 "[--nproc N] -- PROGRAM [ARGS]");
}

static unsigned long number(const char *text)
{
    char *end;
    unsigned long v = strtoul(text, &end, 10);
    if (!*text || *end)
        usage();
    return v;
}

static void add_bind(options_t *o, const char *src, const char *dst, bool rw, bool device)
{
    if (o->bind_count == SANDBOX_MAX_BINDS)
        sandbox_fail("more than %d paths to bind", SANDBOX_MAX_BINDS);
    if (src[0] != '/' || dst[0] != '/')
        sandbox_fail("%s: paths to bind must be absolute", src);
    o->binds[o->bind_count++] = (bind_t){src, dst, rw, device};
}

/* "SRC:DST:MODE" or "PATH:MODE" into its parts (the string is modified). */
static bool split_mode(char *spec, char **first, char **second, bool *rw)
{
    char *mode = strrchr(spec, ':');
    if (!mode)
        return false;
    *mode++ = '\0';
    if (strcmp(mode, "rw") != 0 && strcmp(mode, "ro") != 0)
        return false;
    *rw = strcmp(mode, "rw") == 0;
    *first = spec;
    if (second) {
        char *colon = strchr(spec, ':');
        if (!colon)
            return false;
        *colon = '\0';
        *second = colon + 1;
    }
    return true;
}

void options_parse(int argc, char **argv, options_t *o)
{
    o->netns_fd = o->ipcns_fd = -1;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes_value = true;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (strcmp(a, "--isolate") == 0) {
            o->isolate = true, takes_value = false;
        } else if (strcmp(a, "--network") == 0) {
            o->network = true, takes_value = false;
        } else if (strcmp(a, "--sysfs") == 0) {
            o->sysfs = true, takes_value = false;
        } else if (strcmp(a, "--standby") == 0) {
            o->standby = true, takes_value = false;
        } else if (!v) {
            usage();
        } else if (strcmp(a, "--uid") == 0) {
            o->uid = (uid_t)number(v), o->have_user = true;
        } else if (strcmp(a, "--gid") == 0) {
            o->gid = (gid_t)number(v);
        } else if (strcmp(a, "--group") == 0) {
            if (o->group_count == SANDBOX_MAX_GROUPS)
                usage();
            o->groups[o->group_count++] = (gid_t)number(v);
        } else if (strcmp(a, "--cgroup") == 0) {
            if (o->cgroup_count == SANDBOX_MAX_CGROUPS)
                usage();
            o->cgroups[o->cgroup_count++] = v;
        } else if (strcmp(a, "--memory-mb") == 0) {
            o->memory_mb = number(v);
        } else if (strcmp(a, "--nproc") == 0) {
            o->nproc = number(v);
        } else if (strcmp(a, "--netns-fd") == 0) {
            o->netns_fd = (int)number(v);
        } else if (strcmp(a, "--ipcns-fd") == 0) {
            o->ipcns_fd = (int)number(v);
        } else if (strcmp(a, "--root") == 0) {
            o->root = v;
        } else if (strcmp(a, "--code") == 0) {
            add_bind(o, v, v, false, false);
            o->code = v;
        } else if (strcmp(a, "--ro") == 0 || strcmp(a, "--rw") == 0) {
            add_bind(o, v, v, strcmp(a, "--rw") == 0, false);
        } else if (strcmp(a, "--volume") == 0 || strcmp(a, "--device") == 0) {
            bool volume = strcmp(a, "--volume") == 0;
            char *spec = strdup(v), *src, *dst;
            bool rw;
            if (!spec || !split_mode(spec, &src, volume ? &dst : NULL, &rw))
                usage();
            add_bind(o, src, volume ? dst : src, rw, !volume);
        } else {
            usage();
        }
        if (takes_value)
            i++;
    }
    if (i >= argc)
        usage();
    o->argv = argv + i;
}
