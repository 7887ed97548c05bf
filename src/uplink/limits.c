/*
 * limits: what the cloud accepts, as figures and as checks, and the
 * backoff every retry of the uplink and the services on it uses.
 *
 * AWS IoT Core's message broker quotas (AWS General Reference, "AWS IoT
 * Core endpoints and quotas"): a topic of at most 256 bytes and 7 forward
 * slashes, not counting the 3 of a Basic Ingest prefix $aws/rules/RULE/;
 * a payload of at most 128 KB; 8 topic filters a SUBSCRIBE; 100 publishes
 * and 512 KB a second per connection. Device Shadow service: 10 requests in
 * flight per connection (more are refused with 429), 20 a second per thing
 * (the Greengrass shadow manager's per-thing rate). Those are the "aws-iot"
 * figures; a plain MQTT broker gets none but the 8 filters a SUBSCRIBE,
 * which costs nothing with any broker.
 */
#include "uplink.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void uplink_limits_default(bool aws, uplink_limits_t *out)
{
    *out = (uplink_limits_t){
        .max_filters_per_subscribe = 8,
        .shadow_inflight = 10,
        .ack_timeout_ms = 30000,
        .dead_letter_after = 3,
    };
    if (!aws)
        return;
    out->max_topic_bytes = 256;
    out->max_topic_slashes = 7;
    out->max_payload_bytes = 128u * 1024u;
    out->publishes_per_s = 100;
    out->bytes_per_s = 512u * 1024u;
    out->shadow_requests_per_s = 20;
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && strncasecmp(s + len - n, suffix, n) == 0;
}

bool uplink_endpoint_is_aws(const char *endpoint)
{
    if (!endpoint)
        return false;
    const char *colon = strrchr(endpoint, ':');
    size_t len = colon ? (size_t)(colon - endpoint) : strlen(endpoint);
    return ends_with(endpoint, len, ".amazonaws.com") ||
           ends_with(endpoint, len, ".amazonaws.com.cn");
}

/* The slashes AWS counts: all but those of a $aws/rules/RULE/ prefix. */
static size_t counted_slashes(bytes_t t)
{
    size_t slashes = 0;
    for (size_t i = 0; i < t.len; i++)
        slashes += t.data[i] == '/';
    static const char rules[] = "$aws/rules/";
    size_t n = sizeof rules - 1;
    if (t.len > n && strncasecmp((const char *)t.data, rules, n) == 0) {
        const uint8_t *end = memchr(t.data + n, '/', t.len - n);
        if (end)
            slashes -= 3;
    }
    return slashes;
}

bool uplink_topic_fits(const uplink_limits_t *l, bytes_t topic, bool filter, char *why,
                       size_t why_len)
{
    /* A filter's shortest match: a `+` level may be empty, and `x/#`
     * matches `x` (one slash and two bytes fewer). */
    size_t bytes = topic.len, slashes = counted_slashes(topic);
    if (filter) {
        for (size_t i = 0; i < topic.len; i++)
            bytes -= topic.data[i] == '+';
        if (topic.len >= 2 && topic.data[topic.len - 1] == '#' &&
            topic.data[topic.len - 2] == '/') {
            bytes -= 2;
            slashes--;
        } else if (topic.len && topic.data[topic.len - 1] == '#') {
            bytes--;
        }
    }
    const char *what = filter ? "every topic it matches has" : "it has";
    if (l->max_topic_bytes && bytes > l->max_topic_bytes) {
        snprintf(why, why_len, "%s %zu bytes; the cloud takes topics of at most %u", what, bytes,
                 l->max_topic_bytes);
        return false;
    }
    if (l->max_topic_slashes && slashes > l->max_topic_slashes) {
        snprintf(why, why_len,
                 "%s %zu slashes; the cloud takes topics with at most %u (a $aws/rules/RULE/ "
                 "prefix not counted)",
                 what, slashes, l->max_topic_slashes);
        return false;
    }
    if (why_len)
        why[0] = '\0';
    return true;
}

uint64_t uplink_backoff_ms(uint32_t min_ms, uint32_t max_ms, uint32_t n)
{
    uint64_t ceiling = min_ms ? min_ms : 1;
    for (uint32_t i = 0; i < n && ceiling < max_ms; i++)
        ceiling *= 2;
    if (ceiling > max_ms)
        ceiling = max_ms;
    if (ceiling < min_ms)
        ceiling = min_ms;
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = (uint32_t)clock_mono_ms();
    return min_ms + r % (ceiling - min_ms + 1);
}
