/* topic: UTF-8 rules, topic name and filter validation, matching, and the
 * names of reason codes for logs. */
#include "mqtt.h"

#include <string.h>

bool mqtt_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c == 0)
                return false;
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

bool mqtt_topic_name_valid(bytes_t topic)
{
    if (topic.len == 0 || topic.len > MQTT_MAX_TOPIC_LEN)
        return false;
    if (memchr(topic.data, '+', topic.len) || memchr(topic.data, '#', topic.len))
        return false;
    return mqtt_utf8_valid(topic.data, topic.len);
}

static bool plain_filter_valid(bytes_t f)
{
    if (f.len == 0 || f.len > MQTT_MAX_TOPIC_LEN || !mqtt_utf8_valid(f.data, f.len))
        return false;
    for (size_t i = 0; i < f.len; i++) {
        uint8_t c = f.data[i];
        bool level_start = i == 0 || f.data[i - 1] == '/';
        bool level_end = i + 1 == f.len || f.data[i + 1] == '/';
        if (c == '+' && !(level_start && level_end))
            return false;
        if (c == '#' && !(level_start && i + 1 == f.len))
            return false;
    }
    return true;
}

bool mqtt_shared_split(bytes_t filter, bytes_t *group, bytes_t *inner)
{
    static const char prefix[] = "$share/";
    const size_t plen = sizeof prefix - 1;
    if (!bytes_has_prefix(filter, prefix))
        return false;
    const uint8_t *start = filter.data + plen;
    size_t rest = filter.len - plen;
    const uint8_t *slash = memchr(start, '/', rest);
    if (!slash) {
        *group = (bytes_t){start, rest};
        *inner = (bytes_t){NULL, 0};
        return true;
    }
    *group = (bytes_t){start, (size_t)(slash - start)};
    *inner = (bytes_t){slash + 1, rest - group->len - 1};
    return true;
}

size_t mqtt_topic_levels(bytes_t topic)
{
    size_t n = 1;
    for (size_t i = 0; i < topic.len; i++)
        n += topic.data[i] == '/';
    return n;
}

bool mqtt_topic_filter_valid(bytes_t filter)
{
    bytes_t group, inner;
    if (!mqtt_shared_split(filter, &group, &inner))
        return plain_filter_valid(filter);
    if (group.len == 0 || memchr(group.data, '+', group.len) || memchr(group.data, '#', group.len))
        return false;
    return plain_filter_valid(inner) && mqtt_utf8_valid(filter.data, filter.len);
}

bool mqtt_topic_matches(bytes_t filter, bytes_t topic)
{
    if (topic.len && topic.data[0] == '$' && filter.len &&
        (filter.data[0] == '+' || filter.data[0] == '#'))
        return false;
    size_t f = 0, t = 0;
    while (f < filter.len) {
        if (filter.data[f] == '#')
            return true; /* matches the parent level and everything below */
        if (filter.data[f] == '+') {
            while (t < topic.len && topic.data[t] != '/')
                t++;
            f++;
        } else {
            while (f < filter.len && filter.data[f] != '/') {
                if (t >= topic.len || topic.data[t] != filter.data[f])
                    return false;
                f++, t++;
            }
            if (t < topic.len && topic.data[t] != '/')
                return false;
        }
        /* Both at a level end: the end of the string or a '/'. */
        if (f == filter.len)
            return t == topic.len;
        if (t == topic.len) {
            /* "a/#" matches "a": the filter has only "/#" left. */
            return filter.len - f == 2 && filter.data[f + 1] == '#';
        }
        f++, t++; /* step over both '/' */
    }
    return t == topic.len;
}

const char *mqtt_reason_name(uint8_t reason)
{
    switch (reason) {
    case 0x00: return "success";
    case 0x01: return "granted QoS 1";
    case 0x02: return "granted QoS 2";
    case 0x04: return "disconnect with will message";
    case 0x10: return "no matching subscribers";
    case 0x11: return "no subscription existed";
    case 0x18: return "continue authentication";
    case 0x19: return "re-authenticate";
    case 0x80: return "unspecified error";
    case 0x81: return "malformed packet";
    case 0x82: return "protocol error";
    case 0x83: return "implementation specific error";
    case 0x84: return "unsupported protocol version";
    case 0x85: return "client identifier not valid";
    case 0x86: return "bad user name or password";
    case 0x87: return "not authorized";
    case 0x88: return "server unavailable";
    case 0x89: return "server busy";
    case 0x8A: return "banned";
    case 0x8B: return "server shutting down";
    case 0x8C: return "bad authentication method";
    case 0x8D: return "keep alive timeout";
    case 0x8E: return "session taken over";
    case 0x8F: return "topic filter invalid";
    case 0x90: return "topic name invalid";
    case 0x91: return "packet identifier in use";
    case 0x92: return "packet identifier not found";
    case 0x93: return "receive maximum exceeded";
    case 0x94: return "topic alias invalid";
    case 0x95: return "packet too large";
    case 0x96: return "message rate too high";
    case 0x97: return "quota exceeded";
    case 0x98: return "administrative action";
    case 0x99: return "payload format invalid";
    case 0x9A: return "retain not supported";
    case 0x9B: return "QoS not supported";
    case 0x9C: return "use another server";
    case 0x9D: return "server moved";
    case 0x9E: return "shared subscriptions not supported";
    case 0x9F: return "connection rate exceeded";
    case 0xA0: return "maximum connect time";
    case 0xA1: return "subscription identifiers not supported";
    case 0xA2: return "wildcard subscriptions not supported";
    }
    return "unknown reason";
}
