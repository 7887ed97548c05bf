/*
 * sedge-sandbox: starts one function instance inside its limits. sedged
 * runs it (never the function directly) as
 *
 *   sedge-sandbox [OPTIONS] -- PROGRAM [ARGS...]
 *
 *   --uid U --gid G       run as this user and group (after setting up)
 *   --cgroup DIR          join this cgroup (repeatable: v1 memory, pids)
 *   --memory-mb N         address-space limit, when no cgroup enforces one
 *   --nproc N             process-count limit, when no cgroup enforces one
 *   --isolate             own mount, PID, IPC and UTS namespaces and a
 *                         fresh root (below); without it, only the user,
 *                         cgroups and rlimits change
 *   --network             keep the host's network (else an empty one)
 *   --ro PATH | --rw PATH         bind a host path at the same place
 *   --volume SRC:DST:ro|rw        bind a host directory at DST
 *   --device PATH:ro|rw           bind a device node
 *   --sysfs                       /sys, read-only
 *   --standby                     do everything but exec, then wait for one
 *                                 byte on stdin (EOF: exit quietly); the core
 *                                 prepares an instance ahead of need this way
 *   --root DIR                    where to build the new root (a directory
 *                                 it creates; default /tmp/sedge-root.PID)
 *
 * The fresh root holds /usr, /lib*, /bin, /sbin and /etc read-only (as the
 * host has them: real directories bound, symlinks copied), a private
 * writable /tmp, /proc of the new PID namespace, a minimal /dev (null,
 * zero, full, random, urandom, and the declared devices) and the declared
 * paths — nothing else of the host. This program forks: the child becomes
 * PID 1 of the new namespace, builds the root, and runs the function as its
 * own child; the parent mirrors the function's end so sedged sees its
 * status (a death by signal is re-raised).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_BINDS 64

typedef struct {
    const char *src, *dst;
    bool rw;
    bool device;
} bind_t;

typedef struct {
    uid_t uid;
    gid_t gid;
    bool have_user;
    const char *cgroups[4];
    int cgroup_count;
    unsigned long memory_mb, nproc;
    bool isolate, network, sysfs, standby;
    const char *root;
    bind_t binds[MAX_BINDS];
    int bind_count;
    char **argv;
} options_t;

static void die(const char *what)
{
    fprintf(stderr, "sedge-sandbox: %s: %s\n", what, strerror(errno));
    _exit(126);
}

static void usage(void)
{
    fprintf(stderr, "usage: sedge-sandbox [--uid U --gid G] [--cgroup DIR]... [--isolate] "
                    "[--network] [--ro P] [--rw P] [--volume S:D:ro|rw] [--device P:ro|rw] "
                    "[--sysfs] [--memory-mb N] [--nproc N] -- PROGRAM [ARGS]\n");
    _exit(126);
}

static void add_bind(options_t *o, const char *src, const char *dst, bool rw, bool device)
{
    if (o->bind_count == MAX_BINDS) {
        fprintf(stderr, "sedge-sandbox: too many paths\n");
        _exit(126);
    }
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
        *second = NULL;
        char *colon = strchr(spec, ':');
        if (colon) {
            *colon = '\0';
            *second = colon + 1;
        }
    }
    return true;
}

static void parse(int argc, char **argv, options_t *o)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (strcmp(a, "--uid") == 0 && v) {
            o->uid = (uid_t)strtoul(v, NULL, 10), o->have_user = true, i++;
        } else if (strcmp(a, "--gid") == 0 && v) {
            o->gid = (gid_t)strtoul(v, NULL, 10), i++;
        } else if (strcmp(a, "--cgroup") == 0 && v && o->cgroup_count < 4) {
            o->cgroups[o->cgroup_count++] = v, i++;
        } else if (strcmp(a, "--memory-mb") == 0 && v) {
            o->memory_mb = strtoul(v, NULL, 10), i++;
        } else if (strcmp(a, "--nproc") == 0 && v) {
            o->nproc = strtoul(v, NULL, 10), i++;
        } else if (strcmp(a, "--isolate") == 0) {
            o->isolate = true;
        } else if (strcmp(a, "--network") == 0) {
            o->network = true;
        } else if (strcmp(a, "--sysfs") == 0) {
            o->sysfs = true;
        } else if (strcmp(a, "--standby") == 0) {
            o->standby = true;
        } else if (strcmp(a, "--root") == 0 && v) {
            o->root = v, i++;
        } else if ((strcmp(a, "--ro") == 0 || strcmp(a, "--rw") == 0) && v) {
            add_bind(o, v, v, strcmp(a, "--rw") == 0, false), i++;
        } else if (strcmp(a, "--volume") == 0 && v) {
            char *spec = strdup(v), *src, *dst;
            bool rw;
            if (!spec || !split_mode(spec, &src, &dst, &rw) || !dst)
                usage();
            add_bind(o, src, dst, rw, false), i++;
        } else if (strcmp(a, "--device") == 0 && v) {
            char *spec = strdup(v), *path;
            bool rw;
            if (!spec || !split_mode(spec, &path, NULL, &rw))
                usage();
            add_bind(o, path, path, rw, true), i++;
        } else {
            usage();
        }
    }
    if (i >= argc)
        usage();
    o->argv = argv + i;
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) < 0)
        die(path);
    close(fd);
}

static void join_cgroups(const options_t *o)
{
    char pid[32];
    snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    for (int i = 0; i < o->cgroup_count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/cgroup.procs", o->cgroups[i]);
        write_file(path, pid);
    }
}

static void mkdirs(const char *path, mode_t mode)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, mode);
            *p = '/';
        }
    }
    mkdir(tmp, mode);
}

/* Bind host `src` at `root`+`dst`, read-only unless rw. */
static void bind_path(const char *root, const char *src, const char *dst, bool rw)
{
    char target[4096];
    snprintf(target, sizeof target, "%s%s", root, dst);
    struct stat st;
    if (stat(src, &st) != 0)
        die(src);
    if (S_ISDIR(st.st_mode)) {
        mkdirs(target, 0755);
    } else {
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", target);
        char *slash = strrchr(parent, '/');
        if (slash) {
            *slash = '\0';
            mkdirs(parent, 0755);
        }
        int fd = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
    }
    if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) != 0)
        die(src);
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID;
    if (!rw)
        flags |= MS_RDONLY;
    if (mount(NULL, target, NULL, flags, NULL) != 0)
        die(target);
}

/* /usr, /lib, ... as the host has them: a symlink is copied, a directory
 * bound read-only. */
static void system_dir(const char *root, const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return;
    char target[4096];
    snprintf(target, sizeof target, "%s%s", root, dir);
    if (S_ISLNK(st.st_mode)) {
        char link[4096];
        ssize_t n = readlink(dir, link, sizeof link - 1);
        if (n < 0)
            die(dir);
        link[n] = '\0';
        if (symlink(link, target) != 0)
            die(target);
        return;
    }
    bind_path(root, dir, dir, false);
}

static void build_root(const options_t *o, const char *root)
{
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        die("making mounts private");
    if (mount("sedge-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") != 0)
        die("mounting the new root");
    static const char *const dirs[] = {"/usr",    "/lib", "/lib32", "/lib64",
                                       "/libx32", "/bin", "/sbin",  "/etc"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        system_dir(root, dirs[i]);
    char path[4096];
    snprintf(path, sizeof path, "%s/tmp", root);
    mkdir(path, 01777);
    if (mount("sedge-tmp", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m") != 0)
        die("mounting /tmp");
    snprintf(path, sizeof path, "%s/proc", root);
    mkdir(path, 0555);
    if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        die("mounting /proc");
    snprintf(path, sizeof path, "%s/dev", root);
    mkdir(path, 0755);
    if (mount("sedge-dev", path, "tmpfs", MS_NOSUID, "mode=0755,size=64k") != 0)
        die("mounting /dev");
    static const char *const devices[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                          "/dev/urandom"};
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
        bind_path(root, devices[i], devices[i], true);
    snprintf(path, sizeof path, "%s/dev/shm", root);
    mkdir(path, 01777);
    if (o->sysfs)
        bind_path(root, "/sys", "/sys", false);
    for (int i = 0; i < o->bind_count; i++)
        bind_path(root, o->binds[i].src, o->binds[i].dst, o->binds[i].rw);
    /* Enter it: the old root goes away entirely. */
    snprintf(path, sizeof path, "%s/.old", root);
    mkdir(path, 0700);
    if (syscall(SYS_pivot_root, root, path) != 0)
        die("pivot_root");
    if (chdir("/") != 0)
        die("chdir /");
    if (umount2("/.old", MNT_DETACH) != 0)
        die("detaching the host's root");
    rmdir("/.old");
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        die("making the root read-only");
}

static void drop_privileges(const options_t *o)
{
    if (!o->have_user)
        return;
    if (setgroups(0, NULL) != 0 && errno != EPERM)
        die("setgroups");
    if (setgid(o->gid) != 0)
        die("setgid");
    if (setuid(o->uid) != 0)
        die("setuid");
}

static void set_limits(const options_t *o)
{
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    if (o->memory_mb) {
        rlim_t bytes = (rlim_t)o->memory_mb << 20;
        struct rlimit as = {bytes, bytes};
        if (setrlimit(RLIMIT_AS, &as) != 0)
            die("RLIMIT_AS");
    }
    if (o->nproc) {
        struct rlimit np = {o->nproc, o->nproc};
        if (setrlimit(RLIMIT_NPROC, &np) != 0)
            die("RLIMIT_NPROC");
    }
}

/* Standby: all set up; wait for the word to go. */
static void wait_for_go(void)
{
    char go;
    ssize_t n;
    while ((n = read(0, &go, 1)) < 0 && errno == EINTR)
        ;
    if (n != 1)
        _exit(0); /* the core no longer wants this instance */
    int fd = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
        dup2(fd, 0);
        close(fd);
    }
}

static void exec_function(const options_t *o)
{
    set_limits(o);
    drop_privileges(o);
    if (o->isolate && chdir("/tmp") != 0)
        die("chdir /tmp");
    if (o->standby)
        wait_for_go();
    execvp(o->argv[0], o->argv);
    fprintf(stderr, "sedge-sandbox: cannot run %s: %s\n", o->argv[0], strerror(errno));
    _exit(127);
}

static pid_t child_pid;

static void forward(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
}

static void forward_signals(void)
{
    signal(SIGTERM, forward);
    signal(SIGINT, forward);
    signal(SIGHUP, forward);
}

/* PID 1 of the new namespace: run the function as its child (so that it
 * keeps normal signal behaviour — PID 1 ignores signals it has no handler
 * for, abort() included), reap everything, and report the function's wait
 * status to the parent through `report`. */
static void init_process(const options_t *o, int report)
{
    child_pid = fork();
    if (child_pid < 0)
        die("fork");
    if (child_pid == 0) {
        close(report);
        exec_function(o);
    }
    forward_signals();
    int status = 0;
    for (;;) {
        int st;
        pid_t pid = wait(&st);
        if (pid == child_pid)
            status = st;
        if (pid < 0 && errno == ECHILD)
            break;
    }
    if (write(report, &status, sizeof status) != (ssize_t)sizeof status)
        _exit(126);
    _exit(0);
}

int main(int argc, char **argv)
{
    options_t o = {0};
    parse(argc, argv, &o);
    /* sedged's own umask (077) must not leak into the function's world:
     * directories made for the new root must be traversable by its user. */
    umask(022);
    join_cgroups(&o);
    if (!o.isolate)
        exec_function(&o);

    /* The new PID namespace is for the child; the other namespaces are the
     * child's own too, so that this process keeps the host's mounts and can
     * remove the root directory afterwards. */
    if (unshare(CLONE_NEWPID) != 0)
        die("creating namespaces (the sandbox needs root)");
    char root[3072];
    if (o.root)
        snprintf(root, sizeof root, "%s", o.root);
    else
        snprintf(root, sizeof root, "/tmp/sedge-root.%d", (int)getpid());
    if (mkdir(root, 0700) != 0 && errno != EEXIST)
        die(root);
    int report[2];
    if (pipe(report) != 0)
        die("pipe");
    child_pid = fork();
    if (child_pid < 0)
        die("fork");
    if (child_pid == 0) {
        close(report[0]);
        int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
        if (!o.network)
            flags |= CLONE_NEWNET;
        if (unshare(flags) != 0)
            die("creating namespaces");
        if (sethostname("sedge-function", 14) != 0)
            die("sethostname");
        build_root(&o, root);
        init_process(&o, report[1]);
    }
    close(report[1]);
    forward_signals();
    int status;
    while (waitpid(child_pid, &status, 0) < 0 && errno == EINTR)
        ;
    rmdir(root);
    int function_status;
    if (read(report[0], &function_status, sizeof function_status) ==
        (ssize_t)sizeof function_status)
        status = function_status; /* else the setup failed: report that */
    if (WIFSIGNALED(status)) {
        signal(WTERMSIG(status), SIG_DFL);
        kill(getpid(), WTERMSIG(status));
    }
    /* _exit: nothing is left to flush, and exit handlers (a sanitizer's
     * leak check among them) would run in a process whose children now
     * land in another PID namespace. */
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 126);
}
