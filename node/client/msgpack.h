/*
 * msgpack.h: the little msgpack the native client needs (see msgpack.c).
 *
 * Writing: maps, arrays, str, int and bool into a growable buffer.
 * Reading: a bounds-checked cursor over one received value, with typed getters and a
 * skip that understands every msgpack type, so unknown keys never confuse the client.
 */
#ifndef MESHCC_MSGPACK_H
#define MESHCC_MSGPACK_H

#include <stddef.h>
#include <stdint.h>

/* Growable output buffer. An allocation failure sets `failed` and every later write
 * is a no-op, so the caller checks once at the end. Start from {0}. */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
    int failed;
} mp_writer;

void mp_put_raw(mp_writer *w, const void *p, size_t n);
void mp_put_map(mp_writer *w, uint32_t n);
void mp_put_array(mp_writer *w, uint32_t n);
void mp_put_str(mp_writer *w, const char *s, size_t n);
void mp_put_cstr(mp_writer *w, const char *s);
void mp_put_int(mp_writer *w, int64_t v);
void mp_put_bool(mp_writer *w, int v);

/* Cursor over received bytes. Every getter returns 0 on success and -1 when the next
 * value has another type or does not fit in the bytes left; after a failure the
 * cursor is unspecified and the caller gives up on the whole message. */
typedef struct {
    const uint8_t *p, *end;
} mp_reader;

int mp_get_map(mp_reader *r, uint32_t *n);
int mp_get_array(mp_reader *r, uint32_t *n);
int mp_get_bool(mp_reader *r, int *b);
int mp_get_str(mp_reader *r, const char **s, uint32_t *n);
/* bin, or str (a sender may send text where bytes are expected) */
int mp_get_bytes(mp_reader *r, const uint8_t **s, uint32_t *n);
int mp_get_int(mp_reader *r, int64_t *v);
/* Skips one value of any type, nested at most 64 deep. */
int mp_skip(mp_reader *r);

#endif
