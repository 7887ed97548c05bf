/*
 * The parsing of ours that remains behind the HTTP front (lws parses the
 * HTTP itself): the discovery path's thing name, and the web console's
 * JSON bodies turned into admin commands. The first byte picks which;
 * the rest is the path or the body.
 */
#include "core/front.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const apis[] = {"shadow", "invoke", "rollback", "deploy", "nope"};
    uint8_t pick = data[0] % (1 + ARRAY_LEN(apis));
    data++;
    size--;
    if (pick == 0) {
        char *path = malloc(size + 1);
        if (!path)
            return 0;
        memcpy(path, data, size);
        path[size] = '\0';
        char thing[GROUP_MAX_NAME + 1];
        int rc = discovery_parse_path(path, thing, sizeof thing);
        if (rc == 0 && (!group_valid_thing_name(thing, strlen(thing)) ||
                        strncmp(path, "/greengrass/discover/thing/", 27) != 0))
            abort(); /* a name that should have been refused */
        free(path);
        return 0;
    }
    int shape;
    char err[300];
    json_t *r = console_request(apis[pick - 1], (bytes_t){data, size}, &shape, err, sizeof err);
    if (r && !json_string_value(json_object_get(r, "cmd")))
        abort(); /* every request names its command */
    if (!r && !err[0])
        abort(); /* every refusal says why */
    json_decref(r);
    return 0;
}
