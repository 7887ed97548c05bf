/*
 * ic_request: what the image-classification connector is asked — a trigger
 * message's payload read as one of the forms Greengrass's ML connectors
 * and Sedge's users send: `{}` (classify the source now), `{"image":
 * BASE64, "id": ID}` (this image; the id comes back in the result), or the
 * raw bytes of a JPEG, PNG or BMP — and the result documents it answers
 * with (Greengrass v2's image-classification shape). Pure functions over
 * caller-owned buffers: the fuzz target's subject.
 */
#ifndef IC_REQUEST_H
#define IC_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IC_MAX_ID 128
/* The decoder's cap (OPENCV_IO_MAX_IMAGE_PIXELS, which the core sets from
 * max_pixels: OpenCV reads it once, when it is loaded). */
#define IC_DEFAULT_MAX_PIXELS (16u << 20)

typedef enum {
    IC_CAPTURE, /* classify the connector's source now */
    IC_IMAGE,   /* classify the image given */
} ic_kind_t;

typedef struct {
    ic_kind_t kind;
    const uint8_t *image; /* IC_IMAGE: into the payload, or `owned` */
    size_t image_len;
    uint8_t *owned; /* a decoded base64 image (free it with ic_request_free) */
    char id[IC_MAX_ID + 1];
} ic_request_t;

/* Read a payload of at most `max_image` image bytes. false with `why`
 * (a sentence for the error result) when it is none of the forms. */
bool ic_request_parse(const uint8_t *payload, size_t len, size_t max_image, ic_request_t *out,
                      char *why, size_t why_len);
void ic_request_free(ic_request_t *r);

/* Does the payload start like an image (JPEG, PNG, BMP, GIF, TIFF, WebP,
 * PPM)? Only these bytes are sent to the decoder as raw images. */
bool ic_looks_like_image(const uint8_t *p, size_t len);

typedef struct {
    const char *label;
    float score;
} ic_label_score_t;

/* The result document: {timestamp, inference-type, inference-results:
 * [{Label, Score}], id, latency_ms, model_sha256} (a new reference). */
json_t *ic_result(const ic_label_score_t *results, size_t count, const char *id,
                  double latency_ms, const char *model_sha256);
/* An error result: the same with "error": why and no results. */
json_t *ic_error_result(const char *why, const char *id, const char *model_sha256);

/* The best `k` of `n` scores above `threshold`, best first: their indexes
 * into `order` (which holds n). Returns how many. */
size_t ic_top_k(const float *scores, size_t n, size_t k, float threshold, size_t *order);

#endif
