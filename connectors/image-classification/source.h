/*
 * source: where the connector takes an image when no image comes with the
 * request — a directory of image files, taken in name order, one per
 * capture, starting over at the end (files added meanwhile are seen when
 * it starts over). A camera or an image sequence is infer.cpp's capture.
 */
#ifndef IC_SOURCE_H
#define IC_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char dir[4096];
    char **names; /* this round's files, sorted */
    size_t count, next;
} ic_source_t;

bool ic_source_open(ic_source_t *s, const char *dir, char *why, size_t why_len);
/* The next image's bytes (malloc'ed into *data; free it) and its file
 * name (`name`, for the result's id). */
bool ic_source_next(ic_source_t *s, size_t max_bytes, uint8_t **data, size_t *len, char *name,
                    size_t name_len, char *why, size_t why_len);
void ic_source_close(ic_source_t *s);

#endif
