// dv_fuzz — what the fuzz targets under tests/fuzz share.
//
// Each fuzz_<target>.c defines LLVMFuzzerTestOneInput for one decoder a
// peer or a file reaches. Built with clang-14 -fsanitize=fuzzer by `make
// fuzz` (preset fuzz), the target is a libFuzzer binary; built with gcc in
// every other preset, it is linked with replay.c instead and replays the
// committed corpus (tests/fuzz/corpus/<target>/) as a unit test. The seed
// generator (seeds.c, dv-fuzz-seeds) writes that corpus from real messages
// and files, using the input layouts below.
//
// A target must not leak, print to stdout, or keep state between inputs
// beyond read-only fixtures built on first use.
#ifndef DV_FUZZ_H
#define DV_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "dv_csv.h"
#include "dv_mem.h" // dv_assert: a target's properties
#include "dv_proto.h"
#include "dv_train.h"

// libFuzzer's entry point: decode data[0..size); 0 always (a finding is a
// sanitizer report or an abort, never a return value).
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// A message as fuzz input: byte 0 the frame count (mod DV_MAX_FRAMES + 2,
// so one over the limit is tried too), a u32 little-endian header length
// and the header, then per frame a u32 length and its bytes. A length that
// runs past the end is cut to what is there; missing frames are empty.
// Header and frames are copied into buffers of exactly their size, so a
// read past one is caught by ASan rather than landing in the next.
typedef struct {
    uint8_t *header;                      // owned copy
    size_t header_len;                    // its bytes
    dv_frame_t frames[DV_MAX_FRAMES + 1]; // data: owned copies
    size_t n_frames;                      // frames used
} dv_fuzz_msg_t;

// Split data into *m; free with dv_fuzz_msg_free.
void dv_fuzz_msg_split(dv_fuzz_msg_t *m, const uint8_t *data, size_t size);
void dv_fuzz_msg_free(dv_fuzz_msg_t *m);

// The fuzz input for a header and frames (the seed generator). Caller
// frees the result; *len gets its bytes.
uint8_t *dv_fuzz_msg_join(const uint8_t *header,
                          size_t header_len,
                          const dv_frame_t *frames,
                          size_t n_frames,
                          size_t *len);

// Split data, decode it as a message (dv_msg_decode, checked with
// dv_fuzz_check) and, when it decodes, call fn with it, the split input and
// the request id dv_msg_decode reported.
void dv_fuzz_msg_run(const uint8_t *data,
                     size_t size,
                     void (*fn)(const dv_msg_t *m,
                                const dv_fuzz_msg_t *in,
                                uint64_t rid));

// The bytes after a target's leading flags byte, in a new buffer of exactly
// their size (caller frees; never NULL); *n gets their count. size >= 1.
uint8_t *dv_fuzz_tail(const uint8_t *data, size_t size, size_t *n);

// Abort unless rc is 0, or a negative DV_E* that err (filled by the
// decoder that returned rc) carries with a reason: every refusal says why.
void dv_fuzz_check(int rc, const dv_error_t *err);

// Call fn with each string key of m's header map (cut at a NUL byte, at
// most 255 bytes), so accessors run on the fields a message holds.
void dv_fuzz_each_key(const dv_msg_t *m,
                      void (*fn)(const dv_msg_t *m, const char *key));

// Write the SHA-256 of buf[0..len - 32) into its last 32 bytes (len >= 32):
// lets a target reach what a file's checksum guards.
void dv_fuzz_fix_sha256(uint8_t *buf, size_t len);

// Training runs whose checkpoints fuzz_ckpt resumes: a small fixed data
// set and hyper-parameters per config (gd, logreg, softmax, mlp), so a
// checkpoint made by the seed generator belongs to the run the target
// starts. The data set is built on first use and shared (read-only).
#define DV_FUZZ_CKPT_CONFIGS 4
const dv_dataset_t *dv_fuzz_ckpt_run(size_t config, dv_hyper_t *h);

#endif
