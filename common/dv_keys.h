// dv_keys — CURVE key files and the broker's authorized-keys folder.
//
// A key file is czmq's zcert text format (ZPL, ZeroMQ RFC 4): a `metadata`
// section and a `curve` section holding `public-key` and, in a secret file,
// `secret-key` (both Z85, 40 characters). `drover keygen --out alice`
// writes two files:
//
//   alice.key  public + secret key + metadata, mode 0600: stays with its
//              owner (a client, a worker, the broker itself)
//   alice.pub  public key + metadata, mode 0644: goes into the broker's
//              authorized-keys folder
//
// Metadata, read from the file as written (the broker trusts its folder):
//   name    the key's id (logs, audit, job ownership); absent: the file's
//           stem ("alice" for alice.pub). [A-Za-z0-9._-], 1..64 characters.
//   roles   comma list of producer, consumer, worker, admin; absent: none
//   queues  comma list of queue names, or `*` for every queue; absent: `*`
//
// Files are read and written with czmq's zconfig (the ZPL code zcert uses),
// so zcert_load reads ours and we read zcert_save's. Threads: any; nothing
// is shared between calls.
#ifndef DV_KEYS_H
#define DV_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dv_err.h"

#define DV_KEY_ID_MAX     64 // longest key id: fits a log line and a path
#define DV_ROLES_TEXT_MAX 32 // "producer,consumer,worker,admin" + NUL

typedef enum {
    DV_ROLE_PRODUCER = 1, // submit to its queues, read its own jobs/results
    DV_ROLE_CONSUMER = 2, // follow its queues' result streams
    DV_ROLE_WORKER = 4,   // take jobs
    DV_ROLE_ADMIN = 8,    // everything
} dv_role_t;

// One key file, loaded. Plain value type: fill with dv_key_load, free what
// it owns with dv_key_clear.
typedef struct {
    char id[DV_KEY_ID_MAX + 1]; // metadata "name", else the file's stem
                                // ("alice" for alice.pub / alice.key)
    uint8_t public_key[32];     // CURVE public key, binary
    char public_z85[41];        // the same, Z85 + NUL
    uint8_t secret_key[32];     // zero for a public file
    char secret_z85[41];        // "" for a public file
    bool has_secret;            // loaded from a secret (.key) file
    unsigned roles;             // DV_ROLE_* bits
    bool all_queues;            // queues "*" or absent
    char **queues;              // else these (owned), n_queues of them
    size_t n_queues;            // entries in queues (0 when all_queues)
    uint8_t sign_key[32];       // Ed25519 public key for signatures made
    bool has_sign_key;          //   with this key (metadata "sign-key")
} dv_key_t;

// Generate a new CURVE key pair and write STEM.key (public + secret +
// metadata, mode 0600) and STEM.pub (public + metadata, mode 0644). Each
// file appears whole or not at all (written to a temporary name, then
// linked), and the secret file is created 0600, never wider even briefly.
// An existing STEM.key or STEM.pub is never overwritten (DV_EINVAL "...
// exists, not overwritten"); when the second file cannot be written the
// first is removed again.
//
// id NULL: the basename of stem. roles 0: no roles line. queues_csv NULL:
// "*". The id must be [A-Za-z0-9._-]{1,64}, each queue [A-Za-z0-9._-]{1,128}
// or the list exactly "*" (DV_EINVAL naming the bad one); roles outside
// DV_ROLE_* are DV_EINVAL. Returns 0, or DV_E* with the reason (file errors
// name the path: DV_EACCES, DV_ENOENT for a missing folder, DV_EIO ...).
int dv_key_generate(const char *stem,
                    const char *id,
                    unsigned roles,
                    const char *queues_csv,
                    dv_error_t *err);

// Load the key file at path (.key or .pub; the contents decide: a file with
// a `secret-key` is a secret file) into *out, which the caller frees with
// dv_key_clear. On failure *out is left cleared (nothing to free).
//
// Returns 0, or:
//   DV_ENOENT   no such file
//   DV_EACCES   a secret file (a .key, or any file holding a secret-key)
//               that group or others may access, even only to write
//               ("chmod 600 FILE"); or a file we may not read
//   DV_EFORMAT  not a key file: bad ZPL, no or bad public-key, a secret-key
//               that is bad or not the public key's, bad name/roles/queues,
//               no name and a file stem that is no valid id; the reason
//               names the file and what is wrong
// Note: on bad ZPL syntax czmq's parser prints one line to stdout (its
// zclock_log) before we return DV_EFORMAT; nothing is printed otherwise.
int dv_key_load(dv_key_t *out, const char *path, dv_error_t *err);

// Free what k owns and wipe its secret; k becomes all zero. NULL-safe,
// idempotent.
void dv_key_clear(dv_key_t *k);

// Parse a comma list of role names ("producer,consumer"; spaces around
// names allowed) into DV_ROLE_* bits in *roles. Empty string: 0. Returns 0,
// or DV_EINVAL naming an unknown or empty role (*roles unchanged).
int dv_roles_parse(const char *csv, unsigned *roles, dv_error_t *err);

// roles as "producer,consumer" (in bit order; "none" for 0) into buf of
// size bytes (DV_ROLES_TEXT_MAX always suffices; truncated otherwise).
// Returns buf.
const char *dv_roles_format(unsigned roles, char *buf, size_t size);

// May k submit to / follow queue? Admin: always; else all_queues or queue
// listed. Roles other than admin are not checked here.
bool dv_key_allows_queue(const dv_key_t *k, const char *queue);

// The broker's authorized keys: every *.pub file directly in a folder.
// Immutable once loaded, so a reload builds a new one and swaps it in.
// Signatures (model files): every key pair also yields an Ed25519 signing
// pair, derived from its CURVE secret (seed = SHA-256("drover-sign-v1" ||
// secret)), whose public half dv_key_generate writes into both files as
// metadata "sign-key". Sign msg with k (a .key) into sig (64 bytes).
// Returns 0, or DV_EINVAL without a secret.
int dv_key_sign(const dv_key_t *k,
                const void *msg,
                size_t len,
                uint8_t sig[64],
                dv_error_t *err);
// Does sig sign msg for k's sign-key? False when k has none.
bool dv_key_verify(const dv_key_t *k,
                   const void *msg,
                   size_t len,
                   const uint8_t sig[64]);

typedef struct dv_keyring dv_keyring_t;

// Load every *.pub file directly in dir (symlinks followed; hidden files and
// other names ignored) into a new keyring; caller owns *out
// (dv_keyring_destroy). An empty folder is a valid, empty keyring.
//
// Returns 0, or (with *out untouched, so a broker keeps its old keyring):
//   DV_ENOENT   dir missing or not a folder
//   DV_EACCES   a secret in the folder: a *.key or czmq *_secret file, or a
//               .pub holding a secret-key (they must not be there)
//   DV_EINVAL   two files with the same id or the same public key (naming
//               both)
//   any dv_key_load error, for the first bad file (its name in the reason)
int dv_keyring_load(dv_keyring_t **out, const char *dir, dv_error_t *err);

// Free the keyring and its keys; NULL-safe, sets *self_p to NULL.
void dv_keyring_destroy(dv_keyring_t **self_p);

// The key with this public key, or NULL (also for self NULL). Borrowed:
// valid until the keyring is destroyed.
const dv_key_t *dv_keyring_find(const dv_keyring_t *self,
                                const uint8_t public_key[32]);

// The key with this id, or NULL (also for self NULL). Borrowed, as above.
const dv_key_t *dv_keyring_find_id(const dv_keyring_t *self, const char *id);

// Number of keys (0 for self NULL).
size_t dv_keyring_size(const dv_keyring_t *self);

#endif
