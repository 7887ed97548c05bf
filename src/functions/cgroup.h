/*
 * cgroup: memory and process-count limits for function instances through
 * the machine's control groups — v2 (unified) or the v1 memory and pids
 * controllers — under sedged's own cgroup, one child group per instance;
 * and, afterwards, whether the kernel killed it for memory. When neither is
 * usable (no permission, no controllers) limits fall back to rlimits and
 * cgroup_mode() says so.
 */
#ifndef SEDGE_CGROUP_H
#define SEDGE_CGROUP_H

#include "base/base.h"
#include "devices.h"

typedef enum { CGROUP_NONE, CGROUP_V1, CGROUP_V2 } cgroup_mode_t;

/* Find out what this machine offers; call once. */
cgroup_mode_t cgroup_detect(void);
cgroup_mode_t cgroup_mode(void);
const char *cgroup_mode_name(cgroup_mode_t m); /* "cgroup v2", "cgroup v1", "rlimits" */

typedef struct {
    char paths[3][512]; /* v2: one; v1: memory, pids, devices */
    int count;
    bool devices_enforced; /* the allow-list is in force */
} cgroup_t;

/* Create the group `name` with the limits (0 = none) and the devices it
 * may open (see devices.h; devices_enforced says whether that worked). */
NODISCARD sedge_err cgroup_create(const char *name, uint64_t memory_bytes, uint32_t max_pids,
                                  const device_rule_t *devices, size_t device_count, cgroup_t *out);
/* How device access is enforced on this machine: "cgroup v1 devices",
 * "cgroup v2 device program" or "not enforced". */
const char *cgroup_devices_name(void);
/* Times the kernel's OOM killer acted in the group. */
uint64_t cgroup_oom_kills(const cgroup_t *cg);
/* Kill what is left and remove the group. */
void cgroup_destroy(cgroup_t *cg);

#endif
