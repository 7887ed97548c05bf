/*
 * histogram: fixed buckets, 100 us to 10 s.
 */
#include "histogram.h"

static const uint64_t bounds_us[HISTOGRAM_BUCKETS] = {
    100,   250,   500,    1000,   2500,    5000,    10000,
    25000, 50000, 100000, 250000, 1000000, 2500000, 10000000,
};

uint64_t histogram_bound_us(size_t i)
{
    return i < HISTOGRAM_BUCKETS ? bounds_us[i] : UINT64_MAX;
}

void histogram_observe_us(histogram_t *h, uint64_t us)
{
    size_t i = 0;
    while (i < HISTOGRAM_BUCKETS && us > bounds_us[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum_us += us;
}
