/*
 * boot: the update's life across processes — the switch to a new release,
 * its health window, its commit or rollback — and the guard that decides
 * when the new release cannot.
 *
 * The trial. The running core (old release, PID P) records the trial in
 * state.json (phase health-check, the previous binary, tries left, the
 * window's deadline), switches `current`, forks the guard and execs the
 * new binary: same PID, so systemd's unit stays. The new release commits
 * once healthy. The guard, a child of the old release's code, watches P
 * through a pidfd and the state file: P dying before the commit, or the
 * deadline passing, rolls back — state first, then `current`, then (when
 * no supervisor restarts the core) an exec of the previous binary. It
 * ignores SIGTERM so that a rollback it started is finished.
 *
 * Tries left. A release on trial started any other way (systemd
 * restarting it after a crash, a reboot inside the window) counts a try at
 * boot, before anything else runs; with none left it is rolled back.
 * Whoever execs a trial counts the try itself and says so to the new
 * process with SEDGE_OTA_TRIAL=PID.
 *
 * Reconciling. The state names the release that should run (committed:
 * the new slot; rolled back: the previous one); boot makes `current` say
 * the same when a crash came between the two writes, and a core started
 * from elsewhere (the packaged or `make install` binary: the "base")
 * hands over to `current` unless it is newer itself.
 */
#include "ota.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOG_TAG "ota"
#define TRIAL_ENV "SEDGE_OTA_TRIAL"

static bool self_is(const char *path)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *real = realpath(path, NULL);
    bool same = n > 0 && real && (self[n] = '\0', strcmp(self, real) == 0);
    free(real);
    return same;
}

/* exec `exe` with our arguments; returns only on failure. */
static void exec_release(const char *exe, char *const argv[])
{
    size_t n = 0;
    while (argv[n])
        n++;
    char **args = calloc(n + 1, sizeof *args);
    if (!args)
        return;
    for (size_t i = 0; i < n; i++)
        args[i] = argv[i];
    args[0] = (char *)exe;
    execv(exe, args);
    LOGE("cannot start %s: %s", exe, strerror(errno));
    free(args);
}

static void save(const char *root, const ota_state_t *st)
{
    if (ota_state_save(root, st))
        LOGE("cannot write %s/state.json: %s", root, strerror(errno));
}

/* Record the rollback, then put `current` back. */
static void roll_back(const char *root, ota_state_t *st, const char *reason, bool mark_bad)
{
    LOGW("rolling back from %s to %s: %s", st->version,
         st->prev_version[0] ? st->prev_version : "the installed release", reason);
    st->phase = OTA_ROLLED_BACK;
    snprintf(st->reason, sizeof st->reason, "%s", reason);
    st->finished = clock_wall_s();
    st->guard_pid = 0;
    if (mark_bad)
        ota_state_mark_bad(st, st->version);
    save(root, st);
    if (ota_switch(root, st->prev_slot))
        LOGE("cannot point %s/current back at the previous release", root);
}

/* The state's read-modify-write is one at a time: the guard rolling back
 * and the new release committing cannot both win. */
static int lock_state(const char *root)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/.lock", root) >= (int)sizeof path)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        flock(fd, LOCK_EX);
    return fd;
}

static void unlock_state(int fd)
{
    if (fd >= 0)
        close(fd);
}

static pid_t pidfd_open_self(int *fd)
{
    *fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    return getpid();
}

/* The guard's life: until the state leaves the trial of `watched`. */
static void guard_run(const ota_config_t *cfg, char *const argv[], int pidfd, pid_t watched)
{
    bool dead = false;
    for (;;) {
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        if (!dead && pidfd >= 0 && poll(&p, 1, 100) > 0)
            dead = true;
        else if (dead || pidfd < 0)
            usleep(100 * 1000);
        if (pidfd < 0 && kill(watched, 0) != 0 && errno == ESRCH)
            dead = true;
        ota_state_t st;
        int lock = lock_state(cfg->root);
        if (ota_state_load(cfg->root, &st)) {
            unlock_state(lock);
            continue;
        }
        if (st.phase != OTA_TRYING || st.core_pid != watched) {
            unlock_state(lock);
            return; /* committed, rolled back, or another trial took over */
        }
        bool late = clock_wall_s() >= st.deadline;
        if (!dead && !late) {
            unlock_state(lock);
            continue;
        }
        char reason[300];
        if (dead)
            snprintf(reason, sizeof reason,
                     "version %s stopped during its health window (it crashed, exited or was "
                     "killed)",
                     st.version);
        else
            snprintf(reason, sizeof reason, "version %s did not become healthy within %d s",
                     st.version, cfg->health_timeout_s);
        roll_back(cfg->root, &st, reason, true);
        unlock_state(lock);
        if (!dead) {
            kill(watched, SIGKILL);
            for (int i = 0; i < 100 && !(pidfd >= 0 && poll(&p, 1, 100) > 0); i++)
                if (pidfd < 0 && kill(watched, 0) != 0)
                    break;
        }
        if (getenv("INVOCATION_ID"))
            return; /* systemd starts the core again, on the previous release */
        unsetenv(TRIAL_ENV);
        if (pidfd >= 0)
            close(pidfd);
        exec_release(st.prev_exec, argv);
        return;
    }
}

/* Fork the guard of the trial this process runs (or is about to exec). */
static void guard_spawn(const ota_config_t *cfg, char *const argv[], ota_state_t *st)
{
    int pidfd;
    pid_t watched = pidfd_open_self(&pidfd);
    pid_t child = fork();
    if (child == 0) {
        if (fork() != 0)
            _exit(0);
        setsid();
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int fd = 3; fd < 1024; fd++)
            if (fd != pidfd)
                close(fd);
        guard_run(cfg, argv, pidfd, watched);
        _exit(0);
    }
    if (child > 0)
        waitpid(child, NULL, 0);
    else
        LOGE("cannot start the update's guard: %s", strerror(errno));
    if (pidfd >= 0)
        close(pidfd);
    (void)st;
}

/* Count a try of the trial and start its health window here. */
static void begin_try(const ota_config_t *cfg, ota_state_t *st)
{
    st->tries_left--;
    st->core_pid = getpid();
    st->deadline = clock_wall_s() + cfg->health_timeout_s;
    save(cfg->root, st);
}

static void hand_over(const ota_config_t *cfg, char *const argv[], const char *slot)
{
    char exe[PATH_MAX], version[OTA_VERSION_MAX];
    if (!slot[0])
        return; /* the base release: whoever runs now */
    ota_slot_exec(cfg->root, slot, exe, sizeof exe);
    if (self_is(exe))
        return;
    char running[OTA_VERSION_MAX], running_slot[2];
    ota_running(cfg->root, cfg->base_version, running, running_slot);
    ota_slot_version(cfg->root, slot, version, sizeof version);
    if (!running_slot[0] && ota_version_cmp(cfg->base_version, version) > 0) {
        LOGW("the installed sedged %s is newer than the updated release %s in %s: running "
             "the installed one",
             cfg->base_version, version, cfg->root);
        return;
    }
    LOGI("handing over to release %s (%s)", version, exe);
    exec_release(exe, argv);
}

void ota_boot(const ota_config_t *cfg, char *const argv[], bool *trial)
{
    *trial = false;
    ota_state_t st;
    if (ota_state_load(cfg->root, &st)) {
        LOGE("%s/state.json is unreadable: updates start from scratch", cfg->root);
        memset(&st, 0, sizeof st);
    }
    char current[2], exe[PATH_MAX], mark[32];
    ota_current_slot(cfg->root, current);
    const char *want = current;
    snprintf(mark, sizeof mark, "%d", (int)getpid());
    const char *env = getenv(TRIAL_ENV);
    bool counted = env && strcmp(env, mark) == 0;
    unsetenv(TRIAL_ENV);
    switch (st.phase) {
    case OTA_DOWNLOADING:
    case OTA_INSTALLING:
        for (int i = 0; i < 2; i++) {
            char fresh[PATH_MAX];
            snprintf(fresh, sizeof fresh, "%s/slots/.%c.new", cfg->root, "ab"[i]);
            ota_remove_tree(fresh);
        }
        snprintf(st.reason, sizeof st.reason,
                 "interrupted: the core stopped while %s %s; nothing was changed",
                 st.phase == OTA_DOWNLOADING ? "downloading" : "installing",
                 st.version[0] ? st.version : "the update");
        LOGW("update %s", st.reason);
        st.phase = OTA_FAILED;
        st.finished = clock_wall_s();
        save(cfg->root, &st);
        break;
    case OTA_TRYING:
        if (strcmp(current, st.slot) != 0) {
            /* The switch never happened, or the switch back did. */
            roll_back(cfg->root, &st, "the trial was cut short before the new release ran", false);
            want = st.prev_slot;
            break;
        }
        if (counted) {
            /* Exec'd as the trial (perhaps through a wrapper script). */
            *trial = true;
            return;
        }
        ota_slot_exec(cfg->root, st.slot, exe, sizeof exe);
        bool is_trial = self_is(exe);
        if (st.tries_left <= 0) {
            char reason[200];
            snprintf(reason, sizeof reason,
                     "version %s kept stopping during its health window (no tries left)",
                     st.version);
            roll_back(cfg->root, &st, reason, true);
            want = st.prev_slot;
            if (!want[0] && !is_trial)
                return; /* the base runs, and this is it */
            exec_release(st.prev_exec, argv);
            return;
        }
        begin_try(cfg, &st);
        LOGI("version %s on trial: %d tries left, healthy within %d s or rolled back", st.version,
             st.tries_left, cfg->health_timeout_s);
        guard_spawn(cfg, argv, &st);
        if (is_trial) {
            *trial = true;
            return;
        }
        setenv(TRIAL_ENV, mark, 1);
        exec_release(exe, argv);
        unsetenv(TRIAL_ENV);
        return;
    case OTA_COMMITTED: want = st.slot; break;
    case OTA_ROLLED_BACK: want = st.prev_slot; break;
    case OTA_IDLE:
    case OTA_FAILED: break;
    }
    if (strcmp(current, want) != 0 && ota_switch(cfg->root, want))
        LOGE("cannot point %s/current at the release the update state names", cfg->root);
    hand_over(cfg, argv, want);
}

sedge_err ota_commit(const char *root)
{
    ota_state_t st;
    int lock = lock_state(root);
    sedge_err rc = ota_state_load(root, &st);
    if (!rc && (st.phase != OTA_TRYING || st.core_pid != getpid()))
        rc = SEDGE_ERR_CONFLICT; /* the guard rolled back first */
    if (!rc) {
        st.phase = OTA_COMMITTED;
        st.finished = clock_wall_s();
        st.reason[0] = '\0';
        st.guard_pid = 0;
        rc = ota_state_save(root, &st);
    }
    unlock_state(lock);
    return rc;
}

void ota_exec_trial(const ota_config_t *cfg, char *const argv[])
{
    ota_state_t st;
    char exe[PATH_MAX], self[PATH_MAX], mark[32];
    if (ota_state_load(cfg->root, &st) || st.phase != OTA_INSTALLING || !st.slot[0]) {
        LOGE("no installed update to switch to in %s/state.json", cfg->root);
        return;
    }
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    ota_running(cfg->root, cfg->base_version, st.prev_version, st.prev_slot);
    snprintf(st.prev_exec, sizeof st.prev_exec, "%s", self);
    st.phase = OTA_TRYING;
    st.tries_left = cfg->tries;
    begin_try(cfg, &st); /* this exec is the first try */
    if (ota_switch(cfg->root, st.slot)) {
        roll_back(cfg->root, &st, "cannot switch the current release", false);
        return;
    }
    ota_slot_exec(cfg->root, st.slot, exe, sizeof exe);
    LOGI("switching to version %s (%s)", st.version, exe);
    guard_spawn(cfg, argv, &st);
    snprintf(mark, sizeof mark, "%d", (int)getpid());
    setenv(TRIAL_ENV, mark, 1);
    exec_release(exe, argv);
    unsetenv(TRIAL_ENV);
    char reason[PATH_MAX + 64];
    snprintf(reason, sizeof reason, "cannot start %s: %s", exe, strerror(errno));
    roll_back(cfg->root, &st, reason, true);
    exec_release(self, argv);
}

void ota_exec_rollback(const ota_config_t *cfg, char *const argv[], const char *reason)
{
    ota_state_t st;
    if (ota_state_load(cfg->root, &st) || st.phase != OTA_COMMITTED || !st.prev_exec[0]) {
        LOGE("no committed update to roll back in %s/state.json", cfg->root);
        return;
    }
    roll_back(cfg->root, &st, reason, false);
    exec_release(st.prev_exec, argv);
}
