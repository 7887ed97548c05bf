/*
 * percentile: the latency percentiles the benchmark programs print, from
 * samples in nanoseconds sorted with cmp_u64.
 */
#ifndef SEDGE_BENCH_PERCENTILE_H
#define SEDGE_BENCH_PERCENTILE_H

#include <stddef.h>
#include <stdint.h>

/* qsort's comparison for uint64_t samples, ascending. */
static inline int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of n sorted samples in ns, in microseconds; 0 for
 * no samples. */
static inline double percentile_us(const uint64_t *sorted, size_t n, double q)
{
    if (!n)
        return 0;
    size_t i = (size_t)((double)n * q);
    if (i >= n)
        i = n - 1;
    return (double)sorted[i] / 1e3;
}

#endif
