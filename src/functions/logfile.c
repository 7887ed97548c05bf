/*
 * logfile: a function's log — its instances' stdout and stderr, and what
 * it logs through the SDK — one line per entry with time, pid and stream,
 * in DATA_DIR/logs/NAME.log, rotated at LOG_ROTATE_BYTES to NAME.log.1 ..
 * NAME.log.LOG_KEEP so a chatty function cannot fill the disk.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define LOG_ROTATE_BYTES (1u << 20)
#define LOG_KEEP 3

struct logfile {
    char path[600];
    FILE *f;
    size_t size;
};

logfile_t *logfile_open(const char *dir, const char *name)
{
    logfile_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    char logs[520];
    snprintf(logs, sizeof logs, "%.500s/logs", dir);
    mkdir(logs, 0700);
    snprintf(l->path, sizeof l->path, "%s/%.64s.log", logs, name);
    l->f = fopen(l->path, "a");
    if (l->f) {
        struct stat st;
        if (fstat(fileno(l->f), &st) == 0)
            l->size = (size_t)st.st_size;
    }
    return l;
}

static void rotate(logfile_t *l)
{
    fclose(l->f);
    char from[620], to[620];
    for (int i = LOG_KEEP - 1; i >= 1; i--) {
        snprintf(from, sizeof from, "%s.%d", l->path, i);
        snprintf(to, sizeof to, "%s.%d", l->path, i + 1);
        rename(from, to);
    }
    snprintf(to, sizeof to, "%s.1", l->path);
    rename(l->path, to);
    l->f = fopen(l->path, "a");
    l->size = 0;
}

void logfile_line(logfile_t *l, int pid, const char *stream, const uint8_t *data, size_t len)
{
    if (!l || !l->f)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = fprintf(l->f, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [%d] %s: %.*s\n", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    ts.tv_nsec / 1000000, pid, stream, (int)len, (const char *)data);
    fflush(l->f);
    if (n > 0)
        l->size += (size_t)n;
    if (l->size >= LOG_ROTATE_BYTES)
        rotate(l);
}

void logfile_close(logfile_t *l)
{
    if (!l)
        return;
    if (l->f)
        fclose(l->f);
    free(l);
}

const char *logfile_path(const logfile_t *l)
{
    return l->path;
}
