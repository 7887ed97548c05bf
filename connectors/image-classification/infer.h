/*
 * infer: one loaded model and the inference over one image — OpenCV DNN
 * behind a C interface (infer.cpp), so that the rest of the connector is
 * C and no C++ exception crosses into it. The model is read by OpenCV's
 * own readers (ONNX, Caffe, TensorFlow, Darknet); the image is decoded
 * by imgcodecs under a pixel cap, resized to the model's input, scaled,
 * mean-subtracted and (swap_rb) turned to RGB, as cv::dnn::blobFromImage
 * does it. A capture (a V4L2 camera, or an image sequence that a camera
 * program writes) is OpenCV videoio's cv::VideoCapture, kept open from
 * one frame to the next.
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

/* A capture source: a V4L2 device (/dev/videoN, backend CAP_V4L2) or an
 * image sequence, a printf pattern such as /dir/frame_%03d.png (backend
 * CAP_IMAGES, started over at its end). Opened by the first read, kept
 * open, closed after a failed read and opened again after a backoff
 * (0.5 s, doubled up to 30 s, back to 0.5 s after a frame). */
typedef struct infer_capture infer_capture_t;

/* Is this source a capture (a device under /dev, or a pattern with %)? */
bool infer_capture_source(const char *source);
infer_capture_t *infer_capture_new(const char *source);
void infer_capture_free(infer_capture_t *c);
/* Take the next frame into the capture (`now_ms` on a monotonic clock,
 * for the backoff); `name` gets an id for it ("video0#12"). false with
 * `why` naming the source when it is missing, busy or gives no frame. */
bool infer_capture_read(infer_capture_t *c, uint64_t now_ms, char *name, size_t name_len, char *why,
                        size_t why_len);
/* Classify the frame the last infer_capture_read took, as infer_image. */
bool infer_frame(infer_t *in, const infer_capture_t *c, float *scores, size_t cap, size_t *n,
                 char *why, size_t why_len);

#ifdef __cplusplus
}
#endif

#endif
