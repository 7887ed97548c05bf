/*
 * libfloor: the memory floor under sedged's idle memory. It links the same
 * shared libraries as sedged (libuv, jansson, SQLite, OpenSSL's libssl and
 * libcrypto, libc), so the dynamic loader maps and relocates them exactly as
 * for sedged, and then waits without doing any work. Its resident set is
 * what loading those libraries costs before the first line of Sedge runs;
 * bench/run.sh reports it next to sedged's idle RSS.
 *
 * `libfloor CA CERT KEY` goes one step further and does what any program
 * serving and making mutual TLS connections with OpenSSL 3 must: a server
 * and a client context, each with that certificate, key and CA. Its
 * private dirty memory is OpenSSL's share of sedged's at rest (the rest
 * section reports it).
 *
 * The calls in the first branch are never made (argc is never that large);
 * they only keep each library a real dependency of the program.
 */
#include <jansson.h>
#include <openssl/ssl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <unistd.h>
#include <uv.h>

static SSL_CTX *context(const SSL_METHOD *method, char **files)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (!ctx || SSL_CTX_load_verify_locations(ctx, files[0], NULL) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, files[1]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, files[2], SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "libfloor: cannot make a TLS context from %s, %s, %s\n", files[0],
                files[1], files[2]);
        return NULL;
    }
    return ctx;
}

int main(int argc, char **argv)
{
    if (argc > 1000) {
        sqlite3_open(argv[0], NULL);
        uv_run(uv_default_loop(), UV_RUN_NOWAIT);
        json_decref(json_object());
    }
    if (argc == 4 && (!context(TLS_server_method(), argv + 1) ||
                      !context(TLS_client_method(), argv + 1)))
        return 1;
    pause();
    return 0;
}
