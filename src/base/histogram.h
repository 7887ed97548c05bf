/*
 * histogram: durations counted in fixed buckets, for the Prometheus
 * metrics (a cumulative histogram per bucket bound, a sum and a count).
 * The bounds are the same for every histogram: 100 us to 10 s.
 */
#ifndef SEDGE_HISTOGRAM_H
#define SEDGE_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define HISTOGRAM_BUCKETS 14

typedef struct {
    uint64_t counts[HISTOGRAM_BUCKETS + 1]; /* per bucket (not cumulative); the last is +Inf */
    uint64_t count;
    uint64_t sum_us;
} histogram_t;

/* The upper bound of bucket i, in microseconds. */
uint64_t histogram_bound_us(size_t i);
void histogram_observe_us(histogram_t *h, uint64_t us);

#endif
