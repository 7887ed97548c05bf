/*
 * libfloor: the memory floor under sedged's idle RSS. It links the same
 * shared libraries as sedged (libuv, jansson, SQLite, OpenSSL's libssl and
 * libcrypto, libc), so the dynamic loader maps and relocates them exactly as
 * for sedged, and then waits without doing any work. Its resident set is
 * what loading those libraries costs before the first line of Sedge runs;
 * bench/run.sh reports it next to sedged's idle RSS.
 *
 * The calls below are never made (argc is never that large); they only keep
 * each library a real dependency of the program.
 */
#include <jansson.h>
#include <openssl/ssl.h>
#include <sqlite3.h>
#include <unistd.h>
#include <uv.h>

int main(int argc, char **argv)
{
    if (argc > 1000) {
        sqlite3_open(argv[0], NULL);
        SSL_CTX_free(SSL_CTX_new(TLS_server_method()));
        uv_run(uv_default_loop(), UV_RUN_NOWAIT);
        json_decref(json_object());
    }
    pause();
    return 0;
}
