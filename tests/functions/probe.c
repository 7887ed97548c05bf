/*
 * probe: a function that tries what a sandboxed function must not be able
 * to do and reports what the kernel answered, for the integration tests of
 * the sandbox (tests/integration/test_function_sandbox.py). Commands:
 *
 *   syscall:NAME       make the system call NAME with harmless arguments:
 *                      "ok", or the errno's name ("EPERM", "ENOSYS", ...)
 *   open:PATH:r|w|rw   open PATH that way (and close it): "ok" or the errno
 *   mknod:PATH         make a character device node (1:3) at PATH
 *   readlink:PATH      the link's target, e.g. of /proc/self/ns/net
 *
 * Every call is one that an unconfined process of the same user could make
 * successfully (or fail with another errno than EPERM) on this machine, so
 * that EPERM shows the confinement at work; a call that succeeds is undone.
 */
#include <sedge.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

static const char *errno_name(int e)
{
    switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EFAULT: return "EFAULT";
    case ENODEV: return "ENODEV";
    case EROFS: return "EROFS";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case ESRCH: return "ESRCH";
    case EBUSY: return "EBUSY";
    case ENXIO: return "ENXIO";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return strerror(e);
    }
}

/* The errno of a call's result (-1 and errno, or >= 0). */
static int outcome(long rc)
{
    return rc < 0 ? errno : 0;
}

/* The errno of a clone that made (or did not make) a child which leaves
 * at once. */
static int cloned(long pid)
{
    if (pid == 0)
        _exit(0);
    if (pid < 0)
        return errno;
    waitpid((pid_t)pid, NULL, 0);
    return 0;
}

/* clone(2) raw, into a new user namespace. */
static int try_clone_newuser(void)
{
    return cloned(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
}

static int try_clone3(void)
{
    struct {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    } args = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
    return cloned(syscall(SYS_clone3, &args, sizeof args));
}

/* The errno of `call` made in a child: what it changes would otherwise
 * stick to this process (a user namespace, a tracer). */
static int errno_in_child(long (*call)(void))
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(call() == 0 ? 0 : errno);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
}

static long unshare_user(void)
{
    return unshare(CLONE_NEWUSER);
}

static long trace_me(void)
{
    return ptrace(PTRACE_TRACEME, 0, NULL, NULL);
}

static int try_unshare_user(void)
{
    return errno_in_child(unshare_user);
}

static int try_ptrace(void)
{
    return errno_in_child(trace_me);
}

static int try_perf(void)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    if (fd >= 0)
        close((int)fd);
    return outcome(fd);
}

static int try_keyctl(void)
{
    /* KEYCTL_GET_KEYRING_ID of the session keyring, not creating it. */
    return outcome(syscall(SYS_keyctl, 0, -3, 0));
}

static int try_add_key(void)
{
    long id = syscall(SYS_add_key, "user", "sedge-probe", "x", 1, -2 /* process keyring */);
    return outcome(id);
}

static int try_process_vm_readv(void)
{
    char src[4] = "abc", dst[4];
    struct iovec local = {dst, sizeof dst}, remote = {src, sizeof src};
    return outcome(syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0));
}

static int try_userfaultfd(void)
{
    long fd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    if (fd >= 0)
        close((int)fd);
    return outcome(fd);
}

static int try_setns(void)
{
    int fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int e = outcome(syscall(SYS_setns, fd, CLONE_NEWUTS));
    close(fd);
    return e;
}

static int try_syscall(const char *name)
{
    struct {
        const char *name;
        int (*call)(void);
    } special[] = {
        {"clone_newuser", try_clone_newuser},
        {"clone3", try_clone3},
        {"unshare_newuser", try_unshare_user},
        {"ptrace", try_ptrace},
        {"perf_event_open", try_perf},
        {"keyctl", try_keyctl},
        {"add_key", try_add_key},
        {"process_vm_readv", try_process_vm_readv},
        {"userfaultfd", try_userfaultfd},
        {"setns", try_setns},
    };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (strcmp(name, special[i].name) == 0)
            return special[i].call();
    /* The rest fail harmlessly even when allowed: bad arguments. */
    if (strcmp(name, "mount") == 0)
        return outcome(mount("none", "/tmp", "tmpfs", 0, NULL));
    if (strcmp(name, "umount2") == 0)
        return outcome(umount2("/tmp", MNT_DETACH));
    if (strcmp(name, "pivot_root") == 0)
        return outcome(syscall(SYS_pivot_root, "/tmp", "/tmp"));
    if (strcmp(name, "kexec_load") == 0)
        return outcome(syscall(SYS_kexec_load, 0, 0, NULL, 0));
    if (strcmp(name, "init_module") == 0)
        return outcome(syscall(SYS_init_module, NULL, 0, ""));
    if (strcmp(name, "finit_module") == 0)
        return outcome(syscall(SYS_finit_module, -1, "", 0));
    if (strcmp(name, "delete_module") == 0)
        return outcome(syscall(SYS_delete_module, "sedge_no_such_module", O_NONBLOCK));
    if (strcmp(name, "bpf") == 0)
        return outcome(syscall(SYS_bpf, -1, NULL, 0));
    if (strcmp(name, "request_key") == 0)
        return outcome(syscall(SYS_request_key, "user", "sedge-no-such-key", NULL, 0));
    if (strcmp(name, "swapon") == 0)
        return outcome(syscall(SYS_swapon, "/nonexistent", 0));
    if (strcmp(name, "swapoff") == 0)
        return outcome(syscall(SYS_swapoff, "/nonexistent"));
    if (strcmp(name, "reboot") == 0) /* wrong magic: EINVAL if ever allowed */
        return outcome(syscall(SYS_reboot, 0, 0, 0, NULL));
    if (strcmp(name, "open_tree") == 0)
        return outcome(syscall(SYS_open_tree, -1, "/nonexistent", 0));
    if (strcmp(name, "fsopen") == 0)
        return outcome(syscall(SYS_fsopen, "sedge-no-such-fs", 0));
    if (strcmp(name, "kcmp") == 0)
        return outcome(syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, 0, 0));
    errno = EINVAL;
    return -1;
}

static void answer(sedge_result *res, const char *text)
{
    sedge_result_set(res, text, strlen(text));
}

static sedge_err handle(const sedge_event *ev, sedge_result *res, void *ctx)
{
    (void)ctx;
    char *cmd = strndup((const char *)ev->payload, ev->payload_len);
    if (!cmd)
        return SEDGE_ERR_NOMEM;
    char *arg = strchr(cmd, ':');
    if (arg)
        *arg++ = '\0';
    if (arg && strcmp(cmd, "syscall") == 0) {
        int e = try_syscall(arg);
        answer(res, e < 0 ? "unknown system call" : errno_name(e));
    } else if (arg && strcmp(cmd, "open") == 0) {
        char *mode = strrchr(arg, ':');
        int flags = O_RDONLY;
        if (mode) {
            *mode++ = '\0';
            flags = strcmp(mode, "w") == 0 ? O_WRONLY : strcmp(mode, "rw") == 0 ? O_RDWR : O_RDONLY;
        }
        int fd = open(arg, flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        answer(res, errno_name(fd < 0 ? errno : 0));
        if (fd >= 0)
            close(fd);
    } else if (arg && strcmp(cmd, "readlink") == 0) {
        char target[256];
        ssize_t n = readlink(arg, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        answer(res, n > 0 ? target : errno_name(errno));
    } else if (arg && strcmp(cmd, "mknod") == 0) {
        int rc = mknod(arg, S_IFCHR | 0600, makedev(1, 3));
        answer(res, errno_name(rc < 0 ? errno : 0));
        if (rc == 0)
            unlink(arg);
    } else {
        answer(res, "unknown command");
    }
    free(cmd);
    return SEDGE_OK;
}

int main(void)
{
    sedge_err err = sedge_run(handle, NULL);
    return err == SEDGE_ERR_CLOSED ? 0 : 1;
}
