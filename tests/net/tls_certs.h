/* SPDX-License-Identifier: MIT */
/*
 * Throwaway certificates for the TLS tests, made at test time with the
 * `openssl` command in a mkdtemp directory:
 *   - a CA (ca.pem / ca.key, self-signed, CA:TRUE),
 *   - a server certificate for localhost (server.pem / server.key) signed by
 *     the CA, subjectAltName DNS:localhost, IP:127.0.0.1, IP:::1,
 *   - a self-signed certificate for localhost not from the CA (self.pem /
 *     self.key),
 *   - an expired certificate for localhost signed by the CA (expired.pem,
 *     key server.key; valid only on 2020-01-01), made with `openssl ca
 *     -startdate/-enddate`.
 * Keys are EC P-256 (fast to make).  Static functions only, so every test
 * program (and later the HTTP tests) can include it.
 *
 *     struct tls_certs c;
 *     if (!tls_certs_have_openssl()) return 77;   (skip)
 *     assert_int_equal(tls_certs_make(&c), 0);
 *     ... c.ca_cert, c.server_cert, c.server_key ...
 *     tls_certs_cleanup(&c);
 */
#ifndef WEFT_TESTS_NET_TLS_CERTS_H
#define WEFT_TESTS_NET_TLS_CERTS_H

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tls_certs {
    char dir[64];
    char ca_cert[PATH_MAX];
    char ca_key[PATH_MAX];
    char server_cert[PATH_MAX];
    char server_key[PATH_MAX];
    char self_cert[PATH_MAX];
    char self_key[PATH_MAX];
    char expired_cert[PATH_MAX]; /* key: server_key */
    bool have_expired;
};

/* Whether the `openssl` command can be run. */
static bool tls_certs_have_openssl(void)
{
    return system("openssl version >/dev/null 2>&1") == 0;
}

static const char tls_certs_cnf[] =
    "[req]\n"
    "distinguished_name = dn\n"
    "prompt = no\n"
    "[dn]\n"
    "CN = weft test\n"
    "[v3_ca]\n"
    "basicConstraints = critical,CA:TRUE\n"
    "keyUsage = critical,keyCertSign,cRLSign\n"
    "subjectKeyIdentifier = hash\n"
    "[v3_leaf]\n"
    "basicConstraints = critical,CA:FALSE\n"
    "keyUsage = critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage = serverAuth,clientAuth\n"
    "subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1\n"
    "[ca]\n"
    "default_ca = weft\n"
    "[weft]\n"
    "dir = .\n"
    "database = index.txt\n"
    "new_certs_dir = .\n"
    "serial = serial\n"
    "default_md = sha256\n"
    "policy = pol\n"
    "copy_extensions = none\n"
    "unique_subject = no\n"
    "[pol]\n"
    "commonName = supplied\n";

/* Run `cmd` in c->dir, its output going to openssl.log.  Returns 0 or -1
 * (and prints the log). */
static int tls_certs_sh(const struct tls_certs *c, const char *cmd)
{
    char line[4096];
    snprintf(line, sizeof line, "cd '%s' && ( %s ) >>openssl.log 2>&1", c->dir, cmd);
    if (system(line) == 0)
        return 0;
    fprintf(stderr, "tls_certs: failed: %s\n", cmd);
    snprintf(line, sizeof line, "cat '%s/openssl.log' >&2", c->dir);
    if (system(line) != 0)
        fprintf(stderr, "tls_certs: no log\n");
    return -1;
}

/* Remove c->dir and everything in it (it holds plain files only). */
static void tls_certs_cleanup(struct tls_certs *c)
{
    if (c->dir[0] == '\0')
        return;
    DIR *d = opendir(c->dir);
    if (d) {
        struct dirent *e;
        char path[PATH_MAX];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", c->dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(c->dir);
    c->dir[0] = '\0';
}

#define TLS_CERTS_KEY "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"

/* Make the certificates.  Returns 0, or -1 (nothing left behind). */
static int tls_certs_make(struct tls_certs *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "/tmp/weft-tls-XXXXXX");
    if (!mkdtemp(c->dir)) {
        perror("tls_certs: mkdtemp");
        c->dir[0] = '\0';
        return -1;
    }
#define TLS_CERTS_PATH(field, name) snprintf(c->field, sizeof c->field, "%s/" name, c->dir)
    TLS_CERTS_PATH(ca_cert, "ca.pem");
    TLS_CERTS_PATH(ca_key, "ca.key");
    TLS_CERTS_PATH(server_cert, "server.pem");
    TLS_CERTS_PATH(server_key, "server.key");
    TLS_CERTS_PATH(self_cert, "self.pem");
    TLS_CERTS_PATH(self_key, "self.key");
    TLS_CERTS_PATH(expired_cert, "expired.pem");
#undef TLS_CERTS_PATH

    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/weft.cnf", c->dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(tls_certs_cnf, f) < 0 || fclose(f) != 0) {
        perror("tls_certs: weft.cnf");
        tls_certs_cleanup(c);
        return -1;
    }
    static const char *const steps[] = {
        /* the CA */
        "openssl req -x509 -config weft.cnf -extensions v3_ca " TLS_CERTS_KEY
        " -keyout ca.key -out ca.pem -days 3 -subj '/CN=weft test CA'",
        /* the server certificate, signed by the CA */
        "openssl req -new -config weft.cnf " TLS_CERTS_KEY
        " -keyout server.key -out server.csr -subj /CN=localhost",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 3"
        " -extfile weft.cnf -extensions v3_leaf -out server.pem",
        /* self-signed, not from the CA */
        "openssl req -x509 -config weft.cnf -extensions v3_leaf " TLS_CERTS_KEY
        " -keyout self.key -out self.pem -days 3 -subj /CN=localhost",
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (tls_certs_sh(c, steps[i]) != 0) {
            tls_certs_cleanup(c);
            return -1;
        }
    }
    /* expired: optional (openssl ca with explicit dates) */
    c->have_expired =
        tls_certs_sh(c, "touch index.txt && echo 03 >serial && "
                        "openssl ca -batch -config weft.cnf -extensions v3_leaf -cert ca.pem"
                        " -keyfile ca.key -in server.csr -notext -startdate 20200101000000Z"
                        " -enddate 20200102000000Z -out expired.pem") == 0;
    return 0;
}

#undef TLS_CERTS_KEY

#endif
