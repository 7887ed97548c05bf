/*
 * seal: which key seals the group's secrets on this core — derived from
 * the private key of the first TLS listener (the core's own key), or,
 * on a core with no TLS listener, a random key kept 0600 in the data
 * directory (DATA/secrets.key), made on first start.
 */
#ifndef SEDGE_CORE_SEAL_H
#define SEDGE_CORE_SEAL_H

#include "broker/broker.h"

NODISCARD sedge_err core_seal_key(const char *data_dir, const listener_config_t *listeners,
                                  size_t count, uint8_t out[32]);

#endif
