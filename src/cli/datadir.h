/*
 * datadir: which data directory (and so which admin socket) sedgectl
 * talks to when --data-dir does not say: the one of --config FILE; else
 * ./sedge-data when it exists (sedged run from the build folder, the
 * embedded default); else the one the installed config names
 * (/etc/sedge/sedge.json: /var/lib/sedge); else ./sedge-data.
 */
#ifndef SEDGE_CLI_DATADIR_H
#define SEDGE_CLI_DATADIR_H

#include <stddef.h>

#ifndef SEDGE_CONFIG_FILE
#define SEDGE_CONFIG_FILE "/etc/sedge/sedge.json"
#endif

/* The data directory into out[0..len). `config` (may be NULL) is a config
 * file named on the command line; a problem with it is written to `err`
 * and makes the result -1, else 0. */
int datadir_find(const char *config, char *out, size_t len, char *err, size_t errlen);

/* The data directory a config file names (data_dir relative to the file,
 * default sedge-data beside it). -1 with `err` set when it cannot be read. */
int datadir_of_config(const char *config, char *out, size_t len, char *err, size_t errlen);

#endif
