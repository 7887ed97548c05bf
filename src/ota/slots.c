/*
 * slots: the release root on disk.
 *   ROOT/slots/a, ROOT/slots/b   release trees (ROOT/slots/X/.version holds
 *                                the version their manifest gave)
 *   ROOT/current -> slots/X      switched with one rename(2) of a new link
 *   ROOT/state.json              the update's phase, written atomically
 * A core installed outside the slots (a package, `make install`) is the
 * "base" release: with no `current`, the base runs.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const phase_names[] = {
    [OTA_IDLE] = "idle",
    [OTA_DOWNLOADING] = "downloading",
    [OTA_INSTALLING] = "installing",
    [OTA_TRYING] = "health-check",
    [OTA_COMMITTED] = "committed",
    [OTA_ROLLED_BACK] = "rolled-back",
    [OTA_FAILED] = "failed",
};

const char *ota_phase_name(ota_phase_t p)
{
    return (unsigned)p < ARRAY_LEN(phase_names) ? phase_names[p] : "unknown";
}

static ota_phase_t phase_of(const char *name)
{
    for (unsigned i = 0; name && i < ARRAY_LEN(phase_names); i++)
        if (strcmp(phase_names[i], name) == 0)
            return (ota_phase_t)i;
    return OTA_IDLE;
}

static void copy(char *out, size_t len, json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    snprintf(out, len, "%s", s ? s : "");
}

static int64_t num(json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

sedge_err ota_state_load(const char *root, ota_state_t *st)
{
    memset(st, 0, sizeof *st);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/state.json", root);
    json_error_t jerr;
    json_t *o = json_load_file(path, 0, &jerr);
    if (!o)
        return access(path, F_OK) == 0 ? SEDGE_ERR_MALFORMED : SEDGE_OK;
    st->phase = phase_of(json_string_value(json_object_get(o, "phase")));
    copy(st->source, sizeof st->source, o, "source");
    copy(st->job, sizeof st->job, o, "job");
    copy(st->version, sizeof st->version, o, "version");
    copy(st->slot, sizeof st->slot, o, "slot");
    copy(st->prev_exec, sizeof st->prev_exec, o, "previous_exec");
    copy(st->prev_version, sizeof st->prev_version, o, "previous_version");
    copy(st->prev_slot, sizeof st->prev_slot, o, "previous_slot");
    copy(st->reason, sizeof st->reason, o, "reason");
    st->tries_left = (int)num(o, "tries_left");
    st->deadline = num(o, "deadline");
    st->started = num(o, "started");
    st->finished = num(o, "finished");
    st->bytes_done = (uint64_t)num(o, "bytes_done");
    st->bytes_total = (uint64_t)num(o, "bytes_total");
    st->was_connected = json_is_true(json_object_get(o, "was_connected"));
    st->job_reported = json_is_true(json_object_get(o, "job_reported"));
    st->guard_pid = (pid_t)num(o, "guard_pid");
    st->core_pid = (pid_t)num(o, "pid");
    json_t *bad = json_object_get(o, "bad_versions");
    for (size_t i = 0; i < json_array_size(bad) && st->bad_count < (int)ARRAY_LEN(st->bad); i++)
        snprintf(st->bad[st->bad_count++], sizeof st->bad[0], "%s",
                 json_string_value(json_array_get(bad, i))
                     ? json_string_value(json_array_get(bad, i))
                     : "");
    json_decref(o);
    return SEDGE_OK;
}

json_t *ota_state_json(const ota_state_t *st)
{
    json_t *bad = json_array();
    for (int i = 0; i < st->bad_count; i++)
        json_array_append_new(bad, json_string(st->bad[i]));
    json_t *o = json_pack(
        "{s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, "
        "s:I, s:I, s:b, s:i, s:i, s:o}",
        "job_reported", st->job_reported, "phase", ota_phase_name(st->phase), "source", st->source,
        "job", st->job, "version", st->version, "slot", st->slot, "previous_exec", st->prev_exec,
        "previous_version", st->prev_version, "previous_slot", st->prev_slot, "reason", st->reason,
        "tries_left", st->tries_left, "deadline", (json_int_t)st->deadline, "started",
        (json_int_t)st->started, "finished", (json_int_t)st->finished, "bytes_done",
        (json_int_t)st->bytes_done, "bytes_total", (json_int_t)st->bytes_total, "was_connected",
        st->was_connected, "guard_pid", (int)st->guard_pid, "pid", (int)st->core_pid,
        "bad_versions", bad);
    return o;
}

static sedge_err fsync_dir(const char *root)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return SEDGE_ERR_IO;
    int r = fsync(fd);
    close(fd);
    return r == 0 ? SEDGE_OK : SEDGE_ERR_IO;
}

sedge_err ota_write_durable(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s/.%s.%d", dir, name, (int)getpid()) >= (int)sizeof tmp)
        return SEDGE_ERR_TOO_LARGE;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(text);
    bool ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 &&
              fsync(fd) == 0;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return SEDGE_ERR_IO;
    }
    return fsync_dir(dir);
}

sedge_err ota_state_save(const char *root, const ota_state_t *st)
{
    json_t *o = ota_state_json(st);
    char *text = o ? json_dumps(o, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (!text)
        return SEDGE_ERR_NOMEM;
    sedge_err rc = ota_write_durable(root, "state.json", text);
    free(text);
    return rc;
}

bool ota_state_is_bad(const ota_state_t *st, const char *version)
{
    for (int i = 0; i < st->bad_count; i++)
        if (strcmp(st->bad[i], version) == 0)
            return true;
    return false;
}

void ota_state_mark_bad(ota_state_t *st, const char *version)
{
    if (ota_state_is_bad(st, version))
        return;
    if (st->bad_count == (int)ARRAY_LEN(st->bad)) {
        memmove(st->bad[0], st->bad[1], sizeof st->bad - sizeof st->bad[0]);
        st->bad_count--;
    }
    snprintf(st->bad[st->bad_count++], sizeof st->bad[0], "%s", version);
}

void ota_current_slot(const char *root, char slot[2])
{
    char path[PATH_MAX], target[64];
    snprintf(path, sizeof path, "%s/current", root);
    ssize_t n = readlink(path, target, sizeof target - 1);
    slot[0] = '\0';
    if (n == 7 && memcmp(target, "slots/", 6) == 0 && (target[6] == 'a' || target[6] == 'b')) {
        slot[0] = target[6];
        slot[1] = '\0';
    }
}

sedge_err ota_switch(const char *root, const char *slot)
{
    char path[PATH_MAX], tmp[PATH_MAX], target[16];
    snprintf(path, sizeof path, "%s/current", root);
    if (!slot[0])
        return unlink(path) == 0 || errno == ENOENT ? fsync_dir(root) : SEDGE_ERR_IO;
    snprintf(tmp, sizeof tmp, "%s/.current.%d", root, (int)getpid());
    snprintf(target, sizeof target, "slots/%s", slot);
    unlink(tmp);
    if (symlink(target, tmp) != 0)
        return SEDGE_ERR_IO;
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return SEDGE_ERR_IO;
    }
    return fsync_dir(root);
}

void ota_slot_exec(const char *root, const char *slot, char *out, size_t len)
{
    /* An installed tree (cmake --install --prefix) has sbin/; a build's
     * layout bin/. */
    snprintf(out, len, "%s/slots/%s/sbin/sedged", root, slot);
    if (access(out, X_OK) != 0)
        snprintf(out, len, "%s/slots/%s/bin/sedged", root, slot);
}

void ota_slot_version(const char *root, const char *slot, char *out, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/slots/%s/.version", root, slot);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(out, (int)len, f))
        out[strcspn(out, "\n")] = '\0';
    fclose(f);
    if (!ota_version_valid(out))
        out[0] = '\0';
}
