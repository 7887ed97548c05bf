/*
 * admin_client: sedgectl's side of the admin socket — send one request,
 * wait for its one-line answer.
 */
#ifndef SEDGE_ADMIN_CLIENT_H
#define SEDGE_ADMIN_CLIENT_H

#include "base/base.h"

#include <jansson.h>

/* Send `request` (borrowed) to DATA_DIR/admin.sock and return the parsed
 * response in `*response` (the caller decrefs). On failure `err` says why
 * (e.g. "sedged is not running"). */
NODISCARD sedge_err admin_call(const char *data_dir, json_t *request, json_t **response, char *err,
                               size_t errlen);

#endif
