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

// Arrays and maps nested in one another in a decoded document, the root
// counted: msgpack-c's unpacker has a fixed stack of 32
// (MSGPACK_EMBED_STACK_SIZE) and reports a deeper document as out of
// memory; the check refuses it first, as malformed.
#define DV_MAX_MSGPACK_DEPTH 32

// The same for a header the broker takes from a client or a worker. The
// broker passes a peer's objects on inside its own messages, a few levels
// deeper (an evaluate job's metrics in a `results` entry, a train spec's
// fields in a model's lineage inside `models show`): with one limit for
// both, a document taken at 32 levels came out at 33, which no client
// could decode, and with it went every other result of the `results` it
// rode in (found by fuzz_msg's relay check). 16 leaves the copies 16
// levels and is ~3x what Drover's own messages nest.
#define DV_MAX_PEER_MSGPACK_DEPTH 16

// Bytes an evaluate job's result fields from the worker (its `metrics` map,
// the confusion descriptor) may take in the result the broker keeps and
// passes on. Drover's own take ~6 KiB at most (the confusion matrix inline
// up to DV_MAX_INLINE_CONFUSION classes, in a frame past it). A worker's map
// near the header limit made, with the broker's fields, a result header
// past DV_MAX_HEADER_BYTES: no client could read it, from `results` or
// from `result_get`, and the job had ended as far as the broker knew.
#define DV_MAX_RESULT_METRICS_BYTES ((size_t)16 << 10)

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

// Data set uploads in flight (dataset_push chunks held in memory until the
// last one arrives). The broker grows an upload's buffer as chunks come,
// never to the size a peer merely announces (40 one-byte messages once
// reserved 41 GB). One key (or, in plain mode, one connection) may have
// this many uploads open, holding up to one maximal data set (1 GiB) in
// all; every key together DV_MAX_UPLOAD_BYTES. Past either: DV_ELIMIT.
#define DV_MAX_UPLOADS_PER_KEY      4
#define DV_MAX_UPLOAD_BYTES_PER_KEY ((size_t)1 << 30)
#define DV_MAX_UPLOAD_BYTES         ((size_t)4 << 30)

// Queues a broker keeps. A queue is created by its first accepted job (or
// a follow that registers a consumer on it), never by a refused request;
// 20,000 names once made `drover status` time out for everyone. Real
// deployments use tens to hundreds; each queue costs the broker state and
// a row in scans. Past it a new name is refused with DV_ELIMIT.
#define DV_MAX_QUEUES 4096

// Queues in one `status` reply: a page of them, so the reply stays well
// under the header limit (about 150 bytes per queue); `queues_from` asks
// for the next page.
#define DV_STATUS_QUEUES_PAGE 256

// Versions the model registry keeps, and again the data set store
// (stored and being stored). Each costs the broker its record in RAM (~0.5
// KiB, and a model's schema and lineage) and a place in its lookups; a
// producer's train jobs and data set pushes add them. 100,000 is a daily
// retrain of 270 models for a year; past it a push or a train job's model
// is refused with DV_ELIMIT until some are removed (drover models gc).
#define DV_MAX_CATALOG_VERSIONS 100000

// Model aliases the registry keeps, over all names (model_alias is an
// admin's, but every alias is a record in RAM and a line rewritten with its
// name's file): as many as versions. Past it a new alias is DV_ELIMIT.
#define DV_MAX_ALIASES 100000

// File bytes each of the two stores keeps (--max-stored-bytes lowers it).
// Without a data dir every file stays in RAM: 4 GiB. With one they live on
// disk, where DV_MIN_FREE_DISK_BYTES is the bound that matters; 1 TiB
// stops a runaway producer first on large disks.
#define DV_MAX_STORED_BYTES_MEMORY ((uint64_t)4 << 30)
#define DV_MAX_STORED_BYTES_DISK   ((uint64_t)1 << 40)

// Bytes a new model or data set file must leave free on the data dir's
// file system (--min-free-disk): the job store (LMDB) grows there too, and
// a full disk would stop every submit from being stored. Refused with
// DV_ENOSPC.
#define DV_MIN_FREE_DISK_BYTES ((uint64_t)1 << 30)

// Bytes the data dir's file system keeps free for the jobs the broker
// holds (--submit-free-disk): below it, durable submits are refused
// DV_ENOSPC, so the attempts, results and failures of the jobs already
// accepted can still be stored (a full disk once sent results unstored, to
// run again after a restart). 64 MiB, RabbitMQ's disk alarm's order of
// magnitude: results larger than that in sum need a larger setting.
#define DV_SUBMIT_FREE_DISK_BYTES ((uint64_t)64 << 20)

// Other models' jobs a batch steps over in its queue looking for more of
// its own (dv_sched_ride): riders are an optimization, and a rare model in
// a queue of 20,000 waiting jobs of another walked all of them at each of
// its dispatches. Jobs further back wait for their own turn.
#define DV_RIDE_PASS_MAX 1024

// A page of a list reply (1.7: models, data sets, workers, jobs, dead
// letters): its items take at most this many bytes of the 65,536 a header
// may hold (DV_MAX_HEADER_BYTES), leaving 4 KiB for the reply's other
// fields (totals, and `next`: at most a name and a number). A longer list
// comes in pages; a reply past the header limit is one no client reads.
#define DV_LIST_PAGE_BYTES ((size_t)65536 - 4096)

// What one worker's entry in a `workers` reply lists of its models, and
// again of its data sets: names up to this many bytes, then the count of
// all of them (`models_total`). A worker may hold 4,096 of each; listed in
// full one entry could fill a page alone.
#define DV_WORKER_LIST_NAMES_BYTES 8192

// Reply bytes the broker lets one client connection hold unread (inside
// libzmq, counted by dv_outq). A 29-byte result_get can ask for a copy of a
// result up to a frame (256 MiB) long; a client that never reads must not
// make the broker hold one per request. One frame's worth: a reader that
// keeps up is never near it, and a peer holding nothing may always get one
// reply of any size. Past it, result_get and stream pushes wait or are
// refused (DV_ELIMIT); the client's own jobs' results are still sent.
#define DV_MAX_PEER_QUEUED_BYTES ((size_t)256 << 20)

// The same for all client connections together: 2 GiB bounds what slow
// readers can make the broker hold in total, whatever their number.
#define DV_MAX_QUEUED_BYTES ((size_t)2 << 30)

// The same for fetch replies (model files, data set chunks) on the worker
// socket: a fetch_model of a few bytes asks for a file up to a frame long,
// and libzmq bounds what it queues in messages (DV_PEER_HWM, a million), so a
// worker that asks again and again and never reads made the broker hold a
// copy of the file per request. Past this much unread, a worker's next
// fetch waits (dv_fetch); one that holds nothing always gets its next
// reply. Together, workers hold at most DV_MAX_WORKERS_QUEUED_BYTES.
#define DV_MAX_WORKER_QUEUED_BYTES  ((size_t)256 << 20)
#define DV_MAX_WORKERS_QUEUED_BYTES ((size_t)2 << 30)

// Fetches one worker may have waiting or being read at once: each waiting
// one is a small record, and a worker fetches what its jobs need one model
// or data set at a time, so more is a worker asking for the same thing
// again; past it, DV_ELIMIT.
#define DV_MAX_WORKER_FETCHES 64

// Model fetches a worker has asked for at once; more wait their turn. A
// model file comes in one frame (up to DV_MAX_FRAME_BYTES) and is held
// about twice while it loads (the frame, read where it arrived, and the
// decoded model). --model-memory bounds the files held and fetched (1.9:
// the run says each one's size); this bounds the loads at once, and alone
// bounds what a burst of distinct models (jobs held, preloads) makes a
// worker hold, to about 1 GiB, when its broker does not say sizes.
// Before, each was fetched at once: up to DV_MAX_WORKER_FETCHES.
#define DV_WORKER_MODEL_FETCHES 2

// Beyond its DV_MAX_PEER_QUEUED_BYTES, a client's requests still get a
// short DV_ELIMIT error until it holds this much more; after that they are
// dropped unanswered (a peer that reads nothing cannot grow even the error
// replies without bound).
#define DV_PEER_ERROR_SLACK_BYTES ((size_t)1 << 20)

// Keys one data set is shared with (dataset_share). A team, not a
// directory: a wider audience is "*" (every key); bounds the list file the
// broker reads at start and the reply that echoes it.
#define DV_MAX_READERS 256

// Results the broker keeps for fetching by id (result_get) after they were
// pushed, for result_ttl: at most this many and this many payload bytes,
// the oldest dropped first (announced in `welcome`). 100,000 results cover
// a burst of async submits whose producers read later; 256 MiB bounds the
// RAM a flood of large results can hold (they are in the store as well).
#define DV_MAX_KEPT_RESULTS 100000
#define DV_MAX_KEPT_BYTES   ((size_t)256 << 20)

// Dead letters the broker holds (in RAM, and in the store with --data): at
// most this many and this many payload bytes, the oldest dropped first
// (their failed results stay kept as any other). A job leaves its queue's
// byte count and its key's --max-inflight when it dies, so without these
// an outage on the workers' side (every run failing with DV_EIO, workers
// crashing on a poison payload until it is quarantined) sent every job to
// the dead letters, each payload up to a frame, held without end while
// producers kept submitting. The kept results' bounds, for the same
// reason: a burst of failures stays for inspection and requeue.
// drover-broker --max-dead and --max-dead-bytes lower them.
#define DV_MAX_DEAD_JOBS  100000
#define DV_MAX_DEAD_BYTES ((size_t)256 << 20)

// Result stream consumers (named cursors, `follow`) the broker keeps, over
// all queues. A consumer is kept until consumer_forget removes it (its
// position is stored), so a key with the consumer role naming a new one
// per request could otherwise grow the broker's memory and store without
// end (~600 bytes and a record each). Past it, a `follow` naming a new consumer
// is refused (DV_ELIMIT) and creates nothing; existing consumers keep working.
// 10,000 is far more than a deployment's streams, and what the sweep that pumps
// every consumer once a heartbeat can walk in microseconds.
#define DV_MAX_CONSUMERS 10000

// Audit log entries the store keeps (`audit` table), the oldest deleted
// past it. Refused handshakes are audited, and they need no key: any peer
// that reaches the port and reconnects in a loop wrote ~200 bytes a try,
// kept for good and read back at every start. 1,000,000 entries (~200-300
// MB at most) hold months of a busy cluster's admin actions and refusals;
// the newest DV_AUDIT_MEMORY of them are readable with `drover audit`
// (--since, --json): collect them from there for longer retention.
#define DV_MAX_AUDIT_STORED 1000000

// The daemons' allocator (dv_mem_tune_daemon, drover-broker and
// drover-worker only: a library leaves its host's allocator alone). glibc
// maps a block over its dynamic threshold (128 KiB at first) afresh and
// returns it to the system on free, and trims an arena's top past twice
// the threshold, so a request of a few MB, received, stored and freed, is
// faulted in page by page each time: 1,024 faults for a 4 MB input, ~5 ms
// of a worker's CPU on a paravirtualised host, more than a fifth of the
// forward pass. Up to DV_MALLOC_MMAP_BYTES (glibc's own ceiling for the
// dynamic threshold) blocks come from the arenas, and an arena keeps up to
// DV_MALLOC_TRIM_BYTES free at its top for the next ones: that much RAM
// per arena may stay held after a burst of large messages.
#define DV_MALLOC_MMAP_BYTES ((size_t)32 << 20)
#define DV_MALLOC_TRIM_BYTES ((size_t)64 << 20)

// Idempotency keys remembered, the oldest dropped first. One costs at most
// ~500 bytes (a 256-byte key, its queue name and its tenant's key), so
// producers inventing keys hold at most ~500 MiB; typically (short keys)
// ~100 MiB. A million covers a day of 10 submits/s with keys.
#define DV_MAX_IDEM_KEYS 1000000

// Runs of one job (submit's max_attempts, 1..100). Each failed attempt is
// kept with the job (error text included), so this bounds that record; a
// job failing 100 times is broken, not unlucky.
#define DV_MAX_ATTEMPTS 100

// A job's failed attempts kept with it (in memory ~400 bytes each, a
// 255-byte text and a 128-byte worker name; stored again whole at each
// failure), the newest: a worker failing a job 100 times, plus runs lost
// with dead workers, made it keep 200, ~80 KB a job. The rest are counted
// (`attempts`); 32 show where a failure began to repeat.
#define DV_MAX_ERRORS_KEPT 32

// A job's failed attempts as a reply lists them (`errors` in `result`,
// `job`, `dead_jobs`): the newest that fit this many bytes. Each one kept
// may take ~450 bytes listed, so the DV_MAX_ERRORS_KEPT fit (14.4 KB);
// this stays as the guard that keeps them within the 64 KiB a header
// holds, since a result no client can read is a result lost. The
// `attempt` numbers show what was left out.
#define DV_MAX_ERRORS_LISTED_BYTES 16384

// A submit's deadline_ms and timeout_ms: a week. Longer is a unit mistake
// (seconds for ms, a timestamp for a duration) that would pin the job.
#define DV_MAX_DEADLINE_MS (7ULL * 86400000)

// Jobs in one `run_batch` or `done_batch` (protocol 1.4): each costs ~20
// header bytes, so 1,024 stay far inside DV_MAX_HEADER_BYTES, and a batch
// of more one-row jobs than that gains nothing more from sharing a message.
#define DV_MAX_BATCH_JOBS 1024

// A forward pass a worker runs on its loop thread instead of the pool, when
// no other pass is running: rows x the model's parameters (multiply-adds)
// at most. Two thread hand-offs (the pool's wake-up, the result's way back)
// cost a one-row request more than its math (~100 us against 14 us for MLP
// 256-512-256-10 on the 2-core VM); 1M multiply-adds take well under a
// millisecond even as a matrix-vector product, which heartbeats and the
// socket never notice.
#define DV_INLINE_INFER_MACS (1u << 20)

// Requests in one `submit_many` (1.4): a request's header is ~100 bytes,
// so 256 fit DV_MAX_HEADER_BYTES with room for long names and keys.
#define DV_MAX_SUBMIT_MANY 256

// Scratch a compute thread keeps between predictions (dv_model.c): 256
// rows of a model 2,048 wide in all — a bigger model's call allocates its
// own, so a thread does not keep a rare giant's memory for good.
#define DV_MAX_PREDICT_SCRATCH ((size_t)8 << 20)

// The broker's HTTP endpoint (metrics, status page; dv_http.c): at most
// this many connections at once (a scraper and a few browsers need a
// handful; past it new ones are refused, so a flood cannot take the
// broker's file descriptors), each holding at most this much memory for
// its request (headers only: nothing is uploaded), and idle ones closed.
#define DV_MAX_HTTP_CONNECTIONS   64
#define DV_MAX_HTTP_REQUEST_BYTES ((size_t)32 << 10)
#define DV_HTTP_IDLE_S            10

// Label sets the broker's metrics count (dv_monitor.c: queue x kind x
// state, kind x model, ...): queue and model names come from peers, so
// past this many series new ones count under "_other" (each ~300 bytes).
#define DV_MAX_METRIC_SERIES 4096

// Broker groups (broker/dv_repl.h). Members in one group: Raft needs a
// majority for every write, so a group of 9 already waits on 5 disks;
// larger groups only slow commits (etcd and Consul advise 3 or 5).
#define DV_MAX_REPL_MEMBERS 9
// Member ids are small numbers an operator types (1, 2, 3...).
#define DV_MAX_REPL_ID 65535
// Raft addresses and endpoints members tell each other.
#define DV_MAX_REPL_ADDR 255
// When a member snapshots (broker/dv_repl.c). Each snapshot is the whole
// store and the model and data set files, so its cost grows with them: a
// fixed "every N entries" makes a busy group with a large store rewrite it
// again and again (a 100 MB store every 1,024 group commits). So a member
// snapshots once the log since its last snapshot holds at least
// DV_REPL_SNAPSHOT_ENTRIES entries *and* as many bytes as that snapshot
// (Redis's auto-aof-rewrite-percentage 100: each byte logged pays for at
// most one byte rewritten, amortized O(1) whatever the store's size), or
// DV_REPL_LOG_BYTES in any case: canonical/raft holds the log since the last
// snapshot in memory, on every member, and a restart replays it, so that
// bounds both (a store larger than that is rewritten once per 256 MiB
// logged). Small stores snapshot every 1,024 entries, as before.
#define DV_REPL_SNAPSHOT_ENTRIES 1024
#define DV_REPL_LOG_BYTES        (256ULL << 20)
// A model or data set file larger than this leaves the Raft log: the entry
// carries its SHA-256 and size (a "ref"), and the bytes travel member to
// member on the files channel as a content-addressed blob (broker/dv_blobs.h).
// Raft holds every entry of the log in memory until the next snapshot and
// sends each whole, so a gigabyte in the log would sit in every member's
// memory and hold heartbeats up; below this, one entry is cheaper than a
// transfer.
#define DV_REPL_INLINE_BYTES ((size_t)4 << 20)
// The files channel (broker/dv_blobs.h). A blob travels in chunks of at
// most DV_BLOB_CHUNK_BYTES, DV_BLOB_WINDOW of them asked for at once per
// transfer (a round trip per window, not per chunk), at most
// DV_BLOB_MAX_TRANSFERS transfers at once per member. The sockets drop
// messages larger than a chunk and its header, and queue at most
// DV_BLOB_HWM messages a peer: what a peer can make a member hold is about
// DV_BLOB_HWM chunks per connection, whatever it sends.
#define DV_BLOB_CHUNK_BYTES   ((size_t)1 << 20)
#define DV_BLOB_WINDOW        4
#define DV_BLOB_MAX_TRANSFERS 4
#define DV_BLOB_HWM           (2 * DV_BLOB_WINDOW * DV_BLOB_MAX_TRANSFERS)
// Peers a member's channel tells apart (hello): the group's members, with
// room for members that restarted (a new connection each).
#define DV_BLOB_MAX_PEERS (4 * DV_MAX_REPL_MEMBERS)
// A push waits for a majority to hold its blob at most
// DV_BLOB_WAIT_MS + DV_BLOB_WAIT_MS_PER_MIB per MiB (a floor of 10 MiB/s
// between members, loaded CI hosts included); past that it fails like a
// commit that lost its majority (the leader starts over, the client gets
// an error) rather than hold every later batch behind it for good.
#define DV_BLOB_WAIT_MS         10000
#define DV_BLOB_WAIT_MS_PER_MIB 100
// A new leader fetches the blobs its log names that it lacks (it was down,
// or wiped) from the followers before it serves, for at most this long: a
// leader serving files it cannot open would answer for them wrongly, but
// one whose followers all lost a blob must still serve the rest.
#define DV_BLOB_LEAD_WAIT_MS 30000
// A transfer that received nothing for this long is dropped and asked
// again (of the next member, for a leader): a peer that died or stopped.
#define DV_BLOB_STALL_MS 5000
// How often a leader offers a blob still short of a majority again, and a
// follower says hello again (a message lost to a full queue or a peer
// that was stopped).
#define DV_BLOB_RETRY_MS 500
// Group commits a leader has in flight at once (proposed, not yet
// committed): the next batch need not wait for the last one's round trip
// to the followers and their fsync (raft keeps them in order), and no more,
// so a slow follower cannot make the leader hold an unbounded backlog of
// unacknowledged batches in memory.
#define DV_REPL_PIPELINE 4
// Entries kept after a snapshot, so a follower a little behind catches up
// from the log instead of receiving a whole snapshot.
#define DV_REPL_SNAPSHOT_TRAILING 256

// A client of a broker group (protocol 1.6: an endpoint list; libdrover,
// drover-worker). Raft elects a new leader in ~1-2 s (1,000 ms election
// timeout), and a client should reach it well within 2 s of the old one's
// death, so: a member that does not answer `hello` within
// DV_GROUP_TRY_MS is passed over for the next; a connected member silent
// for DV_GROUP_SILENCE_MS while requests are pending gets a `ping`, and one
// that does not answer it within DV_GROUP_PROBE_MS is left (a stopped
// process: its TCP connection stays up); DV_ENOTLEADER without a `leader`
// (an election under way) is retried after DV_GROUP_NOLEADER_PAUSE_MS
// (drover-worker: once a whole round of the list went by unwelcomed, it
// keeps each member that long, doubled in each of the next two rounds, so
// a group that is down is not hammered; it leaves a member whose
// connection drops or is refused at once, seen by the socket monitor, and
// goes at once to a leader a member names, unless that is the member it
// just saw drop, at most once per DV_GROUP_NOLEADER_PAUSE_MS). A
// list holds at most DV_MAX_GROUP_ENDPOINTS (a group has 3 or 5 members,
// with room for members being replaced).
#define DV_GROUP_TRY_MS            500
#define DV_GROUP_SILENCE_MS        400
#define DV_GROUP_PROBE_MS          400
#define DV_GROUP_NOLEADER_PAUSE_MS 100
#define DV_MAX_GROUP_ENDPOINTS     16

// A group's new leader holds the jobs its log says were running for their
// workers to claim this long beyond the workers' liveness time (heartbeat x
// liveness): a worker looking for the leader may keep a member up to 4 x
// DV_GROUP_NOLEADER_PAUSE_MS before the hint takes it there, and a loaded
// host adds its delays. A job held too briefly runs twice (its run refunded,
// but the work done twice); one held longer waits longer when its worker
// is really gone.
#define DV_GROUP_HOLD_EXTRA_MS 2000

// A submit's payload of at least this many bytes is kept in the broker as
// the ZeroMQ message it came in (job_t.zpayload) and forwarded to the worker
// as it is, instead of being copied into the job and again into the run (a
// 256-row request's 256 KiB, twice per job; a batch of several is built
// once and handed to ZeroMQ, not copied again). Smaller
// ones are copied: one allocation per job, and libzmq may receive a small
// frame inside a shared 8 KiB buffer (ZMQ_ZERO_COPY_RECV) that a kept
// reference would pin. Not a limit: memory held is the same either way.
#define DV_ZEROCOPY_MIN_BYTES ((size_t)32 << 10)

// Freed records a daemon keeps for reuse (dv_spare), per owner: the
// broker's job records and its scheduler's entries, a worker's tasks and
// their inputs. A forward pass ends ~180 jobs at once and the next
// submit_many makes ~20, more than glibc's per-thread cache keeps (7 of a
// size, none over 1,032 bytes). 1 MiB holds ~8,000 of the scheduler's
// ~90-byte entries or ~700 job records with a 1 KiB row: a few passes.
// Memory a burst leaves behind stays within it; blocks are kept only after
// their jobs ended, so no peer holds more through it. Records up to 4 KiB
// (a 1,000-feature row) are kept; larger ones are freed as before.
#define DV_SPARE_BYTES     ((size_t)1 << 20)
#define DV_SPARE_MAX_BLOCK ((size_t)4 << 10)

// Large message buffers a process keeps once ZeroMQ has sent them, for its
// next message of about that size (dv_wire_buf_get): glibc hands a fresh
// 256 KiB buffer back to the kernel when it is freed, and the next one
// costs 64 page faults on first touch, which on a paravirtualised host
// took a sixth of a producer's CPU at 256-row requests. Buffers from
// DV_WIRE_KEEP_MIN bytes are kept, at most DV_WIRE_KEEP_BUFS of them and
// DV_WIRE_KEEP_BYTES in all (what a process holds idle through it, whatever
// its peers send); smaller ones are plain malloc and free.
#define DV_WIRE_KEEP_MIN ((size_t)64 << 10)

// Message writers (dv_msgw_t, ~0.6 KiB each) a thread keeps once freed, for
// its next ones: a submit_many of 256 requests frees 256 at once. At most
// ~150 KiB a thread, whatever its peers send.
#define DV_MSGW_KEEP       256
#define DV_WIRE_KEEP_BUFS  16
#define DV_WIRE_KEEP_BYTES ((size_t)32 << 20)

// Messages libzmq queues per peer on the broker's sockets (ZMQ_SNDHWM,
// ZMQ_RCVHWM): deep enough for a producer that submits tens of thousands
// of jobs asynchronously before reading its results, and for a burst of
// them arriving at once. A count, not bytes: what a peer can make the
// broker hold in bytes is bounded by dv_outq (DV_MAX_PEER_QUEUED_BYTES,
// DV_MAX_WORKER_QUEUED_BYTES) on the way out and by ZMQ_MAXMSGSIZE
// (DV_MAX_FRAME_BYTES) per message on the way in.
#define DV_PEER_HWM 1000000

// A worker whose connection closed (libzmq's DISCONNECTED, through the
// socket monitor) is declared lost this long after, without waiting for
// liveness x heartbeat_ms of silence (3 s by default; minutes with long
// heartbeats): a killed worker's jobs go back to their queues at once. Not
// at the instant: a worker that left a connection for silence (the broker
// stalled) registers again on a new one and claims the jobs it still runs
// from the old (`conn`), and that register may come a little after the
// close is seen.
#define DV_WORKER_GONE_GRACE_MS 500

// One model version's lineage record (what job and data made it): it
// travels in a `models show` header, so it stays well under
// DV_MAX_HEADER_BYTES; a longer one is refused at push, and a longer file
// on disk is dropped at open.
#define DV_MAX_LINEAGE_BYTES ((size_t)32 << 10)

// A job's priority: -1000 (last) .. 1000 (first), 0 by default. A range
// wide enough for tiers and nudges within them; the scheduler keeps one
// list per priority in use, so the range also bounds that.
#define DV_PRIORITY_MIN -1000
#define DV_PRIORITY_MAX 1000

// A `follow`'s window: results pushed and not yet acknowledged, per
// consumer. 100 by default; 10,000 at most, so one follower of large
// results cannot ask for more than dv_outq lets it hold anyway.
#define DV_FOLLOW_WINDOW_DEFAULT 100
#define DV_MAX_FOLLOW_WINDOW     10000

// Jobs of one queue waiting in memory before its durable jobs wait in the
// store only (`--memory-window`, this by default): ~450 bytes plus payload
// each in memory against ~25 in the spill index. Deep queues of small jobs
// stay within tens of MB per queue.
#define DV_SPILL_WINDOW_DEFAULT 20000

#endif
