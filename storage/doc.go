// Package storage is the Badger v4 implementation of [store.Store], the
// engine's store contract (package engine/store, which it imports instead of
// the engine): edgeq's durable job store on an SD card or eMMC, sized for a
// 256 MiB device.
//
// [Open] returns a [*Badger]; the engine writes through one [store.Txn] at a
// time (its committer goroutine) and reads through View from anywhere.
//
// # Goroutines and locks
//
// On disk, Open starts two goroutines that the Badger value owns: the
// maintenance loop (the checkpoint and a reading of the free space once a
// second, a reclaim when deleted jobs are worth one, the value-log GC every
// five minutes) and a one-time checksum pass over the tables (see
// Corruption).
// Close stops the loop and waits for both. Badger runs its own goroutines
// (writes, memtable flush, compactors); Close waits for those too. In memory
// there is no checkpoint and no file, so neither goroutine runs.
//
// Locks: mu, writeMu and the space account's own. View holds mu for reading
// while fn runs; Close takes it for writing, so Close waits for Views in
// progress and no View starts after it (Badger unmaps its files at Close and
// a read after that would fault). Commit holds writeMu for reading; reclaim
// takes it while Badger flushes its memtables (see Reclaim).
// Txn methods check the closed flag instead: the store.Store contract has
// the committer stop before the store closes.
//
// # Durability: group commit
//
// Badger runs with SyncWrites off: Commit writes to the memtable's WAL (a
// mapped .mem file) and, for large values, the value log, without fsync.
// Store.Sync fsyncs the active WAL and the newest value-log file (db.Sync)
// and the WAL and value-log files Badger rotated away from since the
// previous Sync (logsync.go), so everything committed before a Sync began
// is durable when it returns. The value-log GC deletes a rewritten file only
// after a Sync (valueLogGC). DetectConflicts is off (one writer) and
// NumVersionsToKeep is 1. docs/design.md says why.
//
// # Checkpoint
//
// Badger's recovery truncates a log at its first corrupt record and carries
// on, silently dropping what followed, synced or not. To notice, Sync records
// the sequence that the last committed SetSeq stored before the fsync began
// (so it is durable), and the maintenance loop writes it, at most once a
// second and only when it changed, to DIR/edgeq.checkpoint ("edgeq-checkpoint
// v1 seq=N": temporary file, fsync, rename, fsync of the directory). Close
// writes a final one after a last Sync. At Open, a store whose sequence is
// below the checkpoint logs "store came back short" at error level with both
// numbers and reports [Badger.Short]; the file keeps its claim until a new
// sequence is synced. A missing checkpoint on a store that holds data, or an
// unreadable one, is a warning: the comparison cannot be made.
//
// # Key layout
//
// Every key starts with one byte that names its keyspace. Numbers are
// fixed-width big-endian, so byte order is numeric order; times are UnixNano
// (the zero time is 0) with the sign bit flipped, so byte order is time
// order. A queue name (1..64 bytes of [a-z0-9_.-]) in a key is followed by a
// 0x00 byte, which no name contains, so one queue's range never holds
// another's keys ("a\x00..." and "ab\x00..." are disjoint). No key starts
// with '!' (Badger's internal keys).
//
//	prefix  keyspace  key after the prefix        value
//	0x01    record    id(8)                       job record, small payload inline (below)
//	0x02    payload   id(8)                       framed payload over 512 bytes (below)
//	0x03    ready     queue 0x00 ReadySeq(8)      id(8) RunAt(8)
//	0x04    delayed   RunAt(8) id(8)              queue [0x00 ReadySeq(8) group] (below)
//	0x05    expiry    ExpiresAt(8) id(8)          queue
//	0x06    leased    id(8)                       LeaseExpires(8) Attempt LeaseID queue (below)
//	0x07    dead      queue 0x00 id(8)            (empty)
//	0x08    dedupe    queue 0x00 form key         id(8), with a Badger TTL
//	0x09    sequence  (none)                      seq(8)
//	0x0a    reclaim   (none)                      (empty), written and dropped by reclaim
//	0x0b    done      ExpiresAt(8) id(8)          queue: a retained done job, until ExpiresAt
//	0x0c    group     queue 0x00 group 0x00 Seq   id(8) RunAt(8): a ready job with a group
//	0x10    schedule  name                        version(1) Last(8) Fired(8), then 1 and the spec of an API schedule
//
// A ready job with a group (1..128 bytes, no 0x00) has a group-ready entry
// instead of a ready one, so the engine's ready cursor never meets it and
// each group is read in ReadySeq order from its own position (the engine's
// ordered groups, engine/groups.go). A delayed job with a group adds 0x00,
// its ReadySeq and its group to the delayed value (a queue name holds no
// 0x00, so values written before groups read the same): a retry waiting
// keeps its place in its group, and the engine learns at start which
// groups such retries hold without reading records. A retry waiting in an
// ordered queue (no group, ReadySeq kept) adds 0x00 and its ReadySeq: the
// engine learns which queues it holds the same way.
//
// A payload of up to 512 bytes (inlinePayloadMax) lives in the record; a
// larger one has its own key, so that a state change rewrites only the small
// record (docs/design.md, "Inline payloads"). Delete learns from
// the job's Size whether there is a payload key to delete, without reading
// the record; Update copies the stored record's payload section, which the
// write transaction keeps from its last read or write of the job, or builds
// it from next when next carries its whole payload (the engine's in-memory
// copy of a job it created), or reads the record again: it needs no payload
// from the caller.
//
// Index values carry what a Ref needs (the queue of a delayed, expiry, done
// or leased entry; the id and RunAt of a ready one), so Ready, Due,
// Leased and the counts of Counts never read records (its Bytes, the
// payload sizes, come from one pass over the records: Counts runs only at
// recovery). A leased value is LeaseExpires (8
// bytes, the time encoding of keys), uvarint Attempt (the int's 64-bit two's
// complement), string LeaseID (uvarint length, bytes), then the queue (the
// rest); decoding checks every length and the queue and returns an error on
// garbage, never panics (FuzzKeyCodec). A dedupe key's form byte is 0 for
// the raw key (up to 128 bytes) and 1 for the SHA-256 of a longer one, so no
// idempotency key can make a Badger key too long. Its TTL is rounded up to
// whole seconds (Badger keeps expiry in seconds), so a key lives at least
// its window and less than a second longer.
//
// # Lease overlay
//
// A lease writes only index entries, not the record (write.go; the cost it
// saves: docs/design.md), which the store contract allows: store.Txn's
// Update promises only what Job reads back. Txn.Update takes this
// light path when next is leased, prev is ready or leased, and next differs
// from prev only in State, Attempt, LeaseID and LeaseExpires (Payload and
// Size are never written from next): it deletes prev's ready entry (and
// its expiry entry, if any) and sets the leased entry, whose value carries
// those four fields. The record keeps what it said before, ready
// or leased, with the attempt and lease fields of then.
//
// Job therefore reads one more key for a record that says ready or leased:
// the leased key (in a write transaction, Badger's Get sees its pending
// writes). When it exists, its fields overlay the record's: State leased,
// Attempt, LeaseID, LeaseExpires. A record in any other state is read
// alone. Every other way out of leased (ack, nack, fail, expiry, recovery)
// is an Update or Delete with prev leased and next not: the full path,
// which rewrites the record with next (its real state and attempt) and
// deletes the leased entry, or Delete, which deletes the record and the
// leased entry. So a leased entry exists exactly while the job is leased,
// and a ready record with one is a job leased by the light path. Any other
// Update rewrites the record as before (a leased next still sets the leased
// entry with its lease fields). The transaction's cache of payload sections
// is unaffected: the light path leaves the record, and so its section, as
// it was (it still finds the section first, which checks that the job
// exists).
//
// Ready seeks straight to (queue, after+1), off the tombstones of consumed
// entries behind the engine's cursor. Iterators set Prefix and do not
// prefetch values; Counts, Dead and the ready key scan read no value they do
// not need.
//
// # Job record (versions 2 and 3)
//
// One version byte (2), then: uvarint ID, string Queue, byte State, varint
// Attempt, varint MaxAttempts, varint CreatedAt, RunAt, ExpiresAt (UnixNano,
// zero time = 0), varint TTR, string Key, uvarint header count and that many
// string pairs in key order, string ContentType, string LastError, uvarint
// ReadySeq, string LeaseID, varint LeaseExpires (for a record that says
// ready or leased, the job's leased entry overrides State, Attempt, LeaseID
// and LeaseExpires: see Lease overlay); then the payload section:
// uvarint payload length (Size) and one placement byte, 1 for inline
// (followed by the payload's CRC-32C, big-endian, 4 bytes, as in the payload
// frame, and the payload) or 0 for a payload under its own key (nothing
// follows). A string is a uvarint length and the bytes. A payload is inline
// exactly when it is at most 512 bytes; decoding refuses either placement
// at the wrong size, so Size alone tells Delete whether a payload key
// exists (changing the limit needs a new version). Decoding checks every
// length and the inline CRC against the input and returns an error on
// garbage, trailing bytes or an unknown state; it never panics (FuzzRecord).
// A job read back has Size set, Payload only when asked for (Job), Headers
// nil when it has none, and times in the local zone (time.Unix). Version 1
// (the same fields without the payload section, the payload always under its
// own key) was never released: decoding refuses it ("record version 1
// (pre-release format) is not supported").
//
// Version 3 is version 2 with optional fields between LeaseExpires and the
// payload section: a uvarint count (at least 1), then that many uvarint tag
// and string value pairs, tags strictly increasing, values non-empty
// (extFields in record.go lists them). A job whose optional fields are all
// empty is written as version 2, so a store that never used them stays
// readable by the release before them; a tag this build does not know is
// refused as written by a newer release. Tags: 1 group, 2 result (a
// retained done job's result bytes), 3 result_truncated ("1"), 4
// traceparent, 5 tracestate, 6 on_success (the follow-up's queue), 7
// on_success_payload (byte 1, then the follow-up's payload, when one was
// given).
//
// A record in state done (5) is a finished job kept by its queue's
// retain_done: its ExpiresAt is the end of the retention, its payload
// stays, and its result is in the optional fields.
//
// # Payload frame
//
// A payload over 512 bytes is stored under its payload key as version byte
// 1, the CRC-32C of the payload (big-endian, 4 bytes), the payload; Job also
// checks its length against the record's Size, so a damaged value log reads
// as an error, never as an empty payload. Badger's own value checksums are
// off.
//
// # Transaction size: Fits
//
// Badger refuses a transaction past db.MaxBatchCount entries or
// db.MaxBatchSize bytes (15% of the memtable) by its own estimate: per write,
// the key, 12 bytes, and the value when it is below ValueThreshold (a 12-byte
// pointer otherwise). The Txn mirrors that estimate for every write it
// issues (size.go). Fits, asked by the engine in its own terms (the jobs an
// enqueue creates, the job a state change writes), estimates the writes of
// the operation (a state change: six writes and 256 bytes beyond the job's
// strings; an enqueue: each job's record, index entries, dedupe key and at
// most 1 KiB of its payload) and answers against 80% of both limits; it adds
// 32 bytes a write and, since a value at or above ValueThreshold costs only
// a pointer, counts at most ValueThreshold-1 bytes a write. A caller that
// respects Fits never sees badger.ErrTxnTooBig; one that does not gets it
// wrapped, for the whole operation before any of its writes (so an
// operation never half-applies). Badger keeps a transaction's pending writes
// in memory until Commit, large payloads included.
//
// # Memory profiles and 32-bit ARM
//
// Config.Memory picks one of two sets of Badger options (options.go): small,
// the default, for a 256 MiB device, and default, for 1 GiB or more. Once a
// second the maintenance loop asks the kernel to page out each new table
// that stopped changing (pageout_linux.go): since Badger reclaims a table's
// pages itself once written or checked (third_party/badger), that is what
// opening the table and its first reads faulted back. On 32-bit ARM, Badger's tables
// are built with a fixed copy of ristretto (third_party/ristretto). The
// figures, the measurements and the proofs: docs/design.md.
//
// # Corruption
//
// Badger panics on some corrupt files; Open and every read recover a panic on
// the calling goroutine and return it as an error. A damaged WAL or value log
// is replayed up to the damage and the store comes back short of the
// checkpoint; a damaged table's data is reported by a one-time table pass
// after Open ("store corrupt: table verification failed"); a damaged table
// index or MANIFEST fails Open ("open store DIR: ..."); a torn MANIFEST is
// logged as a warning. Damage that Badger meets in its own goroutines can
// still stop the process (y.Check). TestCorruption and docs/design.md have
// the cases.
//
// A directory held by another process (Badger's lock file) fails Open with
// "data dir DIR is locked by another process (is edgeq already running?)",
// wrapping [ErrLocked]. A full disk surfaces as an error wrapping
// job.ErrDiskFull.
//
// # Full disk
//
// Admission ([Badger.Reserve], asked by the engine for every enqueue,
// critical queues included; space.go) refuses with job.ErrDiskFull when the
// bytes admitted and not yet committed would leave less free space than the
// headroom Badger's next files need. A reserve file, DIR/edgeq.reserve, holds
// back what Open needs; when one of Badger's allocations finds the disk full
// the store deletes it and the allocation is tried again, so a store opened
// on a full disk comes up and drains its backlog; the reserve is made again
// when there is room. The sizes and why: docs/design.md.
//
// # Reclaim
//
// The store counts the bytes of the jobs it deletes, and once they reach a
// quarter of the tables and value log on disk (and 8 MiB), or as soon as any
// were deleted while admission refuses for want of space, the maintenance
// loop reclaims (reclaim.go), at most once every 10 s: it writes a marker
// key and drops its prefix (Badger flushes every memtable before a
// DropPrefix; commits wait on writeMu meanwhile, since Badger refuses writes
// during the flush), compacts every level into one (Flatten), then runs the
// value-log GC (up to four files a run).
//
// # Encryption
//
// Config.EncryptionKey hands Badger its master key (encrypt.go): Badger
// encrypts tables, value logs and write-ahead logs with AES-CTR under data
// keys kept in its KEYREGISTRY, which the master key encrypts. Nothing in
// the layout above changes; the checkpoint and the reserve file hold no job
// data. Badger refuses an encrypted store without a block cache, so an
// encrypted store gets a small one, and an index cache so that decrypted
// table indexes are bounded instead of kept whole on the heap. Open maps
// Badger's key mismatch to ErrKeyMismatch; RotateKey rewrites the registry
// under a new key while holding Badger's directory lock.
//
// # In memory
//
// Config.InMemory runs Badger without files, for tests. Badger keeps every
// value in the LSM tree then and fails (in its write goroutine) on a value at
// or above ValueThreshold, so the in-memory profile sets the threshold to
// Badger's maximum, 1 MiB, with 16 MiB memtables, and Create refuses with
// job.ErrTooLarge a payload of 1 MiB - 5 bytes or more. Large payloads then
// count whole against the transaction, so Fits underestimates them (it
// counts at most 1 KiB of a payload, the on-disk threshold): several large
// payloads in one in-memory transaction can fail it with ErrTxnTooBig,
// never half-applied.
package storage
