/* The SSRF guard's address rules: a CIDR parser and a classifier of
 * socket addresses.  Pure functions; the libcurl transport calls
 * wh__ssrf_check() from its open-socket callback, i.e. on the address it
 * is about to connect to after name resolution, so numeric spellings
 * (127.1, 2130706433, [::ffff:127.0.0.1]) and DNS answers that change
 * between check and use cannot get past it.
 *
 * Every address is handled as 16 bytes: IPv4 a.b.c.d as ::ffff:a.b.c.d, so
 * an IPv4 rule also covers the IPv4-mapped IPv6 spelling of the address.
 * Addresses that embed an IPv4 address (NAT64 64:ff9b::/96, 6to4
 * 2002::/16) are judged by the embedded address. */
#include "internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rule {
    const char *cidr;   /* as written in messages */
    const char *what;   /* "loopback" */
} rule;

/* First match wins: the narrower ranges come first. */
static const rule v4_rules[] = {
    {"0.0.0.0/32", "unspecified"},
    {"0.0.0.0/8", "\"this network\" (reserved)"},
    {"10.0.0.0/8", "private"},
    {"100.64.0.0/10", "shared address space (CGNAT)"},
    {"127.0.0.0/8", "loopback"},
    {"169.254.0.0/16", "link-local"},
    {"172.16.0.0/12", "private"},
    {"192.0.0.0/24", "IETF protocol assignments (reserved)"},
    {"192.0.2.0/24", "documentation (TEST-NET-1)"},
    {"192.88.99.0/24", "6to4 relay anycast (reserved)"},
    {"192.168.0.0/16", "private"},
    {"198.18.0.0/15", "benchmarking (reserved)"},
    {"198.51.100.0/24", "documentation (TEST-NET-2)"},
    {"203.0.113.0/24", "documentation (TEST-NET-3)"},
    {"224.0.0.0/4", "multicast"},
    {"255.255.255.255/32", "broadcast"},
    {"240.0.0.0/4", "reserved"},
};

static const rule v6_rules[] = {
    {"::/128", "unspecified"},
    {"::1/128", "loopback"},
    {"64:ff9b:1::/48", "local-use NAT64 (reserved)"},
    {"::/8", "reserved (IPv4-compatible and other)"},
    {"100::/64", "discard-only (reserved)"},
    {"2001:db8::/32", "documentation"},
    {"2001::/23", "IETF protocol assignments (reserved)"},
    {"3fff::/20", "documentation"},
    {"5f00::/16", "segment routing (reserved)"},
    {"fc00::/7", "unique local (private)"},
    {"fe80::/10", "link-local"},
    {"fec0::/10", "site-local (deprecated)"},
    {"ff00::/8", "multicast"},
};

#define N_V4 (sizeof v4_rules / sizeof v4_rules[0])
#define N_V6 (sizeof v6_rules / sizeof v6_rules[0])

static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const uint8_t nat64_prefix[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

int wh__cidr_parse(const char *s, wh__cidr *out, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    if (!s || !out) {
        *why = "NULL";
        return WH_E_INVAL;
    }
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof buf) {
        *why = "expected an address or CIDR range such as 10.0.0.0/8 or fd00::/8";
        return WH_E_INVAL;
    }
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    memset(out, 0, sizeof *out);
    int max;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memcpy(out->addr, mapped_prefix, 12);
        memcpy(out->addr + 12, &a4, 4);
        max = 32;
    } else if (inet_pton(AF_INET6, buf, &a6) == 1) {
        memcpy(out->addr, &a6, 16);
        max = 128;
    } else {
        *why = "not an IPv4 or IPv6 address (expected e.g. 10.0.0.0/8 or fd00::/8)";
        return WH_E_INVAL;
    }
    int bits = max;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3) {
            *why = "prefix length missing or too long";
            return WH_E_INVAL;
        }
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9') {
                *why = "prefix length is not a number";
                return WH_E_INVAL;
            }
            bits = bits * 10 + (*p - '0');
        }
        if (bits > max) {
            *why = max == 32 ? "IPv4 prefix length above 32" : "IPv6 prefix length above 128";
            return WH_E_INVAL;
        }
    }
    out->bits = (uint8_t)(max == 32 ? bits + 96 : bits);
    /* host bits must be zero: "10.1.2.3/8" is a typo more often than not */
    for (int i = out->bits; i < 128; i++)
        if (out->addr[i / 8] & (0x80u >> (i % 8))) {
            *why = "address has bits set past the prefix length";
            return WH_E_INVAL;
        }
    return WH_OK;
}

int wh__cidr_contains(const wh__cidr *c, const uint8_t addr[16])
{
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, addr, (size_t)full) != 0) return 0;
    if (rest) {
        uint8_t m = (uint8_t)(0xffu << (8 - rest));
        if ((c->addr[full] & m) != (addr[full] & m)) return 0;
    }
    return 1;
}

static int allowed(const uint8_t a[16], const wh__cidr *allow, size_t n_allow)
{
    for (size_t i = 0; i < n_allow; i++)
        if (wh__cidr_contains(&allow[i], a)) return 1;
    return 0;
}

/* The tables are parsed on each call (a few microseconds, once per new
 * connection): no shared state, so engines on several threads are fine. */
static const rule *match(const uint8_t a[16])
{
    wh__cidr c;
    int v4 = memcmp(a, mapped_prefix, 12) == 0;
    const rule *t = v4 ? v4_rules : v6_rules;
    size_t n = v4 ? N_V4 : N_V6;
    for (size_t i = 0; i < n; i++)
        if (wh__cidr_parse(t[i].cidr, &c, NULL) == WH_OK && wh__cidr_contains(&c, a))
            return &t[i];
    return NULL;
}

void wh__addr_format(const uint8_t a[16], char *out, size_t size)
{
    char tmp[INET6_ADDRSTRLEN];
    if (memcmp(a, mapped_prefix, 12) == 0)
        inet_ntop(AF_INET, a + 12, tmp, sizeof tmp);
    else
        inet_ntop(AF_INET6, a, tmp, sizeof tmp);
    snprintf(out, size, "%s", tmp);
}

int wh__ssrf_check_addr(const uint8_t addr[16], int is_v6, const wh__cidr *allow,
                        size_t n_allow, char *msg, size_t msg_size)
{
    char shown[INET6_ADDRSTRLEN + 8], inner[INET6_ADDRSTRLEN];
    uint8_t v4[16];
    const char *via = NULL;

    /* how the address was spelled: an IPv6 socket address that is
     * IPv4-mapped is shown as such */
    if (is_v6 && memcmp(addr, mapped_prefix, 12) == 0) {
        char t[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, addr + 12, t, sizeof t);
        snprintf(shown, sizeof shown, "::ffff:%s", t);
        via = "IPv4-mapped ::ffff:0:0/96";
    } else {
        wh__addr_format(addr, shown, sizeof shown);
    }
    if (allowed(addr, allow, n_allow)) return 0;

    /* an embedded IPv4 address is judged as itself */
    const uint8_t *judge = addr;
    if (memcmp(addr, nat64_prefix, 12) == 0) {
        memcpy(v4, mapped_prefix, 12);
        memcpy(v4 + 12, addr + 12, 4);
        judge = v4;
        via = "NAT64 64:ff9b::/96";
    } else if (addr[0] == 0x20 && addr[1] == 0x02) {
        memcpy(v4, mapped_prefix, 12);
        memcpy(v4 + 12, addr + 2, 4);
        judge = v4;
        via = "6to4 2002::/16";
    }
    if (judge != addr && allowed(judge, allow, n_allow)) return 0;

    const rule *r = match(judge);
    if (!r) return 0;
    if (msg && msg_size) {
        if (judge != addr) {
            wh__addr_format(judge, inner, sizeof inner);
            snprintf(msg, msg_size, "%s is %s (%s, embedded %s via %s)", shown, r->what,
                     r->cidr, inner, via);
        } else if (via) {
            snprintf(msg, msg_size, "%s is %s (%s via %s)", shown, r->what, r->cidr, via);
        } else {
            snprintf(msg, msg_size, "%s is %s (%s)", shown, r->what, r->cidr);
        }
    }
    return 1;
}

int wh__ssrf_check(const struct sockaddr *sa, size_t len, const wh__cidr *allow,
                   size_t n_allow, char *msg, size_t msg_size)
{
    uint8_t a[16];
    if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        memcpy(a, mapped_prefix, 12);
        memcpy(a + 12, &s4->sin_addr, 4);
        return wh__ssrf_check_addr(a, 0, allow, n_allow, msg, msg_size);
    }
    if (sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(a, &s6->sin6_addr, 16);
        return wh__ssrf_check_addr(a, 1, allow, n_allow, msg, msg_size);
    }
    if (msg && msg_size)
        snprintf(msg, msg_size, "address family %d is not IPv4 or IPv6",
                 sa ? (int)sa->sa_family : -1);
    return 1;
}

int wh__cidr_list_set(wh__cidr **list, size_t *n, const wh__cidr *src, size_t n_src)
{
    wh__cidr *copy = NULL;
    if (n_src) {
        copy = wh__calloc(n_src, sizeof *copy);
        if (!copy) return WH_E_NOMEM;
        memcpy(copy, src, n_src * sizeof *copy);
    }
    free(*list);
    *list = copy;
    *n = n_src;
    return WH_OK;
}
