/*
 * ic_request: reading trigger payloads and writing result documents.
 * An invocation's payload is untrusted: every length is checked before it
 * is used, the JSON form is parsed with a depth and size already bounded
 * by the frame, and an id is copied only if it is short and printable.
 */
#include "ic_request.h"

#include "connector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

bool ic_looks_like_image(const uint8_t *p, size_t len)
{
    static const struct {
        const char *magic;
        size_t len;
    } kinds[] = {
        {"\xff\xd8\xff", 3},       /* JPEG */
        {"\x89PNG\r\n\x1a\n", 8},  /* PNG */
        {"BM", 2},                 /* BMP */
        {"GIF8", 4},               /* GIF */
        {"II*\0", 4},              /* TIFF */
        {"MM\0*", 4},              /* TIFF */
        {"RIFF", 4},               /* WebP */
        {"P6", 2},                 /* PPM */
        {"P5", 2},                 /* PGM */
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (len > kinds[i].len && memcmp(p, kinds[i].magic, kinds[i].len) == 0)
            return true;
    return false;
}

static bool copy_id(json_t *v, ic_request_t *out, char *why, size_t why_len)
{
    char text[IC_MAX_ID + 1];
    if (json_is_integer(v)) {
        snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
    } else if (json_is_string(v) && json_string_length(v) <= IC_MAX_ID &&
               strlen(json_string_value(v)) == json_string_length(v)) {
        snprintf(text, sizeof text, "%s", json_string_value(v));
    } else {
        snprintf(why, why_len, "\"id\" must be a string of at most %d bytes or an integer",
                 IC_MAX_ID);
        return false;
    }
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            snprintf(why, why_len, "\"id\" may not hold control characters");
            return false;
        }
    snprintf(out->id, sizeof out->id, "%s", text);
    return true;
}

bool ic_request_parse(const uint8_t *payload, size_t len, size_t max_image, ic_request_t *out,
                      char *why, size_t why_len)
{
    memset(out, 0, sizeof *out);
    if (len == 0) {
        out->kind = IC_CAPTURE;
        return true;
    }
    if (ic_looks_like_image(payload, len)) {
        if (len > max_image) {
            snprintf(why, why_len, "the image is %zu bytes, over max_image_bytes (%zu)", len,
                     max_image);
            return false;
        }
        out->kind = IC_IMAGE;
        out->image = payload;
        out->image_len = len;
        return true;
    }
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        snprintf(why, why_len,
                 "the payload is neither an image (JPEG, PNG, BMP...) nor a JSON object "
                 "({} or {\"image\": BASE64, \"id\": ID})");
        return false;
    }
    bool ok = true;
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "image") != 0 && strcmp(key, "id") != 0) {
            snprintf(why, why_len, "unknown key \"%.64s\" (a request has image and id)", key);
            ok = false;
            break;
        }
    }
    json_t *id = json_object_get(doc, "id");
    if (ok && id)
        ok = copy_id(id, out, why, why_len);
    json_t *image = json_object_get(doc, "image");
    if (ok && image) {
        size_t n = json_string_length(image);
        if (!json_is_string(image)) {
            snprintf(why, why_len, "\"image\" must be a base64 string");
            ok = false;
        } else if (n / 4 * 3 > max_image + 2) {
            snprintf(why, why_len, "the image is over max_image_bytes (%zu)", max_image);
            ok = false;
        } else if (!conn_base64_decode(json_string_value(image), n, &out->owned,
                                       &out->image_len)) {
            snprintf(why, why_len, "\"image\" is not valid base64");
            ok = false;
        } else if (out->image_len == 0 || out->image_len > max_image) {
            snprintf(why, why_len, "the image is empty or over max_image_bytes (%zu)", max_image);
            ok = false;
        } else {
            out->kind = IC_IMAGE;
            out->image = out->owned;
        }
    } else if (ok) {
        out->kind = IC_CAPTURE;
    }
    json_decref(doc);
    if (!ok)
        ic_request_free(out);
    return ok;
}

void ic_request_free(ic_request_t *r)
{
    free(r->owned);
    r->owned = NULL;
    r->image = NULL;
    r->image_len = 0;
}

/* Greengrass's "2021-03-13 00:18:17.707405", in UTC. */
static json_t *timestamp(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char text[64];
    size_t n = strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(text + n, sizeof text - n, ".%06ld", (long)tv.tv_usec);
    return json_string(text);
}

static json_t *base(const char *id, const char *model_sha256)
{
    json_t *doc = json_object();
    json_object_set_new(doc, "timestamp", timestamp());
    json_object_set_new(doc, "inference-type", json_string("image-classification"));
    if (id && id[0])
        json_object_set_new(doc, "id", json_string(id));
    if (model_sha256)
        json_object_set_new(doc, "model_sha256", json_string(model_sha256));
    return doc;
}

json_t *ic_result(const ic_label_score_t *results, size_t count, const char *id,
                  double latency_ms, const char *model_sha256)
{
    json_t *doc = base(id, model_sha256);
    json_t *list = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(list, json_pack("{s:s, s:f}", "Label", results[i].label, "Score",
                                              (double)results[i].score));
    json_object_set_new(doc, "inference-results", list);
    json_object_set_new(doc, "latency_ms", json_real(latency_ms));
    return doc;
}

json_t *ic_error_result(const char *why, const char *id, const char *model_sha256)
{
    json_t *doc = base(id, model_sha256);
    json_object_set_new(doc, "inference-results", json_array());
    json_object_set_new(doc, "error", json_string(why));
    return doc;
}

size_t ic_top_k(const float *scores, size_t n, size_t k, float threshold, size_t *order)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(scores[i] >= threshold)) /* NaN too */
            continue;
        /* Insertion into the sorted prefix; n is a class count. */
        size_t at = m++;
        while (at > 0 && scores[order[at - 1]] < scores[i]) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = i;
    }
    return m < k ? m : k;
}
