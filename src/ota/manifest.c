/*
 * manifest: the bundle's manifest.json, parsed and validated before
 * anything in it is used. The text comes from a signed bundle, but it is
 * checked as if it came from anyone: every field has a type, a length and
 * a range, and every path is relative and stays in the tree.
 */
#include "ota.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

bool ota_version_valid(const char *v)
{
    if (!v || !*v || strlen(v) >= OTA_VERSION_MAX)
        return false;
    bool digit = false;
    for (const char *p = v; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            digit = true;
        } else if (*p == '.' && digit) {
            digit = false;
        } else {
            return false;
        }
    }
    return digit;
}

int ota_version_cmp(const char *a, const char *b)
{
    bool va = ota_version_valid(a), vb = ota_version_valid(b);
    if (!va || !vb)
        return (int)va - (int)vb;
    while (*a || *b) {
        unsigned long long x = 0, y = 0;
        while (*a >= '0' && *a <= '9')
            x = x * 10 + (unsigned long long)(*a++ - '0');
        while (*b >= '0' && *b <= '9')
            y = y * 10 + (unsigned long long)(*b++ - '0');
        if (x != y)
            return x < y ? -1 : 1;
        if (*a == '.')
            a++;
        if (*b == '.')
            b++;
    }
    return 0;
}

bool ota_path_valid(const char *path)
{
    size_t len = path ? strlen(path) : 0;
    if (len == 0 || len > OTA_MAX_PATH || path[0] == '/')
        return false;
    const char *p = path;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\')
                return false;
        p += n;
        if (*p == '/') {
            p++;
            if (!*p)
                return false;
        }
    }
    return true;
}

bool ota_link_inside(const char *path, const char *target)
{
    if (!target || !*target || target[0] == '/' || strlen(target) > OTA_MAX_PATH)
        return false;
    /* The depth of the link's directory, then walk the target's parts. */
    int depth = 0;
    for (const char *p = path; *p; p++)
        if (*p == '/')
            depth++;
    const char *p = target;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return false;
        } else if (n == 0) {
            return false;
        } else if (!(n == 1 && p[0] == '.')) {
            for (size_t i = 0; i < n; i++)
                if ((unsigned char)p[i] < 0x20)
                    return false;
            depth++;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    return true;
}

static bool copy_str(json_t *o, const char *key, char *out, size_t len, bool required)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return !required;
    const char *s = json_string_value(v);
    if (!s || strlen(s) >= len || strlen(s) != json_string_length(v))
        return false;
    memcpy(out, s, strlen(s) + 1);
    return true;
}

static bool get_u64(json_t *o, const char *key, uint64_t max, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        goto fail;                                                                                 \
    } while (0)

static int cmp_files(const void *a, const void *b)
{
    return strcmp(((const ota_file_t *)a)->path, ((const ota_file_t *)b)->path);
}

static sedge_err parse_file(json_t *f, size_t i, ota_file_t *out, char *err, size_t errlen)
{
    const char *path = json_string_value(json_object_get(f, "path"));
    json_t *link = json_object_get(f, "link");
    uint64_t mode = 0;
    if (!json_is_object(f))
        FAIL("manifest: files[%zu] is not an object", i);
    if (!path || strlen(path) != json_string_length(json_object_get(f, "path")) ||
        !ota_path_valid(path))
        FAIL("manifest: files[%zu].path is not a relative path inside the tree", i);
    if (!(out->path = strdup(path)))
        return SEDGE_ERR_NOMEM;
    if (link) {
        const char *t = json_string_value(link);
        if (!t || strlen(t) != json_string_length(link) || !ota_link_inside(path, t))
            FAIL("manifest: files[%zu].link (%s) leaves the tree", i, path);
        if (!(out->link = strdup(t)))
            return SEDGE_ERR_NOMEM;
        return SEDGE_OK;
    }
    if (!get_u64(f, "size", OTA_MAX_FILE_BYTES, &out->size))
        FAIL("manifest: files[%zu].size (%s) is not a size up to %llu bytes", i, path,
             (unsigned long long)OTA_MAX_FILE_BYTES);
    const char *sha = json_string_value(json_object_get(f, "sha256"));
    if (!is_hex64(sha))
        FAIL("manifest: files[%zu].sha256 (%s) is not 64 lowercase hex digits", i, path);
    memcpy(out->sha256, sha, 65);
    if (!get_u64(f, "mode", 07777, &mode) || (mode != 0644 && mode != 0755))
        FAIL("manifest: files[%zu].mode (%s) must be 420 (0644) or 493 (0755)", i, path);
    out->mode = (uint32_t)mode;
    return SEDGE_OK;
fail:
    return SEDGE_ERR_INVALID;
}

sedge_err ota_manifest_parse(bytes_t text, ota_manifest_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(err, errlen, "manifest: out of memory");
    if (text.len > OTA_MAX_MANIFEST_BYTES) {
        snprintf(err, errlen, "manifest: larger than %u bytes", OTA_MAX_MANIFEST_BYTES);
        return SEDGE_ERR_TOO_LARGE;
    }
    json_error_t jerr;
    json_t *m = json_loadb((const char *)text.data, text.len, JSON_REJECT_DUPLICATES, &jerr);
    sedge_err rc = SEDGE_ERR_INVALID;
    uint64_t n = 0;
    if (!m)
        FAIL("manifest: not JSON (line %d: %s)", jerr.line, jerr.text);
    if (!json_is_object(m))
        FAIL("manifest: not a JSON object");
    if (!get_u64(m, "format", 1, &n) || n != 1)
        FAIL("manifest: format must be 1");
    out->format = 1;
    if (!copy_str(m, "product", out->product, sizeof out->product, true) ||
        strcmp(out->product, "sedge") != 0)
        FAIL("manifest: product must be \"sedge\"");
    if (!copy_str(m, "version", out->version, sizeof out->version, true) ||
        !ota_version_valid(out->version))
        FAIL("manifest: version must be a dotted number such as 1.2.3");
    snprintf(out->min_version, sizeof out->min_version, "0");
    if (!copy_str(m, "min_version", out->min_version, sizeof out->min_version, false) ||
        !ota_version_valid(out->min_version))
        FAIL("manifest: min_version must be a dotted number");
    if (!copy_str(m, "architecture", out->architecture, sizeof out->architecture, true) ||
        !out->architecture[0])
        FAIL("manifest: architecture is missing");
    if (!get_u64(m, "store_schema", 1000000, &n))
        FAIL("manifest: store_schema must be a non-negative integer");
    out->store_schema = (int)n;
    if (!copy_str(m, "key_id", out->key_id, sizeof out->key_id, true) || strlen(out->key_id) != 16)
        FAIL("manifest: key_id must be 16 hex digits");
    json_t *payload = json_object_get(m, "payload");
    const char *psha = json_string_value(json_object_get(payload, "sha256"));
    if (!json_is_object(payload) || !get_u64(payload, "size", OTA_MAX_TREE_BYTES, &n) ||
        !is_hex64(psha))
        FAIL("manifest: payload must be {\"size\": N, \"sha256\": HEX}");
    out->payload_size = n;
    memcpy(out->payload_sha256, psha, 65);
    json_t *files = json_object_get(m, "files");
    if (!json_is_array(files) || json_array_size(files) == 0 ||
        json_array_size(files) > OTA_MAX_FILES)
        FAIL("manifest: files must be an array of 1 to %u entries", OTA_MAX_FILES);
    out->files = calloc(json_array_size(files), sizeof *out->files);
    if (!out->files) {
        rc = SEDGE_ERR_NOMEM;
        goto fail;
    }
    uint64_t total = 0;
    bool has_sedged = false;
    for (size_t i = 0; i < json_array_size(files); i++) {
        out->file_count = i + 1;
        if ((rc = parse_file(json_array_get(files, i), i, &out->files[i], err, errlen)))
            goto fail;
        total += out->files[i].size;
        if (total > OTA_MAX_TREE_BYTES) {
            rc = SEDGE_ERR_TOO_LARGE;
            FAIL("manifest: the tree is larger than %llu bytes",
                 (unsigned long long)OTA_MAX_TREE_BYTES);
        }
        if ((strcmp(out->files[i].path, "sbin/sedged") == 0 ||
             strcmp(out->files[i].path, "bin/sedged") == 0) &&
            !out->files[i].link && out->files[i].mode == 0755)
            has_sedged = true;
    }
    rc = SEDGE_ERR_INVALID;
    qsort(out->files, out->file_count, sizeof *out->files, cmp_files);
    for (size_t i = 1; i < out->file_count; i++) {
        size_t plen = strlen(out->files[i - 1].path);
        if (strcmp(out->files[i - 1].path, out->files[i].path) == 0)
            FAIL("manifest: %s is listed twice", out->files[i].path);
        /* A file cannot also be a directory of another entry. */
        if (strncmp(out->files[i - 1].path, out->files[i].path, plen) == 0 &&
            out->files[i].path[plen] == '/')
            FAIL("manifest: %s is a file and a directory", out->files[i - 1].path);
    }
    if (!has_sedged)
        FAIL("manifest: the tree has no executable sbin/sedged or bin/sedged");
    json_decref(m);
    err[0] = '\0';
    return SEDGE_OK;
fail:
    /* One line: the parser's own messages quote the input. */
    for (char *c = err; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = ' ';
    json_decref(m);
    ota_manifest_free(out);
    return rc;
}

json_t *ota_manifest_json(const ota_manifest_t *m)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:i}", "version", m->version, "min_version",
                     m->min_version, "architecture", m->architecture, "store_schema",
                     m->store_schema, "key_id", m->key_id, "payload_size",
                     (json_int_t)m->payload_size, "files", (int)m->file_count);
}

void ota_manifest_free(ota_manifest_t *m)
{
    for (size_t i = 0; i < m->file_count; i++) {
        free(m->files[i].path);
        free(m->files[i].link);
    }
    free(m->files);
    m->files = NULL;
    m->file_count = 0;
}
