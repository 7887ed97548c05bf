/*
 * schedule: when a sedge.update job may start — its "not_before" (epoch
 * seconds or "YYYY-MM-DDTHH:MM:SSZ") and its daily UTC "window" ({"start":
 * "HH:MM", "end": "HH:MM"}, which may wrap midnight). A pure function of
 * the job document and the time, fuzzed.
 */
#include "ota.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define LATEST 253402300799LL /* 9999-12-31T23:59:59Z */

/* Epoch seconds from an integer or "YYYY-MM-DDTHH:MM:SSZ"; -1 if neither. */
static int64_t parse_time(json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : -1;
    const char *s = json_string_value(v);
    struct tm tm = {0};
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!end || (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0))
        return -1;
    return (int64_t)timegm(&tm);
}

/* Minutes after midnight from "HH:MM"; -1 if not. */
static int parse_hhmm(json_t *v)
{
    const char *s = json_string_value(v);
    int h, m;
    char tail;
    if (!s || sscanf(s, "%2d:%2d%c", &h, &m, &tail) != 2 || h < 0 || h > 23 || m < 0 || m > 59)
        return -1;
    return h * 60 + m;
}

sedge_err ota_schedule_due(json_t *doc, int64_t now, int64_t *out, char *err, size_t errlen)
{
    int64_t due = now;
    json_t *nb = json_object_get(doc, "not_before");
    if (nb) {
        int64_t t = parse_time(nb);
        if (t < 0 || t > LATEST) {
            snprintf(err, errlen,
                     "not_before must be epoch seconds or \"YYYY-MM-DDTHH:MM:SSZ\", "
                     "before the year 10000");
            return SEDGE_ERR_INVALID;
        }
        if (t > due)
            due = t;
    }
    json_t *w = json_object_get(doc, "window");
    if (w) {
        int start = parse_hhmm(json_object_get(w, "start"));
        int end = parse_hhmm(json_object_get(w, "end"));
        if (!json_is_object(w) || start < 0 || end < 0 || start == end) {
            snprintf(err, errlen,
                     "window must be {\"start\": \"HH:MM\", \"end\": \"HH:MM\"} (UTC, not equal)");
            return SEDGE_ERR_INVALID;
        }
        int m = (int)(due % 86400 / 60);
        bool inside = start < end ? (m >= start && m < end) : (m >= start || m < end);
        if (!inside) {
            int64_t t = due - due % 86400 + (int64_t)start * 60;
            due = t > due ? t : t + 86400;
        }
    }
    *out = due;
    return SEDGE_OK;
}
