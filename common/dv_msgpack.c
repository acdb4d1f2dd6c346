// dv_msgpack — checked msgpack decoding shared by every decoder of peer or
// file data (model files, protocol headers).
//
// msgpack-c's unpacker allocates an array's or map's element table as soon
// as it reads the count, before the elements: a 5-byte array32 header
// claiming 2^32 elements asks for ~100 GB. dv_msgpack_check walks the bytes
// first, without allocating, and refuses any count or length that cannot fit
// in what remains (every element takes at least one byte), so the unpacker
// only ever allocates in proportion to the input.
#include "dv_msgpack.h"

#include <string.h>

#include "dv_limits.h"

// First chunk of a message's zone: under glibc's large-bin threshold (1,024
// bytes with the chunk header), so that no malloc per message consolidates
// the fast bins.
#define MSGPACK_FIRST_ZONE 896
// Bytes over the tree's objects in a zone sized to them: each allocation in
// the zone is aligned (msgpack_object and its map pairs are multiples of
// the alignment; the slack covers a platform where they are not).
#define ZONE_SLACK 64

// What follows the msgpack type byte b: *skip payload bytes, *children
// nested objects (two per map entry), and *lenbytes big-endian length bytes
// before the payload, whose value dv_msgpack_check adds to one of the
// other two. The outputs start at 0. False for a byte msgpack never uses.
static bool
type_shape(uint8_t b, uint64_t *skip, uint64_t *children, size_t *lenbytes)
{
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        // fixint, nil, bool: nothing follows
    } else if (b >= 0x80 && b <= 0x8f) {
        *children = 2u * (b & 0x0fu);
    } else if (b >= 0x90 && b <= 0x9f) {
        *children = b & 0x0fu;
    } else if (b >= 0xa0 && b <= 0xbf) {
        *skip = b & 0x1fu;
    } else {
        switch (b) {
        case 0xca:
            *skip = 4;
            break;
        case 0xcb:
            *skip = 8;
            break;
        case 0xcc:
        case 0xd0:
            *skip = 1;
            break;
        case 0xcd:
        case 0xd1:
            *skip = 2;
            break;
        case 0xce:
        case 0xd2:
            *skip = 4;
            break;
        case 0xcf:
        case 0xd3:
            *skip = 8;
            break;
        case 0xd4:
            *skip = 2;
            break;
        case 0xd5:
            *skip = 3;
            break;
        case 0xd6:
            *skip = 5;
            break;
        case 0xd7:
            *skip = 9;
            break;
        case 0xd8:
            *skip = 17;
            break;
        case 0xc4:
        case 0xd9:
            *lenbytes = 1;
            break;
        case 0xc5:
        case 0xda:
        case 0xdc:
        case 0xde:
            *lenbytes = 2;
            break;
        case 0xc6:
        case 0xdb:
        case 0xdd:
        case 0xdf:
            *lenbytes = 4;
            break;
        case 0xc7:
            *lenbytes = 1;
            *skip = 1;
            break; // ext: size + type
        case 0xc8:
            *lenbytes = 2;
            *skip = 1;
            break;
        case 0xc9:
            *lenbytes = 4;
            *skip = 1;
            break;
        default:
            return false;
        }
    }
    return true;
}

// dv_msgpack_check, counting in *nested the objects held by arrays and
// maps (a map entry counts two): what msgpack-c's tree takes beyond the
// root, at one msgpack_object each.
// *deepest gets how deep arrays and maps nest (the root counted).
static int
check_counting(const uint8_t *p,
               size_t len,
               const char *what,
               size_t *nested,
               size_t *deepest,
               dv_error_t *err)
{
    size_t pos = 0;
    uint64_t pending = 1; // objects still to read
    size_t items = 0;
    // The arrays and maps open around the next object, innermost last:
    // the objects each still holds.
    uint64_t open[DV_MAX_MSGPACK_DEPTH];
    size_t depth = 0;
    *nested = 0;
    *deepest = 0;
    while (pending) {
        if (++items > DV_MAX_MSGPACK_ITEMS) {
            return dv_errorf(err, DV_EMSGSIZE,
                             "%s: more than %zu msgpack objects", what,
                             DV_MAX_MSGPACK_ITEMS);
        }
        if (pos >= len) {
            return dv_errorf(err, DV_EFORMAT, "%s: msgpack data ends early",
                             what);
        }
        uint8_t b = p[pos++];
        pending--;
        if (depth) {
            open[depth - 1]--; // this object is one of them
        }
        uint64_t skip = 0, children = 0;
        size_t lenbytes = 0;
        if (!type_shape(b, &skip, &children, &lenbytes)) {
            return dv_errorf(err, DV_EFORMAT,
                             "%s: invalid msgpack byte 0x%02x at %zu", what, b,
                             pos - 1);
        }
        if (lenbytes) {
            if (len - pos < lenbytes) {
                return dv_errorf(err, DV_EFORMAT, "%s: msgpack data ends early",
                                 what);
            }
            uint64_t n = 0;
            for (size_t i = 0; i < lenbytes; i++) {
                n = n << 8 | p[pos + i];
            }
            pos += lenbytes;
            if (b == 0xdc || b == 0xdd) {
                children = n;
            } else if (b == 0xde || b == 0xdf) {
                children = 2 * n;
            } else {
                skip += n;
            }
        }
        if (skip > len - pos) {
            return dv_errorf(err, DV_EFORMAT,
                             "%s: msgpack item at %zu runs past the end", what,
                             pos);
        }
        pos += (size_t)skip;
        if (children) {
            if (depth == DV_MAX_MSGPACK_DEPTH) {
                return dv_errorf(err, DV_EFORMAT,
                                 "%s: msgpack arrays and maps nested more "
                                 "than %d deep",
                                 what, DV_MAX_MSGPACK_DEPTH);
            }
            open[depth++] = children;
            *deepest = depth > *deepest ? depth : *deepest;
        }
        while (depth && open[depth - 1] == 0) {
            depth--; // the innermost is complete
        }
        pending += children;
        *nested += (size_t)children;
        // Every pending object takes at least one byte.
        if (pending > len - pos) {
            return dv_errorf(err, DV_EFORMAT,
                             "%s: msgpack counts exceed the data left", what);
        }
    }
    if (pos != len) {
        return dv_errorf(err, DV_EFORMAT,
                         "%s: %zu bytes after the top-level map", what,
                         len - pos);
    }
    return 0;
}

int
dv_msgpack_check(const uint8_t *p,
                 size_t len,
                 const char *what,
                 dv_error_t *err)
{
    size_t nested = 0, deepest = 0;
    return check_counting(p, len, what, &nested, &deepest, err);
}

int
dv_msgpack_unpack(msgpack_unpacked *out,
                  const uint8_t *p,
                  size_t len,
                  const char *what,
                  dv_error_t *err)
{
    size_t depth = 0;
    return dv_msgpack_unpack_depth(out, p, len, what, &depth, err);
}

int
dv_msgpack_unpack_depth(msgpack_unpacked *out,
                        const uint8_t *p,
                        size_t len,
                        const char *what,
                        size_t *depth,
                        dv_error_t *err)
{
    size_t nested = 0;
    int rc = check_counting(p, len, what, &nested, depth, err);
    if (rc) {
        return rc;
    }
    // msgpack_unpack_next would give every message a zone of 8 KiB
    // (MSGPACK_ZONE_CHUNK_SIZE): a malloc in glibc's large bins, which
    // first consolidates every fast bin, for each header the broker reads
    // (perf: ~20% of its CPU in echo W1). A header's objects take a few
    // hundred bytes; a zone that starts below the large bins grows by more
    // chunks for the rare big one (submit_many). msgpack_unpack is the
    // API that takes a caller's zone; the tree lives in out as before.
    // The check counted the tree's objects (strings and binaries stay in
    // p, referenced), so a big message gets one chunk of the size it needs
    // instead of growing by a chunk of MSGPACK_FIRST_ZONE at a time: a
    // `results` of 180 one-row results took ~130 mallocs that way (LD_PRELOAD
    // count). nested <= DV_MAX_MSGPACK_ITEMS bounds it.
    size_t zone = nested * sizeof(msgpack_object) + ZONE_SLACK;
    msgpack_unpacked_destroy(out);
    out->zone =
        msgpack_zone_new(zone > MSGPACK_FIRST_ZONE ? zone : MSGPACK_FIRST_ZONE);
    if (!out->zone) {
        return dv_errorf(err, DV_ENOMEM, "%s: out of memory", what);
    }
    size_t off = 0;
    msgpack_unpack_return ur =
        msgpack_unpack((const char *)p, len, &off, out->zone, &out->data);
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        return dv_errorf(
            err, ur == MSGPACK_UNPACK_NOMEM_ERROR ? DV_ENOMEM : DV_EFORMAT,
            "%s: msgpack decoding failed (%d)", what, (int)ur);
    }
    return 0;
}

const msgpack_object *
dv_msgpack_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        // An empty key's ptr is NULL (msgpack-c): no memcmp of it.
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            (klen == 0 || memcmp(k->via.str.ptr, key, klen) == 0)) {
            return &map->via.map.ptr[i].val;
        }
    }
    return NULL;
}

bool
dv_msgpack_uint(const msgpack_object *o, uint64_t *out)
{
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *out = o->via.u64;
        return true;
    }
    return false;
}

bool
dv_msgpack_double(const msgpack_object *o, double *out)
{
    if (!o) {
        return false;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = o->via.f64;
        return true;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double)o->via.u64;
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double)o->via.i64;
        return true;
    default:
        return false;
    }
}

void
dv_msgpack_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}
