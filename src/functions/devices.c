/*
 * devices: the allow-list as the devices controller's text (v1) or as a
 * small BPF program (v2), built here instruction by instruction so that
 * the core needs no BPF compiler or library: for each rule, "if the type,
 * major and minor are the rule's and the access asked for is within the
 * rule's, allow"; at the end, deny.
 */
#include "devices.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOG_TAG "functions"

#define MAX_RULES 32

const device_rule_t devices_basic[5] = {
    {false, 1, 3, true}, {false, 1, 5, true}, {false, 1, 7, true},
    {false, 1, 8, true}, {false, 1, 9, true},
};

static bool write_text(const char *dir, const char *file, const char *text)
{
    char path[600];
    int n = snprintf(path, sizeof path, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= sizeof path)
        return false;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    return close(fd) == 0 && ok;
}

sedge_err devices_v1_apply(const char *dir, const device_rule_t *rules, size_t count)
{
    if (!write_text(dir, "devices.deny", "a"))
        return SEDGE_ERR_IO;
    for (size_t i = 0; i < count; i++) {
        char line[64];
        snprintf(line, sizeof line, "%c %u:%u %s", rules[i].block ? 'b' : 'c', rules[i].major,
                 rules[i].minor, rules[i].write ? "rw" : "r");
        if (!write_text(dir, "devices.allow", line))
            return SEDGE_ERR_IO;
    }
    return SEDGE_OK;
}

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
    return (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
}

/* The program; returns the number of instructions. */
static size_t build_program(struct bpf_insn *p, const device_rule_t *rules, size_t count)
{
    size_t n = 0;
    /* r2 = type, r3 = access, r4 = major, r5 = minor (r1: the context) */
    p[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0);
    p[n++] = insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff);
    p[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, 0, 0);
    p[n++] = insn(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16);
    p[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_1, 4, 0);
    p[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, 8, 0);
    for (size_t i = 0; i < count; i++) {
        /* Eight instructions; a mismatch jumps to the next rule's first. */
        int32_t type = rules[i].block ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR;
        int32_t allowed = BPF_DEVCG_ACC_READ | (rules[i].write ? BPF_DEVCG_ACC_WRITE : 0);
        p[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 7, type);
        p[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, 6, (int32_t)rules[i].major);
        p[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, 5, (int32_t)rules[i].minor);
        p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_0, BPF_REG_3, 0, 0);
        p[n++] = insn(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_0, 0, 0, ~allowed);
        p[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 2, 0);
        p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1);
        p[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    }
    p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
    p[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    return n;
}

static int load_program(const struct bpf_insn *prog, size_t n, char *log, size_t log_len)
{
    union bpf_attr load;
    memset(&load, 0, sizeof load);
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insns = (uint64_t)(uintptr_t)prog;
    load.insn_cnt = (uint32_t)n;
    load.license = (uint64_t)(uintptr_t) "Apache-2.0";
    if (log) {
        load.log_buf = (uint64_t)(uintptr_t)log;
        load.log_size = (uint32_t)log_len;
        load.log_level = 1;
    }
    return (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
}

sedge_err devices_v2_attach(const char *dir, const device_rule_t *rules, size_t count)
{
    if (count > MAX_RULES)
        return SEDGE_ERR_TOO_LARGE;
    struct bpf_insn prog[8 + 8 * MAX_RULES];
    size_t n = build_program(prog, rules, count);
    int prog_fd = load_program(prog, n, NULL, 0);
    if (prog_fd < 0) {
        char log[4096] = ""; /* again, for the verifier's reason */
        int err = errno;
        int again = load_program(prog, n, log, sizeof log);
        if (again >= 0)
            close(again);
        LOGW("cannot load the device program: %s: %.300s", strerror(err), log);
        return SEDGE_ERR_IO;
    }
    int cg_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    union bpf_attr attach;
    memset(&attach, 0, sizeof attach);
    attach.target_fd = (uint32_t)cg_fd;
    attach.attach_bpf_fd = (uint32_t)prog_fd;
    attach.attach_type = BPF_CGROUP_DEVICE;
    int rc = cg_fd < 0 ? -1 : (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach);
    if (rc != 0)
        LOGW("cannot attach the device program to %s: %s", dir, strerror(errno));
    if (cg_fd >= 0)
        close(cg_fd);
    close(prog_fd); /* the attachment holds the program */
    return rc == 0 ? SEDGE_OK : SEDGE_ERR_IO;
}
