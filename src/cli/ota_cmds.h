/*
 * ota_cmds: sedgectl's update commands — `bundle create|verify` (offline,
 * through the ota module) and `update FILE|URL|--status|--rollback`
 * (through the admin socket). Each returns sedgectl's exit code: 0 done,
 * 1 failed, 2 bad usage. `argv` starts after the command's words.
 */
#ifndef SEDGE_CLI_OTA_CMDS_H
#define SEDGE_CLI_OTA_CMDS_H

#include <stdbool.h>

int cli_bundle_create(int argc, char **argv, bool json);
int cli_bundle_verify(int argc, char **argv, bool json);
int cli_update(int argc, char **argv, const char *data_dir, bool json);
/* The usage lines of these commands, for sedgectl --help. */
extern const char cli_ota_usage[];

#endif
