/*
 * sample: parsing the kernel's statistics files. Every number is read
 * with strtoull from a known position and a line that is not as expected
 * is skipped, not guessed at.
 */
#include "sample.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool metrics_read_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t got = 0;
    while (got + 1 < len) {
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return got > 0;
}

bool metrics_parse_stat(const char *text, cpu_times_t *out, unsigned *cpus)
{
    *cpus = 0;
    bool found = false;
    for (const char *line = text; line && *line;) {
        if (strncmp(line, "cpu ", 4) == 0) {
            /* user nice system idle iowait irq softirq steal (guest time is
             * inside user and nice already) */
            uint64_t v[8] = {0};
            const char *p = line + 4;
            int n = 0;
            for (; n < 8; n++) {
                char *end;
                v[n] = strtoull(p, &end, 10);
                if (end == p)
                    break;
                p = end;
            }
            if (n >= 4) {
                uint64_t idle = v[3] + v[4];
                out->total = 0;
                for (int i = 0; i < n; i++)
                    out->total += v[i];
                out->busy = out->total - idle;
                found = true;
            }
        } else if (strncmp(line, "cpu", 3) == 0 && line[3] >= '0' && line[3] <= '9') {
            (*cpus)++;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return found;
}

double metrics_cpu_percent(const cpu_times_t *before, const cpu_times_t *after)
{
    if (after->total <= before->total || after->busy < before->busy)
        return 0.0;
    double pct = 100.0 * (double)(after->busy - before->busy) /
                 (double)(after->total - before->total);
    return pct > 100.0 ? 100.0 : pct;
}

static bool kb_field(const char *text, const char *name, uint64_t *bytes)
{
    size_t n = strlen(name);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, name, n) == 0 && line[n] == ':') {
            char *end;
            unsigned long long kb = strtoull(line + n + 1, &end, 10);
            if (end == line + n + 1)
                return false;
            *bytes = (uint64_t)kb * 1024u;
            return true;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return false;
}

bool metrics_parse_meminfo(const char *text, uint64_t *total, uint64_t *available)
{
    return kb_field(text, "MemTotal", total) && kb_field(text, "MemAvailable", available);
}

json_t *metrics_parse_net_dev(const char *text)
{
    json_t *list = json_array();
    for (const char *line = text; line && *line;) {
        const char *colon = strchr(line, ':');
        const char *eol = strchr(line, '\n');
        if (colon && (!eol || colon < eol)) {
            const char *name = line;
            while (*name == ' ')
                name++;
            size_t name_len = (size_t)(colon - name);
            /* rx: bytes packets errs drop fifo frame compressed multicast;
             * tx: bytes packets ... */
            uint64_t v[10];
            const char *p = colon + 1;
            int n = 0;
            for (; n < 10; n++) {
                char *end;
                v[n] = strtoull(p, &end, 10);
                if (end == p)
                    break;
                p = end;
            }
            if (n == 10 && name_len > 0 && name_len < 64 && strncmp(name, "lo", name_len) != 0) {
                json_t *iface = json_object();
                json_object_set_new(iface, "interface", json_stringn(name, name_len));
                json_object_set_new(iface, "rx_bytes", json_integer((json_int_t)v[0]));
                json_object_set_new(iface, "rx_packets", json_integer((json_int_t)v[1]));
                json_object_set_new(iface, "tx_bytes", json_integer((json_int_t)v[8]));
                json_object_set_new(iface, "tx_packets", json_integer((json_int_t)v[9]));
                json_array_append_new(list, iface);
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return list;
}
