/*
 * client: what a connection keeps about itself besides its bytes — who it
 * is (identity and source), where it is (the peer, for logs), its topic
 * aliases, and its busy state (client_io_t), which is allocated only while
 * needed so that an idle connection stays small.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A thing's messages come from "thing:" + its identity. */
#define SOURCE_PREFIX "thing:"
#define SOURCE_PREFIX_LEN (sizeof SOURCE_PREFIX - 1)

client_label_t client_peer(const client_t *c)
{
    client_label_t label = {"?"};
    char host[46] = "?"; /* INET6_ADDRSTRLEN */
    unsigned port = 0;
    if (c->peer.sa.sa_family == AF_INET6) {
        uv_ip6_name(&c->peer.v6, host, sizeof host);
        port = ntohs(c->peer.v6.sin6_port);
    } else if (c->peer.sa.sa_family == AF_INET) {
        uv_ip4_name(&c->peer.v4, host, sizeof host);
        port = ntohs(c->peer.v4.sin_port);
    } else {
        if (c->listener->type == LISTENER_UNIX)
            snprintf(label.text, sizeof label.text, "unix:%s", c->listener->name);
        return label;
    }
    snprintf(label.text, sizeof label.text, "%s:%u", host, port);
    return label;
}

client_label_t client_name(const client_t *c)
{
    if (!c->identity)
        return client_peer(c);
    client_label_t label;
    snprintf(label.text, sizeof label.text, "%s", c->identity);
    return label;
}

sedge_err client_set_identity(client_t *c, bytes_t identity)
{
    if (identity.len > UINT16_MAX)
        return SEDGE_ERR_INVALID;
    char *text = malloc(SOURCE_PREFIX_LEN + identity.len + 1);
    if (!text)
        return SEDGE_ERR_NOMEM;
    memcpy(text, SOURCE_PREFIX, SOURCE_PREFIX_LEN);
    memcpy(text + SOURCE_PREFIX_LEN, identity.data, identity.len);
    text[SOURCE_PREFIX_LEN + identity.len] = '\0';
    if (c->identity)
        free(c->identity - SOURCE_PREFIX_LEN);
    c->identity = text + SOURCE_PREFIX_LEN;
    c->identity_len = (uint16_t)identity.len;
    return SEDGE_OK;
}

bytes_t client_source(const client_t *c)
{
    if (!c->identity)
        return (bytes_t){0};
    return (bytes_t){(const uint8_t *)c->identity - SOURCE_PREFIX_LEN,
                     c->identity_len + SOURCE_PREFIX_LEN};
}

client_io_t *client_io(client_t *c)
{
    if (!c->io)
        c->io = calloc(1, sizeof *c->io);
    return c->io;
}

/* Called at the end of each flush and from the tick: an idle connection's
 * state goes back right away, so its memory serves the next busy one. */
void client_io_trim(client_t *c)
{
    client_io_t *io = c->io;
    if (!io || io->in.len || io->out.len || io->ref_count || io->writing || io->held_head ||
        flow_busy(c) ||
        io->tls_in.len || io->tls_out.len)
        return;
    buf_free(&io->in);
    buf_free(&io->out);
    free(io->refs);
    buf_free(&io->tls_in);
    buf_free(&io->tls_out);
    free(io);
    c->io = NULL;
}

topic_aliases_t *client_aliases(client_t *c)
{
    if (!c->aliases)
        c->aliases = calloc(1, sizeof *c->aliases);
    return c->aliases;
}

static void free_aliases(client_t *c)
{
    topic_aliases_t *a = c->aliases;
    if (!a)
        return;
    if (a->in) {
        for (size_t i = 0; i <= c->broker->limits.topic_alias_maximum; i++)
            free((void *)a->in[i].data);
        free(a->in);
    }
    for (size_t i = 0; i < a->out.cap; i++)
        if (a->out.slots[i].value)
            free((void *)a->out.slots[i].key.data);
    map_free(&a->out);
    free(a);
    c->aliases = NULL;
}

void client_free_state(client_t *c)
{
    free_aliases(c);
    if (c->io) {
        client_out_free(c);
        c->broker->buffered_bytes -= c->io->in.len;
        buf_free(&c->io->in);
        buf_free(&c->io->out);
        buf_free(&c->io->tls_in);
        buf_free(&c->io->tls_out);
        free(c->io);
        c->io = NULL;
    }
    if (c->identity)
        free(c->identity - SOURCE_PREFIX_LEN);
    c->identity = NULL;
}

void client_list_push(client_t **head, client_t *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

void client_list_remove(client_t **head, client_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (*head == c)
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}
