/*
 * source: the directory source. A file is read with O_NOFOLLOW and its
 * size checked on the open descriptor, so a link or a file that grows
 * between listing and reading changes nothing of the bound.
 */
#include "source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILES 100000

static bool is_image_name(const char *name)
{
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif",
                                      ".tiff", ".webp"};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof ext / sizeof ext[0]; i++)
        if (strcasecmp(dot, ext[i]) == 0)
            return true;
    return false;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void forget(ic_source_t *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->names[i]);
    free(s->names);
    s->names = NULL;
    s->count = s->next = 0;
}

static bool list(ic_source_t *s, char *why, size_t why_len)
{
    forget(s);
    DIR *d = opendir(s->dir);
    if (!d) {
        snprintf(why, why_len, "cannot read the source directory %s: %s (declare it as a volume "
                 "resource of the connector)", s->dir, strerror(errno));
        return false;
    }
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) && s->count < MAX_FILES) {
        if (e->d_name[0] == '.' || !is_image_name(e->d_name))
            continue;
        if (s->count == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **grown = realloc(s->names, ncap * sizeof *grown);
            if (!grown)
                break;
            s->names = grown;
            cap = ncap;
        }
        if (!(s->names[s->count] = strdup(e->d_name)))
            break;
        s->count++;
    }
    closedir(d);
    if (s->count)
        qsort(s->names, s->count, sizeof *s->names, by_name);
    else
        snprintf(why, why_len, "no image files (.jpg, .png, .bmp...) in %s", s->dir);
    return s->count > 0;
}

bool ic_source_open(ic_source_t *s, const char *dir, char *why, size_t why_len)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, why_len, "the source %s is not a directory here (declare a directory of "
                 "images as a volume resource of the connector)", dir);
        return false;
    }
    return true;
}

bool ic_source_next(ic_source_t *s, size_t max_bytes, uint8_t **data, size_t *len, char *name,
                    size_t name_len, char *why, size_t why_len)
{
    *data = NULL;
    *len = 0;
    if (s->next >= s->count && !list(s, why, why_len))
        return false;
    const char *file = s->names[s->next++];
    snprintf(name, name_len, "%s", file);
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", s->dir, file);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "cannot read %s: %s", path, fd < 0 ? strerror(errno) : "not a file");
        if (fd >= 0)
            close(fd);
        return false;
    }
    if ((uint64_t)st.st_size > max_bytes || st.st_size == 0) {
        snprintf(why, why_len, "%s is %lld bytes: empty or over max_image_bytes (%zu)", path,
                 (long long)st.st_size, max_bytes);
        close(fd);
        return false;
    }
    uint8_t *buf = malloc((size_t)st.st_size);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!buf || got == 0) {
        free(buf);
        snprintf(why, why_len, "cannot read %s", path);
        return false;
    }
    *data = buf;
    *len = got;
    return true;
}

void ic_source_close(ic_source_t *s)
{
    forget(s);
}
