/*
 * echo: the smallest Sedge function — answers every invocation with its
 * payload prefixed by "echo:".
 *
 * Deploy with "exec": ["/path/to/echo"] and try `sedgectl invoke echo hi`.
 */
#include <sedge.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sedge_err handle(const sedge_event *ev, sedge_result *res, void *ctx)
{
    (void)ctx;
    static const char prefix[] = "echo:";
    size_t len = sizeof prefix - 1 + ev->payload_len;
    char *out = malloc(len ? len : 1);
    if (!out)
        return SEDGE_ERR_NOMEM;
    memcpy(out, prefix, sizeof prefix - 1);
    if (ev->payload_len)
        memcpy(out + sizeof prefix - 1, ev->payload, ev->payload_len);
    sedge_err err = sedge_result_set(res, out, len);
    free(out);
    return err;
}

int main(void)
{
    sedge_err err = sedge_run(handle, NULL);
    /* The core closing the connection is how it stops a function. */
    if (err == SEDGE_ERR_CLOSED)
        return 0;
    fprintf(stderr, "echo: %s: %s\n", sedge_strerror(err), sedge_last_error());
    return 1;
}
