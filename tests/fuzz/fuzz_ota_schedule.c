/*
 * libFuzzer target for the schedule of a sedge.update job (src/ota,
 * ota_schedule_due): the input is the job document. A refused one says
 * why in one line; an accepted one gives a start no earlier than now and
 * than not_before, within a day of the later of the two, and inside the
 * daily window when there is one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "ota/ota.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int minutes(json_t *v)
{
    int h, m;
    const char *s = json_string_value(v);
    return s && sscanf(s, "%d:%d", &h, &m) == 2 ? h * 60 + m : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data, size, 0, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return 0;
    }
    static const int64_t nows[] = {0, 1767225600, 1767268799, 4102444800};
    for (size_t i = 0; i < sizeof nows / sizeof nows[0]; i++) {
        int64_t now = nows[i], due = -1;
        char err[300] = "";
        if (ota_schedule_due(doc, now, &due, err, sizeof err)) {
            CHECK(err[0] && !strchr(err, '\n'));
            continue;
        }
        CHECK(due >= now);
        int64_t from = now;
        json_t *nb = json_object_get(doc, "not_before");
        if (json_is_integer(nb)) {
            CHECK(due >= json_integer_value(nb));
            if (json_integer_value(nb) > from)
                from = json_integer_value(nb);
        }
        CHECK(due - from <= 86400 || !json_is_integer(nb));
        json_t *w = json_object_get(doc, "window");
        if (w) {
            int start = minutes(json_object_get(w, "start"));
            int end = minutes(json_object_get(w, "end"));
            int m = (int)(due % 86400 / 60);
            CHECK(start >= 0 && end >= 0 && start != end);
            CHECK(start < end ? (m >= start && m < end) : (m >= start || m < end));
            CHECK(due - from <= 86400 || json_is_string(nb));
        }
    }
    json_decref(doc);
    return 0;
}
