/*
 * confine: what the function's own process gives up before exec.
 *
 * Capabilities first, while it still holds CAP_SETPCAP: the bounding set
 * is emptied (so no later exec — of a set-user-id or file-capability
 * program, or as root — can bring any back), the ambient set cleared; then
 * the user and groups change, the remaining capabilities are cleared (for
 * a function allowed to run as root: uid 0 without a capability), and
 * no_new_privs is set. Only then is the environment the core sent read.
 * Last, the seccomp filter: the system calls in `denied` fail with EPERM;
 * a new user namespace (unshare or clone with CLONE_NEWUSER) too; clone3,
 * whose flags a filter cannot see, fails with ENOSYS so that libcs fall
 * back to clone. System calls of another architecture (32-bit ones on a
 * 64-bit kernel) kill the process.
 */
#include "sandbox.h"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <grp.h>

/* System calls a function never needs: they change the machine or the
 * mount table, reach into other processes or the kernel, or are the way
 * out of a sandbox (a user namespace, setns). Names unknown to this
 * kernel's architecture are skipped. */
static const char *const denied[] = {
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "setns",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "quotactl_fd",
    "syslog",
    "lookup_dcookie",
    "uselib",
    "iopl",
    "ioperm",
    "vhangup",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "open_by_handle_at",
    "name_to_handle_at",
    "nfsservctl",
};

static scmp_filter_ctx filter;

static void add_rule(uint32_t action, int nr, unsigned count, const struct scmp_arg_cmp *args)
{
    int rc = seccomp_rule_add_array(filter, action, nr, count, args);
    if (rc < 0) {
        errno = -rc;
        sandbox_die("adding a seccomp rule");
    }
}

void confine_prepare(void)
{
    filter = seccomp_init(SCMP_ACT_ALLOW);
    if (!filter)
        sandbox_fail("cannot create a seccomp filter");
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr != __NR_SCMP_ERROR)
            add_rule(SCMP_ACT_ERRNO(EPERM), nr, 0, NULL);
    }
    struct scmp_arg_cmp newuser = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER);
    add_rule(SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1, &newuser);
    add_rule(SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, &newuser);
    int clone3 = seccomp_syscall_resolve_name("clone3");
    if (clone3 != __NR_SCMP_ERROR)
        add_rule(SCMP_ACT_ERRNO(ENOSYS), clone3, 0, NULL);
}

static void clear_capabilities(void)
{
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) != 0)
        sandbox_die("clearing capabilities");
}

/* Empty the bounding set: needs CAP_SETPCAP, which only a root sandbox
 * has (without it, it holds no capability to lose either). */
static void drop_bounding_set(void)
{
    if (!prctl(PR_CAPBSET_READ, CAP_SETPCAP, 0, 0, 0) || geteuid() != 0)
        return;
    for (unsigned long cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
            sandbox_die("dropping the capability bounding set");
}

void confine_drop_privileges(const options_t *o)
{
    drop_bounding_set();
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        sandbox_die("clearing ambient capabilities");
    if (o->have_user) {
        if (setgroups(0, NULL) != 0 && errno != EPERM)
            sandbox_die("setgroups");
        if (setgid(o->gid) != 0)
            sandbox_die("setgid");
        if (setuid(o->uid) != 0)
            sandbox_die("setuid");
    }
    clear_capabilities();
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        sandbox_die("setting no_new_privs");
}

static void read_exact(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(0); /* the core no longer wants this instance */
        p += n;
        len -= (size_t)n;
    }
}

char **confine_read_environment(int fd)
{
    uint8_t head[4];
    read_exact(fd, head, sizeof head);
    uint32_t len =
        (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
    if (len > SANDBOX_MAX_ENV_BYTES)
        sandbox_fail("an environment of %u bytes is over the limit", len);
    char *block = malloc(len + 1);
    if (!block)
        sandbox_fail("out of memory");
    read_exact(fd, block, len);
    block[len] = '\0';
    size_t count = 0;
    for (uint32_t i = 0; i < len; i++)
        count += block[i] == '\0';
    char **env = calloc(count + 1, sizeof *env);
    if (!env)
        sandbox_fail("out of memory");
    size_t k = 0;
    for (char *p = block; p < block + len && k < count; p += strlen(p) + 1)
        if (strchr(p, '='))
            env[k++] = p;
    env[k] = NULL;
    return env;
}

void confine_seccomp_load(void)
{
    int rc = seccomp_load(filter);
    if (rc < 0) {
        errno = -rc;
        sandbox_die("loading the seccomp filter");
    }
    seccomp_release(filter);
    filter = NULL;
}
