/* pki: CA creation and certificate issuing with OpenSSL 3. */
#include "pki.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CA_DAYS 3650
#define CERT_DAYS 1825

static sedge_err failed(char *err, size_t errlen, const char *what)
{
    char detail[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, detail, sizeof detail);
    snprintf(err, errlen, "%s%s%s", what, detail[0] ? ": " : "", detail);
    ERR_clear_error();
    return SEDGE_ERR_TLS;
}

static EVP_PKEY *new_key(void)
{
    return EVP_EC_gen("P-256");
}

static bool add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return false;
    bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* An unsigned certificate for `key`, CN = cn, issued by `issuer` (by
 * itself when issuer is NULL); the caller adds extensions and signs. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, int days)
{
    X509 *cert = X509_new();
    if (!cert)
        return NULL;
    uint8_t serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f; /* positive */
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    bool ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
    BN_free(bn);
    ok = ok && X509_set_version(cert, 2) && X509_gmtime_adj(X509_getm_notBefore(cert), -3600) &&
         X509_gmtime_adj(X509_getm_notAfter(cert), (long)days * 86400) &&
         X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                          -1, 0);
    ok = ok && X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

static bool sign(X509 *cert, EVP_PKEY *key)
{
    return X509_sign(cert, key, EVP_sha256()) > 0;
}

/* Write to path.tmp then rename, with the given mode. */
static sedge_err write_pem(const char *path, int mode, X509 *cert, EVP_PKEY *key, char *err,
                           size_t errlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return SEDGE_ERR_IO;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return SEDGE_ERR_IO;
    }
    bool ok = cert ? PEM_write_X509(f, cert) == 1
                   : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    if (fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return SEDGE_ERR_IO;
    }
    return SEDGE_OK;
}

static void join(char *out, size_t len, const char *dir, const char *name, const char *ext)
{
    snprintf(out, len, "%s/%s%s", dir, name, ext);
}

static bool is_ip(const char *s)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s);
    if (!ip)
        return false;
    ASN1_OCTET_STRING_free(ip);
    return true;
}

static sedge_err ensure_dir(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return SEDGE_OK;
    snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
    return SEDGE_ERR_IO;
}

sedge_err pki_ca_init(const char *dir, const char *core_name, const char *const *sans,
                      size_t san_count, bool force, char *err, size_t errlen)
{
    char path[4096];
    sedge_err rc = ensure_dir(dir, err, errlen);
    if (rc)
        return rc;
    join(path, sizeof path, dir, "ca", ".pem");
    if (!force && access(path, F_OK) == 0) {
        snprintf(err, errlen, "%s already exists (use --force to replace the CA)", path);
        return SEDGE_ERR_EXISTS;
    }
    EVP_PKEY *ca_key = new_key(), *core_key = new_key();
    X509 *ca = NULL, *core = NULL;
    rc = SEDGE_ERR_TLS;
    if (!ca_key || !core_key) {
        rc = failed(err, errlen, "cannot generate keys");
        goto done;
    }
    ca = make_cert(ca_key, "Sedge Group CA", NULL, CA_DAYS);
    if (!ca || !add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
        !add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !add_ext(ca, ca, NID_subject_key_identifier, "hash") || !sign(ca, ca_key)) {
        rc = failed(err, errlen, "cannot create the CA certificate");
        goto done;
    }
    char san[4096];
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    int n = snprintf(san, sizeof san, "DNS:localhost,IP:127.0.0.1,IP:::1%s%s",
                     host[0] ? ",DNS:" : "", host);
    for (size_t i = 0; i < san_count && n > 0 && (size_t)n < sizeof san; i++)
        n += snprintf(san + n, sizeof san - (size_t)n, ",%s:%s", is_ip(sans[i]) ? "IP" : "DNS",
                      sans[i]);
    core = make_cert(core_key, core_name, ca, CERT_DAYS);
    if (!core || !add_ext(core, ca, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(core, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
        !add_ext(core, ca, NID_ext_key_usage, "serverAuth,clientAuth") ||
        !add_ext(core, ca, NID_subject_alt_name, san) ||
        !add_ext(core, ca, NID_authority_key_identifier, "keyid") || !sign(core, ca_key)) {
        rc = failed(err, errlen, "cannot create the core certificate");
        goto done;
    }
    char p2[4096];
    if ((rc = write_pem((join(path, sizeof path, dir, "ca", ".key"), path), 0600, NULL, ca_key, err,
                        errlen)) ||
        (rc = write_pem((join(p2, sizeof p2, dir, "core", ".key"), p2), 0600, NULL, core_key, err,
                        errlen)) ||
        (rc = write_pem((join(p2, sizeof p2, dir, "core", ".pem"), p2), 0644, core, NULL, err,
                        errlen)) ||
        (rc = write_pem((join(p2, sizeof p2, dir, "ca", ".pem"), p2), 0644, ca, NULL, err, errlen)))
        goto done;
    rc = SEDGE_OK;
done:
    X509_free(ca);
    X509_free(core);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(core_key);
    return rc;
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

static bool valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 128)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == ':' || ch == '.';
        if (!ok)
            return false;
    }
    return name[0] != '.';
}

sedge_err pki_cert_issue(const char *dir, const char *name, char *err, size_t errlen)
{
    if (!valid_name(name)) {
        snprintf(err, errlen,
                 "invalid name '%s': use 1 to 128 of a-z A-Z 0-9 - _ : . (not starting with .)",
                 name);
        return SEDGE_ERR_INVALID;
    }
    char path[4096];
    join(path, sizeof path, dir, "ca", ".pem");
    X509 *ca = read_cert(path);
    join(path, sizeof path, dir, "ca", ".key");
    EVP_PKEY *ca_key = read_key(path);
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    sedge_err rc = SEDGE_ERR_TLS;
    if (!ca || !ca_key) {
        snprintf(err, errlen,
                 "cannot read the CA from %s/ca.pem and %s/ca.key (run 'sedgectl ca "
                 "init --dir %s' first)",
                 dir, dir, dir);
        rc = SEDGE_ERR_NOT_FOUND;
        goto done;
    }
    key = new_key();
    cert = key ? make_cert(key, name, ca, CERT_DAYS) : NULL;
    if (!cert || !add_ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(cert, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
        !add_ext(cert, ca, NID_ext_key_usage, "clientAuth") ||
        !add_ext(cert, ca, NID_authority_key_identifier, "keyid") || !sign(cert, ca_key)) {
        rc = failed(err, errlen, "cannot create the certificate");
        goto done;
    }
    char p2[4096];
    if ((rc = write_pem((join(p2, sizeof p2, dir, name, ".key"), p2), 0600, NULL, key, err,
                        errlen)) ||
        (rc = write_pem((join(p2, sizeof p2, dir, name, ".pem"), p2), 0644, cert, NULL, err,
                        errlen)))
        goto done;
    rc = SEDGE_OK;
done:
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    return rc;
}

char *pki_cert_cn(const char *pem_file)
{
    X509 *x = read_cert(pem_file);
    if (!x)
        return NULL;
    char cn[256];
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    X509_free(x);
    return n > 0 ? strndup(cn, (size_t)n) : NULL;
}
