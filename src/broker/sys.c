/*
 * sys: the $SYS/broker/... topics — the broker's statistics as retained
 * messages, refreshed every sys_interval_s seconds, as Mosquitto publishes
 * them, so existing dashboards and scripts can read them.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define LOG_TAG "broker"

static void publish_value(broker_t *b, const char *topic, const char *value)
{
    msg_t m = {
        .retain = true,
        .topic = bytes_of_cstr(topic),
        .payload = bytes_of_cstr(value),
        .source = BYTES_LIT("$SYS"),
    };
    retain_message(b, &m, false);
    deliver_message(b, &m, NULL);
    msg_borrowed_done(b, &m);
}

static void publish_u64(broker_t *b, const char *topic, uint64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "%llu", (unsigned long long)v);
    publish_value(b, topic, text);
}

void sys_publish(broker_t *b)
{
    broker_stats_t st;
    broker_get_stats(b, &st);
    char uptime[48];
    snprintf(uptime, sizeof uptime, "%lld seconds",
             (long long)(clock_wall_s() - (int64_t)st.started_at));
    publish_value(b, "$SYS/broker/version", "sedge " SEDGE_VERSION);
    publish_value(b, "$SYS/broker/uptime", uptime);
    /* Clients, as Mosquitto counts them: sessions, with or without a
     * connection; a socket that has not sent CONNECT is not a client. */
    publish_u64(b, "$SYS/broker/clients/connected", st.sessions_online);
    publish_u64(b, "$SYS/broker/clients/total", st.sessions);
    publish_u64(b, "$SYS/broker/clients/disconnected", st.sessions - st.sessions_online);
    publish_u64(b, "$SYS/broker/clients/persistent", st.sessions_persistent);
    publish_u64(b, "$SYS/broker/connections/total", st.connections_total);
    publish_u64(b, "$SYS/broker/connections/refused", st.refused_connections);
    publish_u64(b, "$SYS/broker/messages/received", st.msgs_in);
    publish_u64(b, "$SYS/broker/messages/sent", st.msgs_out);
    publish_u64(b, "$SYS/broker/messages/dropped", st.msgs_dropped);
    publish_u64(b, "$SYS/broker/messages/queued", st.queued);
    publish_u64(b, "$SYS/broker/bytes/received", st.bytes_in);
    publish_u64(b, "$SYS/broker/bytes/sent", st.bytes_out);
    publish_u64(b, "$SYS/broker/subscriptions/count", st.subscriptions);
    publish_u64(b, "$SYS/broker/retained messages/count", st.retained);
    publish_u64(b, "$SYS/broker/errors/protocol", st.protocol_errors);
    store_stats_t ss;
    store_get_stats(b->store, &ss);
    publish_u64(b, "$SYS/broker/store/bytes", ss.bytes_on_disk);
    publish_u64(b, "$SYS/broker/store/commits", ss.batches);
    publish_u64(b, "$SYS/broker/store/failures", ss.failures);
}
