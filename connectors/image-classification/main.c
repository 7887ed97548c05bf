/*
 * image-classification: the connector's program — a model resource
 * loaded with OpenCV DNN (infer.cpp), images classified on demand (a
 * message routed to the connector, or a function's sedge_invoke) and, with
 * interval_ms, from its source on a timer (a directory of images, a V4L2
 * camera or an image sequence: source.c, infer.cpp); each result published on
 * result_topic in Greengrass v2's shape and returned to an invoker. Bad
 * input gets an error result with its reason; the connector keeps
 * running. Parameters: docs/resources.md.
 */
#include "connector.h"
#include "infer.h"
#include "ic_request.h"
#include "source.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_OUTPUTS 100000
#define DEFAULT_MAX_IMAGE_BYTES (8u << 20)
#define MAX_LABELS 100000

typedef struct {
    infer_t *infer;
    char **labels;
    size_t label_count;
    size_t top_k;
    float threshold;
    char result_topic[1024];
    char model_sha256[65];
    size_t max_image_bytes;
    bool have_source;
    ic_source_t source;      /* a directory */
    infer_capture_t *camera; /* or a camera, an image sequence */
    uint32_t interval_ms;
    uint64_t next_ms;
    float *scores;
    size_t *order;
    ic_label_score_t *results;
    char (*index_names)[24]; /* top_k labels for outputs the labels do not name */
    char trigger_topic[1024];
    char broken[900]; /* why there is no model to run */
} ic_t;

/* SEDGE_RESOURCE_<ID>: the variable the core sets for a resource. */
static const char *resource_env(const char *id, const char *suffix)
{
    char name[256];
    int n = snprintf(name, sizeof name, "SEDGE_RESOURCE_");
    for (const char *p = id; *p && (size_t)n + 1 < sizeof name; p++)
        name[n++] = (*p == ':' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
    snprintf(name + n, sizeof name - (size_t)n, "%s", suffix);
    return getenv(name);
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && strcmp(name + n - k, suffix) == 0;
}

/* The first file of the model directory with this suffix. */
static bool find_file(const char *dir, const char *suffix, char *out, size_t len)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    char best[1024] = "";
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && has_suffix(e->d_name, suffix) &&
            (!best[0] || strcmp(e->d_name, best) < 0))
            snprintf(best, sizeof best, "%s", e->d_name);
    closedir(d);
    if (best[0])
        snprintf(out, len, "%s/%s", dir, best);
    return best[0] != '\0';
}

/* The weights and their configuration in the model's directory: the file
 * model_file names, else the first .onnx, .caffemodel (+ .prototxt), .pb
 * (+ .pbtxt), .weights (+ .cfg). */
static bool find_model(const char *dir, const char *model_file, char *model, char *config,
                       size_t len, char *why, size_t why_len)
{
    config[0] = '\0';
    if (model_file) {
        if (model_file[0] == '/' || strstr(model_file, "..")) {
            snprintf(why, why_len, "model_file: \"%s\" must be a path inside the model", model_file);
            return false;
        }
        snprintf(model, len, "%s/%s", dir, model_file);
        return true;
    }
    static const struct {
        const char *weights, *config;
    } kinds[] = {{".onnx", NULL},
                 {".caffemodel", ".prototxt"},
                 {".pb", ".pbtxt"},
                 {".weights", ".cfg"}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (find_file(dir, kinds[i].weights, model, len)) {
            if (kinds[i].config && !find_file(dir, kinds[i].config, config, len) &&
                strcmp(kinds[i].weights, ".pb") != 0) {
                snprintf(why, why_len, "%.600s needs its %s beside it", model, kinds[i].config);
                return false;
            }
            return true;
        }
    snprintf(why, why_len,
             "no model in %.600s (an .onnx, .caffemodel + .prototxt, .pb or .weights + .cfg file; "
             "or name it with model_file)",
             dir);
    return false;
}

static bool load_labels(ic_t *ic, json_t *params, const char *dir, char *why, size_t why_len)
{
    json_t *list = json_object_get(params, "labels");
    if (json_is_array(list)) {
        ic->labels = calloc(json_array_size(list) + 1, sizeof *ic->labels);
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v)
        {
            if (ic->labels && json_is_string(v))
                ic->labels[ic->label_count++] = strdup(json_string_value(v));
        }
        return ic->labels != NULL;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, conn_param_str(params, "labels_file", "labels.txt"));
    FILE *f = fopen(path, "r");
    if (!f)
        return true; /* no labels: outputs are named by their index */
    ic->labels = calloc(MAX_LABELS, sizeof *ic->labels);
    char line[512];
    while (ic->labels && ic->label_count < MAX_LABELS && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        json_t *valid = json_string(line); /* UTF-8 only: a label goes into JSON */
        ic->labels[ic->label_count++] = strdup(valid ? line : "?");
        json_decref(valid);
    }
    fclose(f);
    if (!ic->labels)
        snprintf(why, why_len, "out of memory");
    return ic->labels != NULL;
}

static double number_at(json_t *params, const char *key, size_t index, double dflt)
{
    json_t *v = json_object_get(params, key);
    if (json_is_array(v))
        v = json_array_get(v, index);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static void answer(const sedge_event *ev, sedge_result *res, ic_t *ic, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(7));
    if (text) {
        if (!ev || ev->topic[0])
            (void)conn_publish(ic->result_topic, text, strlen(text));
        if (res)
            (void)sedge_result_set(res, text, strlen(text));
    }
    free(text);
    json_decref(doc);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The result document of the n scores the model gave. */
static json_t *scored(ic_t *ic, size_t n, const char *id, double ms)
{
    size_t k = ic_top_k(ic->scores, n, ic->top_k, ic->threshold, ic->order);
    for (size_t i = 0; i < k; i++) {
        size_t at = ic->order[i];
        const char *label = at < ic->label_count && ic->labels[at] ? ic->labels[at] : NULL;
        if (!label) {
            snprintf(ic->index_names[i], sizeof ic->index_names[i], "%zu", at);
            label = ic->index_names[i];
        }
        ic->results[i] = (ic_label_score_t){label, ic->scores[at]};
    }
    return ic_result(ic->results, k, id, ms, ic->model_sha256);
}

/* Classify one image: the result document, or an error one. */
static json_t *classify(ic_t *ic, const uint8_t *image, size_t len, const char *id, char *why,
                        size_t why_len, bool *failed)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t n;
    *failed = !infer_image(ic->infer, image, len, ic->scores, MAX_OUTPUTS, &n, why, why_len);
    if (*failed)
        return ic_error_result(why, id, ic->model_sha256);
    return scored(ic, n, id, ms_since(&t0));
}

/* Take a frame from the camera (or image sequence) and classify it. */
static json_t *classify_frame(ic_t *ic, const char *id, char *why, size_t why_len, bool *failed)
{
    char name[128];
    *failed = true;
    if (!infer_capture_read(ic->camera, conn_now_ms(), name, sizeof name, why, why_len))
        return ic_error_result(why, id, ic->model_sha256);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t n;
    const char *named = id && id[0] ? id : name;
    *failed = !infer_frame(ic->infer, ic->camera, ic->scores, MAX_OUTPUTS, &n, why, why_len);
    if (*failed)
        return ic_error_result(why, named, ic->model_sha256);
    return scored(ic, n, named, ms_since(&t0));
}

static json_t *capture(ic_t *ic, const char *id, char *why, size_t why_len, bool *failed)
{
    *failed = true;
    if (!ic->have_source) {
        snprintf(why, why_len,
                 "the source is payload: send an image (raw JPEG/PNG bytes or {\"image\": "
                 "BASE64})");
        return ic_error_result(why, id, ic->model_sha256);
    }
    if (ic->camera)
        return classify_frame(ic, id, why, why_len, failed);
    uint8_t *data;
    size_t len;
    char name[256];
    if (!ic_source_next(&ic->source, ic->max_image_bytes, &data, &len, name, sizeof name, why,
                        why_len))
        return ic_error_result(why, id, ic->model_sha256);
    json_t *doc = classify(ic, data, len, id && id[0] ? id : name, why, why_len, failed);
    free(data);
    return doc;
}

static sedge_err handle(const sedge_event *ev, sedge_result *res, void *ctx)
{
    ic_t *ic = ctx;
    char why[1000] = "";
    ic_request_t req;
    bool failed = true;
    json_t *doc;
    if (ic->broken[0] || (ic->trigger_topic[0] && ev->topic[0] &&
                          strcmp(ev->topic, ic->trigger_topic) != 0)) {
        snprintf(why, sizeof why, "%s",
                 ic->broken[0] ? ic->broken : "not the connector's trigger_topic");
        answer(ev, NULL, ic, ic_error_result(why, NULL, ic->model_sha256));
        return sedge_result_error(res, why);
    }
    if (!ic_request_parse(ev->payload, ev->payload_len, ic->max_image_bytes, &req, why,
                          sizeof why))
        doc = ic_error_result(why, NULL, ic->model_sha256);
    else if (req.kind == IC_CAPTURE)
        doc = capture(ic, req.id, why, sizeof why, &failed);
    else
        doc = classify(ic, req.image, req.image_len, req.id, why, sizeof why, &failed);
    ic_request_free(&req);
    answer(ev, failed ? NULL : res, ic, doc);
    return failed ? sedge_result_error(res, why) : SEDGE_OK;
}

static int64_t next_ms(void *ctx)
{
    ic_t *ic = ctx;
    if (!ic->interval_ms)
        return -1;
    uint64_t now = conn_now_ms();
    return ic->next_ms > now ? (int64_t)(ic->next_ms - now) : 0;
}

static conn_limit_t tick_limit;

static void tick(void *ctx)
{
    ic_t *ic = ctx;
    char why[600];
    bool failed;
    if (ic->broken[0]) {
        ic->interval_ms = 0; /* nothing to run: the reason was logged */
        return;
    }
    answer(NULL, NULL, ic, capture(ic, NULL, why, sizeof why, &failed));
    if (failed && conn_limit_allows(&tick_limit))
        conn_log("warn", "%s", why);
    uint64_t now = conn_now_ms();
    ic->next_ms += ic->interval_ms;
    if (ic->next_ms <= now)
        ic->next_ms = now + ic->interval_ms;
}

/* The model, its labels and the engine. */
static bool load_model(ic_t *ic, json_t *params, char *why, size_t why_len)
{
    const char *model_id = conn_param_str(params, "model", NULL);
    const char *dir = model_id ? resource_env(model_id, "") : NULL;
    if (!dir) {
        snprintf(why, why_len,
                 "no model: the parameter \"model\" must name a model resource of the group (%s)",
                 model_id ? model_id : "none given");
        return false;
    }
    const char *sha = resource_env(model_id, "_SHA256");
    snprintf(ic->model_sha256, sizeof ic->model_sha256, "%s", sha ? sha : "");
    char model[4200], config[4200];
    if (!find_model(dir, conn_param_str(params, "model_file", NULL), model, config, sizeof model,
                    why, why_len) ||
        !load_labels(ic, params, dir, why, why_len))
        return false;
    infer_options_t o = {
        .model = model,
        .config = config[0] ? config : NULL,
        .width = (int)number_at(params, "input_size", 0, 224),
        .height = (int)number_at(params, "input_size", 1, 224),
        .scale = number_at(params, "scale", 0, 1.0),
        .mean = {number_at(params, "mean", 0, 0), number_at(params, "mean", 1, 0),
                 number_at(params, "mean", 2, 0)},
        .swap_rb = conn_param_bool(params, "swap_rb", false),
        .threads = (int)conn_param_int(params, "threads", 0),
        .accelerator = conn_param_str(params, "accelerator", "cpu"),
        .max_pixels = (uint64_t)conn_param_int(params, "max_pixels", IC_DEFAULT_MAX_PIXELS),
    };
    char note[300];
    if (!(ic->infer = infer_open(&o, why, why_len, note, sizeof note)))
        return false;
    if (note[0])
        conn_log("warn", "%s", note);
    conn_log("info", "model %s (%s), input %dx%d, %zu labels, %d OpenCV threads", model,
             ic->model_sha256[0] ? ic->model_sha256 : "no hash", o.width, o.height,
             ic->label_count, infer_threads());
    return true;
}

static bool setup(ic_t *ic, json_t *params, char *why, size_t why_len)
{
    ic->top_k = (size_t)conn_param_int(params, "top_k", 5);
    ic->threshold = (float)number_at(params, "score_threshold", 0, 0.0);
    ic->max_image_bytes = (size_t)conn_param_int(params, "max_image_bytes", DEFAULT_MAX_IMAGE_BYTES);
    ic->interval_ms = (uint32_t)conn_param_int(params, "interval_ms", 0);
    const char *fn = getenv("SEDGE_FUNCTION");
    const char *name = fn && strncmp(fn, "connector:", 10) == 0 ? fn + 10 : "classifier";
    char dflt[300];
    snprintf(dflt, sizeof dflt, "gg/inference/%s", name);
    snprintf(ic->result_topic, sizeof ic->result_topic, "%s",
             conn_param_str(params, "result_topic", dflt));
    snprintf(ic->trigger_topic, sizeof ic->trigger_topic, "%s",
             conn_param_str(params, "trigger_topic", ""));
    ic->scores = calloc(MAX_OUTPUTS, sizeof *ic->scores);
    ic->order = calloc(MAX_OUTPUTS, sizeof *ic->order);
    ic->results = calloc(ic->top_k + 1, sizeof *ic->results);
    ic->index_names = calloc(ic->top_k + 1, sizeof *ic->index_names);
    if (!ic->scores || !ic->order || !ic->results || !ic->index_names) {
        snprintf(why, why_len, "out of memory");
        return false;
    }
    const char *source = conn_param_str(params, "source", "payload");
    if (strcmp(source, "payload") != 0 && infer_capture_source(source)) {
        /* Opened by the first capture: a camera missing now gets error
         * results until it is there. */
        if (!(ic->camera = infer_capture_new(source))) {
            snprintf(why, why_len, "out of memory");
            return false;
        }
        ic->have_source = true;
    } else if (strcmp(source, "payload") != 0) {
        if (!ic_source_open(&ic->source, source, why, why_len))
            return false;
        ic->have_source = true;
    }
    ic->next_ms = conn_now_ms() + ic->interval_ms;
    /* A model that cannot be read does not end the connector: each request
     * gets an error result saying why, until a deployment brings another. */
    if (!load_model(ic, params, ic->broken, sizeof ic->broken))
        conn_log("error", "%s", ic->broken);
    return true;
}

int main(void)
{
    json_t *params;
    if (conn_parameters(&params)) {
        conn_log("error", "cannot read the parameters: %s", sedge_last_error());
        return 1;
    }
    static ic_t ic;
    char why[900];
    if (!setup(&ic, params, why, sizeof why)) {
        conn_log("error", "%s", why);
        json_decref(params);
        return 1;
    }
    conn_ops_t ops = {.handle = handle, .next_ms = next_ms, .tick = tick, .ctx = &ic};
    sedge_err err = conn_run(&ops);
    conn_log(err == SEDGE_ERR_CLOSED ? "info" : "error", "stopping: %s", sedge_last_error());
    infer_close(ic.infer);
    ic_source_close(&ic.source);
    infer_capture_free(ic.camera);
    json_decref(params);
    return err == SEDGE_ERR_CLOSED ? 0 : 1;
}
