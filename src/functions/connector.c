/*
 * connector: a connector is a function that ships with Sedge. Its group
 * entry ({name, type, parameters, resources, ...}) becomes the function
 * entry it runs as: the program named after its type in the connectors
 * directory (also its code directory, so that the sandbox shows it),
 * long-lived, binary encoding (each connector reads its own messages:
 * Greengrass's GPIO topics carry a bare 0 or 1), its parameters as its
 * config, the host's network or /sys only for the types that need them.
 * From there it is supervised, limited and measured like any function.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* A request a connector serves (a Modbus transaction, a batch to post)
 * may wait on its device or server for seconds; its own timeouts come
 * first, this one only ends a connector that hangs. */
#define CONNECTOR_TIMEOUT_S 120

void fn_endpoint(const char *name, char *buf, size_t len)
{
    if (strncmp(name, "connector:", 10) == 0)
        snprintf(buf, len, "%s", name);
    else
        snprintf(buf, len, "function:%s", name);
}

static int copy_key(json_t *to, json_t *from, const char *key)
{
    json_t *v = json_object_get(from, key);
    return v ? json_object_set(to, key, v) : 0;
}

/* A connector whose parameters name a model resource ("model", the
 * image-classification connector's) uses it without listing it, and its
 * image decoder gets the pixel cap before it loads (OpenCV reads
 * OPENCV_IO_MAX_IMAGE_PIXELS once, from its environment). */
static int add_model(json_t *e, json_t *params)
{
    const char *model = json_string_value(json_object_get(params, "model"));
    if (!model)
        return 0;
    json_t *list = json_object_get(e, "resources");
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r)
    {
        const char *id = json_string_value(json_object_get(r, "id"));
        if (id && strcmp(id, model) == 0)
            return 0;
    }
    json_t *copy = list ? json_deep_copy(list) : json_array();
    json_t *pixels = json_object_get(params, "max_pixels");
    char cap[32];
    snprintf(cap, sizeof cap, "%lld",
             json_is_integer(pixels) ? (long long)json_integer_value(pixels) : 16LL << 20);
    if (!copy || json_array_append_new(copy, json_pack("{s:s}", "id", model)) ||
        json_object_set_new(e, "resources", copy) ||
        json_object_set_new(e, "env", json_pack("{s:s}", "OPENCV_IO_MAX_IMAGE_PIXELS", cap)))
        return -1;
    return 0;
}

json_t *connector_entry(json_t *c, const char *connectors_dir)
{
    const connector_type_t *t = group_connector_type(c);
    const char *name = json_string_value(json_object_get(c, "name"));
    if (!t || !name)
        return NULL;
    char fname[GROUP_MAX_NAME + 16], program[4200];
    snprintf(fname, sizeof fname, "connector:%s", name);
    snprintf(program, sizeof program, "%s/%s", connectors_dir, t->type);
    json_t *params = json_object_get(c, "parameters");
    json_t *config = params ? json_incref(params) : json_object();
    /* "o" takes the reference to config, even when the pack fails. */
    json_t *e = json_pack("{s:s, s:[s], s:s, s:s, s:s, s:o, s:b, s:b, s:i, s:i}", "name", fname,
                          "exec", program, "code", connectors_dir, "lifecycle", "long-lived",
                          "encoding", "binary", "config", config, "network", group_connector_network(c),
                          "sysfs", t->sysfs, "memory_mb", (int)t->memory_mb, "timeout_s",
                          CONNECTOR_TIMEOUT_S);
    if (!e || copy_key(e, c, "memory_mb") || copy_key(e, c, "max_queue") ||
        copy_key(e, c, "run_as") || copy_key(e, c, "isolation") || copy_key(e, c, "resources") ||
        add_model(e, params)) {
        json_decref(e);
        return NULL;
    }
    return e;
}
