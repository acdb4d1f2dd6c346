// dv_modelfile — the .drvm model file: encode, decode, save, load.
//
// Layout (docs/MODEL_FORMAT.md is the specification):
//   header  16 bytes: "DRVM", u16 major, u16 minor, u64 body length (LE)
//   body    one msgpack map (kind, task, names, scaler, layers with raw
//           little-endian float32 blobs, training metadata)
//   trailer 32 bytes: SHA-256 over header + body
// Decoding checks everything before trusting it: magic, major version,
// lengths (truncation), checksum, msgpack types, counts and sizes against
// dv_limits.h before allocating, shapes, finiteness (dv_model_validate).
#ifndef DV_MODELFILE_H
#define DV_MODELFILE_H

#include <stddef.h>
#include <stdint.h>

#include "dv_err.h"
#include "dv_model.h"

#define DV_MODELFILE_MAGIC        "DRVM"
#define DV_MODELFILE_MAJOR        1 // readers refuse other majors
#define DV_MODELFILE_MINOR        0 // additions readers may ignore
#define DV_MODELFILE_HEADER_BYTES 16

// Encode self into a new buffer. Returns 0 and sets *buf (caller frees with
// free()) and *len, or: the DV_E* of dv_model_validate; DV_EMSGSIZE (a name
// over DV_MAX_NAME_BYTES, or the body over DV_MAX_MODEL_BYTES); DV_EINVAL
// (record metadata a reader would refuse); DV_ENOMEM.
int dv_model_encode(const dv_model_t *self,
                    uint8_t **buf,
                    size_t *len,
                    dv_error_t *err);

// Decode a .drvm image. Returns 0 and sets *out (caller owns it), or:
// DV_EFORMAT (bad magic, bad msgpack, wrong types, missing fields),
// DV_EVERSION (other major version), DV_ETRUNC (shorter than its header says,
// or trailing bytes), DV_ECHECKSUM, DV_ESHAPE/DV_EMSGSIZE/DV_ENAN (from
// validation). Never reads outside buf[0..len).
int dv_model_decode(dv_model_t **out,
                    const uint8_t *buf,
                    size_t len,
                    dv_error_t *err);

// Write self to path atomically (temporary file in the same folder, fsync,
// rename). Returns 0 or DV_E* (I/O errors carry the path).
int dv_model_save(const dv_model_t *self, const char *path, dv_error_t *err);

// Read and decode the file at path (size checked against DV_MAX_MODEL_BYTES
// first). Returns 0 and *out (caller owns it) or DV_E* naming the path.
int dv_model_load(dv_model_t **out, const char *path, dv_error_t *err);

// Checksum status of an image without decoding the body: 0 when the header
// is sound and the SHA-256 matches, else the DV_E* dv_model_decode would
// report first. Used by `drover local inspect`.
int dv_model_verify(const uint8_t *buf, size_t len, dv_error_t *err);

#endif
