/*
 * sedge-sandbox: starts one function instance inside its limits. sedged
 * runs it (never the function directly) as
 *
 *   sedge-sandbox [OPTIONS] -- PROGRAM [ARGS...]
 *
 *   --uid U --gid G       run as this user and group (after setting up)
 *   --group G             and with this supplementary group (repeatable:
 *                         the owner groups of the declared resources);
 *                         without it, none
 *   --cgroup DIR          join this cgroup (repeatable: v2, or v1 memory,
 *                         pids and devices)
 *   --memory-mb N         address-space limit, when no cgroup enforces one
 *   --nproc N             process-count limit, when no cgroup enforces one
 *   --isolate             own mount, PID, IPC and UTS namespaces and a
 *                         fresh root (below); without it, only the user,
 *                         cgroups, rlimits and the confinement change
 *   --network             keep the host's network (else an empty one)
 *   --netns-fd N          the empty network namespace to enter (an open
 *                         descriptor, shared by a function's instances);
 *                         without it, a new one
 *   --ipcns-fd N          the same for the IPC namespace
 *   --ro PATH | --rw PATH         bind a host path at the same place
 *   --code DIR                    the function's own files: bound read-only
 *                                 at the same place, and its working
 *                                 directory
 *   --volume SRC:DST:ro|rw        bind a host directory or file at DST
 *   --device PATH:ro|rw           bind a device node
 *   --sysfs                       /sys, read-only
 *   --standby                     do everything but exec, then wait for one
 *                                 byte on stdin (EOF: exit quietly); the core
 *                                 prepares an instance ahead of need this way
 *   --root DIR                    where to build the new root (a directory
 *                                 it creates; default /tmp/sedge-root.PID)
 *
 * The function's environment is not in this program's: the core writes it
 * on stdin (a big-endian u32 length, then "K=V" strings each ended by a
 * NUL), and only the process that becomes the function reads it — after
 * it gave up every privilege — and hands it to execve. So nothing a group
 * document says (LD_PRELOAD, say) reaches this program while it is root.
 *
 * The fresh root holds /usr, /lib*, /bin, /sbin and /etc read-only (as the
 * host has them: real directories bound, symlinks copied), a private
 * writable /tmp, /proc of the new PID namespace, a minimal /dev (nodes of
 * null, zero, full, random, urandom and the declared devices), the code
 * directory and the declared paths — nothing else of the host. This
 * program forks: the child becomes PID 1 of the new namespace, builds the
 * root, joins the cgroups, and runs the function as its own child; the
 * parent mirrors the function's end so sedged sees its status (a death by
 * signal is re-raised).
 *
 * Before exec the function's process is confined (confine.c): an empty
 * capability bounding set and no capabilities, no_new_privs, and a seccomp
 * filter that refuses with EPERM the system calls a function never needs
 * (mounts, ptrace, kernel modules and kexec, bpf, keyrings, new user
 * namespaces, setns, ...). Every step that fails ends the start: what runs
 * is confined as asked, or does not run.
 *
 * Files: main.c (processes), options.c, root.c (the new root), confine.c.
 */
#ifndef SEDGE_SANDBOX_H
#define SEDGE_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>

#define SANDBOX_MAX_BINDS 64
#define SANDBOX_MAX_CGROUPS 4
#define SANDBOX_MAX_GROUPS 16
#define SANDBOX_MAX_ENV_BYTES (256u << 10)
/* Exit statuses of a start that failed before the function ran. */
#define SANDBOX_EXIT_SETUP 126
#define SANDBOX_EXIT_EXEC 127

typedef struct {
    const char *src, *dst;
    bool rw;
    bool device; /* a device node: made with mknod, not bound */
} bind_t;

typedef struct {
    uid_t uid;
    gid_t gid;
    bool have_user;
    gid_t groups[SANDBOX_MAX_GROUPS];
    int group_count;
    const char *cgroups[SANDBOX_MAX_CGROUPS];
    int cgroup_count;
    unsigned long memory_mb, nproc;
    bool isolate, network, sysfs, standby;
    int netns_fd; /* -1: make a new network namespace */
    int ipcns_fd; /* -1: make a new IPC namespace */
    const char *root;
    const char *code;
    bind_t binds[SANDBOX_MAX_BINDS];
    int bind_count;
    char **argv;
} options_t;

/* Say what failed (with errno's words) and end with SANDBOX_EXIT_SETUP. */
void sandbox_die(const char *what) __attribute__((noreturn));
void sandbox_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* options.c */
void options_parse(int argc, char **argv, options_t *o);

/* root.c: make `root` the new root of this (new) mount namespace. */
void root_build(const options_t *o, const char *root);

/* confine.c, in the order they run, in the process that becomes the
 * function. */
void confine_drop_privileges(const options_t *o); /* capabilities, user, no_new_privs */
char **confine_read_environment(int fd);          /* after the drop: the function's env */
void confine_seccomp_load(void);                  /* the last step before exec */

#endif
