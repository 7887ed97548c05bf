/*
 * secrets: the group's secret resources whose value comes from the cloud
 * ({"cloud_topic": TOPIC} in place of "value"): the uplink watches each
 * topic, and every message on it is the secret's new value, handed to the
 * core (which gives it, sealed, to the function runtime). Nothing of it is
 * stored: after a restart the value comes again from the cloud (a
 * retained message there is delivered at once on subscribing).
 *
 * Owns the watches and the topic -> id map of the applied group.
 */
#ifndef SEDGE_CLOUD_SECRETS_H
#define SEDGE_CLOUD_SECRETS_H

#include "group/group.h"
#include "uplink/uplink.h"

typedef void (*cloud_secret_fn)(void *ctx, const char *id, bytes_t value);

typedef struct cloud_secrets cloud_secrets_t;

cloud_secrets_t *cloud_secrets_new(uplink_t *u, cloud_secret_fn fn, void *ctx);
/* Watch the topics of the group's cloud secrets (and no others). */
void cloud_secrets_configure(cloud_secrets_t *s, const group_t *g);
void cloud_secrets_free(cloud_secrets_t *s);

#endif
