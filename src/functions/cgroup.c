/*
 * cgroup: finding sedged's own cgroup (from /proc/self/cgroup), creating
 * one child per instance below it, writing limits, reading OOM kills.
 */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_TAG "functions"

static cgroup_mode_t mode = CGROUP_NONE;
static char v2_base[512];
static char v1_memory[512], v1_pids[512], v1_devices[512];

const char *cgroup_devices_name(void)
{
    return mode == CGROUP_V2                    ? "cgroup v2 device program"
           : mode == CGROUP_V1 && v1_devices[0] ? "cgroup v1 devices"
                                                : "not enforced";
}

const char *cgroup_mode_name(cgroup_mode_t m)
{
    return m == CGROUP_V2 ? "cgroup v2" : m == CGROUP_V1 ? "cgroup v1" : "rlimits";
}

cgroup_mode_t cgroup_mode(void)
{
    return mode;
}

/* dir/file into path[0..cap); false when it does not fit. */
static bool join_path(char *path, size_t cap, const char *dir, const char *file)
{
    int n = snprintf(path, cap, "%s/%s", dir, file);
    return n >= 0 && (size_t)n < cap;
}

static bool write_text(const char *dir, const char *file, const char *text)
{
    char path[600];
    if (!join_path(path, sizeof path, dir, file))
        return false;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    return close(fd) == 0 && ok;
}

/* The path of our own cgroup for a v1 controller or v2 (""), from
 * /proc/self/cgroup. */
static bool own_cgroup(const char *controller, char *out, size_t len)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *first = strchr(line, ':');
        char *second = first ? strchr(first + 1, ':') : NULL;
        if (!second)
            continue;
        *second = '\0';
        const char *controllers = first + 1;
        char *path = second + 1;
        path[strcspn(path, "\n")] = '\0';
        bool match;
        if (!controller[0]) {
            match = controllers[0] == '\0';
        } else {
            match = false;
            char copy[256];
            snprintf(copy, sizeof copy, "%s", controllers);
            for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ","))
                match |= strcmp(tok, controller) == 0;
        }
        if (match) {
            snprintf(out, len, "%s", path);
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* Make `dir`/sedge and check we can create groups in it. */
static bool usable(const char *dir)
{
    char path[512], probe_name[32], probe[600];
    snprintf(probe_name, sizeof probe_name, "probe-%d", (int)getpid());
    if (!join_path(path, sizeof path, dir, "sedge") ||
        !join_path(probe, sizeof probe, path, probe_name))
        return false;
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return false;
    if (mkdir(probe, 0755) != 0)
        return false;
    rmdir(probe);
    return true;
}

cgroup_mode_t cgroup_detect(void)
{
    char own[400];
    struct stat st;
    if (stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0 && own_cgroup("", own, sizeof own)) {
        /* Pure v2: limits need the memory and pids controllers enabled for
         * our children; sedged's group must not hold processes itself, so
         * use a sibling leaf only when we are in a delegated subtree. */
        snprintf(v2_base, sizeof v2_base, "/sys/fs/cgroup%s", strcmp(own, "/") ? own : "");
        char sub[600];
        snprintf(sub, sizeof sub, "%s/sedge", v2_base);
        if (usable(v2_base) && write_text(sub, "cgroup.subtree_control", "+memory +pids")) {
            mode = CGROUP_V2;
            snprintf(v2_base, sizeof v2_base, "%.500s", sub);
            return mode;
        }
    }
    if (own_cgroup("memory", own, sizeof own)) {
        snprintf(v1_memory, sizeof v1_memory, "/sys/fs/cgroup/memory%s", own);
        char pids_own[400] = "/";
        own_cgroup("pids", pids_own, sizeof pids_own);
        snprintf(v1_pids, sizeof v1_pids, "/sys/fs/cgroup/pids%s", pids_own);
        char devices_own[400] = "/";
        own_cgroup("devices", devices_own, sizeof devices_own);
        snprintf(v1_devices, sizeof v1_devices, "/sys/fs/cgroup/devices%s", devices_own);
        if (usable(v1_memory)) {
            mode = CGROUP_V1;
            snprintf(v1_memory + strlen(v1_memory), sizeof v1_memory - strlen(v1_memory), "/sedge");
            if (usable(v1_pids))
                snprintf(v1_pids + strlen(v1_pids), sizeof v1_pids - strlen(v1_pids), "/sedge");
            else
                v1_pids[0] = '\0';
            if (usable(v1_devices))
                snprintf(v1_devices + strlen(v1_devices), sizeof v1_devices - strlen(v1_devices),
                         "/sedge");
            else
                v1_devices[0] = '\0';
            return mode;
        }
    }
    mode = CGROUP_NONE;
    return mode;
}

sedge_err cgroup_create(const char *name, uint64_t memory_bytes, uint32_t max_pids,
                        const device_rule_t *devices, size_t device_count, cgroup_t *out)
{
    memset(out, 0, sizeof *out);
    char value[32];
    if (mode == CGROUP_V2) {
        snprintf(out->paths[0], sizeof out->paths[0], "%.400s/%.100s", v2_base, name);
        if (mkdir(out->paths[0], 0755) != 0 && errno != EEXIST)
            return SEDGE_ERR_IO;
        out->count = 1;
        if (memory_bytes) {
            snprintf(value, sizeof value, "%llu", (unsigned long long)memory_bytes);
            write_text(out->paths[0], "memory.max", value);
            write_text(out->paths[0], "memory.swap.max", "0");
        }
        if (max_pids) {
            snprintf(value, sizeof value, "%u", max_pids);
            write_text(out->paths[0], "pids.max", value);
        }
        out->devices_enforced = devices_v2_attach(out->paths[0], devices, device_count) == SEDGE_OK;
        return SEDGE_OK;
    }
    if (mode == CGROUP_V1) {
        snprintf(out->paths[0], sizeof out->paths[0], "%.400s/%.100s", v1_memory, name);
        if (mkdir(out->paths[0], 0755) != 0 && errno != EEXIST)
            return SEDGE_ERR_IO;
        out->count = 1;
        if (memory_bytes) {
            snprintf(value, sizeof value, "%llu", (unsigned long long)memory_bytes);
            if (!write_text(out->paths[0], "memory.limit_in_bytes", value))
                LOGW("cannot set memory.limit_in_bytes in %s", out->paths[0]);
            write_text(out->paths[0], "memory.memsw.limit_in_bytes", value);
        }
        if (v1_pids[0]) {
            snprintf(out->paths[1], sizeof out->paths[1], "%.400s/%.100s", v1_pids, name);
            if (mkdir(out->paths[1], 0755) == 0 || errno == EEXIST) {
                out->count = 2;
                if (max_pids) {
                    snprintf(value, sizeof value, "%u", max_pids);
                    write_text(out->paths[1], "pids.max", value);
                }
            }
        }
        char *dev = out->paths[out->count];
        if (v1_devices[0] &&
            snprintf(dev, sizeof out->paths[0], "%.400s/%.100s", v1_devices, name) > 0 &&
            (mkdir(dev, 0755) == 0 || errno == EEXIST)) {
            out->count++;
            out->devices_enforced = devices_v1_apply(dev, devices, device_count) == SEDGE_OK;
        }
        return SEDGE_OK;
    }
    return SEDGE_ERR_UNSUPPORTED;
}

static uint64_t read_key(const char *dir, const char *file, const char *key)
{
    char path[600];
    FILE *f = join_path(path, sizeof path, dir, file) ? fopen(path, "r") : NULL;
    if (!f)
        return 0;
    char line[256];
    uint64_t value = 0;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
            value = strtoull(line + klen + 1, NULL, 10);
    fclose(f);
    return value;
}

uint64_t cgroup_oom_kills(const cgroup_t *cg)
{
    if (!cg->count)
        return 0;
    if (mode == CGROUP_V2)
        return read_key(cg->paths[0], "memory.events", "oom_kill");
    /* v1: oom_kill in memory.oom_control on kernels since 4.13; before,
     * hitting the limit at all (failcnt) is the best sign there is. */
    uint64_t kills = read_key(cg->paths[0], "memory.oom_control", "oom_kill");
    if (kills)
        return kills;
    char path[600];
    FILE *f =
        join_path(path, sizeof path, cg->paths[0], "memory.failcnt") ? fopen(path, "r") : NULL;
    uint64_t fails = 0;
    if (f) {
        if (fscanf(f, "%llu", (unsigned long long *)&fails) != 1)
            fails = 0;
        fclose(f);
    }
    return fails ? 1 : 0;
}

void cgroup_destroy(cgroup_t *cg)
{
    for (int i = 0; i < cg->count; i++) {
        /* Anything still inside (a stray grandchild) is killed first. */
        char path[600];
        bool named = join_path(path, sizeof path, cg->paths[i], "cgroup.procs");
        for (int attempt = 0; attempt < 3; attempt++) {
            FILE *f = named ? fopen(path, "r") : NULL;
            int pid, n = 0;
            while (f && fscanf(f, "%d", &pid) == 1) {
                kill(pid, SIGKILL);
                n++;
            }
            if (f)
                fclose(f);
            if (rmdir(cg->paths[i]) == 0 || n == 0)
                break;
            usleep(1000);
        }
    }
    cg->count = 0;
}
