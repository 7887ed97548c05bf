/*
 * infer: OpenCV DNN, the one inference engine Debian packages for C++,
 * with only its core, imgproc, imgcodecs, dnn and videoio modules. Every
 * call into OpenCV is inside a try: a corrupt model or image, or a camera
 * that goes away, is an error result, never an exception through C frames.
 */
#include "infer.h"

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>

#include <cstdio>
#include <cstring>
#include <string>

struct infer {
    cv::dnn::Net net;
    cv::Mat blob; /* kept from one image to the next: no new pages each time (imdecode
                     cannot reuse its picture: a failed decode leaves the last one there) */
    cv::Size size;
    double scale;
    cv::Scalar mean;
    bool swap_rb;
    uint64_t max_pixels;
};

namespace {

void say(char *why, size_t len, const char *what, const std::string &detail)
{
    std::snprintf(why, len, "%s: %.400s", what, detail.c_str());
    for (char *p = why; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

void choose_accelerator(cv::dnn::Net &net, const char *accel, char *note, size_t len)
{
    note[0] = '\0';
    if (!accel || std::strcmp(accel, "cpu") == 0) {
        net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
        net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
        return;
    }
    cv::dnn::Backend backend = cv::dnn::DNN_BACKEND_OPENCV;
    cv::dnn::Target target = cv::dnn::DNN_TARGET_OPENCL;
    if (std::strcmp(accel, "cuda") == 0) {
        backend = cv::dnn::DNN_BACKEND_CUDA;
        target = cv::dnn::DNN_TARGET_CUDA;
    } else if (std::strcmp(accel, "vulkan") == 0) {
        backend = cv::dnn::DNN_BACKEND_VKCOM;
        target = cv::dnn::DNN_TARGET_VULKAN;
    }
    bool available = false;
    for (cv::dnn::Target t : cv::dnn::getAvailableTargets(backend))
        available |= t == target;
    if (available) {
        net.setPreferableBackend(backend);
        net.setPreferableTarget(target);
        std::snprintf(note, len, "accelerator %s: in use", accel);
    } else {
        net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
        net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
        std::snprintf(note, len,
                      "accelerator %s: unavailable (this OpenCV has no backend for it); running "
                      "on the CPU",
                      accel);
    }
}

/* The model's output for a decoded 8-bit BGR picture. Throws OpenCV's
 * exceptions. */
bool classify(infer_t *in, const cv::Mat &image, float *scores, size_t cap, size_t *n, char *why,
              size_t why_len)
{
    cv::dnn::blobFromImage(image, in->blob, in->scale, in->size, in->mean, in->swap_rb, false,
                           CV_32F);
    in->net.setInput(in->blob);
    cv::Mat out = in->net.forward();
    cv::Mat flat = out.reshape(1, 1);
    if (flat.type() != CV_32F)
        flat.convertTo(flat, CV_32F);
    size_t total = flat.total();
    if (total > cap) {
        std::snprintf(why, why_len, "the model gives %zu outputs, more than %zu", total, cap);
        return false;
    }
    std::memcpy(scores, flat.ptr<float>(), total * sizeof(float));
    *n = total;
    return true;
}

} // namespace

extern "C" infer_t *infer_open(const infer_options_t *o, char *why, size_t why_len,
                               char *accel_note, size_t note_len)
{
    try {
        if (o->threads > 0)
            cv::setNumThreads(o->threads);
        cv::dnn::Net net = cv::dnn::readNet(o->model, o->config ? o->config : "");
        if (net.empty()) {
            std::snprintf(why, why_len, "cannot read the model %s", o->model);
            return nullptr;
        }
        choose_accelerator(net, o->accelerator, accel_note, note_len);
        infer_t *in = new infer_t;
        in->net = net;
        in->size = cv::Size(o->width, o->height);
        in->scale = o->scale;
        in->mean = cv::Scalar(o->mean[0], o->mean[1], o->mean[2]);
        in->swap_rb = o->swap_rb;
        in->max_pixels = o->max_pixels;
        return in;
    } catch (const cv::Exception &e) {
        say(why, why_len, "cannot read the model", e.msg);
    } catch (const std::exception &e) {
        say(why, why_len, "cannot read the model", e.what());
    }
    return nullptr;
}

extern "C" int infer_threads(void)
{
    return cv::getNumThreads();
}

extern "C" void infer_close(infer_t *in)
{
    delete in;
}

extern "C" bool infer_image(infer_t *in, const uint8_t *data, size_t len, float *scores,
                            size_t cap, size_t *n, char *why, size_t why_len)
{
    *n = 0;
    try {
        cv::Mat raw(1, (int)len, CV_8U, const_cast<uint8_t *>(data));
        cv::Mat image;
        try {
            image = cv::imdecode(raw, cv::IMREAD_COLOR);
        } catch (const cv::Exception &e) {
            if (e.msg.find("MAX_IMAGE_PIXELS") == std::string::npos &&
                e.msg.find("MAX_IMAGE_WIDTH") == std::string::npos &&
                e.msg.find("MAX_IMAGE_HEIGHT") == std::string::npos)
                throw;
            std::snprintf(why, why_len,
                          "the image cannot be decoded: its dimensions are over max_pixels (%llu)",
                          (unsigned long long)in->max_pixels);
            return false;
        }
        if (image.empty()) {
            std::snprintf(why, why_len,
                          "the image cannot be decoded (not a JPEG, PNG or BMP, truncated, or "
                          "over %llu pixels)",
                          (unsigned long long)in->max_pixels);
            return false;
        }
        return classify(in, image, scores, cap, n, why, why_len);
    } catch (const cv::Exception &e) {
        say(why, why_len, "inference failed", e.msg);
    } catch (const std::exception &e) {
        say(why, why_len, "inference failed", e.what());
    }
    return false;
}

/* The capture: cv::VideoCapture on a V4L2 device or an image sequence,
 * kept open between frames; after a failure it stays closed until
 * retry_at, the wait doubling from BACKOFF_MIN_MS to BACKOFF_MAX_MS. */
namespace {

constexpr uint64_t BACKOFF_MIN_MS = 500;
constexpr uint64_t BACKOFF_MAX_MS = 30000;

} // namespace

struct infer_capture {
    std::string source;
    bool device; /* V4L2; else an image sequence */
    cv::VideoCapture capture;
    cv::Mat raw, frame; /* as read; as 8-bit BGR */
    uint64_t frames = 0, retry_at = 0, backoff = 0;
    std::string last_error;
};

namespace {

std::string base_name(const std::string &path)
{
    size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

/* The frame as imdecode's IMREAD_COLOR gives a picture: 8-bit, 3 channels. */
bool to_bgr(const cv::Mat &raw, cv::Mat &out, std::string &why)
{
    cv::Mat eight;
    if (raw.depth() == CV_8U)
        eight = raw;
    else if (raw.depth() == CV_16U)
        raw.convertTo(eight, CV_8U, 1.0 / 257);
    else {
        why = "a frame of a pixel depth other than 8 or 16 bits";
        return false;
    }
    switch (eight.channels()) {
    case 1: cv::cvtColor(eight, out, cv::COLOR_GRAY2BGR); return true;
    case 3: out = eight; return true;
    case 4: cv::cvtColor(eight, out, cv::COLOR_BGRA2BGR); return true;
    default: why = "a frame of " + std::to_string(eight.channels()) + " channels"; return false;
    }
}

/* Open the capture: a V4L2 device with one buffer, so that a frame read
 * is a recent one. */
bool open_capture(infer_capture_t *c, std::string &why)
{
    c->capture.release();
    if (c->device) {
        if (!c->capture.open(c->source, cv::CAP_V4L2)) {
            why = "the camera " + c->source + " cannot be opened (missing, busy, or not a V4L2 " +
                  "capture device the connector may use: list it as a device resource)";
            return false;
        }
        c->capture.set(cv::CAP_PROP_BUFFERSIZE, 1);
    } else if (!c->capture.open(c->source, cv::CAP_IMAGES)) {
        why = "the image sequence " + c->source + " cannot be opened (no " +
              "first frame numbered 0 or 1, or not a printf pattern such as frame_%03d.png)";
        return false;
    }
    return true;
}

bool read_frame(infer_capture_t *c, std::string &why)
{
    if (!c->capture.isOpened() && !open_capture(c, why))
        return false;
    /* A camera's one buffered frame may have waited there since the last
     * read: it is dropped for a new one. */
    if (c->device && c->frames > 0)
        (void)c->capture.grab();
    if (c->capture.read(c->raw) && !c->raw.empty())
        return true;
    if (!c->device && c->frames > 0) {
        /* The end of the sequence: it starts over. */
        if (!open_capture(c, why))
            return false;
        if (c->capture.read(c->raw) && !c->raw.empty())
            return true;
    }
    why = (c->device ? "the camera " : "the image sequence ") + c->source + " gave no frame";
    return false;
}

} // namespace

extern "C" bool infer_capture_source(const char *source)
{
    return std::strncmp(source, "/dev/", 5) == 0 || std::strchr(source, '%') != nullptr;
}

extern "C" infer_capture_t *infer_capture_new(const char *source)
{
    try {
        infer_capture_t *c = new infer_capture_t;
        c->source = source;
        c->device = std::strncmp(source, "/dev/", 5) == 0;
        return c;
    } catch (const std::exception &) {
        return nullptr;
    }
}

extern "C" void infer_capture_free(infer_capture_t *c)
{
    delete c;
}

extern "C" bool infer_capture_read(infer_capture_t *c, uint64_t now_ms, char *name, size_t name_len,
                                   char *why, size_t why_len)
{
    c->frame.release();
    if (!c->capture.isOpened() && now_ms < c->retry_at) {
        std::snprintf(why, why_len, "%.700s; next try in %llu ms", c->last_error.c_str(),
                      (unsigned long long)(c->retry_at - now_ms));
        return false;
    }
    std::string reason;
    try {
        if (read_frame(c, reason) && to_bgr(c->raw, c->frame, reason)) {
            c->frames++;
            c->backoff = 0;
            std::snprintf(name, name_len, "%.100s#%llu", base_name(c->source).c_str(),
                          (unsigned long long)c->frames);
            return true;
        }
    } catch (const cv::Exception &e) {
        reason = (c->device ? "the camera " : "the image sequence ") + c->source + ": " + e.msg;
    } catch (const std::exception &e) {
        reason = c->source + ": " + e.what();
    }
    c->frame.release();
    c->capture.release();
    c->backoff = c->backoff ? std::min(c->backoff * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
    c->retry_at = now_ms + c->backoff;
    std::replace(reason.begin(), reason.end(), '\n', ' ');
    c->last_error = reason;
    say(why, why_len, reason.c_str(), "retried in " + std::to_string(c->backoff) + " ms");
    return false;
}

extern "C" bool infer_frame(infer_t *in, const infer_capture_t *c, float *scores, size_t cap,
                            size_t *n, char *why, size_t why_len)
{
    *n = 0;
    if (c->frame.empty()) {
        std::snprintf(why, why_len, "no frame was taken");
        return false;
    }
    try {
        return classify(in, c->frame, scores, cap, n, why, why_len);
    } catch (const cv::Exception &e) {
        say(why, why_len, "inference failed", e.msg);
    } catch (const std::exception &e) {
        say(why, why_len, "inference failed", e.what());
    }
    return false;
}
