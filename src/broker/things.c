/* things: the connected clients, for sedgectl things and the console
 * (broker.h). */
#include "internal.h"

#include <stdlib.h>

void broker_each_client(broker_t *b, void (*fn)(void *ctx, const broker_client_info_t *info),
                        void *ctx)
{
    client_t **all;
    size_t count = broker_clients(b, &all);
    static const char *const kinds[] = {"tcp", "tls", "unix"};
    for (size_t i = 0; i < count; i++) {
        const client_t *c = all[i];
        if (c->state != CLIENT_CONNECTED || !c->session)
            continue;
        client_label_t peer = client_peer(c);
        broker_client_info_t info = {
            .identity = c->identity ? c->identity : "",
            .client_id = c->session->client_id,
            .address = peer.text,
            .listener = c->listener ? c->listener->name : "",
            .transport = c->transport ? c->transport->kind : kinds[c->listener->type],
            .connected_at = c->connected_at,
            .version = c->version,
            .persistent = c->session->persistent,
            .session_expiry_s = c->session->expiry_interval,
            .keep_alive_s = c->keep_alive,
            .subscriptions = c->session->sub_count,
            .queued = c->session->queued,
        };
        fn(ctx, &info);
    }
    free(all);
}
