/*
 * internal: what the ota module's files share and nobody else sees.
 */
#ifndef SEDGE_OTA_INTERNAL_H
#define SEDGE_OTA_INTERNAL_H

#include "ota.h"

/* Write `text` and a newline to DIR/NAME durably: a temporary file,
 * fsync, rename, fsync of DIR. */
NODISCARD sedge_err ota_write_durable(const char *dir, const char *name, const char *text);

#endif
