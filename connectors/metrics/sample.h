/*
 * sample: what the metrics connector reads of the machine, parsed from the
 * kernel's own files (/proc/stat, /proc/meminfo, /proc/loadavg,
 * /proc/uptime, /proc/net/dev, /sys/class/thermal) and statvfs. The
 * parsers take the files' text and are pure, so that the unit tests give
 * them text of their own.
 */
#ifndef SEDGE_METRICS_SAMPLE_H
#define SEDGE_METRICS_SAMPLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The "cpu" line of /proc/stat: time spent busy and in all, in ticks. */
typedef struct {
    uint64_t busy, total;
} cpu_times_t;

bool metrics_parse_stat(const char *text, cpu_times_t *out, unsigned *cpus);
/* Busy share of the time between two readings, 0-100. */
double metrics_cpu_percent(const cpu_times_t *before, const cpu_times_t *after);
/* MemTotal and MemAvailable of /proc/meminfo, in bytes. */
bool metrics_parse_meminfo(const char *text, uint64_t *total, uint64_t *available);
/* Each interface of /proc/net/dev but lo: [{interface, rx_bytes, tx_bytes,
 * rx_packets, tx_packets}] (a new reference). */
json_t *metrics_parse_net_dev(const char *text);

/* A whole file into buf (NUL-terminated); false when it cannot be read. */
bool metrics_read_file(const char *path, char *buf, size_t len);

#endif
