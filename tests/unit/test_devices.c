/*
 * The device allow-list of function instances (issue 11 item 3), both
 * ways the kernel enforces it: a child process joins a cgroup made here —
 * a cgroup v2 group with the BPF device program, or a cgroup v1 devices
 * group — and reports what open() answered. Needs root and the hierarchy
 * in question; skipped where they are missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "functions/devices.h"

/* /dev/null readable only; /dev/zero not at all. */
static const device_rule_t null_read_only[] = {{false, 1, 3, false}};

/* How opening `path` with `flags` went: 0 or the errno. */
static int open_errno(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

/* In a child that joined `dir`: the errnos of the three opens, in one
 * exit status (8 bits each would not fit: 0 is ok, 1 is EPERM, 2 other). */
static int probe_in(const char *dir)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char path[600], me[32];
        snprintf(path, sizeof path, "%s/cgroup.procs", dir);
        snprintf(me, sizeof me, "%d\n", (int)getpid());
        int fd = open(path, O_WRONLY);
        if (fd < 0 || write(fd, me, strlen(me)) < 0)
            _exit(100);
        close(fd);
        int codes[3] = {open_errno("/dev/null", O_RDONLY), open_errno("/dev/null", O_WRONLY),
                        open_errno("/dev/zero", O_RDONLY)};
        int status = 0;
        for (int i = 0; i < 3; i++)
            status = status * 3 + (codes[i] == 0 ? 0 : codes[i] == EPERM ? 1 : 2);
        _exit(status);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* null read: ok (0), null write: EPERM (1), zero read: EPERM (1). */
#define EXPECTED (0 * 9 + 1 * 3 + 1)

static bool make_group(char *dir, size_t len, const char *hierarchy)
{
    struct stat st;
    if (geteuid() != 0 || stat(hierarchy, &st) != 0)
        return false;
    snprintf(dir, len, "%s/sedge-unit-%d", hierarchy, (int)getpid());
    return mkdir(dir, 0755) == 0;
}

static void test_v2_device_program_allows_only_its_rules(void **state)
{
    (void)state;
    char dir[512];
    const char *hierarchy = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0
                                ? "/sys/fs/cgroup"
                                : "/sys/fs/cgroup/unified";
    if (!make_group(dir, sizeof dir, hierarchy))
        skip();
    assert_int_equal(devices_v2_attach(dir, null_read_only, 1), SEDGE_OK);
    assert_int_equal(probe_in(dir), EXPECTED);
    assert_int_equal(rmdir(dir), 0);
}

static void test_v1_devices_group_allows_only_its_rules(void **state)
{
    (void)state;
    char dir[512];
    if (!make_group(dir, sizeof dir, "/sys/fs/cgroup/devices"))
        skip();
    assert_int_equal(devices_v1_apply(dir, null_read_only, 1), SEDGE_OK);
    assert_int_equal(probe_in(dir), EXPECTED);
    assert_int_equal(rmdir(dir), 0);
}

static void test_basic_devices_are_the_harmless_ones(void **state)
{
    (void)state;
    static const unsigned minors[] = {3, 5, 7, 8, 9}; /* null zero full random urandom */
    for (size_t i = 0; i < 5; i++) {
        assert_false(devices_basic[i].block);
        assert_int_equal(devices_basic[i].major, 1);
        assert_int_equal(devices_basic[i].minor, minors[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_device_program_allows_only_its_rules),
        cmocka_unit_test(test_v1_devices_group_allows_only_its_rules),
        cmocka_unit_test(test_basic_devices_are_the_harmless_ones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
