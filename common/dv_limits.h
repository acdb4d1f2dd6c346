// dv_limits — every size limit in one place, each with its reason
// (beanstalkd dat.h). Anything sized by a file or a peer is checked against
// these before memory is allocated; exceeding one is DV_EMSGSIZE with a reason.
#ifndef DV_LIMITS_H
#define DV_LIMITS_H

// CSV input file. 1 GiB covers any tabular training set a single worker can
// hold in memory as float32 several times over; beyond that, shard the data.
#define DV_MAX_CSV_BYTES ((size_t)1 << 30)

// One CSV field. Numbers need < 40 characters; 4 KiB leaves room for long
// column names and text labels while catching a missing newline or a binary
// file fed as CSV.
#define DV_MAX_CSV_FIELD 4096

// Columns in a CSV / features in a model. 65,536 covers wide tabular data
// (one-hot encodings, 256x256 images) and bounds per-row allocations.
#define DV_MAX_COLUMNS 65536

// Rows in a data set: 100 M rows, well beyond a single worker's RAM at any
// realistic width; catches absurd counts before they become allocations.
#define DV_MAX_ROWS ((size_t)100000000)

// Elements in one tensor (1 Gi floats = 4 GiB). Caps rows * cols products so
// they never overflow size_t arithmetic downstream.
#define DV_MAX_TENSOR_ELEMS ((size_t)1 << 30)

// Distinct classes in a classification target. More than 10,000 classes is a
// regression target or an id column by mistake.
#define DV_MAX_CLASSES 10000

// Dense layers in a model. Tabular MLPs use a handful; 64 bounds file
// decoding and per-layer bookkeeping.
#define DV_MAX_LAYERS 64

// Units in one dense layer (input width included). 65,536 matches
// DV_MAX_COLUMNS; a layer this wide is already 16 GiB of weights at most.
#define DV_MAX_LAYER_UNITS 65536

// Parameters (weights + biases) in one model: 256 M floats = 1 GiB, far
// beyond tabular models, well under any worker's memory.
#define DV_MAX_MODEL_PARAMS ((size_t)1 << 28)

// A .drvm model file. Parameters plus names and metadata fit easily.
#define DV_MAX_MODEL_BYTES ((size_t)1 << 31)

// Length of one name (feature, target, class label) in a model file.
#define DV_MAX_NAME_BYTES 1024

// msgpack objects in one decoded document (model body, protocol header).
// msgpack-c allocates ~24 bytes per object up front, so a body of 1-byte
// objects costs ~24x its size; 2^20 objects (~24 MiB) is far above a real
// model (~76k objects for 65,536 feature names) and bounds that cost.
#define DV_MAX_MSGPACK_ITEMS ((size_t)1 << 20)

// Connections the broker holds at once, counted only once authenticated
// (the CURVE or plain handshake passed and the peer was seen; a connection
// still handshaking costs a file descriptor for at most DV_HANDSHAKE_MS and
// never a slot, so keyless peers cannot lock authorized ones out).
// Defaults for --max-connections (client socket) and
// --max-worker-connections: 10,000 is far above what one broker serves (a
// client or worker keeps one connection) and well under a raised fd limit.
#define DV_MAX_CONNECTIONS        10000
#define DV_MAX_WORKER_CONNECTIONS 10000

// Connections one key holds at once on one socket (--max-key-connections):
// a leaked or buggy client with a valid key fills at most this many slots
// and so locks out only itself, not every other key.
#define DV_MAX_KEY_CONNECTIONS 1000

// A handshake (ZMTP greeting, CURVE HELLO/INITIATE/READY, our ZAP answer)
// must finish within this (libzmq's ZMQ_HANDSHAKE_IVL, default 30 s):
// two round trips and a table lookup take milliseconds even across
// continents; a peer silent this long is not a client, and its file
// descriptor is closed. Also how long an authenticated connection that
// has sent nothing yet counts toward the limits before its first message.
#define DV_HANDSHAKE_MS 10000

// Training epochs. A typo like --epochs 1e9 is refused instead of running
// for weeks.
#define DV_MAX_EPOCHS 1000000

#endif
