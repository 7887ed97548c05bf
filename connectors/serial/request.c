/*
 * request: parsing Greengrass's Serial Stream requests and building its
 * replies. Lengths are bounded before anything is allocated for them:
 * 63994 bytes to read, 128000 to write, base64 checked strictly.
 */
#include "request.h"

#include "connector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool serial_topic_parse(const char *topic, serial_request_t *out)
{
    memset(out, 0, sizeof *out);
    if (strncmp(topic, "serial/", 7) != 0)
        return false;
    const char *thing = topic + 7;
    const char *slash = strchr(thing, '/');
    if (!slash || slash == thing || (size_t)(slash - thing) >= sizeof out->thing)
        return false;
    const char *kind = slash + 1;
    const char *rest;
    if (strncmp(kind, "read/", 5) == 0) {
        out->op = SERIAL_READ;
        rest = kind + 5;
    } else if (strncmp(kind, "write/", 6) == 0) {
        out->op = SERIAL_WRITE;
        rest = kind + 6;
    } else {
        return false;
    }
    if (!*rest || strlen(rest) + 1 >= sizeof out->port)
        return false;
    memcpy(out->thing, thing, (size_t)(slash - thing));
    out->port[0] = '/';
    memcpy(out->port + 1, rest, strlen(rest) + 1);
    return true;
}

static bool type_field(json_t *doc, serial_request_t *r, char *why, size_t why_len)
{
    const char *type = json_string_value(json_object_get(doc, "type"));
    if (!type) {
        snprintf(why, why_len, "Missing or invalid type field (ascii or hex)");
        return false;
    }
    if (strcasecmp(type, "ascii") != 0 && strcasecmp(type, "hex") != 0) {
        snprintf(why, why_len, "Invalid type field: expected ascii or hex");
        return false;
    }
    r->hex = strcasecmp(type, "hex") == 0;
    return true;
}

/* "30" as Greengrass sends it, or 30. */
static bool length_field(json_t *doc, serial_request_t *r, char *why, size_t why_len)
{
    json_t *v = json_object_get(doc, "readLength");
    long long n = -1;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        n = 0;
        for (const char *p = s; *p && n >= 0; p++)
            n = (*p >= '0' && *p <= '9' && n <= SERIAL_MAX_READ) ? n * 10 + (*p - '0') : -1;
        if (!*s)
            n = -1;
    } else if (!v) {
        snprintf(why, why_len, "Missing readLength field");
        return false;
    }
    if (n < 1 || n > SERIAL_MAX_READ) {
        snprintf(why, why_len, "Invalid readLength field: expected a number from 1 to %d",
                 SERIAL_MAX_READ);
        return false;
    }
    r->read_length = (size_t)n;
    return true;
}

static bool data_field(json_t *doc, serial_request_t *r, char *why, size_t why_len)
{
    json_t *v = json_object_get(doc, "data");
    if (!json_is_string(v)) {
        snprintf(why, why_len, "%s data field: expected a string", v ? "Invalid" : "Missing");
        return false;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (r->hex) {
        if (n > (SERIAL_MAX_WRITE + 2) / 3 * 4 || !conn_base64_decode(s, n, &r->data, &r->data_len)) {
            snprintf(why, why_len, "Invalid data field: type hex takes base64 of at most %d bytes",
                     SERIAL_MAX_WRITE);
            return false;
        }
    } else {
        if (n > SERIAL_MAX_WRITE || !(r->data = malloc(n ? n : 1))) {
            snprintf(why, why_len, "Invalid data field: at most %d bytes", SERIAL_MAX_WRITE);
            return false;
        }
        memcpy(r->data, s, n);
        r->data_len = n;
    }
    if (r->data_len > SERIAL_MAX_WRITE || r->data_len == 0) {
        snprintf(why, why_len, "Invalid data field: 1 to %d bytes to write", SERIAL_MAX_WRITE);
        return false;
    }
    return true;
}

bool serial_payload_parse(const uint8_t *data, size_t len, serial_request_t *r, char *why,
                          size_t why_len)
{
    json_t *doc = conn_request_load(data, len, SERIAL_MAX_REQUEST_BYTES, why, why_len);
    if (!doc)
        return false;
    json_t *id = json_object_get(doc, "id");
    r->id = id ? json_incref(id) : NULL;
    bool ok;
    if (id && (!json_is_string(id) || json_string_length(id) == 0)) {
        snprintf(why, why_len, "Invalid id field: expected a non-empty string");
        ok = false;
    } else {
        ok = type_field(doc, r, why, why_len) &&
             (r->op == SERIAL_READ ? length_field(doc, r, why, why_len)
                                   : data_field(doc, r, why, why_len));
    }
    json_decref(doc);
    return ok;
}

void serial_request_release(serial_request_t *r)
{
    json_decref(r->id);
    free(r->data);
    r->id = NULL;
    r->data = NULL;
}

void serial_reply_topic(const char *thing, const char *kind, const char *port, char *buf,
                        size_t len)
{
    snprintf(buf, len, "serial/%s/%s/%s", thing, kind, port[0] == '/' ? port + 1 : port);
}

json_t *serial_status(json_t *id, const char *error_message)
{
    json_t *response = json_object();
    json_object_set_new(response, "status", json_string(error_message ? "fail" : "success"));
    if (error_message)
        json_object_set_new(response, "error_message", json_string(error_message));
    json_t *doc = json_object();
    json_object_set_new(doc, "response", response);
    if (id)
        json_object_set(doc, "id", id);
    return doc;
}

/* Text for JSON: each byte that is not part of valid UTF-8 becomes U+FFFD
 * (binary data is read with type hex). */
static json_t *text_of(const uint8_t *data, size_t len)
{
    json_t *s = json_stringn((const char *)data, len);
    if (s)
        return s;
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = 1;
        uint8_t c = data[i];
        if (c >= 0xc2 && c <= 0xdf)
            n = 2;
        else if (c >= 0xe0 && c <= 0xef)
            n = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 4;
        json_t *probe = c >= 0x80 && i + n <= len ? json_stringn((const char *)data + i, n) : NULL;
        if (c < 0x80) {
            out[o++] = (char)c;
        } else if (probe) {
            memcpy(out + o, data + i, n);
            o += n;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            n = 1;
        }
        json_decref(probe);
        i += n;
    }
    s = json_stringn(out, o);
    free(out);
    return s;
}

json_t *serial_read_response(json_t *id, const uint8_t *data, size_t len, bool hex)
{
    json_t *doc = json_object();
    if (hex) {
        char *b64 = conn_base64_encode(data, len);
        json_object_set_new(doc, "data", json_string(b64 ? b64 : ""));
        free(b64);
    } else {
        json_t *t = text_of(data, len);
        json_object_set_new(doc, "data", t ? t : json_string(""));
    }
    if (id)
        json_object_set(doc, "id", id);
    return doc;
}
