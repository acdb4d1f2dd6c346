// dv_crc32 — CRC-32 (IEEE 802.3, the zlib/PNG polynomial, reflected
// 0xEDB88320, initial and final XOR 0xFFFFFFFF): the checksum the broker's
// store seals every record with (broker/dv_store.c) and checks on every
// read and at recovery.
//
// Slicing-by-8 (Intel's, as in zlib and the Linux kernel): eight bytes per
// step through eight 1 KiB tables, against one table lookup per byte. The
// store's bytewise loop was 3-4% of a durable broker's CPU under W1 (perf)
// and is on the path of every record a recovery reads. Same values as the
// bytewise loop for every input (test_crc32 compares both). A plain
// function; thread-safe (the tables are built once, pthread_once).
#ifndef DV_CRC32_H
#define DV_CRC32_H

#include <stddef.h>
#include <stdint.h>

// The CRC-32 of p[0..n).
uint32_t dv_crc32(const void *p, size_t n);

// The same, one byte at a time (the reference the tests compare against).
uint32_t dv_crc32_bytewise(const void *p, size_t n);

#endif
