/*
 * libFuzzer target for jsonpos, the scanner that finds a config error's
 * line. The input is a path, a newline, then JSON text. Whatever the
 * text, the scanner returns 0 or a line the text has. When jansson
 * accepts the text as an object, each of its keys that a path can name
 * (no '.' or '[', however spelled: escapes are decoded) is found, at a
 * line no later than the text's last.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonpos.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    if (!nl || (size_t)(nl - (const char *)data) > 255)
        return 0;
    char path[256];
    size_t plen = (size_t)(nl - (const char *)data);
    memcpy(path, data, plen);
    path[plen] = '\0';
    const char *text = nl + 1;
    size_t len = size - plen - 1;
    int lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    int line = jsonpos_line(text, len, path);
    CHECK(line >= 0 && line <= lines);
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (json_is_object(root)) {
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v)
        {
            if (!key[0] || strpbrk(key, ".[") || strlen(key) > 200)
                continue;
            int at = jsonpos_line(text, len, key);
            CHECK(at >= 1 && at <= lines);
        }
    }
    json_decref(root);
    return 0;
}
