/*
 * admin_client: sedgectl's side of the admin socket — send one request,
 * wait for its one-line answer.
 */
#ifndef SEDGE_ADMIN_CLIENT_H
#define SEDGE_ADMIN_CLIENT_H

#include "base/base.h"

#include <jansson.h>

/* Send `request` (borrowed) to DATA_DIR/admin.sock and return the parsed
 * response in `*response` (the caller decrefs), waiting at most
 * `timeout_ms` for it (0: as long as it takes). On failure `err` says why:
 * SEDGE_ERR_CLOSED when sedged cannot be reached at all, SEDGE_ERR_TIMEOUT
 * when it did not answer in time, another error when the exchange failed. */
NODISCARD sedge_err admin_call(const char *data_dir, json_t *request, uint32_t timeout_ms,
                               json_t **response, char *err, size_t errlen);

#endif
