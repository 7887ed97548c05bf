/*
 * internal: what group.c shares with the other files of the group module
 * (connectors.c): the problem list every check writes to, and the checks
 * of keys, strings and resources both sections use.
 */
#ifndef SEDGE_GROUP_INTERNAL_H
#define SEDGE_GROUP_INTERNAL_H

#include "group.h"

typedef struct {
    buf_t *errors;
    size_t count;
} check_t;

/* A key from the document is part of a problem's path: cut a long one so
 * that the line still gets to say what is wrong. */
#define KEY_SHOWN 128

/* One problem, one line; control characters from the document are shown
 * as '?'. */
void problem(check_t *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Every key of `obj` must be one of `allowed` (NULL-terminated). */
void check_keys(check_t *c, json_t *obj, const char *path, const char *const *allowed);
/* A string member, required or not; NULL (with a problem) if wrong. */
const char *string_at(check_t *c, json_t *obj, const char *key, const char *path, bool required);
bool is_uint(json_t *v, json_int_t min, json_int_t max);
bool valid_function_name(const char *s, size_t len);
bool valid_run_as(const char *s);
/* A function's (or connector's) inline "resources". */
void check_function_resources(check_t *c, json_t *list, const char *fpath);

/* connectors.c: each entry's type, parameters and settings. */
void check_connectors(check_t *c, json_t *connectors);

#endif
