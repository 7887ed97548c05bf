/*
 * sedge-sandbox's processes (see sandbox.h for the whole design): this
 * program joins the cgroups, then either becomes the function itself
 * (without --isolate) or forks PID 1 of a new PID namespace, which builds
 * the new root and runs the function as its child, while this process
 * waits and mirrors the function's end for sedged.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void sandbox_die(const char *what)
{
    fprintf(stderr, "sedge-sandbox: %s: %s\n", what, strerror(errno));
    _exit(SANDBOX_EXIT_SETUP);
}

void sandbox_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sedge-sandbox: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    _exit(SANDBOX_EXIT_SETUP);
}

/* The files that move this process into its cgroups, opened while the
 * host's /sys is still in view. In a cgroup v1 hierarchy it is `tasks`:
 * writing "0" there moves only the calling thread — the whole of this
 * single-threaded process — and skips the kernel's global threadgroup
 * lock, whose first taking after a quiet while waits out an RCU grace
 * period (5-20 ms here), most of a cold start. cgroup v2 has no `tasks`:
 * there it is cgroup.procs. */
static void open_cgroups(const options_t *o, int *fds)
{
    for (int i = 0; i < o->cgroup_count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tasks", o->cgroups[i]);
        fds[i] = open(path, O_WRONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            snprintf(path, sizeof path, "%s/cgroup.procs", o->cgroups[i]);
            fds[i] = open(path, O_WRONLY | O_CLOEXEC);
        }
        if (fds[i] < 0)
            sandbox_die(path);
    }
}

/* Move in ("0": the writer itself). */
static void join_cgroups(const options_t *o, const int *fds)
{
    for (int i = 0; i < o->cgroup_count; i++) {
        if (write(fds[i], "0\n", 2) != 2)
            sandbox_die(o->cgroups[i]);
        close(fds[i]);
    }
}

static void set_limits(const options_t *o)
{
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    if (o->memory_mb) {
        rlim_t bytes = (rlim_t)o->memory_mb << 20;
        struct rlimit as = {bytes, bytes};
        if (setrlimit(RLIMIT_AS, &as) != 0)
            sandbox_die("RLIMIT_AS");
    }
    if (o->nproc) {
        struct rlimit np = {o->nproc, o->nproc};
        if (setrlimit(RLIMIT_NPROC, &np) != 0)
            sandbox_die("RLIMIT_NPROC");
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
}

/* The process that becomes the function: give everything up, take the
 * environment the core sent, exec. */
static void exec_function(const options_t *o)
{
    set_limits(o);
    confine_drop_privileges(o);
    char **env = confine_read_environment(0);
    const char *dir = o->code ? o->code : o->isolate ? "/tmp" : NULL;
    if (dir && chdir(dir) != 0)
        sandbox_die(dir);
    /* Only 0, 1 and 2 go on: nothing sedged handed this program (the
     * shared namespaces) reaches the function. */
    if (close_range(3, ~0U, 0) != 0)
        sandbox_die("closing descriptors");
    confine_seccomp_load();
    if (o->standby)
        wait_for_go();
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) != 0)
        sandbox_die("/dev/null");
    close(null);
    environ = env;
    execvp(o->argv[0], o->argv);
    fprintf(stderr, "sedge-sandbox: cannot run %s: %s\n", o->argv[0], strerror(errno));
    _exit(SANDBOX_EXIT_EXEC);
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
        sandbox_die("fork");
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
        _exit(SANDBOX_EXIT_SETUP);
    _exit(0);
}

int main(int argc, char **argv)
{
    options_t o = {0};
    options_parse(argc, argv, &o);
    /* sedged's own umask (077) must not leak into the function's world:
     * directories made for the new root must be traversable by its user. */
    umask(022);
    if (!o.isolate) {
        int cgroups[SANDBOX_MAX_CGROUPS];
        open_cgroups(&o, cgroups);
        join_cgroups(&o, cgroups);
        exec_function(&o);
    }

    /* The new PID namespace is for the child; the other namespaces are the
     * child's own too, so that this process keeps the host's mounts and can
     * remove the root directory afterwards. */
    if (unshare(CLONE_NEWPID) != 0)
        sandbox_die("creating namespaces (the sandbox needs root)");
    char root[3072];
    if (o.root)
        snprintf(root, sizeof root, "%s", o.root);
    else
        snprintf(root, sizeof root, "/tmp/sedge-root.%d", (int)getpid());
    if (mkdir(root, 0700) != 0 && errno != EEXIST)
        sandbox_die(root);
    int report[2];
    if (pipe(report) != 0)
        sandbox_die("pipe");
    child_pid = fork();
    if (child_pid < 0)
        sandbox_die("fork");
    if (child_pid == 0) {
        close(report[0]);
        int flags = CLONE_NEWNS | CLONE_NEWUTS;
        if (!o.network && o.netns_fd < 0)
            flags |= CLONE_NEWNET;
        if (o.ipcns_fd < 0)
            flags |= CLONE_NEWIPC;
        if (unshare(flags) != 0)
            sandbox_die("creating namespaces");
        if (!o.network && o.netns_fd >= 0 && setns(o.netns_fd, CLONE_NEWNET) != 0)
            sandbox_die("entering the function's network namespace");
        if (o.ipcns_fd >= 0 && setns(o.ipcns_fd, CLONE_NEWIPC) != 0)
            sandbox_die("entering the function's IPC namespace");
        if (sethostname("sedge-function", 14) != 0)
            sandbox_die("sethostname");
        int cgroups[SANDBOX_MAX_CGROUPS];
        open_cgroups(&o, cgroups);
        root_build(&o, root);
        /* Only now: the devices cgroup would refuse the nodes made in
         * /dev. The function, forked next, is born inside. */
        join_cgroups(&o, cgroups);
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
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : SANDBOX_EXIT_SETUP);
}
