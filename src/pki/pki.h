/*
 * pki: the group's certificate authority — creating a CA with the core's
 * server certificate, and issuing client certificates whose CN is a
 * thing's name. Keys are EC P-256; key files are written 0600, and every
 * file is written to a temporary name and renamed, so a crash never leaves
 * half a key. Owns nothing between calls: every call reads and writes files.
 */
#ifndef SEDGE_PKI_H
#define SEDGE_PKI_H

#include "base/base.h"

/* Write DIR/ca.pem, DIR/ca.key, DIR/core.pem, DIR/core.key. The core
 * certificate (CN = core_name) is valid for TLS servers and clients, for
 * localhost, 127.0.0.1, ::1, this host's name and each of `sans` (an IP
 * address or a DNS name). SEDGE_ERR_EXISTS if DIR/ca.pem exists and not
 * `force`. */
NODISCARD sedge_err pki_ca_init(const char *dir, const char *core_name, const char *const *sans,
                                size_t san_count, bool force, char *err, size_t errlen);

/* Write DIR/NAME.pem and DIR/NAME.key, CN = name, signed by DIR/ca.*,
 * valid for TLS clients. */
NODISCARD sedge_err pki_cert_issue(const char *dir, const char *name, char *err, size_t errlen);

/* The key that seals the group's secrets (seal_key.c), derived from the
 * private key in `key_file`. */
NODISCARD sedge_err pki_seal_key(const char *key_file, uint8_t out[32], char *err, size_t errlen);

/* The CN of the certificate in a PEM file, malloc'd; NULL on failure. */
char *pki_cert_cn(const char *pem_file);

#endif
