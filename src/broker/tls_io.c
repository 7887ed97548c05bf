/*
 * tls_io: the bytes between a connection's TLS engine and its socket,
 * through two BIO methods of our own instead of OpenSSL's memory BIOs.
 *
 * A memory BIO keeps the largest buffer it ever held — after a handshake
 * with client certificates, several kilobytes per connection for the life
 * of the connection. Here the engine reads straight from what the socket
 * delivered (the broker's shared read buffer, set for the duration of one
 * read callback), and writes its records into the connection's busy state,
 * which is given back once the connection is idle. Only bytes the engine
 * did not take before asking for more (the tail of an incomplete record
 * it declined) are copied, into `tls_in`, and read first next time.
 */
#include "internal.h"

#include <openssl/bio.h>
#include <string.h>

static BIO_METHOD *method;

static client_t *owner(BIO *bio)
{
    return BIO_get_data(bio);
}

static int bio_read(BIO *bio, char *out, int want)
{
    client_t *c = owner(bio);
    broker_t *b = c->broker;
    BIO_clear_retry_flags(bio);
    if (want <= 0)
        return 0;
    size_t n = 0;
    client_io_t *io = c->io;
    if (io && io->tls_in.len) {
        n = io->tls_in.len < (size_t)want ? io->tls_in.len : (size_t)want;
        memcpy(out, io->tls_in.data, n);
        buf_consume(&io->tls_in, n);
    }
    if (n < (size_t)want && b->tls_input_owner == c && b->tls_input.len) {
        size_t more = (size_t)want - n;
        if (more > b->tls_input.len)
            more = b->tls_input.len;
        memcpy(out + n, b->tls_input.data, more);
        b->tls_input.data += more;
        b->tls_input.len -= more;
        n += more;
    }
    if (n == 0) {
        BIO_set_retry_read(bio);
        return -1;
    }
    return (int)n;
}

static int bio_write(BIO *bio, const char *data, int len)
{
    client_t *c = owner(bio);
    BIO_clear_retry_flags(bio);
    if (len <= 0)
        return 0;
    client_io_t *io = client_io(c);
    if (!io || buf_append(&io->tls_out, data, (size_t)len))
        return -1; /* out of memory: the engine reports an error */
    return len;
}

static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    client_t *c = owner(bio);
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING:
        return (long)((c->io ? c->io->tls_in.len : 0) +
                      (c->broker->tls_input_owner == c ? c->broker->tls_input.len : 0));
    case BIO_CTRL_WPENDING: return c->io ? (long)c->io->tls_out.len : 0;
    default: return 0;
    }
}

static int bio_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    return 1;
}

sedge_err tls_io_attach(client_t *c)
{
    if (!method) {
        method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sedge connection");
        if (!method || !BIO_meth_set_read(method, bio_read) ||
            !BIO_meth_set_write(method, bio_write) || !BIO_meth_set_ctrl(method, bio_ctrl) ||
            !BIO_meth_set_create(method, bio_create))
            return SEDGE_ERR_NOMEM;
    }
    BIO *rbio = BIO_new(method), *wbio = BIO_new(method);
    if (!rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        return SEDGE_ERR_NOMEM;
    }
    BIO_set_data(rbio, c);
    BIO_set_data(wbio, c);
    SSL_set_bio(c->ssl, rbio, wbio); /* the SSL owns them now */
    return SEDGE_OK;
}

void tls_io_input(client_t *c, const uint8_t *data, size_t len)
{
    broker_t *b = c->broker;
    b->tls_input_owner = c;
    b->tls_input = (bytes_t){data, len};
}

sedge_err tls_io_input_done(client_t *c)
{
    broker_t *b = c->broker;
    sedge_err err = SEDGE_OK;
    if (b->tls_input_owner == c && b->tls_input.len) {
        client_io_t *io = client_io(c);
        if (!io || buf_append(&io->tls_in, b->tls_input.data, b->tls_input.len))
            err = SEDGE_ERR_NOMEM;
    }
    b->tls_input_owner = NULL;
    b->tls_input = (bytes_t){0};
    return err;
}

void tls_io_take_output(client_t *c, buf_t *out)
{
    client_io_t *io = c->io;
    if (!io || !io->tls_out.len)
        return;
    if (!out->len) {
        buf_free(out);
        *out = io->tls_out;
        io->tls_out = (buf_t){0};
        return;
    }
    if (buf_append(out, io->tls_out.data, io->tls_out.len) == SEDGE_OK)
        buf_free(&io->tls_out);
}

bool tls_io_output_pending(const client_t *c)
{
    return c->io && c->io->tls_out.len;
}
