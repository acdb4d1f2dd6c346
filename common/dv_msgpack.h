// dv_msgpack — checked msgpack decoding for bytes from files and peers.
//
// Decode untrusted msgpack with dv_msgpack_unpack (check, then msgpack-c),
// never with msgpack_unpack_next directly: see dv_msgpack.c for the
// allocation hazard the check closes. The readers below look up and convert
// fields of a decoded object tree without trusting its types.
#ifndef DV_MSGPACK_H
#define DV_MSGPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "dv_err.h"

// A string object's bytes, never NULL: msgpack-c gives an empty string a
// NULL ptr, and memcpy, memchr and memcmp may not be handed one even for
// 0 bytes (undefined behaviour that UBSan checks in memcmp only).
static inline const char *
dv_msgpack_str_ptr(const msgpack_object *o)
{
    return o->via.str.ptr ? o->via.str.ptr : "";
}

// Check that p[0..len) is exactly one well-formed msgpack object whose every
// announced count and length fits in the bytes that remain, and that holds
// at most DV_MAX_MSGPACK_ITEMS objects in arrays and maps nested at most
// DV_MAX_MSGPACK_DEPTH deep. Returns 0, DV_EFORMAT or DV_EMSGSIZE (too many
// objects) with a reason starting with `what` ("body", "header").
int dv_msgpack_check(const uint8_t *p,
                     size_t len,
                     const char *what,
                     dv_error_t *err);

// dv_msgpack_check, then decode into *out (initialized by the caller with
// msgpack_unpacked_init; release with msgpack_unpacked_destroy either way).
// Returns 0, DV_EFORMAT or DV_ENOMEM. out->data is valid while *out lives;
// strings and bins in it point into p, which must outlive it too.
int dv_msgpack_unpack(msgpack_unpacked *out,
                      const uint8_t *p,
                      size_t len,
                      const char *what,
                      dv_error_t *err);

// dv_msgpack_unpack, and *depth gets how deep its arrays and maps nest (the
// root counted; at most DV_MAX_MSGPACK_DEPTH): for a limit of the caller's.
int dv_msgpack_unpack_depth(msgpack_unpacked *out,
                            const uint8_t *p,
                            size_t len,
                            const char *what,
                            size_t *depth,
                            dv_error_t *err);

// Value of string key in map, or NULL when map is not a map or lacks key.
// Borrowed from the tree.
const msgpack_object *dv_msgpack_get(const msgpack_object *map,
                                     const char *key);

// Pack s (NUL-terminated) as a msgpack str.
void dv_msgpack_pack_str(msgpack_packer *pk, const char *s);

// o as a non-negative integer. False when o is NULL or another type.
bool dv_msgpack_uint(const msgpack_object *o, uint64_t *out);

// o as a number (float or integer). False when o is NULL or another type.
bool dv_msgpack_double(const msgpack_object *o, double *out);

#endif
