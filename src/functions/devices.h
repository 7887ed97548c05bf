/*
 * devices: which device nodes a function instance may open, and how — an
 * allow-list the kernel checks at every open() and mknod() of a device,
 * whatever the file's mode or the mount says: with cgroup v1 the devices
 * controller's lists, with cgroup v2 a BPF_PROG_TYPE_CGROUP_DEVICE program
 * attached to the instance's group. A read-only bind alone does not stop
 * writes to a device node; this does.
 */
#ifndef SEDGE_DEVICES_H
#define SEDGE_DEVICES_H

#include "base/base.h"

typedef struct {
    bool block; /* else a character device */
    unsigned major, minor;
    bool write; /* read is always allowed; mknod never */
} device_rule_t;

/* What every instance may use: /dev/null, zero, full, random, urandom. */
extern const device_rule_t devices_basic[5];

/* v1: make the devices group `dir` deny everything but `rules`. */
NODISCARD sedge_err devices_v1_apply(const char *dir, const device_rule_t *rules, size_t count);
/* v2: attach a program allowing only `rules` to the cgroup `dir`. */
NODISCARD sedge_err devices_v2_attach(const char *dir, const device_rule_t *rules, size_t count);

#endif
