/*
 * msgpack.c: a minimal msgpack encoder and decoder for the native client.
 *
 * The agent packs with msgpackr in plain mode (maps with string keys, no records),
 * which is standard msgpack, so a few dozen lines of C are enough and the client needs
 * nothing beyond libc. The reader trusts nothing: every length is checked against the
 * bytes actually received before it is used.
 */
#include "msgpack.h"

#include <stdlib.h>
#include <string.h>

/* ---- writing ------------------------------------------------------------------ */

void mp_put_raw(mp_writer *w, const void *p, size_t n) {
    if (w->failed || n == 0) return;
    if (n > w->cap - w->len) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap - w->len < n) {
            if (cap > SIZE_MAX / 2) { w->failed = 1; return; }
            cap *= 2;
        }
        uint8_t *b = realloc(w->buf, cap);
        if (!b) { w->failed = 1; return; }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

/* A tag byte followed by `bytes` bytes of v, big-endian. */
static void put_tagged(mp_writer *w, uint8_t tag, uint64_t v, int bytes) {
    uint8_t b[9];
    b[0] = tag;
    for (int i = 0; i < bytes; i++) b[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    mp_put_raw(w, b, 1 + (size_t)bytes);
}

void mp_put_map(mp_writer *w, uint32_t n) {
    if (n < 16) put_tagged(w, (uint8_t)(0x80 | n), 0, 0);
    else if (n <= 0xffff) put_tagged(w, 0xde, n, 2);
    else put_tagged(w, 0xdf, n, 4);
}

void mp_put_array(mp_writer *w, uint32_t n) {
    if (n < 16) put_tagged(w, (uint8_t)(0x90 | n), 0, 0);
    else if (n <= 0xffff) put_tagged(w, 0xdc, n, 2);
    else put_tagged(w, 0xdd, n, 4);
}

void mp_put_str(mp_writer *w, const char *s, size_t n) {
    if (n < 32) put_tagged(w, (uint8_t)(0xa0 | n), 0, 0);
    else if (n <= 0xff) put_tagged(w, 0xd9, n, 1);
    else if (n <= 0xffff) put_tagged(w, 0xda, n, 2);
    else if (n <= 0xffffffffu) put_tagged(w, 0xdb, n, 4);
    else { w->failed = 1; return; }
    mp_put_raw(w, s, n);
}

void mp_put_cstr(mp_writer *w, const char *s) { mp_put_str(w, s, strlen(s)); }

void mp_put_int(mp_writer *w, int64_t v) {
    if (v >= 0) {
        if (v < 128) put_tagged(w, (uint8_t)v, 0, 0);
        else if (v <= 0xff) put_tagged(w, 0xcc, (uint64_t)v, 1);
        else if (v <= 0xffff) put_tagged(w, 0xcd, (uint64_t)v, 2);
        else if (v <= 0xffffffff) put_tagged(w, 0xce, (uint64_t)v, 4);
        else put_tagged(w, 0xcf, (uint64_t)v, 8);
    } else if (v >= -32) put_tagged(w, (uint8_t)(int8_t)v, 0, 0);
    else if (v >= INT8_MIN) put_tagged(w, 0xd0, (uint64_t)v, 1);
    else if (v >= INT16_MIN) put_tagged(w, 0xd1, (uint64_t)v, 2);
    else if (v >= INT32_MIN) put_tagged(w, 0xd2, (uint64_t)v, 4);
    else put_tagged(w, 0xd3, (uint64_t)v, 8);
}

void mp_put_bool(mp_writer *w, int v) { put_tagged(w, v ? 0xc3 : 0xc2, 0, 0); }

/* ---- reading ------------------------------------------------------------------ */

enum kind { K_NIL, K_BOOL, K_UINT, K_INT, K_FLOAT, K_STR, K_BIN, K_EXT, K_ARRAY, K_MAP };

static size_t left(const mp_reader *r) { return (size_t)(r->end - r->p); }

/* Reads n bytes big-endian into *v. */
static int get_be(mp_reader *r, int n, uint64_t *v) {
    if (left(r) < (size_t)n) return -1;
    *v = 0;
    for (int i = 0; i < n; i++) *v = (*v << 8) | r->p[i];
    r->p += n;
    return 0;
}

/* Reads one value's header. For scalars *v is the value itself (ints, floats as raw
 * bits, bools) and the value is consumed; for str, bin and ext *v is the payload
 * length still to read; for arrays and maps it is the number of items that follow. */
static int header(mp_reader *r, enum kind *k, uint64_t *v) {
    if (left(r) < 1) return -1;
    uint8_t t = *r->p++;
    *v = 0;
    if (t <= 0x7f) { *k = K_UINT; *v = t; return 0; }
    if (t >= 0xe0) { *k = K_INT; *v = (uint64_t)(int64_t)(int8_t)t; return 0; }
    if (t <= 0x8f) { *k = K_MAP; *v = t & 0x0f; return 0; }
    if (t <= 0x9f) { *k = K_ARRAY; *v = t & 0x0f; return 0; }
    if (t <= 0xbf) { *k = K_STR; *v = t & 0x1f; return 0; }
    switch (t) {
    case 0xc0: *k = K_NIL; return 0;
    case 0xc2: case 0xc3: *k = K_BOOL; *v = t & 1; return 0;
    case 0xc4: case 0xc5: case 0xc6: *k = K_BIN; return get_be(r, 1 << (t - 0xc4), v);
    case 0xc7: case 0xc8: case 0xc9: /* ext 8/16/32: length, then a type byte */
        *k = K_EXT;
        if (get_be(r, 1 << (t - 0xc7), v) || left(r) < 1) return -1;
        r->p++;
        return 0;
    case 0xca: *k = K_FLOAT; return get_be(r, 4, v);
    case 0xcb: *k = K_FLOAT; return get_be(r, 8, v);
    case 0xcc: case 0xcd: case 0xce: case 0xcf: *k = K_UINT; return get_be(r, 1 << (t - 0xcc), v);
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        int n = 1 << (t - 0xd0);
        *k = K_INT;
        if (get_be(r, n, v)) return -1;
        /* sign-extend from n bytes */
        if (n == 1) *v = (uint64_t)(int64_t)(int8_t)*v;
        else if (n == 2) *v = (uint64_t)(int64_t)(int16_t)*v;
        else if (n == 4) *v = (uint64_t)(int64_t)(int32_t)*v;
        return 0;
    }
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: /* fixext: type byte, fixed data */
        *k = K_EXT;
        *v = 1u << (t - 0xd4);
        if (left(r) < 1) return -1;
        r->p++;
        return 0;
    case 0xd9: case 0xda: case 0xdb: *k = K_STR; return get_be(r, 1 << (t - 0xd9), v);
    case 0xdc: case 0xdd: *k = K_ARRAY; return get_be(r, 2 << (t - 0xdc), v);
    case 0xde: case 0xdf: *k = K_MAP; return get_be(r, 2 << (t - 0xde), v);
    default: return -1; /* 0xc1 is never used */
    }
}

/* Takes n payload bytes, if they are there. */
static int take(mp_reader *r, uint64_t n, const uint8_t **s) {
    if (n > left(r)) return -1;
    *s = r->p;
    r->p += n;
    return 0;
}

int mp_get_map(mp_reader *r, uint32_t *n) {
    enum kind k;
    uint64_t v;
    /* every entry takes at least two bytes: refuse counts the data cannot hold */
    if (header(r, &k, &v) || k != K_MAP || v > left(r) / 2) return -1;
    *n = (uint32_t)v;
    return 0;
}

int mp_get_array(mp_reader *r, uint32_t *n) {
    enum kind k;
    uint64_t v;
    /* every item takes at least a byte */
    if (header(r, &k, &v) || k != K_ARRAY || v > left(r)) return -1;
    *n = (uint32_t)v;
    return 0;
}

int mp_get_bool(mp_reader *r, int *b) {
    enum kind k;
    uint64_t v;
    if (header(r, &k, &v) || k != K_BOOL) return -1;
    *b = (int)v;
    return 0;
}

int mp_get_str(mp_reader *r, const char **s, uint32_t *n) {
    enum kind k;
    uint64_t v;
    if (header(r, &k, &v) || k != K_STR || take(r, v, (const uint8_t **)s)) return -1;
    *n = (uint32_t)v;
    return 0;
}

int mp_get_bytes(mp_reader *r, const uint8_t **s, uint32_t *n) {
    enum kind k;
    uint64_t v;
    if (header(r, &k, &v) || (k != K_BIN && k != K_STR) || take(r, v, s)) return -1;
    *n = (uint32_t)v;
    return 0;
}

int mp_get_int(mp_reader *r, int64_t *out) {
    enum kind k;
    uint64_t v;
    if (header(r, &k, &v)) return -1;
    if (k == K_INT || (k == K_UINT && v <= INT64_MAX)) {
        *out = (int64_t)v;
        return 0;
    }
    return -1;
}

static int skip(mp_reader *r, int depth) {
    enum kind k;
    uint64_t v;
    const uint8_t *ignored;
    if (depth > 64 || header(r, &k, &v)) return -1;
    switch (k) {
    case K_STR: case K_BIN: case K_EXT: return take(r, v, &ignored);
    case K_MAP:
    case K_ARRAY:
        if (k == K_MAP) v *= 2; /* a map is 2n values */
        if (v > left(r)) return -1; /* each value takes at least one byte */
        for (uint64_t i = 0; i < v; i++)
            if (skip(r, depth + 1)) return -1;
        return 0;
    default: return 0; /* scalars: header() consumed them */
    }
}

int mp_skip(mp_reader *r) { return skip(r, 0); }
