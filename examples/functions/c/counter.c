/*
 * counter: a long-lived function that keeps state across invocations.
 * Each invocation returns the count so far ("1", "2", ...) and publishes
 * {"count": N} on counter/value (routes from function:counter decide where
 * that goes).
 */
#include <sedge.h>

#include <stdio.h>
#include <string.h>

static sedge_err handle(const sedge_event *ev, sedge_result *res, void *ctx)
{
    (void)ev;
    unsigned long long *count = ctx;
    ++*count;
    char msg[64];
    int n = snprintf(msg, sizeof msg, "{\"count\": %llu}", *count);
    if (sedge_publish("counter/value", msg, (size_t)n, 0) != SEDGE_OK)
        sedge_log(SEDGE_LOG_WARN, "counter: publish failed: %s", sedge_last_error());
    n = snprintf(msg, sizeof msg, "%llu", *count);
    return sedge_result_set(res, msg, (size_t)n);
}

int main(void)
{
    unsigned long long count = 0;
    sedge_err err = sedge_run(handle, &count);
    if (err == SEDGE_ERR_CLOSED)
        return 0;
    fprintf(stderr, "counter: %s: %s\n", sedge_strerror(err), sedge_last_error());
    return 1;
}
