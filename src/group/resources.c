/*
 * resources: the group's "resources" (Greengrass v1's local resources) and
 * the functions' and connectors' references to them.
 *
 * A group resource has an id and a type: a device node under /dev, a
 * volume (a host directory or file shown at a destination), a model (an
 * archive fetched by URL, checked against its SHA-256 and unpacked
 * read-only at a destination) or a secret (a value only the functions
 * that list it can read through the SDK). Devices and volumes may give an
 * owner group, added to the supplementary groups of the functions that
 * use them. A function lists what it uses as {id, access}; the older
 * inline form ({type, path|source, dest, access}) keeps working. The
 * limits and the forbidden places are Greengrass v1's: 50 resources in a
 * group, 20 per function, no volume from /sys, /dev (but /dev/shm) or
 * /var, /proc only read-only.
 */
#include "internal.h"
#include "mqtt/mqtt.h"

#include <stdio.h>
#include <string.h>

#define MAX_GROUP_RESOURCES 50
#define MAX_FUNCTION_RESOURCES 20
#define MAX_SECRET_BYTES (64u << 10)

bool path_is_plain(const char *p)
{
    if (p[0] != '/')
        return false;
    for (const char *level = p + 1;;) {
        const char *end = strchr(level, '/');
        size_t len = end ? (size_t)(end - level) : strlen(level);
        if ((len == 0 && end) || (len == 1 && level[0] == '.') ||
            (len == 2 && level[0] == '.' && level[1] == '.'))
            return false;
        if (!end)
            return true;
        level = end + 1;
    }
}

bool path_starts_with_level(const char *p, const char *name)
{
    size_t n = strlen(name);
    return strncmp(p + 1, name, n) == 0 && (p[1 + n] == '/' || p[1 + n] == '\0');
}

static void problem_unplain(check_t *c, const char *path, const char *key, const char *value)
{
    problem(c, "%s.%s: \"%s\" may not contain \".\", \"..\" or empty levels", path, key, value);
}

bool group_valid_resource_id(const char *s, size_t len)
{
    if (len == 0 || len > GROUP_MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == ':'))
            return false;
    }
    return true;
}

static void check_access(check_t *c, json_t *r, const char *path)
{
    const char *access = string_at(c, r, "access", path, false);
    if (access && strcmp(access, "ro") != 0 && strcmp(access, "rw") != 0)
        problem(c, "%s.access: \"%s\" is not ro or rw", path, access);
}

static void check_device_path(check_t *c, json_t *r, const char *path)
{
    const char *p = string_at(c, r, "path", path, true);
    if (p && p[0] == '/' && !path_is_plain(p))
        problem_unplain(c, path, "path", p);
    else if (p && strncmp(p, "/dev/", 5) != 0)
        problem(c, "%s.path: a device must be under /dev, not \"%s\"", path, p);
    else if (p && (!p[5] || p[strlen(p) - 1] == '/'))
        problem(c, "%s.path: \"%s\" is a directory; a device resource names one device node", path,
                p);
}

/* Where a volume or model is shown inside the sandbox. */
static void check_dest(check_t *c, json_t *r, const char *path)
{
    const char *dst = string_at(c, r, "dest", path, true);
    if (dst && dst[0] != '/')
        problem(c, "%s.dest: must be an absolute path", path);
    else if (dst && !path_is_plain(dst))
        problem_unplain(c, path, "dest", dst);
    else if (dst && (path_starts_with_level(dst, "proc") || path_starts_with_level(dst, "dev") ||
                     path_starts_with_level(dst, "sys") || strcmp(dst, "/") == 0))
        problem(c, "%s.dest: \"%s\" may not be used as a destination", path, dst);
}

static void check_volume_source(check_t *c, json_t *r, const char *path, bool greengrass_rules)
{
    const char *src = string_at(c, r, "source", path, true);
    if (src && src[0] != '/')
        problem(c, "%s.source: must be an absolute path", path);
    else if (src && !path_is_plain(src))
        problem_unplain(c, path, "source", src);
    else if (src && greengrass_rules &&
             (path_starts_with_level(src, "sys") || path_starts_with_level(src, "var") ||
              (path_starts_with_level(src, "dev") && strncmp(src, "/dev/shm", 8) != 0) ||
              strcmp(src, "/") == 0))
        problem(c,
                "%s.source: \"%s\" may not be a volume (not /, nor under /sys, /var or /dev but "
                "/dev/shm; a device node is a \"device\" resource)",
                path, src);
    else if (src && strncmp(src, "/dev/shm", 8) == 0 && src[8] != '\0' && src[8] != '/')
        problem(c, "%s.source: \"%s\" is not under /dev/shm", path, src);
}

/* owner: {"group": "auto" | NAME | GID}. */
static void check_owner(check_t *c, json_t *r, const char *path)
{
    static const char *const keys[] = {"group", NULL};
    json_t *owner = json_object_get(r, "owner");
    if (!owner)
        return;
    char sub[200];
    snprintf(sub, sizeof sub, "%s.owner", path);
    if (!json_is_object(owner)) {
        problem(c, "%s: expected an object, e.g. {\"group\": \"auto\"}", sub);
        return;
    }
    check_keys(c, owner, sub, keys);
    json_t *g = json_object_get(owner, "group");
    if (!g)
        problem(c, "%s.group: missing (\"auto\": the file's group, or a group name or id)", sub);
    else if (json_is_integer(g)
                 ? !is_uint(g, 1, 4294967294LL)
                 : !json_is_string(g) || json_string_length(g) == 0 || json_string_length(g) > 64 ||
                       strlen(json_string_value(g)) != json_string_length(g) ||
                       strpbrk(json_string_value(g), ":/, \t\r\n"))
        problem(c, "%s.group: expected \"auto\", a group name or a group id above 0", sub);
}

static bool is_hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

void check_artifact_ref(check_t *c, json_t *r, const char *path)
{
    const char *url = string_at(c, r, "url", path, true);
    if (url && strncmp(url, "file:///", 8) != 0 && strncmp(url, "http://", 7) != 0 &&
        strncmp(url, "https://", 8) != 0 && url[0] != '/')
        problem(c, "%s.url: \"%s\" is not an absolute path, a file:///, http:// or https:// URL",
                path, url);
    else if (url && (url[0] == '/' || strncmp(url, "file://", 7) == 0) &&
             !path_is_plain(url[0] == '/' ? url : url + 7))
        problem_unplain(c, path, "url", url);
    const char *sha = string_at(c, r, "sha256", path, true);
    if (sha && !is_hex64(sha))
        problem(c, "%s.sha256: expected the archive's SHA-256 as 64 hex digits", path);
}

static void check_model(check_t *c, json_t *r, const char *path)
{
    check_artifact_ref(c, r, path);
    check_dest(c, r, path);
}

/* "value" as deployed; "sealed" as the core stores it (secrets.c); or
 * "cloud_topic", where the cloud link receives it (src/cloud). */
static void check_secret(check_t *c, json_t *r, const char *path)
{
    json_t *v = json_object_get(r, "value");
    json_t *sealed = json_object_get(r, "sealed");
    json_t *topic = json_object_get(r, "cloud_topic");
    if (!v && !sealed && !topic)
        problem(c, "%s.value: missing (the secret, or a cloud_topic it comes on)", path);
    else if ((v != NULL) + (sealed != NULL) + (topic != NULL) > 1)
        problem(c, "%s: give one of value (the core seals it) and cloud_topic", path);
    else if (topic && (!json_is_string(topic) ||
                       !mqtt_topic_name_valid((bytes_t){(const uint8_t *)json_string_value(topic),
                                                        json_string_length(topic)})))
        problem(c, "%s.cloud_topic: expected an MQTT topic name (no wildcards)", path);
    else if (v && (!json_is_string(v) || json_string_length(v) > MAX_SECRET_BYTES))
        problem(c, "%s.value: expected a string of at most %u bytes", path, MAX_SECRET_BYTES);
    else if (sealed && (!json_is_string(sealed) || json_string_length(sealed) > 2 * MAX_SECRET_BYTES))
        problem(c, "%s.sealed: expected a value sealed by a Sedge core", path);
}

void check_group_resources(check_t *c, json_t *list, json_t *ids)
{
    static const char *const device_keys[] = {"id", "type", "description", "path", "owner", NULL};
    static const char *const volume_keys[] = {"id",   "type",  "description", "source",
                                              "dest", "owner", NULL};
    static const char *const model_keys[] = {"id",     "type", "description", "url",
                                             "sha256", "dest", NULL};
    static const char *const secret_keys[] = {"id",     "type",        "description", "value",
                                              "sealed", "cloud_topic", NULL};
    static const char *const untyped_keys[] = {"id", "type", "description", NULL};
    if (json_array_size(list) > MAX_GROUP_RESOURCES)
        problem(c, "resources: at most %d resources in a group", MAX_GROUP_RESOURCES);
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r)
    {
        char path[64];
        if (!check_element(c, r, "resources", i, NULL, path, sizeof path))
            continue;
        json_t *id = json_object_get(r, "id");
        if (!id)
            problem(c, "%s.id: missing", path);
        else if (!json_is_string(id) ||
                 !group_valid_resource_id(json_string_value(id), json_string_length(id)))
            problem(c, "%s.id: expected 1 to 128 of a-z A-Z 0-9 : _ -", path);
        else if (json_object_get(ids, json_string_value(id)))
            problem(c, "%s.id: duplicate id \"%s\"", path, json_string_value(id));
        const char *type = string_at(c, r, "type", path, true);
        const char *const *keys = untyped_keys;
        if (!type) {
        } else if (strcmp(type, "device") == 0) {
            keys = device_keys;
            check_device_path(c, r, path);
            check_owner(c, r, path);
        } else if (strcmp(type, "volume") == 0) {
            keys = volume_keys;
            check_volume_source(c, r, path, true);
            check_dest(c, r, path);
            check_owner(c, r, path);
        } else if (strcmp(type, "model") == 0) {
            keys = model_keys;
            check_model(c, r, path);
        } else if (strcmp(type, "secret") == 0) {
            keys = secret_keys;
            check_secret(c, r, path);
        } else {
            problem(c, "%s.type: \"%s\" is not device, volume, model or secret", path, type);
        }
        check_keys(c, r, path, keys);
        if (type && json_is_string(id) && !json_object_get(ids, json_string_value(id)))
            json_object_set(ids, json_string_value(id), r);
    }
}

/* {id, access}: a resource of the group. */
static void check_reference(check_t *c, json_t *r, const char *path, json_t *seen)
{
    static const char *const keys[] = {"id", "access", NULL};
    check_keys(c, r, path, keys);
    check_access(c, r, path);
    const char *id = string_at(c, r, "id", path, true);
    if (!id)
        return;
    json_t *res = json_object_get(c->resource_ids, id);
    const char *type = json_string_value(json_object_get(res, "type"));
    if (!type) {
        problem(c, "%s.id: no resource \"%s\" in the group's resources", path, id);
        return;
    }
    if (json_object_get(seen, id))
        problem(c, "%s.id: resource \"%s\" listed twice", path, id);
    json_object_set_new(seen, id, json_true());
    const char *access = json_string_value(json_object_get(r, "access"));
    if (access && strcmp(access, "rw") == 0 &&
        (strcmp(type, "model") == 0 || strcmp(type, "secret") == 0))
        problem(c, "%s.access: a %s is read-only", path, type);
    const char *src = json_string_value(json_object_get(res, "source"));
    if (access && strcmp(access, "rw") == 0 && strcmp(type, "volume") == 0 && src &&
        path_starts_with_level(src, "proc"))
        problem(c, "%s.access: a volume from /proc is read-only", path);
}

/* The inline form: {type: device, path} or {type: volume, source, dest}. */
static void check_inline(check_t *c, json_t *r, const char *path)
{
    static const char *const keys[] = {"type", "path", "source", "dest", "access", NULL};
    check_keys(c, r, path, keys);
    const char *type = string_at(c, r, "type", path, true);
    check_access(c, r, path);
    if (!type)
        return;
    if (strcmp(type, "device") == 0) {
        check_device_path(c, r, path);
    } else if (strcmp(type, "volume") == 0) {
        check_volume_source(c, r, path, false);
        check_dest(c, r, path);
    } else {
        problem(c, "%s.type: \"%s\" is not device or volume", path, type);
    }
}

void check_function_resources(check_t *c, json_t *list, const char *fpath)
{
    if (!json_is_array(list)) {
        problem(c, "%s.resources: expected an array", fpath);
        return;
    }
    if (json_array_size(list) > MAX_FUNCTION_RESOURCES)
        problem(c, "%s.resources: at most %d resources per function", fpath,
                MAX_FUNCTION_RESOURCES);
    json_t *seen = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r)
    {
        char path[160];
        snprintf(path, sizeof path, "%s.resources[%zu]", fpath, i);
        if (!json_is_object(r))
            problem(c, "%s: expected an object", path);
        else if (json_object_get(r, "id"))
            check_reference(c, r, path, seen);
        else
            check_inline(c, r, path);
    }
    json_decref(seen);
}

json_t *group_resource(const group_t *g, const char *id)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(g->doc, "resources"), i, r)
    {
        const char *rid = json_string_value(json_object_get(r, "id"));
        if (rid && id && strcmp(rid, id) == 0)
            return r;
    }
    return NULL;
}

json_t *group_resources(const group_t *g)
{
    return json_object_get(g->doc, "resources");
}
