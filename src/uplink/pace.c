/*
 * pace: token buckets holding a tenth of a second of sending each, so a
 * burst stays small; the additive climb after a throttle is checked at
 * each refill.
 */
#include "pace.h"

static double burst(double rate)
{
    return rate / 10 > 1 ? rate / 10 : 1;
}

void pace_init(pace_t *p, uint32_t per_s, uint32_t bytes_per_s, uint64_t now)
{
    *p = (pace_t){.limit = per_s,
                  .byte_limit = bytes_per_s,
                  .rate = per_s,
                  .byte_rate = bytes_per_s,
                  .ceiling = per_s,
                  .byte_ceiling = bytes_per_s,
                  .refill_ms = now,
                  .raised_ms = now,
                  .window_ms = now};
    p->tokens = burst(p->rate);
    p->byte_tokens = burst(p->byte_rate);
}

static double climb(double rate, double ceiling)
{
    double step = ceiling / 10 > 1 ? ceiling / 10 : 1;
    return rate + step < ceiling ? rate + step : ceiling;
}

static void refill(pace_t *p, uint64_t now)
{
    if (now <= p->refill_ms)
        return;
    double dt = (double)(now - p->refill_ms) / 1000.0;
    p->refill_ms = now;
    if (p->rate > 0) {
        p->tokens += dt * p->rate;
        if (p->tokens > burst(p->rate))
            p->tokens = burst(p->rate);
    }
    if (p->byte_rate > 0) {
        p->byte_tokens += dt * p->byte_rate;
        if (p->byte_tokens > burst(p->byte_rate))
            p->byte_tokens = burst(p->byte_rate);
    }
    /* A second without a throttle: a step back up. */
    if (p->throttled_ms && now >= p->paused_until_ms && now - p->raised_ms >= 1000 &&
        now - p->throttled_ms >= 1000) {
        p->raised_ms = now;
        if (p->rate > 0)
            p->rate = climb(p->rate, p->ceiling);
        if (p->byte_rate > 0)
            p->byte_rate = climb(p->byte_rate, p->byte_ceiling);
        if (p->rate >= p->ceiling && p->byte_rate >= p->byte_ceiling) {
            /* Whole again; without configured rates, unpaced again. */
            p->rate = p->limit;
            p->byte_rate = p->byte_limit;
            p->streak = 0;
            p->throttled_ms = 0;
        }
    }
}

bool pace_may_send(pace_t *p, uint64_t now)
{
    refill(p, now);
    if (now < p->paused_until_ms)
        return false;
    if (p->rate > 0 && p->tokens < 1)
        return false;
    if (p->byte_rate > 0 && p->byte_tokens <= 0)
        return false;
    return true;
}

void pace_spend(pace_t *p, size_t bytes, uint64_t now)
{
    refill(p, now);
    if (p->rate > 0)
        p->tokens -= 1;
    if (p->byte_rate > 0)
        p->byte_tokens -= (double)bytes;
    if (now - p->window_ms >= 1000) {
        p->recent_rate = now - p->window_ms < 2000 ? p->window_count : 0;
        p->window_ms = now;
        p->window_count = 0;
    }
    p->window_count++;
}

uint64_t pace_wait_ms(pace_t *p, uint64_t now)
{
    refill(p, now);
    double wait = 0;
    if (now < p->paused_until_ms)
        wait = (double)(p->paused_until_ms - now);
    if (p->rate > 0 && p->tokens < 1) {
        double w = (1 - p->tokens) * 1000.0 / p->rate;
        wait = w > wait ? w : wait;
    }
    if (p->byte_rate > 0 && p->byte_tokens <= 0) {
        double w = (1 - p->byte_tokens) * 1000.0 / p->byte_rate;
        wait = w > wait ? w : wait;
    }
    return wait > 0 ? (uint64_t)wait + 1 : 0;
}

void pace_throttled(pace_t *p, uint64_t now, uint64_t pause_ms)
{
    refill(p, now);
    p->throttles++;
    p->streak++;
    if (p->rate <= 0) {
        /* No stated rate: half of what went through in the last second. */
        double seen = p->recent_rate > p->window_count ? p->recent_rate : p->window_count;
        p->ceiling = seen > 2 ? seen : 2;
        p->rate = p->ceiling / 2;
        p->tokens = 0;
    } else {
        p->rate = p->rate / 2 > 1 ? p->rate / 2 : 1;
        if (p->tokens > burst(p->rate))
            p->tokens = burst(p->rate);
    }
    if (p->byte_rate > 0) {
        p->byte_rate = p->byte_rate / 2 > 1 ? p->byte_rate / 2 : 1;
        if (p->byte_tokens > burst(p->byte_rate))
            p->byte_tokens = burst(p->byte_rate);
    }
    p->throttled_ms = now;
    p->raised_ms = now;
    p->paused_until_ms = now + pause_ms;
}
