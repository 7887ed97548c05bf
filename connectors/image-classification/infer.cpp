/*
 * infer: OpenCV DNN, the one inference engine Debian packages for C++,
 * with only its core, imgproc, imgcodecs and dnn modules. Every call into
 * OpenCV is inside a try: a corrupt model or image is an error result,
 * never an exception through C frames.
 */
#include "infer.h"

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

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
    } catch (const cv::Exception &e) {
        say(why, why_len, "inference failed", e.msg);
    } catch (const std::exception &e) {
        say(why, why_len, "inference failed", e.what());
    }
    return false;
}
