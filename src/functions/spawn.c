/*
 * spawn: starting sedge-sandbox for an instance without copying sedged.
 *
 * A fork of sedged copies its page tables (and libuv's child then resets
 * every signal) before the exec: 1-2 ms of every cold start here.
 * posix_spawn shares the parent's memory until the exec (a vfork), which
 * costs a tenth of that. The child gets its three pipes as stdin, stdout
 * and stderr, the function's shared namespaces as descriptors 3 and 4,
 * its own session (so that a signal to -pid reaches every process of the
 * instance), and an empty environment. Its end is watched through a pidfd
 * that the event loop polls; spawn_reap collects the status.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIRST_FREE_FD 5 /* 0-2 stdio, 3-4 the shared namespaces */

/* A descriptor numbered past the ones the child gets, so that dup2 onto
 * them always copies (a dup2 onto itself would keep FD_CLOEXEC). */
static int high_fd(int fd)
{
    if (fd < 0 || fd >= FIRST_FREE_FD)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, FIRST_FREE_FD);
    close(fd);
    return moved;
}

static void close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

sedge_err spawn_sandbox(const char *program, char *const argv[], const int shared_fds[2],
                        spawned_t *out, int *error)
{
    /* ends[i][0] is the child's, ends[i][1] the core's */
    int ends[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    int raw[2];
    for (int i = 0; i < 3; i++) {
        if (pipe2(raw, O_CLOEXEC) != 0) {
            *error = errno;
            close_all(&ends[0][0], 6);
            return SEDGE_ERR_IO;
        }
        ends[i][0] = high_fd(i == 0 ? raw[0] : raw[1]);
        ends[i][1] = high_fd(i == 0 ? raw[1] : raw[0]);
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    for (int i = 0; i < 3; i++)
        posix_spawn_file_actions_adddup2(&actions, ends[i][0], i);
    int moved[2] = {-1, -1};
    for (int i = 0; i < 2; i++) {
        if (shared_fds[i] < 0)
            continue;
        moved[i] = high_fd(fcntl(shared_fds[i], F_DUPFD_CLOEXEC, FIRST_FREE_FD));
        posix_spawn_file_actions_adddup2(&actions, moved[i], 3 + i);
    }
    posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    char *const no_env[] = {NULL};
    pid_t pid = 0;
    int rc = posix_spawn(&pid, program, &actions, &attr, argv, no_env);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close_all(moved, 2);
    for (int i = 0; i < 3; i++)
        close_all(&ends[i][0], 1);
    if (rc != 0) {
        *error = rc;
        for (int i = 0; i < 3; i++)
            close_all(&ends[i][1], 1);
        return SEDGE_ERR_IO;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        *error = errno;
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        for (int i = 0; i < 3; i++)
            close_all(&ends[i][1], 1);
        return SEDGE_ERR_IO;
    }
    fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    *out = (spawned_t){pid, pidfd, ends[0][1], ends[1][1], ends[2][1]};
    return SEDGE_OK;
}

bool spawn_reap(const spawned_t *s, int64_t *status, int *term_signal)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)s->pid, &info, WEXITED | WNOHANG) != 0 || info.si_pid == 0)
        return false;
    *status = info.si_code == CLD_EXITED ? info.si_status : 0;
    *term_signal = info.si_code == CLD_EXITED ? 0 : info.si_status;
    return true;
}
