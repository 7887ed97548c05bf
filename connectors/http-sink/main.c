/*
 * http-sink: every message routed to the connector is POSTed, payload
 * unchanged, to one URL — the generic form of Greengrass's SNS, Splunk,
 * ServiceNow and Twilio sinks — with libcurl.
 *
 * Messages wait in a bounded queue (max_queue messages, max_queue_bytes)
 * and go out in order, one request at a time: up to batch_max per POST
 * (batch.c keeps each payload intact), sent as soon as batch_max are
 * waiting or the oldest has waited batch_ms. A POST that fails (no
 * connection, a timeout, a 5xx, 408 or 429) is sent again, the same batch,
 * after a delay that doubles from retry_initial_ms up to retry_max_ms; one
 * the server refuses (another 4xx) is dropped and logged, since sending it
 * again cannot help.
 *
 * When the queue is full, the invocation that brings a message waits (up
 * to HOLD_MS) for room while the queue drains; meanwhile the core queues
 * the next messages for the connector, and once its own queue for it is
 * full (the connector's max_queue) publishers are refused (MQTT 5: 0x97).
 * A message that still finds no room fails its invocation and is counted
 * (sedgectl functions: errors).
 */
#include "batch.h"
#include "connector.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOLD_MS 30000

typedef struct {
    json_t *params;
    const char *url;
    const char *content_type;
    struct curl_slist *extra_headers;
    size_t batch_max;
    uint32_t batch_ms;
    batch_format_t format;
    size_t max_queue, max_queue_bytes;
    uint32_t timeout_ms, retry_initial_ms, retry_max_ms;
    sink_msg_t *head, *tail;
    size_t count, bytes;
    uint64_t oldest_ms; /* when the head was queued */
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers; /* of the request in flight */
    batch_body_t body;
    size_t in_flight; /* messages in the request in flight; 0: none */
    uint64_t retry_at_ms;
    uint32_t backoff_ms;
    uint64_t posted, batches, retries, rejected, dropped;
    conn_limit_t log_limit;
} sink_t;

static void queue_pop(sink_t *s, size_t n)
{
    for (size_t i = 0; i < n && s->head; i++) {
        sink_msg_t *m = s->head;
        s->head = m->next;
        s->count--;
        s->bytes -= m->len;
        free(m->topic);
        free(m->data);
        free(m);
    }
    if (!s->head)
        s->tail = NULL;
    s->oldest_ms = conn_now_ms();
}

static bool queue_has_room(const sink_t *s, size_t len)
{
    return s->count < s->max_queue && s->bytes + len <= s->max_queue_bytes;
}

static bool queue_push(sink_t *s, const char *topic, const uint8_t *data, size_t len)
{
    sink_msg_t *m = calloc(1, sizeof *m);
    if (!m || !(m->topic = strdup(topic)) || !(m->data = malloc(len ? len : 1))) {
        if (m)
            free(m->topic);
        free(m);
        return false;
    }
    memcpy(m->data, data, len);
    m->len = len;
    if (s->tail)
        s->tail->next = m;
    else
        s->head = m, s->oldest_ms = conn_now_ms();
    s->tail = m;
    s->count++;
    s->bytes += len;
    return true;
}

static bool due(const sink_t *s, uint64_t now)
{
    if (s->in_flight || !s->count || now < s->retry_at_ms)
        return false;
    return s->count >= s->batch_max || now >= s->oldest_ms + s->batch_ms;
}

static void start_post(sink_t *s)
{
    size_t n = s->count < s->batch_max ? s->count : s->batch_max;
    if (!batch_build(s->head, n, s->format, s->content_type, &s->body)) {
        conn_log("error", "no memory for a batch of %zu messages", n);
        return;
    }
    char line[1200];
    s->headers = NULL;
    snprintf(line, sizeof line, "Content-Type: %s", s->body.content_type);
    s->headers = curl_slist_append(s->headers, line);
    if (n == 1) {
        char topic[1024];
        batch_header_topic(s->head->topic, topic, sizeof topic);
        snprintf(line, sizeof line, "X-Sedge-Topic: %s", topic);
        s->headers = curl_slist_append(s->headers, line);
    }
    snprintf(line, sizeof line, "X-Sedge-Count: %zu", n);
    s->headers = curl_slist_append(s->headers, line);
    s->headers = curl_slist_append(s->headers, "Expect:");
    for (struct curl_slist *h = s->extra_headers; h; h = h->next)
        s->headers = curl_slist_append(s->headers, h->data);
    curl_easy_reset(s->easy);
    curl_easy_setopt(s->easy, CURLOPT_URL, s->url);
    curl_easy_setopt(s->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, (const char *)s->body.data);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body.len);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "sedge-http-sink/0.1");
    curl_multi_add_handle(s->multi, s->easy);
    s->in_flight = n;
}

static void post_done(sink_t *s, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(s->multi, s->easy);
    curl_slist_free_all(s->headers);
    s->headers = NULL;
    batch_body_free(&s->body);
    size_t n = s->in_flight;
    s->in_flight = 0;
    bool ok = rc == CURLE_OK && status >= 200 && status < 300;
    bool refused = rc == CURLE_OK && status >= 400 && status < 500 && status != 408 && status != 429;
    if (ok || refused) {
        if (ok)
            s->posted += n, s->batches++;
        else {
            s->rejected += n;
            conn_log("warn", "%s refused %zu message%s with HTTP %ld: dropped", s->url, n,
                     n == 1 ? "" : "s", status);
        }
        if (s->backoff_ms)
            conn_log("info", "%s takes messages again", s->url);
        queue_pop(s, n);
        s->backoff_ms = 0;
        s->retry_at_ms = 0;
        return;
    }
    s->retries++;
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : s->retry_initial_ms;
    if (s->backoff_ms > s->retry_max_ms)
        s->backoff_ms = s->retry_max_ms;
    s->retry_at_ms = conn_now_ms() + s->backoff_ms;
    if (conn_limit_allows(&s->log_limit)) {
        if (rc != CURLE_OK)
            conn_log("warn", "POST to %s failed: %s; again in %u ms (%zu waiting)", s->url,
                     curl_easy_strerror(rc), s->backoff_ms, s->count);
        else
            conn_log("warn", "POST to %s answered HTTP %ld; again in %u ms (%zu waiting)", s->url,
                     status, s->backoff_ms, s->count);
    }
}

/* One turn: start what is due, move the transfer, finish it. */
static void pump(sink_t *s, int wait_ms, struct curl_waitfd *extra, unsigned nextra)
{
    if (due(s, conn_now_ms()))
        start_post(s);
    curl_multi_poll(s->multi, extra, nextra, wait_ms, NULL);
    int running;
    curl_multi_perform(s->multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(s->multi, &left)))
        if (msg->msg == CURLMSG_DONE)
            post_done(s, msg->data.result);
    if (due(s, conn_now_ms()))
        start_post(s);
}

/* How long the loop may wait before something of ours is due. */
static int wait_ms(const sink_t *s)
{
    if (s->in_flight || !s->count)
        return s->in_flight ? 100 : 1000;
    uint64_t now = conn_now_ms();
    uint64_t at = s->oldest_ms + s->batch_ms;
    if (s->retry_at_ms > at)
        at = s->retry_at_ms;
    return at > now ? (int)(at - now < 1000 ? at - now : 1000) : 0;
}

static sedge_err handle(const sedge_event *ev, sedge_result *res, void *ctx)
{
    sink_t *s = ctx;
    if (s->format == BATCH_JSON_ARRAY && s->batch_max > 1) {
        json_error_t jerr;
        json_t *doc = json_loadb((const char *)ev->payload, ev->payload_len,
                                 JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!doc) {
            s->dropped++;
            return sedge_result_error(res, "not JSON: batch_format json-array takes JSON payloads");
        }
        json_decref(doc);
    }
    if (ev->payload_len > s->max_queue_bytes) {
        s->dropped++;
        return sedge_result_error(res, "the message is larger than max_queue_bytes");
    }
    uint64_t deadline = conn_now_ms() + HOLD_MS;
    while (!queue_has_room(s, ev->payload_len) && conn_now_ms() < deadline)
        pump(s, wait_ms(s) < 100 ? wait_ms(s) : 100, NULL, 0);
    if (!queue_has_room(s, ev->payload_len) || !queue_push(s, ev->topic, ev->payload, ev->payload_len)) {
        s->dropped++;
        if (conn_limit_allows(&s->log_limit))
            conn_log("warn", "queue full (%zu messages, %zu bytes) for %u ms: a message on %s is "
                             "dropped", s->count, s->bytes, HOLD_MS, ev->topic);
        return sedge_result_error(res, "the http-sink queue is full");
    }
    return SEDGE_OK;
}

static bool setup(sink_t *s)
{
    json_t *p = s->params;
    s->url = conn_param_str(p, "url", NULL);
    if (!s->url) {
        conn_log("error", "the parameter url is missing");
        return false;
    }
    s->content_type = conn_param_str(p, "content_type", "application/octet-stream");
    s->batch_max = (size_t)conn_param_int(p, "batch_max", 1);
    s->batch_ms = (uint32_t)conn_param_int(p, "batch_ms", 0);
    s->format = strcmp(conn_param_str(p, "batch_format", "multipart"), "json-array") == 0
                    ? BATCH_JSON_ARRAY
                    : BATCH_MULTIPART;
    s->max_queue = (size_t)conn_param_int(p, "max_queue", 1000);
    s->max_queue_bytes = (size_t)conn_param_int(p, "max_queue_bytes", 16 << 20);
    s->timeout_ms = (uint32_t)conn_param_int(p, "timeout_ms", 10000);
    s->retry_initial_ms = (uint32_t)conn_param_int(p, "retry_initial_ms", 500);
    s->retry_max_ms = (uint32_t)conn_param_int(p, "retry_max_ms", 60000);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(p, "headers"), k, v)
    {
        char line[1200];
        snprintf(line, sizeof line, "%s: %s", k, json_string_value(v) ? json_string_value(v) : "");
        s->extra_headers = curl_slist_append(s->extra_headers, line);
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(s->multi = curl_multi_init()) ||
        !(s->easy = curl_easy_init())) {
        conn_log("error", "cannot start libcurl");
        return false;
    }
    return true;
}

int main(void)
{
    sink_t s = {0};
    if (conn_parameters(&s.params)) {
        conn_log("error", "cannot read the parameters: %s", sedge_last_error());
        return 1;
    }
    if (!setup(&s))
        return 1;
    int core_fd;
    sedge_err err = sedge_fd(&core_fd);
    while (!err) {
        struct curl_waitfd w = {.fd = core_fd, .events = CURL_WAIT_POLLIN};
        pump(&s, sedge_pending() ? 0 : wait_ms(&s), &w, 1);
        if (sedge_pending() || w.revents)
            err = sedge_serve(handle, &s);
    }
    conn_log(err == SEDGE_ERR_CLOSED ? "info" : "error",
             "stopping: %s (%llu posted in %llu requests, %llu retries, %llu refused, %llu "
             "dropped, %zu left)",
             sedge_last_error(), (unsigned long long)s.posted, (unsigned long long)s.batches,
             (unsigned long long)s.retries, (unsigned long long)s.rejected,
             (unsigned long long)s.dropped, s.count);
    if (s.in_flight)
        curl_multi_remove_handle(s.multi, s.easy);
    curl_slist_free_all(s.headers);
    curl_slist_free_all(s.extra_headers);
    batch_body_free(&s.body);
    queue_pop(&s, s.count);
    curl_easy_cleanup(s.easy);
    curl_multi_cleanup(s.multi);
    curl_global_cleanup();
    json_decref(s.params);
    return err == SEDGE_ERR_CLOSED ? 0 : 1;
}
