/*
 * ota_cmds: sedgectl's update commands — `bundle create|verify` (offline,
 * through the ota module) and `update FILE|URL|--status|--rollback`
 * (through the admin socket). Each takes its argv from its own word on and
 * returns sedgectl's exit code (cli.h).
 */
#ifndef SEDGE_CLI_OTA_CMDS_H
#define SEDGE_CLI_OTA_CMDS_H

#include "cli.h"

int cmd_bundle(cli_t *cli, int argc, char **argv);
int cmd_update(cli_t *cli, int argc, char **argv);

#endif
