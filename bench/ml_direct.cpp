// ml_direct: the reference of the image-classification benchmark — OpenCV
// DNN called directly in one process, the steps the connector takes for
// each image (imdecode, blobFromImage, forward) and nothing else, timed
// per image.
//
//   ml_direct MODEL WIDTH HEIGHT SCALE COUNT WARMUP IMAGE...
//
// ML_THREADS in the environment: OpenCV's thread count (as the
// connector's "threads"); else OpenCV's default.
// prints one line: images=N p50_us=.. p99_us=.. rate=.. (images/s, one
// after the other) rss_kb=.. (this process's peak RSS)
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

static long peak_rss_kb()
{
    std::ifstream f("/proc/self/status");
    std::string key;
    long v = 0;
    while (f >> key)
        if (key == "VmHWM:" && f >> v)
            return v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        std::fprintf(stderr, "usage: ml_direct MODEL WIDTH HEIGHT SCALE COUNT WARMUP IMAGE...\n");
        return 2;
    }
    if (const char *threads = std::getenv("ML_THREADS"))
        cv::setNumThreads(std::atoi(threads));
    cv::dnn::Net net = cv::dnn::readNet(argv[1]);
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    cv::Size size(std::atoi(argv[2]), std::atoi(argv[3]));
    double scale = std::atof(argv[4]);
    int count = std::atoi(argv[5]), warmup = std::atoi(argv[6]);
    std::vector<std::vector<uchar>> images;
    for (int i = 7; i < argc; i++) {
        std::ifstream f(argv[i], std::ios::binary);
        images.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    std::vector<double> us;
    auto all = std::chrono::steady_clock::now();
    for (int i = 0; i < warmup + count; i++) {
        if (i == warmup)
            all = std::chrono::steady_clock::now();
        auto t0 = std::chrono::steady_clock::now();
        cv::Mat image = cv::imdecode(images[(size_t)i % images.size()], cv::IMREAD_COLOR);
        net.setInput(cv::dnn::blobFromImage(image, scale, size, cv::Scalar(), false, false,
                                            CV_32F));
        cv::Mat out = net.forward();
        auto t1 = std::chrono::steady_clock::now();
        if (out.empty())
            return 1;
        if (i >= warmup)
            us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - all).count();
    std::sort(us.begin(), us.end());
    std::printf("images=%zu p50_us=%.1f p99_us=%.1f rate=%.1f rss_kb=%ld\n", us.size(),
                us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)],
                (double)us.size() / secs, peak_rss_kb());
    return 0;
}
