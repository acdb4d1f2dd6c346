// dv_test_relay — a raw TCP relay for tests that must see the bytes on the
// wire: it listens on 127.0.0.1 (ephemeral port), relays every accepted
// connection to 127.0.0.1:target_port in both directions, and keeps a copy
// of everything it forwarded, so a test can assert that a payload does (plain
// tcp) or does not (CURVE) cross the wire in plaintext. It can also damage
// what it forwards (dv_relay_corrupt): a peer's check of what it received
// then has something to find.
//
// One thread of its own per relay; the functions below are called from the
// test's thread and may be called while connections are being relayed.
#ifndef DV_TEST_RELAY_H
#define DV_TEST_RELAY_H

#include <stdbool.h>
#include <stddef.h>

// Connections relayed at once; one more is accepted and closed at once.
#define DV_RELAY_MAX_PAIRS 64
// Bytes recorded, both directions together: 64 MiB holds any test's traffic
// several times over; beyond it bytes are still relayed but not recorded.
#define DV_RELAY_MAX_CAPTURE ((size_t)64 << 20)

typedef struct dv_relay dv_relay_t;

// Listen on 127.0.0.1 on an ephemeral port and relay every accepted
// connection to 127.0.0.1:target_port (each in both directions), on a thread
// of its own. A connection whose upstream connect fails is closed. Returns
// NULL (with a message on stderr) on failure; *port gets the listening port.
// Caller owns the result (dv_relay_stop).
dv_relay_t *dv_relay_start(int target_port, int *port);

// A copy of every byte relayed so far, both directions, all connections, in
// arrival order (up to DV_RELAY_MAX_CAPTURE); *len its length. A NUL follows
// the bytes (not counted). Caller frees the result; never NULL.
unsigned char *dv_relay_captured(dv_relay_t *r, size_t *len);

// Stop the thread, close every socket, free; sets *r to NULL. NULL-safe,
// idempotent. Never kills or signals anything.
void dv_relay_stop(dv_relay_t **r);

// Does needle (n bytes) occur in the captured bytes? (memmem over
// dv_relay_captured; true when n is 0.)
bool dv_relay_saw(dv_relay_t *r, const void *needle, size_t n);

// Longest needle dv_relay_corrupt takes, bytes.
#define DV_RELAY_MAX_NEEDLE 64

// From now on, damage the next `times` occurrences of needle (1 to
// DV_RELAY_MAX_NEEDLE bytes) in what flows from the target towards the
// accepted clients: the last byte of each is inverted before it is passed
// on. An occurrence split across reads is found too (its last byte is always
// in the read that completes it). The capture keeps the bytes as they were
// received. Replaces an earlier call's needle and count.
void
dv_relay_corrupt(dv_relay_t *r, const void *needle, size_t n, unsigned times);

// How many occurrences dv_relay_corrupt has damaged so far.
unsigned dv_relay_corrupted(dv_relay_t *r);

// Did the traffic exceed DV_RELAY_MAX_CAPTURE, so that later bytes were
// relayed but not recorded (and dv_relay_saw may miss them)?
bool dv_relay_overflowed(dv_relay_t *r);

#endif
