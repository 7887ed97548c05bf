/*
 * batch: building a POST body of one or more payloads, each unchanged.
 */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool put(batch_body_t *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len)
            cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p)
            return false;
        b->data = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return true;
}

static bool put_text(batch_body_t *b, const char *s)
{
    return put(b, s, strlen(s));
}

static bool contains(const uint8_t *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (hay[i] == (uint8_t)needle[0] && memcmp(hay + i, needle, k) == 0)
            return true;
    return false;
}

/* A boundary none of the payloads or topics contains (RFC 2046: the
 * delimiter must not appear in any part). */
static void pick_boundary(const sink_msg_t *head, size_t count, char *out, size_t len)
{
    static unsigned long counter;
    for (;;) {
        snprintf(out, len, "sedge-%08lx%08lx", (unsigned long)time(NULL), ++counter * 2654435761ul);
        bool clash = false;
        const sink_msg_t *m = head;
        for (size_t i = 0; i < count && m && !clash; i++, m = m->next)
            clash = contains(m->data, m->len, out) ||
                    contains((const uint8_t *)m->topic, strlen(m->topic), out);
        if (!clash)
            return;
    }
}

bool batch_build(const sink_msg_t *head, size_t count, batch_format_t format,
                 const char *single_type, batch_body_t *b)
{
    *b = (batch_body_t){0};
    if (count == 1) {
        snprintf(b->content_type, sizeof b->content_type, "%s", single_type);
        return put(b, head->data, head->len);
    }
    const sink_msg_t *m = head;
    bool ok = true;
    if (format == BATCH_JSON_ARRAY) {
        snprintf(b->content_type, sizeof b->content_type, "application/json");
        ok = put_text(b, "[");
        for (size_t i = 0; i < count && m && ok; i++, m = m->next)
            ok = (i == 0 || put_text(b, ",")) && put(b, m->data, m->len);
        return ok && put_text(b, "]");
    }
    char boundary[64];
    pick_boundary(head, count, boundary, sizeof boundary);
    snprintf(b->content_type, sizeof b->content_type, "multipart/mixed; boundary=%s", boundary);
    for (size_t i = 0; i < count && m && ok; i++, m = m->next) {
        char topic[1024], head_lines[1300];
        batch_header_topic(m->topic, topic, sizeof topic);
        snprintf(head_lines, sizeof head_lines,
                 "--%s\r\nContent-Type: %s\r\nX-Sedge-Topic: %s\r\n\r\n", boundary,
                 single_type, topic);
        ok = put_text(b, head_lines) && put(b, m->data, m->len) && put_text(b, "\r\n");
    }
    char end[80];
    snprintf(end, sizeof end, "--%s--\r\n", boundary);
    return ok && put_text(b, end);
}

void batch_body_free(batch_body_t *b)
{
    free(b->data);
    *b = (batch_body_t){0};
}

void batch_header_topic(const char *topic, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)topic; *p && o + 4 < len; p++) {
        if (*p > 0x20 && *p < 0x7f && *p != '%') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}
