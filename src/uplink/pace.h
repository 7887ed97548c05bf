/*
 * pace: how fast the uplink may publish — a token bucket for publishes and
 * one for bytes, at the cloud's rates, that halves when the cloud
 * throttles, pauses for a backoff, and climbs back by a tenth of its
 * ceiling each second without a throttle. Pure: the caller passes the
 * time (monotonic milliseconds), so it is tested without a clock.
 *
 * With no configured rate (a broker that states none) it does not pace
 * until the cloud throttles; then it paces at half the rate it had seen
 * and climbs back to that rate, where it stops pacing again.
 */
#ifndef SEDGE_UPLINK_PACE_H
#define SEDGE_UPLINK_PACE_H

#include "base/base.h"

typedef struct {
    uint32_t limit, byte_limit;   /* configured; 0: none */
    double rate, byte_rate;       /* in force; 0: unpaced */
    double ceiling, byte_ceiling; /* what the rates climb back to */
    double tokens, byte_tokens;   /* may go below 0 (a debt) */
    uint64_t refill_ms, raised_ms;
    uint64_t throttled_ms; /* the last throttle, 0: none */
    uint64_t paused_until_ms;
    uint32_t streak;    /* throttles since the rates were whole */
    uint64_t throttles; /* ever */
    uint64_t window_ms; /* publishes counted per second */
    uint32_t window_count, recent_rate;
} pace_t;

void pace_init(pace_t *p, uint32_t per_s, uint32_t bytes_per_s, uint64_t now);
/* May one publish go now? */
bool pace_may_send(pace_t *p, uint64_t now);
/* One publish of `bytes` went (whether or not it was allowed). */
void pace_spend(pace_t *p, size_t bytes, uint64_t now);
/* Milliseconds until pace_may_send can be true (0: now). */
uint64_t pace_wait_ms(pace_t *p, uint64_t now);
/* The cloud throttled: halve the rates and pause `pause_ms`. */
void pace_throttled(pace_t *p, uint64_t now, uint64_t pause_ms);

#endif
