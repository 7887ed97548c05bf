/*
 * install: a checked bundle into the free slot. The tree is unpacked into
 * ROOT/slots/.X.new and renamed to ROOT/slots/X only when whole, so a slot
 * is either a complete release or absent; `current` is not touched here
 * (the switch is boot.c's). Every refusal happens before the old content
 * of the free slot is removed, except the unpack's own, which leaves
 * nothing behind.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

void ota_running(const char *root, const char *base, char version[OTA_VERSION_MAX], char slot[2])
{
    char self[PATH_MAX], want[PATH_MAX], *real;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    slot[0] = '\0';
    snprintf(version, OTA_VERSION_MAX, "%s", base);
    static const char *const slots[] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        /* Any binary of the slot's tree (a wrapper may exec another). */
        snprintf(want, sizeof want, "%s/slots/%s", root, slots[i]);
        if (!(real = realpath(want, NULL)))
            continue;
        size_t len = strlen(real);
        bool same = strncmp(real, self, len) == 0 && self[len] == '/';
        free(real);
        if (same) {
            ota_slot_version(root, slots[i], version, OTA_VERSION_MAX);
            snprintf(slot, 2, "%s", slots[i]);
            return;
        }
    }
}

typedef struct {
    const ota_install_t *in;
    ota_state_t st;
} vet_t;

static sedge_err vet(void *ctx, const ota_manifest_t *m, char *err, size_t errlen)
{
    vet_t *v = ctx;
    const ota_install_t *in = v->in;
    if (in->signature && memcmp(in->signature, m->signature, OTA_SIG_BYTES) != 0) {
        snprintf(err, errlen,
                 "bad signature: the bundle's signature is not the one the update "
                 "gave");
        return SEDGE_ERR_DENIED;
    }
    if (strcmp(m->architecture, ota_machine()) != 0) {
        snprintf(err, errlen, "wrong architecture: the bundle is for %s, this machine is %s",
                 m->architecture, ota_machine());
        return SEDGE_ERR_INVALID;
    }
    if (ota_version_cmp(m->version, in->running_version) <= 0 && !in->allow_downgrade) {
        snprintf(err, errlen,
                 "a downgrade: the bundle's version %s is not newer than the running %s (allow "
                 "it with --allow-downgrade, or allow_downgrade in the job)",
                 m->version, in->running_version);
        return SEDGE_ERR_CONFLICT;
    }
    if (ota_version_cmp(in->running_version, m->min_version) < 0) {
        snprintf(err, errlen, "version %s updates only from %s or later; this core runs %s",
                 m->version, m->min_version, in->running_version);
        return SEDGE_ERR_CONFLICT;
    }
    if (ota_state_is_bad(&v->st, m->version) && !in->allow_downgrade) {
        snprintf(err, errlen,
                 "version %s failed its health check here before and is marked bad (force it "
                 "with --allow-downgrade)",
                 m->version);
        return SEDGE_ERR_CONFLICT;
    }
    if (m->store_schema > in->store_schema + 1 || m->store_schema + 1 < in->store_schema) {
        snprintf(err, errlen,
                 "store schema %d is more than one step from this core's %d: update through "
                 "the release in between",
                 m->store_schema, in->store_schema);
        return SEDGE_ERR_CONFLICT;
    }
    return SEDGE_OK;
}

sedge_err ota_install(const ota_install_t *in, const char *bundle, char slot[2],
                      char version[OTA_VERSION_MAX], char *err, size_t errlen)
{
    vet_t v = {.in = in};
    if (ota_state_load(in->root, &v.st))
        memset(&v.st, 0, sizeof v.st);
    struct stat bst;
    struct statvfs fs;
    /* Room for "/.X.new" after the slots' directory. */
    char slots[PATH_MAX - 16], fresh[PATH_MAX], final[PATH_MAX], current[2];
    if (snprintf(slots, sizeof slots, "%s/slots", in->root) >= (int)sizeof slots) {
        snprintf(err, errlen, "ota.root is too long a path");
        return SEDGE_ERR_TOO_LARGE;
    }
    if (stat(bundle, &bst) != 0 || !S_ISREG(bst.st_mode)) {
        snprintf(err, errlen, "%s: %s", bundle, errno ? strerror(errno) : "not a file");
        return SEDGE_ERR_NOT_FOUND;
    }
    if ((mkdir(in->root, 0755) != 0 && errno != EEXIST) ||
        (mkdir(slots, 0755) != 0 && errno != EEXIST)) {
        snprintf(err, errlen, "%s: %s", slots, strerror(errno));
        return SEDGE_ERR_IO;
    }
    if (statvfs(slots, &fs) == 0 &&
        (uint64_t)fs.f_bavail * fs.f_frsize < 2 * (uint64_t)bst.st_size) {
        snprintf(err, errlen,
                 "not enough free disk: %llu bytes free under %s, the update needs %llu (twice "
                 "the bundle)",
                 (unsigned long long)fs.f_bavail * fs.f_frsize, slots,
                 2 * (unsigned long long)bst.st_size);
        return SEDGE_ERR_FULL;
    }
    ota_current_slot(in->root, current);
    char running_slot[2], running_version[OTA_VERSION_MAX];
    ota_running(in->root, in->running_version, running_version, running_slot);
    /* The free slot: not the one `current` names, nor the one running. */
    bool used_a = strcmp(current, "a") == 0 || strcmp(running_slot, "a") == 0;
    bool used_b = strcmp(current, "b") == 0 || strcmp(running_slot, "b") == 0;
    if (used_a && used_b) {
        snprintf(err, errlen,
                 "no free slot: slot %s runs while current names slot %s; restart "
                 "the core first",
                 running_slot, current);
        return SEDGE_ERR_BUSY;
    }
    const char *target = used_a ? "b" : "a";
    snprintf(fresh, sizeof fresh, "%s/.%s.new", slots, target);
    snprintf(final, sizeof final, "%s/%s", slots, target);
    ota_remove_tree(fresh);
    ota_manifest_t m;
    sedge_err rc = ota_bundle_check(bundle, in->keys, fresh, vet, &v, &m, err, errlen);
    if (rc)
        return rc;
    snprintf(version, OTA_VERSION_MAX, "%s", m.version);
    ota_manifest_free(&m);
    if ((rc = ota_write_durable(fresh, ".version", version)) || (rc = ota_remove_tree(final))) {
        snprintf(err, errlen, "%s: cannot be written", final);
        ota_remove_tree(fresh);
        return rc;
    }
    /* The files reach the disk before the slot's name does. */
    int tfd = open(fresh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tfd >= 0) {
        syncfs(tfd);
        close(tfd);
    }
    if (rename(fresh, final) != 0) {
        snprintf(err, errlen, "%s: %s", final, strerror(errno));
        ota_remove_tree(fresh);
        return SEDGE_ERR_IO;
    }
    int fd = open(slots, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    snprintf(slot, 2, "%s", target);
    return SEDGE_OK;
}
