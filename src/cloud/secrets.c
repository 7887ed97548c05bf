/*
 * secrets: watches of the cloud topics that carry secrets' values.
 */
#include "secrets.h"

#include <stdlib.h>
#include <string.h>

#define LOG_TAG "cloud"

struct cloud_secrets {
    uplink_t *uplink;
    cloud_secret_fn fn;
    void *ctx;
    json_t *topics; /* topic -> id */
};

static void arrived(void *ctx, bytes_t topic, bytes_t payload)
{
    cloud_secrets_t *s = ctx;
    char name[1024];
    if (topic.len >= sizeof name)
        return;
    memcpy(name, topic.data, topic.len);
    name[topic.len] = '\0';
    const char *id = json_string_value(json_object_get(s->topics, name));
    if (!id)
        return;
    LOGI("secret %s: a new value from the cloud (%zu bytes)", id, payload.len);
    s->fn(s->ctx, id, payload);
}

cloud_secrets_t *cloud_secrets_new(uplink_t *u, cloud_secret_fn fn, void *ctx)
{
    cloud_secrets_t *s = calloc(1, sizeof *s);
    if (!s || !(s->topics = json_object())) {
        free(s);
        return NULL;
    }
    s->uplink = u;
    s->fn = fn;
    s->ctx = ctx;
    return s;
}

static void unwatch_all(cloud_secrets_t *s)
{
    const char *topic;
    json_t *id;
    json_object_foreach(s->topics, topic, id) uplink_unwatch(s->uplink, topic, s);
    json_object_clear(s->topics);
}

void cloud_secrets_configure(cloud_secrets_t *s, const group_t *g)
{
    unwatch_all(s);
    size_t i;
    json_t *r;
    json_array_foreach(g ? group_resources(g) : NULL, i, r)
    {
        const char *topic = json_string_value(json_object_get(r, "cloud_topic"));
        const char *id = json_string_value(json_object_get(r, "id"));
        if (!topic || !id || json_object_get(s->topics, topic))
            continue;
        if (json_object_set_new(s->topics, topic, json_string(id)) != 0 ||
            uplink_watch(s->uplink, topic, arrived, s) != SEDGE_OK) {
            json_object_del(s->topics, topic);
            LOGE("secret %s: cannot watch the cloud topic %s (out of memory)", id, topic);
        }
    }
}

void cloud_secrets_free(cloud_secrets_t *s)
{
    if (!s)
        return;
    unwatch_all(s);
    json_decref(s->topics);
    free(s);
}
