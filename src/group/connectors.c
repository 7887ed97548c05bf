/*
 * connectors: the group document's "connectors" section — which types
 * Sedge ships, the parameters each takes, and the settings a connector
 * shares with functions (memory, queue, user, isolation, resources).
 *
 * A connector's program reads its own parameters again when it starts;
 * checking them here too means a deployment with a wrong one is refused
 * at once, with every problem and its JSON path, before anything runs.
 * The table below is the list docs/reference.md documents.
 */
#include "internal.h"
#include "mqtt/mqtt.h"

#include <stdio.h>
#include <string.h>

typedef enum {
    PARAM_STRING,
    PARAM_INT,
    PARAM_BOOL,
    PARAM_TOPIC,
    PARAM_OBJECT,
    PARAM_ARRAY,
    PARAM_NUMBER, /* min and max as for PARAM_INT */
} param_kind_t;

typedef struct {
    const char *key;
    param_kind_t kind;
    long long min, max;         /* PARAM_INT */
    const char *const *choices; /* PARAM_STRING: one of these (NULL: any) */
} param_t;

typedef struct {
    connector_type_t info;
    const param_t *params;
    void (*check)(check_t *c, json_t *params, const char *path);
    bool (*network)(json_t *params); /* needs the host's network */
} type_def_t;

static const char *const transports[] = {"tcp", "rtu", NULL};
static const char *const modbus_parities[] = {"N", "E", "O", NULL};
static const char *const serial_parities[] = {"N", "E", "O", "S", "M", NULL};
static const char *const read_types[] = {"ascii", "hex", NULL};
static const char *const batch_formats[] = {"multipart", "json-array", NULL};
static const char *const modbus_tables[] = {"coils", "discrete_inputs", "holding_registers",
                                            "input_registers", NULL};

#define SERIAL_PARAMS                                                                              \
    {"serial_port", PARAM_STRING, 0, 0, NULL}, {"baud_rate", PARAM_INT, 50, 4000000, NULL},        \
        {"data_bits", PARAM_INT, 5, 8, NULL}, {"stop_bits", PARAM_INT, 1, 2, NULL},                \
        {"timeout_ms", PARAM_INT, 1, 60000, NULL}

static const param_t modbus_params[] = {
    {"transport", PARAM_STRING, 0, 0, transports},
    {"host", PARAM_STRING, 0, 0, NULL},
    {"port", PARAM_INT, 1, 65535, NULL},
    SERIAL_PARAMS,
    {"parity", PARAM_STRING, 0, 0, modbus_parities},
    {"response_topic", PARAM_TOPIC, 0, 0, NULL},
    {"poll", PARAM_OBJECT, 0, 0, NULL},
    {NULL, PARAM_STRING, 0, 0, NULL},
};

static const param_t serial_params[] = {
    SERIAL_PARAMS,
    {"parity", PARAM_STRING, 0, 0, serial_parities},
    {"rtscts", PARAM_BOOL, 0, 0, NULL},
    {"xonxoff", PARAM_BOOL, 0, 0, NULL},
    {"polling_read", PARAM_BOOL, 0, 0, NULL},
    {"polling_read_length", PARAM_INT, 1, 63994, NULL},
    {"polling_interval_ms", PARAM_INT, 1, 86400000, NULL},
    {"polling_read_type", PARAM_STRING, 0, 0, read_types},
    {NULL, PARAM_STRING, 0, 0, NULL},
};

static const param_t gpio_params[] = {
    {"chip", PARAM_STRING, 0, 0, NULL},
    {"input_gpios", PARAM_STRING, 0, 0, NULL},
    {"output_gpios", PARAM_STRING, 0, 0, NULL},
    {NULL, PARAM_STRING, 0, 0, NULL},
};

static const param_t metrics_params[] = {
    {"interval_ms", PARAM_INT, 100, 86400000, NULL},
    {"topic", PARAM_TOPIC, 0, 0, NULL},
    {"filesystems", PARAM_ARRAY, 0, 0, NULL},
    {NULL, PARAM_STRING, 0, 0, NULL},
};

static const param_t http_sink_params[] = {
    {"url", PARAM_STRING, 0, 0, NULL},
    {"headers", PARAM_OBJECT, 0, 0, NULL},
    {"content_type", PARAM_STRING, 0, 0, NULL},
    {"batch_max", PARAM_INT, 1, 10000, NULL},
    {"batch_ms", PARAM_INT, 0, 60000, NULL},
    {"batch_format", PARAM_STRING, 0, 0, batch_formats},
    {"max_queue", PARAM_INT, 1, 1000000, NULL},
    {"max_queue_bytes", PARAM_INT, 1, 1073741824, NULL},
    {"timeout_ms", PARAM_INT, 1, 600000, NULL},
    {"retry_initial_ms", PARAM_INT, 1, 600000, NULL},
    {"retry_max_ms", PARAM_INT, 1, 3600000, NULL},
    {NULL, PARAM_STRING, 0, 0, NULL},
};

static const char *const accelerators[] = {"cpu", "opencl", "cuda", "vulkan", NULL};

static const param_t image_classification_params[] = {
    {"model", PARAM_STRING, 0, 0, NULL},
    {"model_file", PARAM_STRING, 0, 0, NULL},
    {"labels", PARAM_ARRAY, 0, 0, NULL},
    {"labels_file", PARAM_STRING, 0, 0, NULL},
    {"input_size", PARAM_ARRAY, 0, 0, NULL},
    {"scale", PARAM_NUMBER, 0, 1000000, NULL},
    {"mean", PARAM_ARRAY, 0, 0, NULL},
    {"swap_rb", PARAM_BOOL, 0, 0, NULL},
    {"top_k", PARAM_INT, 1, 100, NULL},
    {"score_threshold", PARAM_NUMBER, -1000000, 1000000, NULL},
    {"trigger_topic", PARAM_TOPIC, 0, 0, NULL},
    {"result_topic", PARAM_TOPIC, 0, 0, NULL},
    {"source", PARAM_STRING, 0, 0, NULL},
    {"interval_ms", PARAM_INT, 0, 86400000, NULL},
    {"threads", PARAM_INT, 0, 64, NULL},
    {"accelerator", PARAM_STRING, 0, 0, accelerators},
    {"max_image_bytes", PARAM_INT, 1, 64 << 20, NULL},
    {"max_pixels", PARAM_INT, 1, 1 << 30, NULL},
    {NULL, PARAM_STRING, 0, 0, NULL},
};

static void required(check_t *c, json_t *params, const char *path, const char *key, const char *why)
{
    if (!json_object_get(params, key))
        problem(c, "%s.%s: missing (%s)", path, key, why);
}

static void check_device_path(check_t *c, json_t *params, const char *path, const char *key)
{
    const char *dev = json_string_value(json_object_get(params, key));
    if (dev && strncmp(dev, "/dev/", 5) != 0)
        problem(c, "%s.%s: \"%s\" is not a device under /dev", path, key, dev);
}

static void check_modbus_poll(check_t *c, json_t *poll, const char *path)
{
    static const char *const keys[] = {"interval_ms", "device", "topic", "registers", NULL};
    static const char *const reg_keys[] = {"name", "table", "address", "count", NULL};
    char sub[200];
    snprintf(sub, sizeof sub, "%s.poll", path);
    check_keys(c, poll, sub, keys);
    json_t *v = json_object_get(poll, "interval_ms");
    if (!is_uint(v, 10, 86400000))
        problem(c, "%s.interval_ms: expected an integer from 10 to 86400000", sub);
    v = json_object_get(poll, "device");
    if (v && !is_uint(v, 0, 247))
        problem(c, "%s.device: expected an integer from 0 to 247", sub);
    v = json_object_get(poll, "topic");
    if (v && (!json_is_string(v) ||
              !mqtt_topic_name_valid((bytes_t){(const uint8_t *)json_string_value(v),
                                               json_string_length(v)})))
        problem(c, "%s.topic: expected an MQTT topic name (no wildcards)", sub);
    json_t *regs = json_object_get(poll, "registers");
    if (!json_is_array(regs) || json_array_size(regs) == 0 || json_array_size(regs) > 64) {
        problem(c, "%s.registers: expected an array of 1 to 64 register ranges", sub);
        return;
    }
    size_t i;
    json_t *r;
    json_array_foreach(regs, i, r)
    {
        char rp[240];
        snprintf(rp, sizeof rp, "%s.registers[%zu]", sub, i);
        if (!json_is_object(r)) {
            problem(c, "%s: expected an object", rp);
            continue;
        }
        check_keys(c, r, rp, reg_keys);
        const char *table = string_at(c, r, "table", rp, true);
        bool known = false;
        for (size_t k = 0; table && modbus_tables[k]; k++)
            known |= strcmp(table, modbus_tables[k]) == 0;
        if (table && !known)
            problem(c, "%s.table: \"%s\" is not coils, discrete_inputs, holding_registers or "
                       "input_registers", rp, table);
        string_at(c, r, "name", rp, false);
        if (!is_uint(json_object_get(r, "address"), 0, 65535))
            problem(c, "%s.address: expected an integer from 0 to 65535", rp);
        bool bits = table && (strcmp(table, "coils") == 0 || strcmp(table, "discrete_inputs") == 0);
        json_int_t max = bits ? 2000 : 125;
        json_t *count = json_object_get(r, "count");
        if (count && !is_uint(count, 1, max))
            problem(c, "%s.count: expected an integer from 1 to %lld", rp, (long long)max);
        else if (count && is_uint(json_object_get(r, "address"), 0, 65535) &&
                 json_integer_value(json_object_get(r, "address")) + json_integer_value(count) >
                     65536)
            problem(c, "%s: the range goes past address 65535", rp);
    }
}

static void check_modbus(check_t *c, json_t *params, const char *path)
{
    const char *transport = json_string_value(json_object_get(params, "transport"));
    required(c, params, path, "transport", "\"tcp\" or \"rtu\"");
    if (transport && strcmp(transport, "tcp") == 0)
        required(c, params, path, "host", "the Modbus TCP server's address");
    if (transport && strcmp(transport, "rtu") == 0)
        required(c, params, path, "serial_port", "the RTU line's device, e.g. /dev/ttyUSB0");
    check_device_path(c, params, path, "serial_port");
    json_t *poll = json_object_get(params, "poll");
    if (json_is_object(poll))
        check_modbus_poll(c, poll, path);
}

static void check_serial(check_t *c, json_t *params, const char *path)
{
    required(c, params, path, "serial_port", "the port's device, e.g. /dev/ttyUSB0");
    check_device_path(c, params, path, "serial_port");
    if (json_is_true(json_object_get(params, "polling_read")))
        required(c, params, path, "polling_read_length", "polling_read needs a length to read");
}

/* "5,6U,7D" (inputs, U/D: pull-up or down) or "8H,9,27L" (outputs, H/L:
 * the initial value), as Greengrass's InputGpios and OutputGpios. */
static bool gpio_list_valid(const char *s, const char *suffixes, unsigned char *seen, size_t seen_len)
{
    if (!*s)
        return true;
    for (;;) {
        unsigned long line = 0;
        const char *start = s;
        while (*s >= '0' && *s <= '9') {
            line = line * 10 + (unsigned long)(*s - '0');
            if (line > 65535)
                return false;
            s++;
        }
        if (s == start)
            return false;
        if (*s && strchr(suffixes, *s))
            s++;
        if (line < seen_len * 8) {
            if (seen[line / 8] & (1u << (line % 8)))
                return false;
            seen[line / 8] |= (unsigned char)(1u << (line % 8));
        }
        if (!*s)
            return true;
        if (*s != ',')
            return false;
        s++;
    }
}

static void check_gpio(check_t *c, json_t *params, const char *path)
{
    const char *in = json_string_value(json_object_get(params, "input_gpios"));
    const char *out = json_string_value(json_object_get(params, "output_gpios"));
    if (!json_object_get(params, "input_gpios") && !json_object_get(params, "output_gpios"))
        problem(c, "%s: give input_gpios, output_gpios or both (e.g. \"5,6U,7D\" and \"8H,9\")",
                path);
    unsigned char seen[65536 / 8] = {0};
    if (in && !gpio_list_valid(in, "UD", seen, sizeof seen))
        problem(c, "%s.input_gpios: \"%s\" is not a list of distinct line numbers, each with an "
                   "optional U (pull-up) or D (pull-down), e.g. \"5,6U,7D\"", path, in);
    if (out && !gpio_list_valid(out, "HL", seen, sizeof seen))
        problem(c, "%s.output_gpios: \"%s\" is not a list of line numbers, each with an optional H "
                   "or L (initial value), e.g. \"8H,9,27L\", none of them an input", path, out);
}

static void check_metrics(check_t *c, json_t *params, const char *path)
{
    json_t *fs = json_object_get(params, "filesystems");
    size_t i;
    json_t *v;
    json_array_foreach(fs, i, v)
    {
        if (!json_is_string(v) || json_string_value(v)[0] != '/')
            problem(c, "%s.filesystems[%zu]: expected an absolute path", path, i);
    }
    if (json_array_size(fs) > 16)
        problem(c, "%s.filesystems: at most 16", path);
}

static void check_http_sink(check_t *c, json_t *params, const char *path)
{
    required(c, params, path, "url", "where to POST, http:// or https://");
    const char *url = json_string_value(json_object_get(params, "url"));
    if (url && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        problem(c, "%s.url: \"%s\" is not an http:// or https:// URL", path, url);
    json_t *headers = json_object_get(params, "headers");
    const char *k;
    json_t *v;
    json_object_foreach(headers, k, v)
    {
        const char *text = json_string_value(v);
        bool bad_name = !k[0] || strpbrk(k, ":\r\n ") != NULL;
        if (bad_name || !text || strpbrk(text, "\r\n"))
            problem(c, "%s.headers.%.*s: expected a header name without ':' or spaces, and a "
                       "string value on one line", path, KEY_SHOWN, k);
    }
    json_t *lo = json_object_get(params, "retry_initial_ms");
    json_t *hi = json_object_get(params, "retry_max_ms");
    if (json_is_integer(lo) && json_is_integer(hi) && json_integer_value(lo) > json_integer_value(hi))
        problem(c, "%s.retry_initial_ms: above retry_max_ms", path);
}

/* A relative path that stays inside its directory. */
static bool inside_path(const char *p)
{
    if (!p[0] || p[0] == '/')
        return false;
    for (const char *level = p;;) {
        size_t n = strcspn(level, "/");
        if (n == 2 && level[0] == '.' && level[1] == '.')
            return false;
        if (!level[n])
            return true;
        level += n + 1;
    }
}

static void check_numbers(check_t *c, json_t *params, const char *path, const char *key,
                          size_t min_count, size_t max_count, double lo, double hi)
{
    json_t *v = json_object_get(params, key);
    if (!v)
        return;
    bool ok = json_is_array(v) && json_array_size(v) >= min_count && json_array_size(v) <= max_count;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) ok = ok && json_is_number(x) && json_number_value(x) >= lo &&
                                     json_number_value(x) <= hi;
    if (!ok)
        problem(c, "%s.%s: expected %zu%s%zu numbers from %g to %g", path, key, min_count,
                min_count == max_count ? "" : " to ", min_count == max_count ? (size_t)0 : max_count,
                lo, hi);
}

/* Is `dev` a device the connector being checked lists in its resources
 * (a group device resource by id, or the inline form)? */
static bool is_device_resource(check_t *c, const char *dev)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(c->entry, "resources"), i, r)
    {
        const char *id = json_string_value(json_object_get(r, "id"));
        json_t *res = id ? json_object_get(c->resource_ids, id) : r;
        const char *type = json_string_value(json_object_get(res, "type"));
        const char *p = json_string_value(json_object_get(res, "path"));
        if (type && p && strcmp(type, "device") == 0 && strcmp(p, dev) == 0)
            return true;
    }
    return false;
}

/* An image sequence as OpenCV's CAP_IMAGES reads it: one %d or %0Nd
 * (N a digit) in the last level of the path, and no other %. */
static bool sequence_pattern_valid(const char *p)
{
    const char *pc = strchr(p, '%');
    if (!pc || strchr(pc + 1, '%') || strchr(pc, '/'))
        return false;
    const char *d = pc + 1;
    if (d[0] == '0' && d[1] >= '1' && d[1] <= '9')
        d += 2;
    return d[0] == 'd';
}

static void check_image_classification(check_t *c, json_t *params, const char *path)
{
    required(c, params, path, "model", "the id of a model resource of the group");
    const char *model = json_string_value(json_object_get(params, "model"));
    json_t *res = model ? json_object_get(c->resource_ids, model) : NULL;
    const char *type = json_string_value(json_object_get(res, "type"));
    if (model && (!type || strcmp(type, "model") != 0))
        problem(c, "%s.model: \"%s\" is not a model resource of the group", path, model);
    json_t *labels = json_object_get(params, "labels");
    size_t i;
    json_t *v;
    json_array_foreach(labels, i, v) if (!json_is_string(v) || json_string_length(v) > 256)
    {
        problem(c, "%s.labels[%zu]: expected a string of at most 256 bytes", path, i);
        break;
    }
    if (json_array_size(labels) > 100000)
        problem(c, "%s.labels: at most 100000", path);
    json_t *size = json_object_get(params, "input_size");
    if (size && !(json_array_size(size) == 2 && is_uint(json_array_get(size, 0), 1, 8192) &&
                  is_uint(json_array_get(size, 1), 1, 8192)))
        problem(c, "%s.input_size: expected [width, height], each from 1 to 8192", path);
    check_numbers(c, params, path, "mean", 1, 3, -1e6, 1e6);
    const char *files[] = {"model_file", "labels_file"};
    for (size_t k = 0; k < ARRAY_LEN(files); k++) {
        const char *f = json_string_value(json_object_get(params, files[k]));
        if (f && !inside_path(f))
            problem(c, "%s.%s: \"%s\" must be a relative path inside the model", path, files[k],
                    f);
    }
    const char *source = json_string_value(json_object_get(params, "source"));
    if (source && strcmp(source, "payload") != 0 && (source[0] != '/' || !path_is_plain(source)))
        problem(c, "%s.source: \"%s\" is not payload or an absolute path (a directory of "
                   "images, a V4L2 device /dev/videoN or an image sequence such as "
                   "/dir/frame_%%03d.png)", path, source);
    else if (source && strncmp(source, "/dev/", 5) == 0 && !is_device_resource(c, source))
        problem(c, "%s.source: \"%s\" is not a device resource of the connector (list a group "
                   "resource {\"type\": \"device\", \"path\": \"%s\"} by its id in its "
                   "resources)", path, source, source);
    else if (source && strchr(source, '%') && !sequence_pattern_valid(source))
        problem(c, "%s.source: \"%s\" is not an image sequence pattern (one %%d or %%0Nd in "
                   "the file name, e.g. /dir/frame_%%03d.png)", path, source);
    json_t *interval = json_object_get(params, "interval_ms");
    if (json_integer_value(interval) > 0 && (!source || strcmp(source, "payload") == 0))
        problem(c, "%s.interval_ms: a timer needs a source to take images from (source is "
                   "payload)", path);
}

static bool never(json_t *params)
{
    (void)params;
    return false;
}

static bool always(json_t *params)
{
    (void)params;
    return true;
}

static bool modbus_tcp(json_t *params)
{
    const char *transport = json_string_value(json_object_get(params, "transport"));
    return !transport || strcmp(transport, "tcp") == 0;
}

/* metrics reads the host's interfaces in /proc/net/dev, which shows the
 * network namespace it runs in. */
static const type_def_t types[] = {
    {{"modbus", false, 16}, modbus_params, check_modbus, modbus_tcp},
    {{"serial", true, 16}, serial_params, check_serial, never},
    {{"gpio", true, 16}, gpio_params, check_gpio, never},
    {{"metrics", true, 16}, metrics_params, check_metrics, always},
    {{"http-sink", false, 64}, http_sink_params, check_http_sink, always},
    {{"image-classification", false, 256}, image_classification_params,
     check_image_classification, never},
};

static const type_def_t *type_named(const char *name)
{
    for (size_t i = 0; name && i < ARRAY_LEN(types); i++)
        if (strcmp(types[i].info.type, name) == 0)
            return &types[i];
    return NULL;
}

const connector_type_t *group_connector_type(json_t *connector)
{
    const type_def_t *t = type_named(json_string_value(json_object_get(connector, "type")));
    return t ? &t->info : NULL;
}

bool group_connector_network(json_t *connector)
{
    const type_def_t *t = type_named(json_string_value(json_object_get(connector, "type")));
    return t && t->network(json_object_get(connector, "parameters"));
}

static void check_param(check_t *c, const param_t *p, json_t *v, const char *path)
{
    switch (p->kind) {
    case PARAM_INT:
        if (!is_uint(v, p->min, p->max))
            problem(c, "%s.%s: expected an integer from %lld to %lld", path, p->key, p->min,
                    p->max);
        return;
    case PARAM_NUMBER:
        if (!json_is_number(v) || json_number_value(v) < (double)p->min ||
            json_number_value(v) > (double)p->max)
            problem(c, "%s.%s: expected a number from %lld to %lld", path, p->key, p->min, p->max);
        return;
    case PARAM_BOOL:
        if (!json_is_boolean(v))
            problem(c, "%s.%s: expected true or false", path, p->key);
        return;
    case PARAM_OBJECT:
        if (!json_is_object(v))
            problem(c, "%s.%s: expected an object", path, p->key);
        return;
    case PARAM_ARRAY:
        if (!json_is_array(v))
            problem(c, "%s.%s: expected an array", path, p->key);
        return;
    case PARAM_TOPIC:
        if (!json_is_string(v) ||
            !mqtt_topic_name_valid(
                (bytes_t){(const uint8_t *)json_string_value(v), json_string_length(v)}))
            problem(c, "%s.%s: expected an MQTT topic name (no wildcards)", path, p->key);
        return;
    case PARAM_STRING: break;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        problem(c, "%s.%s: expected a non-empty string", path, p->key);
        return;
    }
    if (!p->choices)
        return;
    for (size_t i = 0; p->choices[i]; i++)
        if (strcmp(json_string_value(v), p->choices[i]) == 0)
            return;
    char list[160] = "";
    for (size_t i = 0; p->choices[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 p->choices[i]);
    problem(c, "%s.%s: \"%s\" is not one of %s", path, p->key, json_string_value(v), list);
}

static void check_parameters(check_t *c, const type_def_t *t, json_t *params, const char *path)
{
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v)
    {
        const param_t *p = t->params;
        while (p->key && strcmp(p->key, key) != 0)
            p++;
        if (!p->key)
            problem(c, "%s.%.*s%s: unknown parameter of a %s connector (docs/reference.md lists "
                       "them)", path, KEY_SHOWN, key, strlen(key) > KEY_SHOWN ? "..." : "",
                    t->info.type);
        else
            check_param(c, p, v, path);
    }
    t->check(c, params, path);
}

void check_connectors(check_t *c, json_t *connectors)
{
    static const char *const keys[] = {"name",      "type",   "description", "parameters",
                                       "resources", "run_as", "isolation",   "memory_mb",
                                       "max_queue", NULL};
    size_t i;
    json_t *e;
    json_array_foreach(connectors, i, e)
    {
        if (!json_is_object(e))
            continue;
        char path[64], ppath[96];
        snprintf(path, sizeof path, "connectors[%zu]", i);
        snprintf(ppath, sizeof ppath, "%s.parameters", path);
        check_keys(c, e, path, keys);
        const char *type = string_at(c, e, "type", path, true);
        const type_def_t *t = type_named(type);
        if (type && !t) {
            char list[160] = "";
            for (size_t k = 0; k < ARRAY_LEN(types); k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "",
                         types[k].info.type);
            problem(c, "%s.type: unknown connector type \"%s\" (Sedge ships %s)", path, type,
                    list);
        }
        json_t *params = json_object_get(e, "parameters");
        c->entry = e;
        if (params && !json_is_object(params))
            problem(c, "%s: expected an object", ppath);
        else if (t && params)
            check_parameters(c, t, params, ppath);
        else if (t) {
            json_t *none = json_object();
            if (none)
                check_parameters(c, t, none, ppath);
            json_decref(none);
        }
        c->entry = NULL;
        json_t *v = json_object_get(e, "memory_mb");
        if (v && !is_uint(v, 1, 1048576))
            problem(c, "%s.memory_mb: expected an integer from 1 to 1048576", path);
        v = json_object_get(e, "max_queue");
        if (v && !is_uint(v, 1, 1000000))
            problem(c, "%s.max_queue: expected an integer from 1 to 1000000", path);
        const char *run_as = string_at(c, e, "run_as", path, false);
        if (run_as && !valid_run_as(run_as))
            problem(c, "%s.run_as: \"%s\" is not UID:GID", path, run_as);
        const char *isolation = string_at(c, e, "isolation", path, false);
        if (isolation && strcmp(isolation, "sandbox") && strcmp(isolation, "none"))
            problem(c, "%s.isolation: \"%s\" is not sandbox or none", path, isolation);
        json_t *res = json_object_get(e, "resources");
        if (res)
            check_function_resources(c, res, path);
    }
}
