/*
 * datadir: see datadir.h. A config file is read only for its "data_dir";
 * sedged validates the rest.
 */
#include "datadir.h"

#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int datadir_of_config(const char *config, char *out, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(config, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s:%d: %s", config, jerr.line, jerr.text);
        return -1;
    }
    json_t *v = json_object_get(root, "data_dir");
    const char *dir = json_is_string(v) ? json_string_value(v) : "sedge-data";
    char *copy = strdup(config);
    if (!copy) {
        json_decref(root);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (dir[0] == '/')
        snprintf(out, len, "%s", dir);
    else
        snprintf(out, len, "%s/%s", dirname(copy), dir);
    free(copy);
    json_decref(root);
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int datadir_find(const char *config, char *out, size_t len, char *err, size_t errlen)
{
    if (config)
        return datadir_of_config(config, out, len, err, errlen);
    if (!is_dir("sedge-data") && access(SEDGE_CONFIG_FILE, R_OK) == 0 &&
        datadir_of_config(SEDGE_CONFIG_FILE, out, len, err, errlen) == 0)
        return 0;
    snprintf(out, len, "sedge-data");
    return 0;
}
