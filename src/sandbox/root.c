/*
 * root: the function's file system — a tmpfs root holding the system
 * directories read-only, a private /tmp, its own /proc, a minimal /dev,
 * the code directory and the declared paths; then pivot_root into it, so
 * that nothing else of the host stays reachable.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PATH_BYTES 4096

static void join(char *out, const char *root, const char *path)
{
    int n = snprintf(out, PATH_BYTES, "%s%s", root, path);
    if (n < 0 || n >= PATH_BYTES)
        sandbox_fail("%s: path too long", path);
}

static void mkdirs(const char *path, mode_t mode)
{
    char tmp[PATH_BYTES];
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

/* The device node `path` of the host, made again at `root`+`path` with
 * its mode and owner (cheaper than a bind; what it may be opened for, the
 * devices cgroup decides). A pseudo-terminal (a virtual serial port, such
 * as socat's or ser2net's) is bound instead: the kernel opens one only
 * through its own devpts file system, and a copy of its node elsewhere
 * answers EIO. */
static void make_device(const char *root, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        sandbox_die(path);
    if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
        sandbox_fail("%s: not a device node", path);
    char target[PATH_BYTES];
    join(target, root, path);
    char parent[PATH_BYTES];
    snprintf(parent, sizeof parent, "%s", target);
    char *slash = strrchr(parent, '/');
    if (slash) {
        *slash = '\0';
        mkdirs(parent, 0755);
    }
    struct statfs fs;
    if (statfs(path, &fs) == 0 && fs.f_type == DEVPTS_SUPER_MAGIC) {
        int fd = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0)
            sandbox_die(target);
        close(fd);
        if (mount(path, target, NULL, MS_BIND, NULL) != 0 ||
            mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC, NULL) != 0)
            sandbox_die(path);
        return;
    }
    if (mknod(target, st.st_mode, st.st_rdev) != 0 || chmod(target, st.st_mode & 07777) != 0 ||
        chown(target, st.st_uid, st.st_gid) != 0)
        sandbox_die(target);
}

/* Bind host `src` at `root`+`dst`, read-only unless rw; never set-user-id,
 * never device nodes. */
static void bind_path(const char *root, const char *src, const char *dst, bool rw)
{
    char target[PATH_BYTES];
    join(target, root, dst);
    struct stat st;
    if (stat(src, &st) != 0)
        sandbox_die(src);
    if (S_ISDIR(st.st_mode)) {
        mkdirs(target, 0755);
    } else {
        char parent[PATH_BYTES];
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
        sandbox_die(src);
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV;
    if (!rw)
        flags |= MS_RDONLY;
    if (mount(NULL, target, NULL, flags, NULL) != 0)
        sandbox_die(target);
}

/* /usr, /lib, ... as the host has them: a symlink is copied, a directory
 * bound read-only. */
static void system_dir(const char *root, const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return;
    char target[PATH_BYTES];
    join(target, root, dir);
    if (S_ISLNK(st.st_mode)) {
        char link[PATH_BYTES];
        ssize_t n = readlink(dir, link, sizeof link - 1);
        if (n < 0)
            sandbox_die(dir);
        link[n] = '\0';
        if (symlink(link, target) != 0)
            sandbox_die(target);
        return;
    }
    bind_path(root, dir, dir, false);
}

/* A function running as root holds no capability, but root owns the
 * kernel's settings in /proc (sysctls, IRQ affinities, sysrq) and their
 * modes alone would let it write them: they are made read-only. */
static void protect_kernel_settings(const char *root)
{
    static const char *const paths[] = {"/proc/sys", "/proc/irq", "/proc/bus", "/proc/fs",
                                        "/proc/sysrq-trigger"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char target[PATH_BYTES];
        join(target, root, paths[i]);
        if (access(target, F_OK) != 0)
            continue;
        if (mount(target, target, NULL, MS_BIND | MS_REC, NULL) != 0 ||
            mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
                  NULL) != 0)
            sandbox_die(paths[i]);
    }
}

static void mount_fs(const char *root, const char *dir, mode_t mode, const char *type,
                     unsigned long flags, const char *data)
{
    char path[PATH_BYTES];
    join(path, root, dir);
    mkdir(path, mode);
    if (mount(type, path, type, flags, data) != 0)
        sandbox_die(dir);
}

void root_build(const options_t *o, const char *root)
{
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        sandbox_die("making mounts private");
    if (mount("sedge-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") != 0)
        sandbox_die("mounting the new root");
    static const char *const dirs[] = {"/usr",    "/lib", "/lib32", "/lib64",
                                       "/libx32", "/bin", "/sbin",  "/etc"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        system_dir(root, dirs[i]);
    mount_fs(root, "/tmp", 01777, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m");
    mount_fs(root, "/proc", 0555, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    if (o->have_user && (o->uid == 0 || o->gid == 0))
        protect_kernel_settings(root);
    mount_fs(root, "/dev", 0755, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k");
    static const char *const devices[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                          "/dev/urandom"};
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
        make_device(root, devices[i]);
    char path[PATH_BYTES];
    join(path, root, "/dev/shm");
    mkdir(path, 01777);
    if (o->sysfs)
        bind_path(root, "/sys", "/sys", false);
    for (int i = 0; i < o->bind_count; i++) {
        const bind_t *b = &o->binds[i];
        if (b->device)
            make_device(root, b->src);
        else
            bind_path(root, b->src, b->dst, b->rw);
    }
    /* Enter it: the old root goes away entirely. */
    join(path, root, "/.old");
    mkdir(path, 0700);
    if (syscall(SYS_pivot_root, root, path) != 0)
        sandbox_die("pivot_root");
    if (chdir("/") != 0)
        sandbox_die("chdir /");
    if (umount2("/.old", MNT_DETACH) != 0)
        sandbox_die("detaching the host's root");
    rmdir("/.old");
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        sandbox_die("making the root read-only");
}
