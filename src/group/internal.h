/*
 * internal: what group.c shares with the other files of the group module
 * (connectors.c, resources.c): the problem list every check writes to, and the checks
 * of keys, strings and resources both sections use.
 */
#ifndef SEDGE_GROUP_INTERNAL_H
#define SEDGE_GROUP_INTERNAL_H

#include "group.h"

typedef struct {
    buf_t *errors;
    size_t count;
    json_t *resource_ids; /* the group's resources by id (an object), for references */
    json_t *entry;        /* connectors.c: the connector whose parameters are checked */
} check_t;

/* A key from the document is part of a problem's path: cut a long one so
 * that the line still gets to say what is wrong. */
#define KEY_SHOWN 128

/* One problem, one line; control characters from the document are shown
 * as '?'. */
void problem(check_t *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Every key of `obj` must be one of `allowed` (NULL-terminated). */
void check_keys(check_t *c, json_t *obj, const char *path, const char *const *allowed);
/* Element `i` of the array named `list`: its path ("routes[3]") into
 * `path`, and true if it is an object, whose keys, when `allowed` is not
 * NULL, are checked; false, with a problem, if it is not an object. */
bool check_element(check_t *c, json_t *element, const char *list, size_t i,
                   const char *const *allowed, char *path, size_t path_len);
/* A string member, required or not; NULL (with a problem) if wrong. */
const char *string_at(check_t *c, json_t *obj, const char *key, const char *path, bool required);
bool is_uint(json_t *v, json_int_t min, json_int_t max);
bool valid_function_name(const char *s, size_t len);
bool valid_run_as(const char *s);
/* resources.c: the group's "resources" (collected by id into `ids`), and
 * a function's (or connector's) "resources": references by id or the
 * inline form. */
void check_group_resources(check_t *c, json_t *list, json_t *ids);
void check_function_resources(check_t *c, json_t *list, const char *fpath);
/* An absolute path with no ".", ".." or empty levels (a trailing '/'
 * aside), so that checking its first levels tells where it really points. */
bool path_is_plain(const char *p);
/* Is the first level of plain path `p` exactly `name`? */
bool path_starts_with_level(const char *p, const char *name);

/* connectors.c: each entry's type, parameters and settings. */
void check_connectors(check_t *c, json_t *connectors);

/* An archive to fetch, {"url", "sha256"} (a model, a function's code):
 * an absolute path, file:///, http:// or https://, and 64 hex digits. */
void check_artifact_ref(check_t *c, json_t *r, const char *path);

#endif
