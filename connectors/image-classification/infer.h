/*
 * infer: one loaded model and the inference over one image — OpenCV DNN
 * behind a C interface (infer.cpp), so that the rest of the connector is
 * C and no C++ exception crosses into it. The model is read by OpenCV's
 * own readers (ONNX, Caffe, TensorFlow, Darknet); the image is decoded
 * by imgcodecs under a pixel cap, resized to the model's input, scaled,
 * mean-subtracted and (swap_rb) turned to RGB, as cv::dnn::blobFromImage
 * does it.
 */
#ifndef IC_INFER_H
#define IC_INFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct infer infer_t;

typedef struct {
    const char *model;  /* the weights: .onnx, .caffemodel, .pb, .weights */
    const char *config; /* .prototxt, .pbtxt, .cfg; NULL when none */
    int width, height;  /* the model's input */
    double scale;
    double mean[3];
    bool swap_rb;
    int threads;              /* 0: OpenCV's default */
    const char *accelerator;  /* "cpu", "opencl", "cuda", "vulkan" */
    uint64_t max_pixels;      /* of a decoded image */
} infer_options_t;

/* Load a model. NULL with `why` when it cannot be read. `accel_note`
 * receives what became of the accelerator asked for ("" when cpu). */
infer_t *infer_open(const infer_options_t *o, char *why, size_t why_len, char *accel_note,
                    size_t note_len);
void infer_close(infer_t *in);
/* The threads OpenCV runs an inference on. */
int infer_threads(void);

/* Classify an encoded image: the model's output, flattened, into
 * scores[0..*n) (at most cap). false with `why` for an image that cannot
 * be decoded, is too large, or that the model fails on. */
bool infer_image(infer_t *in, const uint8_t *data, size_t len, float *scores, size_t cap,
                 size_t *n, char *why, size_t why_len);

#ifdef __cplusplus
}
#endif

#endif
