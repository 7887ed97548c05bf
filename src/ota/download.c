/*
 * download: a bundle or an artifact over HTTP(S) with libcurl, into
 * DEST.part, renamed DEST once whole. A cut (connection lost, no progress
 * for `stall_s`, the core stopped) leaves DEST.part; the next attempt, in
 * this call or after a restart, asks for the rest with a Range request and
 * starts again from zero only when the server ignores it. Blocking: run it
 * off the event loop.
 */
#include "ota.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
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
} fetch_t;

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
    fetch_t *f = ctx;
    size_t len = size * n;
    if (len > 9 && memcmp(data, "HTTP/", 5) == 0) {
        const char *sp = memchr(data, ' ', len);
        f->status = sp ? strtol(sp + 1, NULL, 10) : 0;
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
    return len;
}

static int on_progress(void *ctx, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un)
{
    (void)ut;
    (void)un;
    fetch_t *f = ctx;
    if (f->d->cancel && *f->d->cancel)
        return 1;
    if (f->d->progress && (f->status == 200 || f->status == 206))
        f->d->progress(f->d->ctx, f->have + (uint64_t)now,
                       total > 0 ? f->have + (uint64_t)total : 0);
    return 0;
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
    if (d->max_rate)
        curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)d->max_rate);
    if (d->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, d->ca_file);
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

void ota_download_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
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
