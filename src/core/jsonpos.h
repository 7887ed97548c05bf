/*
 * jsonpos: where a value is in a JSON text, by its path ("listeners[1].type")
 * — the line number a config error names. jansson keeps no positions, and
 * looking for a key's first occurrence names the wrong line as soon as a
 * key appears twice (a second listener's "type"); this scanner walks the
 * text to the path instead. It reads text jansson has already accepted,
 * but holds on any input: bounded depth, every length checked.
 */
#ifndef SEDGE_JSONPOS_H
#define SEDGE_JSONPOS_H

#include <stddef.h>

#define JSONPOS_MAX_DEPTH 64

/* The 1-based line of the key at `path` (or of the element, for a path
 * ending in [N]) in text[0..len); 0 when the path is not in the text, or
 * the text stops being JSON before the path is reached. Path: keys separated by '.', array indexes
 * as [N]; a key containing '.' or '[' cannot be named. */
int jsonpos_line(const char *text, size_t len, const char *path);

#endif
