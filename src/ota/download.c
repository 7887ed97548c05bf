/*
 * download: a bundle or an artifact over HTTP(S) with libcurl, into
 * DEST.part, renamed DEST once whole. A cut (connection lost, no progress
 * for `stall_s`, the core stopped) leaves DEST.part; the next attempt, in
 * this call or after a restart, asks for the rest with a Range request and
 * starts again from zero only when the server ignores it. Blocking: run it
 * off the event loop.
 */
#include "ota.h"

#include "lazylib/lazy_curl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const ota_download_t *d;
    FILE *out;
    uint64_t have;  /* bytes in DEST.part before this request */
    uint64_t got;   /* bytes of this request written */
    long status;    /* the response's status, once headers are in */
    bool restarted; /* a 200 to a Range request: DEST.part was emptied */
    bool too_big;
    uint64_t start_ms; /* when the first byte came, for the rate limit */
    uint64_t total;    /* the whole file's size, from the headers; 0: unknown */
} fetch_t;

/* The rate limit, kept here: libcurl 7.88's own (CURLOPT_MAX_RECV_SPEED)
 * lets a loopback transfer run far above it. Holding the write callback
 * stops curl reading the socket, and TCP slows the sender down. */
static void pace(fetch_t *f)
{
    if (!f->d->max_rate)
        return;
    uint64_t now = clock_mono_ms();
    if (!f->start_ms)
        f->start_ms = now;
    uint64_t due = f->start_ms + f->got * 1000 / f->d->max_rate;
    while (now < due && !(f->d->cancel && *f->d->cancel)) {
        uint64_t ms = due - now < 100 ? due - now : 100;
        usleep((useconds_t)(ms * 1000));
        now = clock_mono_ms();
    }
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
    fetch_t *f = ctx;
    size_t len = size * n;
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), data);
    const char *slash;
    if (strncmp(line, "HTTP/", 5) == 0) {
        const char *sp = strchr(line, ' ');
        f->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        f->total = 0;
    } else if (strncasecmp(line, "content-length:", 15) == 0 && f->status == 200) {
        f->total = strtoull(line + 15, NULL, 10);
    } else if (strncasecmp(line, "content-range:", 14) == 0 && (slash = strchr(line, '/'))) {
        f->total = strtoull(slash + 1, NULL, 10);
    }
    return len;
}

static size_t on_data(char *data, size_t size, size_t n, void *ctx)
{
    fetch_t *f = ctx;
    size_t len = size * n;
    if (f->status != 200 && f->status != 206)
        return len; /* an error page: not written */
    if (f->status == 200 && f->have && !f->restarted) {
        /* The server sent the whole file again: start over. */
        if (ftruncate(fileno(f->out), 0) != 0 || fseek(f->out, 0, SEEK_SET) != 0)
            return 0;
        f->have = 0;
        f->restarted = true;
    }
    if (f->have + f->got + len > f->d->max_bytes) {
        f->too_big = true;
        return 0;
    }
    if (fwrite(data, 1, len, f->out) != len)
        return 0;
    f->got += len;
    if (f->d->progress)
        f->d->progress(f->d->ctx, f->have + f->got, f->total);
    pace(f);
    return len;
}

static int on_progress(void *ctx, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un)
{
    (void)ut;
    (void)un;
    (void)total;
    (void)now;
    fetch_t *f = ctx;
    return f->d->cancel && *f->d->cancel; /* progress itself is told from on_data */
}

/* With a rate limit, a small receive buffer: the kernel would otherwise
 * take megabytes at full speed before the pacing shows on the link. */
static int on_socket(void *ctx, curl_socket_t fd, curlsocktype purpose)
{
    const ota_download_t *d = ctx;
    if (purpose == CURLSOCKTYPE_IPCXN && d->max_rate) {
        int size = d->max_rate < 16384 ? 16384 : d->max_rate > 262144 ? 262144 : (int)d->max_rate;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    return CURL_SOCKOPT_OK;
}

/* One request for what DEST.part lacks. */
static sedge_err fetch_once(const ota_download_t *d, const char *part, char *err, size_t errlen)
{
    struct stat st;
    uint64_t have = stat(part, &st) == 0 ? (uint64_t)st.st_size : 0;
    FILE *out = fopen(part, have ? "r+b" : "wb");
    if (!out || fseek(out, 0, SEEK_END) != 0) {
        snprintf(err, errlen, "%s: %s", part, strerror(errno));
        if (out)
            fclose(out);
        return SEDGE_ERR_IO;
    }
    fetch_t f = {.d = d, .out = out, .have = have};
    sedge_err loaded = lazy_curl_load(err, errlen);
    if (loaded) {
        fclose(out);
        return loaded;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        fclose(out);
        snprintf(err, errlen, "out of memory");
        return SEDGE_ERR_NOMEM;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, d->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(d->stall_s ? d->stall_s : 60));
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)d->max_bytes);
    if (d->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, d->ca_file);
    curl_easy_setopt(c, CURLOPT_SOCKOPTFUNCTION, on_socket);
    curl_easy_setopt(c, CURLOPT_SOCKOPTDATA, (void *)d);
    if (have)
        curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)have);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &f);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &f);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    bool flushed = fflush(out) == 0 && fsync(fileno(out)) == 0;
    fclose(out);
    if (f.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        unlink(part);
        snprintf(err, errlen, "%s is larger than the limit of %llu bytes", d->url,
                 (unsigned long long)d->max_bytes);
        return SEDGE_ERR_TOO_LARGE;
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK && d->cancel && *d->cancel) {
        snprintf(err, errlen, "the download was stopped (%llu bytes kept for a resume)",
                 (unsigned long long)(f.have + f.got));
        return SEDGE_ERR_CLOSED;
    }
    if (rc == CURLE_OK && status == 416 && have) {
        unlink(part); /* what we kept is not a prefix of what is there now */
        snprintf(err, errlen, "%s: the server refused to resume; starting again", d->url);
        return SEDGE_ERR_AGAIN;
    }
    if (rc == CURLE_OK && status >= 400) {
        snprintf(err, errlen, "%s: HTTP %ld", d->url, status);
        return status >= 500 || status == 408 || status == 429 ? SEDGE_ERR_AGAIN
                                                               : SEDGE_ERR_NOT_FOUND;
    }
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s: %s (%llu bytes kept for a resume)", d->url,
                 curl_err[0] ? curl_err : curl_easy_strerror(rc),
                 (unsigned long long)(f.have + f.got));
        bool tls = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
                   rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_UNSUPPORTED_PROTOCOL ||
                   rc == CURLE_URL_MALFORMAT;
        return tls ? SEDGE_ERR_TLS : SEDGE_ERR_AGAIN;
    }
    if (!flushed) {
        snprintf(err, errlen, "%s: %s", part, strerror(errno));
        return SEDGE_ERR_IO;
    }
    return SEDGE_OK;
}

sedge_err ota_download(const ota_download_t *d, char *err, size_t errlen)
{
    char part[PATH_MAX];
    if (snprintf(part, sizeof part, "%s.part", d->dest) >= (int)sizeof part) {
        snprintf(err, errlen, "%s: path too long", d->dest);
        return SEDGE_ERR_TOO_LARGE;
    }
    sedge_err rc = SEDGE_ERR_AGAIN;
    int attempts = d->attempts > 0 ? d->attempts : 1;
    for (int i = 0; i < attempts && rc == SEDGE_ERR_AGAIN; i++) {
        if (i) {
            for (int w = 0; w < (1 << (i < 5 ? i : 5)) * 10; w++) {
                if (d->cancel && *d->cancel)
                    return SEDGE_ERR_CLOSED;
                usleep(100 * 1000);
            }
        }
        rc = fetch_once(d, part, err, errlen);
    }
    if (rc) {
        if (rc != SEDGE_ERR_AGAIN && rc != SEDGE_ERR_CLOSED)
            unlink(part); /* nothing worth resuming */
        return rc;
    }
    if (rename(part, d->dest) != 0) {
        snprintf(err, errlen, "%s: %s", d->dest, strerror(errno));
        return SEDGE_ERR_IO;
    }
    return SEDGE_OK;
}
