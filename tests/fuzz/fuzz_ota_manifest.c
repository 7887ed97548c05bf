/*
 * libFuzzer target for the update bundle's manifest parser (src/ota).
 *
 * The input is a manifest.json. A refused one must say why in one line; an
 * accepted one must hold only what the parser promises: a valid version
 * and min_version, 1 to OTA_MAX_FILES files sorted and unique, every path
 * relative and inside the tree, every link staying inside it, sizes within
 * the caps, modes 0644 or 0755, and an executable sbin/sedged or bin/sedged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "ota/ota.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ota_manifest_t m;
    char err[300];
    if (ota_manifest_parse((bytes_t){data, size}, &m, err, sizeof err)) {
        CHECK(err[0] && !strchr(err, '\n'));
        CHECK(m.files == NULL && m.file_count == 0);
        return 0;
    }
    CHECK(ota_version_valid(m.version) && ota_version_valid(m.min_version));
    CHECK(m.file_count >= 1 && m.file_count <= OTA_MAX_FILES);
    CHECK(strlen(m.key_id) == 16 && strlen(m.payload_sha256) == 64);
    bool sedged = false;
    uint64_t total = 0;
    for (size_t i = 0; i < m.file_count; i++) {
        const ota_file_t *f = &m.files[i];
        CHECK(ota_path_valid(f->path) && f->path[0] != '/' && !strstr(f->path, "//"));
        CHECK(strcmp(f->path, "..") != 0 && strncmp(f->path, "../", 3) != 0 &&
              !strstr(f->path, "/../"));
        if (i)
            CHECK(strcmp(m.files[i - 1].path, f->path) < 0);
        if (f->link) {
            CHECK(f->link[0] != '/' && ota_link_inside(f->path, f->link));
            continue;
        }
        CHECK(f->mode == 0644 || f->mode == 0755);
        CHECK(f->size <= OTA_MAX_FILE_BYTES);
        total += f->size;
        if ((strcmp(f->path, "sbin/sedged") == 0 || strcmp(f->path, "bin/sedged") == 0) &&
            f->mode == 0755)
            sedged = true;
    }
    CHECK(sedged && total <= OTA_MAX_TREE_BYTES);
    CHECK(ota_version_cmp(m.version, m.version) == 0);
    json_t *j = ota_manifest_json(&m);
    CHECK(j);
    json_decref(j);
    ota_manifest_free(&m);
    return 0;
}
