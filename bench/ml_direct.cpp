// ml_direct: the reference of the image-classification benchmark — OpenCV
// DNN called directly in one process, the steps the connector takes for
// each image (imdecode, blobFromImage, forward) and nothing else, timed
// per image.
//
//   ml_direct MODEL WIDTH HEIGHT SCALE COUNT WARMUP IMAGE...
//
// ML_THREADS in the environment: OpenCV's thread count (as the
// connector's "threads"); else OpenCV's default. ML_GAP_US: sleep this
// long between images (untimed), as the connector waits between requests
// — on a busy machine the scheduler treats a process that sleeps between
// images better than one that never does, so a tight loop would be an
// unfair reference.
// prints one line: images=N p50_us=.. p99_us=.. rate=.. (images/s, one
// after the other, the gaps left out) rss_kb=.. (this process's peak RSS)
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <chrono>
#include <thread>
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
    const char *threads = std::getenv("ML_THREADS");
    if (threads && *threads) /* set but empty: OpenCV's default, as unset */
        cv::setNumThreads(std::atoi(threads));
    cv::dnn::Net net = cv::dnn::readNet(argv[1]);
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    cv::Size size(std::atoi(argv[2]), std::atoi(argv[3]));
    double scale = std::atof(argv[4]);
    int count = std::atoi(argv[5]), warmup = std::atoi(argv[6]);
    const char *gap_text = std::getenv("ML_GAP_US");
    int gap_us = gap_text ? std::atoi(gap_text) : 0;
    std::vector<std::vector<uchar>> images;
    for (int i = 7; i < argc; i++) {
        std::ifstream f(argv[i], std::ios::binary);
        images.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    std::vector<double> us;
    double busy = 0;
    cv::Mat blob;
    for (int i = 0; i < warmup + count; i++) {
        if (gap_us > 0)
            std::this_thread::sleep_for(std::chrono::microseconds(gap_us));
        auto t0 = std::chrono::steady_clock::now();
        cv::Mat image = cv::imdecode(images[(size_t)i % images.size()], cv::IMREAD_COLOR);
        /* The blob kept from one image to the next, as the connector does. */
        cv::dnn::blobFromImage(image, blob, scale, size, cv::Scalar(), false, false, CV_32F);
        net.setInput(blob);
        cv::Mat out = net.forward();
        auto t1 = std::chrono::steady_clock::now();
        if (out.empty())
            return 1;
        if (i >= warmup) {
            us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
            busy += std::chrono::duration<double>(t1 - t0).count();
        }
    }
    double secs = busy; /* the rate of the work itself, gaps left out */
    std::sort(us.begin(), us.end());
    std::printf("images=%zu p50_us=%.1f p99_us=%.1f rate=%.1f rss_kb=%ld\n", us.size(),
                us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)],
                (double)us.size() / secs, peak_rss_kb());
    return 0;
}
