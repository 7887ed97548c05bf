/*
 * conn: a connection's bytes — reading, TLS, framing packets and handing
 * each to its handler, buffering output and writing it, and closing.
 *
 * Reads land in one buffer shared by every connection (the broker's
 * read_buf): whole packets are handled straight from it, and only the
 * tail of a packet that is not complete yet is copied into the client's
 * own `in` buffer. Output is appended to `out` and written once per loop
 * turn (before the loop waits again), so a burst of deliveries to one client costs one
 * system call; while a write is in progress the next one accumulates in
 * `out`. Both live in the client's busy state (client.c), given back at
 * the end of the flush that leaves the connection idle: an idle
 * connection holds no buffers at all.
 *
 * A big payload is not copied into `out`: the output references the
 * message that holds it (out_ref_t), so a message fanned out to many
 * subscribers is held once. On TCP the header bytes and the payloads go
 * out together in one writev; on TLS each piece goes straight into the
 * engine, which encrypts it per connection; a transport's write takes one
 * buffer, so its output is laid out in one first.
 */
#include "internal.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "broker"

/* A write handed to the kernel: allocated only while one is pending, so
 * an idle connection carries no write request or buffer. */
typedef struct write_op {
    uv_write_t req;
    client_t *client;
    buf_t data;       /* the header bytes (all of it on a transport) */
    out_ref_t *refs;  /* the payloads, held until written */
    size_t ref_count;
    size_t bytes; /* still to write, counted in buffered_bytes */
} write_op_t;

/* Payloads smaller than this are copied into the output: below it a copy
 * costs less than the reference and the extra iovec (TCP) or the extra
 * record (TLS: one record's plaintext). */
#define SHARE_MIN_TCP 4096
#define SHARE_MIN_TLS TLS_PLAIN_MAX

static void refs_release(broker_t *b, out_ref_t *refs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        msg_release(b, refs[i].msg);
}

static void write_op_free(broker_t *b, write_op_t *w)
{
    b->buffered_bytes -= w->bytes;
    refs_release(b, w->refs, w->ref_count);
    free(w->refs);
    buf_free(&w->data);
    free(w);
}

static bool writing(const client_t *c)
{
    return c->io && c->io->writing;
}

size_t client_output_pending(const client_t *c)
{
    if (!c->io)
        return 0;
    return c->io->out.len + c->io->ref_bytes + (c->io->writing ? c->io->writing->bytes : 0);
}

/* Anything queued (bytes or payloads)? */
static bool out_queued(const client_io_t *io)
{
    return io && (io->out.len || io->ref_count);
}

static void mark_for_flush(client_t *c)
{
    if (c->in_flush_list)
        return;
    c->in_flush_list = true;
    c->flush_next = c->broker->flush_list;
    c->broker->flush_list = c;
}

uint8_t *client_out_reserve(client_t *c, size_t len)
{
    if (c->state == CLIENT_CLOSING || !client_io(c))
        return NULL;
    if (buf_reserve(&c->io->out, len))
        return NULL;
    return c->io->out.data + c->io->out.len;
}

void client_out_commit(client_t *c, size_t len)
{
    c->io->out.len += len;
    c->broker->buffered_bytes += len;
    mark_for_flush(c);
}

bool client_out_shares(const client_t *c, size_t len)
{
    if (c->transport)
        return false;
    return len >= (c->ssl ? SHARE_MIN_TLS : SHARE_MIN_TCP);
}

bool client_out_share(client_t *c, size_t head, msg_t *m)
{
    client_io_t *io = c->io; /* client_out_reserve made it */
    out_ref_t *refs = array_room(io->refs, io->ref_count, &io->ref_cap, sizeof *refs, 8);
    if (!refs)
        return false;
    io->refs = refs;
    msg_t *held = msg_hold(m);
    if (!held)
        return false;
    client_out_commit(c, head);
    io->refs[io->ref_count++] = (out_ref_t){
        .msg = held,
        .data = held->payload.data,
        .len = held->payload.len,
        .at = io->out.len,
    };
    io->ref_bytes += held->payload.len;
    c->broker->buffered_bytes += held->payload.len;
    return true;
}

/* Output bytes leave the queue (sent, handed to a write, or discarded). */
static void out_consumed(client_t *c, size_t n)
{
    c->broker->buffered_bytes -= n;
}

/* Take the whole queue out of the client: its bytes, its payloads. */
static void out_take(client_t *c, buf_t *data, out_ref_t **refs, size_t *ref_count)
{
    client_io_t *io = c->io;
    *data = io->out;
    *refs = io->refs;
    *ref_count = io->ref_count;
    out_consumed(c, io->out.len + io->ref_bytes);
    io->out = (buf_t){0};
    io->refs = NULL;
    io->ref_count = io->ref_cap = io->ref_bytes = 0;
}

/* Drop what is waiting to be sent: the peer is gone. */
static void out_discard(client_t *c)
{
    if (!c->io)
        return;
    client_io_t *io = c->io;
    out_consumed(c, io->out.len + io->ref_bytes);
    io->out.len = 0;
    refs_release(c->broker, io->refs, io->ref_count);
    io->ref_count = io->ref_bytes = 0;
}

void client_out_free(client_t *c)
{
    if (!c->io)
        return;
    out_discard(c);
    free(c->io->refs);
    c->io->refs = NULL;
    c->io->ref_cap = 0;
}

/* The queue as iovecs, in order, into iov (room for 2 * refs + 1). */
static size_t out_iov(const buf_t *data, const out_ref_t *refs, size_t ref_count, uv_buf_t *iov)
{
    size_t n = 0, pos = 0;
    for (size_t i = 0; i < ref_count; i++) {
        if (refs[i].at > pos)
            iov[n++] = uv_buf_init((char *)data->data + pos, (unsigned)(refs[i].at - pos));
        pos = refs[i].at;
        iov[n++] = uv_buf_init((char *)refs[i].data, (unsigned)refs[i].len);
    }
    if (data->len > pos)
        iov[n++] = uv_buf_init((char *)data->data + pos, (unsigned)(data->len - pos));
    return n;
}

/* Skip the first `n` bytes of iov[0..count): returns the first iovec left. */
static size_t iov_skip(uv_buf_t *iov, size_t count, size_t n)
{
    size_t i = 0;
    while (i < count && n >= iov[i].len) {
        n -= iov[i].len;
        i++;
    }
    if (i < count && n) {
        iov[i].base += n;
        iov[i].len -= n;
    }
    return i;
}

void client_send(client_t *c, const uint8_t *data, size_t len)
{
    uint8_t *p = client_out_reserve(c, len);
    if (!p)
        return;
    memcpy(p, data, len);
    client_out_commit(c, len);
}

static void on_closed(uv_handle_t *h);
static void flush(client_t *c);

void client_close_handle(client_t *c)
{
    if (uv_is_closing(&c->h.handle))
        return;
    if (c->transport && !c->transport->gone) {
        c->transport->gone = true;
        c->transport->ops->close(c->transport->ctx);
    }
    uv_close(&c->h.handle, on_closed);
}

/* Closed clients whose last output is still being written: the broker
 * keeps them in a list so that a shutdown can cut them off. */
static void closing_link(client_t *c)
{
    broker_t *b = c->broker;
    if (c->in_closing_list)
        return;
    c->in_closing_list = true;
    client_list_push(&b->closing, c);
}

static void closing_unlink(client_t *c)
{
    if (!c->in_closing_list)
        return;
    client_list_remove(&c->broker->closing, c);
    c->in_closing_list = false;
}

void closing_cut_all(broker_t *b)
{
    while (b->closing) {
        client_t *c = b->closing;
        closing_unlink(c);
        c->linger = LINGER_NONE;
        client_close_handle(c);
    }
}

/* All output is written: close, or linger first if the broker had the
 * last word (linger.c). */
static void finish_close(client_t *c)
{
    closing_unlink(c);
    if (c->linger == LINGER_ACTIVE || uv_is_closing(&c->h.handle))
        return;
    if (c->linger == LINGER_WANTED && !c->transport && !c->broker->shutting_down &&
        linger_start(c) == SEDGE_OK)
        return;
    c->linger = LINGER_NONE;
    client_close_handle(c);
}

static void write_done(write_op_t *w, int status)
{
    client_t *c = w->client;
    write_op_free(c->broker, w);
    client_io_t *io = c->io; /* kept while writing */
    io->writing = NULL;
    io->last_tx_progress_ms = clock_mono_ms();
    if (status < 0) {
        if (c->state != CLIENT_CLOSING)
            LOGI("client '%s': write failed: %s", client_name(c).text, uv_strerror(status));
        out_discard(c);
        c->linger = LINGER_NONE; /* the peer is gone */
        client_close(c);
        finish_close(c);
        return;
    }
    if (out_queued(io))
        flush(c);
    if (c->state == CLIENT_CLOSING && !writing(c))
        finish_close(c);
    if (c->slow && client_output_pending(c) == 0) {
        c->slow = false;
        LOGI("client '%s' caught up with its output", client_name(c).text);
    }
    flow_drained(c);
    client_io_trim(c);
}

static void write_cb(uv_write_t *req, int status)
{
    write_done((write_op_t *)req, status);
}

static void write_failed(client_t *c, int rc)
{
    LOGI("client '%s': write failed: %s", client_name(c).text, uv_strerror(rc));
    out_discard(c);
    client_close(c);
    finish_close(c);
}

/* A transport's connection: its output goes to the transport, one write
 * at a time, as a socket's would. */
static void flush_transport(client_t *c)
{
    client_io_t *io = c->io;
    if (!out_queued(io))
        return;
    if (c->transport->gone) {
        out_discard(c);
        return;
    }
    write_op_t *w = calloc(1, sizeof *w);
    if (!w) {
        write_failed(c, UV_ENOMEM);
        return;
    }
    /* Nothing is shared with a transport (client_out_shares): all of it
     * is in the bytes. */
    out_take(c, &w->data, &w->refs, &w->ref_count);
    w->client = c;
    w->bytes = w->data.len;
    c->broker->buffered_bytes += w->data.len;
    c->broker->stats.bytes_out += w->data.len;
    io->writing = w;
    io->last_tx_progress_ms = clock_mono_ms();
    if (c->transport->ops->write(c->transport->ctx, w->data.data, w->data.len)) {
        io->writing = NULL;
        write_op_free(c->broker, w);
        write_failed(c, UV_EIO);
        return;
    }
    wheel_refile(c->broker, c, client_deadline(c->broker, c));
}

/* Hand the queue to the TLS engine in order, each payload straight from
 * its message (the engine copies it into records). */
static void tls_write_out(client_t *c)
{
    client_io_t *io = c->io;
    size_t pos = 0, r = 0; /* bytes of `out` and refs taken */
    for (;;) {
        bool ref = r < io->ref_count && io->refs[r].at == pos;
        const uint8_t *p;
        size_t len;
        if (ref) {
            p = io->refs[r].data;
            len = io->refs[r].len;
        } else {
            size_t end = r < io->ref_count ? io->refs[r].at : io->out.len;
            if (end == pos)
                break;
            p = io->out.data + pos;
            len = end - pos;
        }
        int n = SSL_write(c->ssl, p, (int)len);
        if (n <= 0)
            break;
        out_consumed(c, (size_t)n);
        if (!ref) {
            pos += (size_t)n;
            continue;
        }
        out_ref_t *o = &io->refs[r];
        o->data += n;
        o->len -= (size_t)n;
        io->ref_bytes -= (size_t)n;
        if (!o->len) {
            msg_release(c->broker, o->msg);
            r++;
        }
    }
    if (r) {
        io->ref_count -= r;
        memmove(io->refs, io->refs + r, io->ref_count * sizeof *io->refs);
    }
    buf_consume(&io->out, pos);
    for (size_t i = 0; i < io->ref_count; i++)
        io->refs[i].at -= pos;
    if (!io->out.len)
        buf_free(&io->out);
    if (!io->ref_count) {
        free(io->refs);
        io->refs = NULL;
        io->ref_cap = 0;
    }
}

/* Free a queue taken out of a client (out_take). */
static void taken_free(broker_t *b, buf_t *data, out_ref_t *refs, size_t ref_count)
{
    refs_release(b, refs, ref_count);
    free(refs);
    buf_free(data);
}

static void flush(client_t *c)
{
    if (writing(c) || uv_is_closing(&c->h.handle))
        return;
    if (c->transport) {
        flush_transport(c);
        return;
    }
    broker_t *b = c->broker;
    buf_t data = {0};
    out_ref_t *refs = NULL;
    size_t ref_count = 0;
    client_io_t *io = c->io;
    if (c->ssl) {
        if (out_queued(io) && c->state != CLIENT_TLS_HANDSHAKE)
            tls_write_out(c);
        tls_io_take_output(c, &data);
    } else if (io) {
        out_take(c, &data, &refs, &ref_count);
    }
    size_t total = data.len;
    for (size_t i = 0; i < ref_count; i++)
        total += refs[i].len;
    if (!total) {
        taken_free(b, &data, refs, ref_count);
        return;
    }
    b->stats.bytes_out += total;
    uv_buf_t one = uv_buf_init((char *)data.data, (unsigned)data.len);
    uv_buf_t *iov = &one;
    size_t iov_count = 1;
    if (ref_count) {
        iov = malloc((2 * ref_count + 1) * sizeof *iov);
        if (!iov) {
            taken_free(b, &data, refs, ref_count);
            write_failed(c, UV_ENOMEM);
            return;
        }
        iov_count = out_iov(&data, refs, ref_count, iov);
    }
    int n = uv_try_write(&c->h.stream, iov, (unsigned)iov_count);
    if (n == (int)total || (n < 0 && n != UV_EAGAIN)) {
        if (iov != &one)
            free(iov);
        taken_free(b, &data, refs, ref_count);
        if (n < 0)
            write_failed(c, n);
        return;
    }
    size_t sent = n > 0 ? (size_t)n : 0;
    size_t first = iov_skip(iov, iov_count, sent);
    write_op_t *w = client_io(c) ? malloc(sizeof *w) : NULL;
    if (!w) {
        if (iov != &one)
            free(iov);
        taken_free(b, &data, refs, ref_count);
        write_failed(c, UV_ENOMEM);
        return;
    }
    *w = (write_op_t){
        .client = c,
        .data = data,
        .refs = refs,
        .ref_count = ref_count,
        .bytes = total - sent,
    };
    b->buffered_bytes += w->bytes;
    c->io->last_tx_progress_ms = clock_mono_ms();
    /* libuv keeps its own copy of the iovecs, not of what they point to. */
    int rc = uv_write(&w->req, &c->h.stream, iov + first, (unsigned)(iov_count - first), write_cb);
    if (iov != &one)
        free(iov);
    if (rc) {
        write_op_free(b, w);
        write_failed(c, rc);
        return;
    }
    c->io->writing = w;
    /* Stuck writes count towards slow_reader_timeout_s from now. */
    wheel_refile(b, c, client_deadline(b, c));
}

void broker_flush_all(broker_t *b)
{
    while (b->flush_list) {
        client_t *c = b->flush_list;
        b->flush_list = c->flush_next;
        c->in_flush_list = false;
        c->flush_next = NULL;
        flush(c);
        if (c->state == CLIENT_CLOSING && !writing(c))
            finish_close(c);
        flow_drained(c);
        client_io_trim(c); /* most often all went out: idle again */
    }
}

/* A client freed this turn may still be queued for the end-of-turn flush
 * (a CONNECT and a DISCONNECT in one read): take it off first. */
static void unlink_from_flush_list(client_t *c)
{
    if (!c->in_flush_list)
        return;
    client_t **link = &c->broker->flush_list;
    while (*link && *link != c)
        link = &(*link)->flush_next;
    if (*link)
        *link = c->flush_next;
    c->in_flush_list = false;
    c->flush_next = NULL;
}

static void on_closed(uv_handle_t *h)
{
    client_t *c = h->data;
    broker_t *b = c->broker;
    unlink_from_flush_list(c);
    closing_unlink(c);
    if (c->ssl)
        tls_tune_free(c->ssl, c->tls_resumable); /* frees the BIOs too */
    if (c->transport && c->io && c->io->writing) { /* cut off while writing */
        write_op_free(b, c->io->writing);
        c->io->writing = NULL;
    }
    free(c->transport);
    held_free_all(c);
    will_free(b, c->will);
    client_free_state(c);
    free(c);
    broker_handle_closed(b);
}

void client_close(client_t *c)
{
    if (c->state == CLIENT_CLOSING)
        return;
    broker_t *b = c->broker;
    flow_forget(c);
    bool was_connected = c->state == CLIENT_CONNECTED;
    c->state = CLIENT_CLOSING;
    if (!c->transport)
        uv_read_stop(&c->h.stream);
    wheel_remove(b, c);
    b->stats.connections--;
    if (was_connected)
        will_on_close(b, c);
    session_t *s = c->session;
    if (s) {
        session_detach(b, s);
        if (s->expiry_interval == 0) {
            will_publish_now(b, s);
            session_destroy(b, s);
        }
    }
    flush(c);
    if (!writing(c))
        finish_close(c);
    else if (!uv_is_closing(&c->h.handle))
        closing_link(c);
}

void client_disconnect(client_t *c, uint8_t reason, const char *why)
{
    if (c->state == CLIENT_CLOSING)
        return;
    if (reason == MQTT_RC_SERVER_SHUTTING_DOWN)
        LOGD("client '%s' disconnected: %s", client_name(c).text, why);
    else if (c->state != CLIENT_CONNECTED)
        LOGI("closing %s: %s", client_name(c).text, why);
    else if (reason >= 0x80 && strcmp(why, mqtt_reason_name(reason)) != 0)
        LOGW("client '%s' disconnected: %s (reason 0x%02x, %s)", client_name(c).text, why, reason,
             mqtt_reason_name(reason));
    else if (reason >= 0x80)
        LOGW("client '%s' disconnected: %s (reason 0x%02x)", client_name(c).text, why, reason);
    else
        LOGI("client '%s' disconnected: %s", client_name(c).text, why);
    if (c->version == MQTT_V5 && c->state == CLIENT_CONNECTED) {
        mqtt_reason_packet_t d = {.reason = reason};
        if (c->request_problem_info && why) {
            d.props.reason_string = bytes_of_cstr(why);
            mqtt_props_set(&d.props, MQTT_PROP_REASON_STRING);
        }
        uint8_t pkt[512];
        size_t n = mqtt_encode_disconnect(pkt, sizeof pkt, MQTT_V5, &d);
        if (n <= sizeof pkt) {
            client_send(c, pkt, n);
            if (reason != MQTT_RC_SERVER_SHUTTING_DOWN)
                c->linger = LINGER_WANTED;
        }
    }
    client_close(c);
}

sedge_err protocol_violation(client_t *c, uint8_t reason, const char *why)
{
    c->broker->stats.protocol_errors++;
    client_disconnect(c, reason, why);
    return SEDGE_ERR_PROTOCOL;
}

void client_pause_reading(client_t *c, pause_reason_t why)
{
    if (!c->paused && c->state != CLIENT_CLOSING) {
        if (!c->transport)
            uv_read_stop(&c->h.stream);
        else if (!c->transport->gone)
            c->transport->ops->pause(c->transport->ctx, true);
    }
    c->paused |= (uint8_t)why;
}

static void dispatch_buffered(client_t *c);
static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

void client_resume_reading(client_t *c, pause_reason_t why)
{
    if (!(c->paused & why))
        return;
    c->paused &= (uint8_t)~why;
    if (c->paused || c->state == CLIENT_CLOSING)
        return;
    dispatch_buffered(c);
    if (c->paused || c->state == CLIENT_CLOSING)
        return;
    if (!c->transport)
        uv_read_start(&c->h.stream, client_read_alloc_cb, read_cb);
    else if (!c->transport->gone)
        c->transport->ops->pause(c->transport->ctx, false);
}

static sedge_err dispatch(client_t *c, const mqtt_frame_t *f)
{
    if (c->state == CLIENT_AWAIT_CONNECT) {
        if (f->type != MQTT_CONNECT) {
            c->broker->stats.protocol_errors++;
            LOGW("client %s: first packet is %s, not CONNECT; closing", client_peer(c).text,
                 mqtt_packet_name(f->type));
            client_close(c);
            return SEDGE_ERR_PROTOCOL;
        }
        return handle_connect(c, f);
    }
    switch (f->type) {
    case MQTT_PUBLISH: return handle_publish(c, f);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP: return handle_ack(c, f);
    case MQTT_SUBSCRIBE: return handle_subscribe(c, f);
    case MQTT_UNSUBSCRIBE: return handle_unsubscribe(c, f);
    case MQTT_PINGREQ: {
        const char *why = NULL;
        if (mqtt_decode_empty(f, &why))
            return protocol_violation(c, MQTT_RC_MALFORMED, why);
        uint8_t pkt[2];
        client_send(c, pkt, mqtt_encode_empty(pkt, sizeof pkt, MQTT_PINGRESP));
        return SEDGE_OK;
    }
    case MQTT_DISCONNECT: return handle_disconnect(c, f);
    case MQTT_AUTH: return handle_auth(c, f);
    case MQTT_CONNECT: return protocol_violation(c, MQTT_RC_PROTOCOL_ERROR, "second CONNECT");
    default: return protocol_violation(c, MQTT_RC_PROTOCOL_ERROR, "packet a client may not send");
    }
}

/* Handle every whole packet in data[0..len); returns the bytes used. */
static size_t dispatch_packets(client_t *c, const uint8_t *data, size_t len)
{
    size_t used = 0;
    const broker_limits_t *lim = &c->broker->limits;
    /* Before CONNECT nobody is authenticated: a CONNECT is small. */
    uint32_t limit =
        c->state == CLIENT_AWAIT_CONNECT && lim->max_connect_bytes < lim->max_packet_bytes
            ? lim->max_connect_bytes
            : lim->max_packet_bytes;
    while (used < len && c->state != CLIENT_CLOSING && !c->paused) {
        mqtt_frame_t f;
        const char *why = "malformed packet";
        sedge_err err = mqtt_frame_parse(data + used, len - used, &f, &why);
        if (err == SEDGE_ERR_AGAIN && f.size <= limit)
            break; /* the rest of the packet is still to come */
        if (err && err != SEDGE_ERR_AGAIN) {
            err = protocol_violation(c, MQTT_RC_MALFORMED, why);
            break;
        }
        if (f.size > limit) {
            err = protocol_violation(c, MQTT_RC_PACKET_TOO_LARGE, "packet larger than the maximum");
            break;
        }
        c->broker->stats.bytes_in += f.size;
        used += f.size;
        if (dispatch(c, &f))
            break;
    }
    return used;
}

static void dispatch_buffered(client_t *c)
{
    client_io_t *io = c->io;
    if (!io || !io->in.len)
        return;
    size_t used = dispatch_packets(c, io->in.data, io->in.len);
    buf_consume(&io->in, used);
    c->broker->buffered_bytes -= used;
    if (!io->in.len)
        buf_free(&io->in);
}

/* Keep bytes that do not yet make a whole packet (or arrived while
 * reading is paused). */
static sedge_err buffer_input(client_t *c, const uint8_t *data, size_t len)
{
    broker_t *b = c->broker;
    if (b->buffered_bytes + len > b->limits.max_buffered_bytes) {
        b->stats.msgs_dropped++;
        client_disconnect(c, MQTT_RC_QUOTA_EXCEEDED,
                          "the memory all connections may buffer (max_buffered_bytes) is in use");
        return SEDGE_ERR_FULL;
    }
    if (!client_io(c) || buf_append(&c->io->in, data, len)) {
        LOGE("client '%s': out of memory buffering input", client_name(c).text);
        client_close(c);
        return SEDGE_ERR_NOMEM;
    }
    b->buffered_bytes += len;
    return SEDGE_OK;
}

/* New plaintext from the peer. */
static void take_bytes(client_t *c, const uint8_t *data, size_t len)
{
    if ((c->io && c->io->in.len) || c->paused) {
        if (buffer_input(c, data, len) == SEDGE_OK)
            dispatch_buffered(c);
        return;
    }
    size_t used = dispatch_packets(c, data, len);
    if (used < len && c->state != CLIENT_CLOSING)
        (void)buffer_input(c, data + used, len - used);
}

/* The certificate's common name into cn[0..cap); its length, or <= 0. */
static int certificate_cn(X509 *cert, char *cn, size_t cap)
{
    return X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, (int)cap);
}

static void tls_error(client_t *c, const char *what)
{
    char err[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, err, sizeof err);
    long verify = SSL_get_verify_result(c->ssl);
    if (verify != X509_V_OK)
        LOGW("TLS %s with %s failed: client certificate: %s", what, client_peer(c).text,
             X509_verify_cert_error_string(verify));
    else
        LOGW("TLS %s with %s failed: %s", what, client_peer(c).text,
             err[0] ? err : "connection closed");
    ERR_clear_error();
    c->tls_resumable = false;
    c->broker->stats.refused_connections++;
    client_close(c); /* its flush sends the TLS alert, if any */
}

static void tls_records(client_t *c);

static void tls_read(client_t *c, const uint8_t *data, size_t len)
{
    tls_io_input(c, data, len);
    tls_records(c);
    if (tls_io_input_done(c) && c->state != CLIENT_CLOSING) {
        LOGE("client '%s': out of memory keeping TLS input", client_name(c).text);
        client_close(c);
    }
}

/* The engine takes what was read: the handshake, then application data. */
static void tls_records(client_t *c)
{
    broker_t *b = c->broker;
    if (c->state == CLIENT_TLS_HANDSHAKE) {
        int rc = SSL_do_handshake(c->ssl);
        if (rc != 1) {
            int e = SSL_get_error(c->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                mark_for_flush(c);
                return;
            }
            tls_error(c, "handshake");
            return;
        }
        X509 *cert = SSL_get1_peer_certificate(c->ssl);
        char cn[256];
        int cn_len = cert ? certificate_cn(cert, cn, sizeof cn) : -1;
        X509_free(cert);
        if (cn_len <= 0 || memchr(cn, 0, (size_t)cn_len)) {
            LOGW("TLS client %s: certificate has no common name (or one with a NUL); closing",
                 client_peer(c).text);
            client_close(c);
            return;
        }
        if (client_certificate_revoked(c) ||
            (SSL_session_reused(c->ssl) && client_revoked_by_crl(c))) {
            LOGW("TLS client %s ('%s'): certificate revoked; closing", client_peer(c).text, cn);
            c->broker->stats.refused_connections++;
            client_close(c);
            return;
        }
        if (client_set_identity(c, (bytes_t){(const uint8_t *)cn, (size_t)cn_len})) {
            LOGE("out of memory for TLS client %s", client_peer(c).text);
            client_close(c);
            return;
        }
        c->state = CLIENT_AWAIT_CONNECT;
        c->tls_resumable = true;
        mark_for_flush(c);
        LOGD("TLS client %s authenticated as '%s'", client_peer(c).text, c->identity);
    }
    for (;;) {
        int n = SSL_read(c->ssl, b->tls_plain, TLS_PLAIN_MAX);
        if (n > 0) {
            take_bytes(c, b->tls_plain, (size_t)n);
            if (c->state == CLIENT_CLOSING)
                return;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            client_close(c);
            return;
        }
        tls_error(c, "read");
        return;
    }
    if (tls_io_output_pending(c))
        mark_for_flush(c);
}

void client_read_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    client_t *c = h->data;
    buf->base = (char *)c->broker->read_buf;
    buf->len = c->broker->read_buf_len;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    client_t *c = stream->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF && nread != UV_ECONNRESET)
            LOGI("client '%s': read failed: %s", client_name(c).text, uv_strerror((int)nread));
        else
            LOGD("client '%s' closed the connection", client_name(c).text);
        client_close(c);
        return;
    }
    /* Before CONNECT the clock is not reset by what arrives: the deadline
     * to authenticate counts from accept, so a byte every few seconds
     * cannot hold a connection open. */
    if (c->state >= CLIENT_CONNACK_HELD)
        c->last_rx_ms = clock_mono_ms();
    if (c->ssl)
        tls_read(c, (const uint8_t *)buf->base, (size_t)nread);
    else
        take_bytes(c, (const uint8_t *)buf->base, (size_t)nread);
}

void client_accepted(listener_t *l, client_t *c)
{
    broker_t *b = l->broker;
    c->broker = b;
    c->listener = l;
    c->h.handle.data = c;
    c->last_rx_ms = clock_mono_ms();
    c->max_packet_out = MQTT_MAX_PACKET_SIZE;
    c->receive_max_out = 65535;
    c->state = CLIENT_AWAIT_CONNECT;
    wheel_add(b, c, c->last_rx_ms + (uint64_t)b->limits.connect_timeout_s * 1000u);
    b->stats.connections++;
    b->stats.connections_total++;
    b->handles_open++;
    if (l->type != LISTENER_UNIX) {
        int len = sizeof c->peer;
        if (uv_tcp_getpeername(&c->h.tcp, &c->peer.sa, &len))
            c->peer.sa.sa_family = AF_UNSPEC;
        uv_tcp_nodelay(&c->h.tcp, 1);
    }
    if (l->type == LISTENER_TLS) {
        c->ssl = SSL_new(l->ssl_ctx);
        if (!c->ssl || tls_io_attach(c)) {
            LOGE("out of memory setting up TLS for %s", client_peer(c).text);
            client_close(c);
            return;
        }
        SSL_set_accept_state(c->ssl);
        c->state = CLIENT_TLS_HANDSHAKE;
    }
    if (b->stats.connections > b->limits.max_connections) {
        LOGW("refusing %s: max_connections (%u) reached", client_peer(c).text,
             b->limits.max_connections);
        b->stats.refused_connections++;
        client_close(c);
        return;
    }
    uv_read_start(&c->h.stream, client_read_alloc_cb, read_cb);
}

/* ---- connections over another transport ---- */

broker_conn_t *broker_conn_open(broker_t *b, const broker_transport_t *t, void *ctx,
                                const broker_conn_info_t *info)
{
    if (b->shutting_down)
        return NULL;
    if (b->stats.connections >= b->limits.max_connections) {
        LOGW("refusing a %s connection: max_connections (%u) reached", info->kind,
             b->limits.max_connections);
        b->stats.refused_connections++;
        return NULL;
    }
    client_t *c = calloc(1, sizeof *c);
    transport_link_t *link = calloc(1, sizeof *link);
    if (!c || !link || (info->identity.len && client_set_identity(c, info->identity))) {
        LOGE("out of memory accepting a %s connection", info->kind);
        if (c)
            client_free_state(c);
        free(c);
        free(link);
        return NULL;
    }
    link->ops = t;
    link->ctx = ctx;
    c->transport = link;
    c->broker = b;
    c->listener = &b->transport_listener;
    link->kind = info->kind;
    uv_check_init(b->loop, &c->h.check);
    c->h.handle.data = c;
    c->last_rx_ms = clock_mono_ms();
    c->max_packet_out = MQTT_MAX_PACKET_SIZE;
    c->receive_max_out = 65535;
    c->state = CLIENT_AWAIT_CONNECT;
    if (info->peer)
        memcpy(&c->peer, info->peer,
               info->peer->ss_family == AF_INET6 ? sizeof c->peer.v6 : sizeof c->peer.v4);
    else
        c->peer.sa.sa_family = AF_UNSPEC;
    wheel_add(b, c, c->last_rx_ms + (uint64_t)b->limits.connect_timeout_s * 1000u);
    b->stats.connections++;
    b->stats.connections_total++;
    b->handles_open++;
    LOGD("%s connection from %s%s%s", info->kind, client_peer(c).text,
         c->identity ? " authenticated as " : "", c->identity ? c->identity : "");
    return c;
}

void broker_conn_input(broker_conn_t *c, const uint8_t *data, size_t len)
{
    if (c->state == CLIENT_CLOSING || !len)
        return;
    if (c->state >= CLIENT_CONNACK_HELD)
        c->last_rx_ms = clock_mono_ms();
    take_bytes(c, data, len);
}

void broker_conn_written(broker_conn_t *c, int status)
{
    if (c->io && c->io->writing)
        write_done(c->io->writing, status);
}

void broker_conn_gone(broker_conn_t *c)
{
    if (c->transport->gone)
        return;
    c->transport->gone = true;
    LOGD("client '%s': the transport closed the connection", client_name(c).text);
    if (writing(c)) {
        write_done(c->io->writing, UV_ECONNRESET);
        return;
    }
    out_discard(c);
    c->linger = LINGER_NONE;
    if (c->state != CLIENT_CLOSING)
        client_close(c);
    else if (!c->in_closing_list)
        finish_close(c);
    else {
        closing_unlink(c);
        client_close_handle(c);
    }
}
