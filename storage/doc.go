// Package storage is the Badger v4 implementation of engine.Store: edgeq's
// durable job store on an SD card or eMMC, sized for a 256 MiB device.
//
// [Open] returns a [*Badger]; the engine writes through one [engine.Txn] at a
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
// Txn methods check the closed flag instead: the engine.Store contract has
// the committer stop before the store closes.
//
// # Durability: group commit
//
// Badger runs with SyncWrites off: Commit writes to the memtable's WAL (a
// mapped .mem file) and, for large values, the value log, without fsync.
// Store.Sync calls db.Sync, which fsyncs the active WAL and the newest
// value-log file, then fsyncs the WAL and value-log files Badger rotated
// away from since the previous Sync, which db.Sync leaves out (logsync.go:
// without it, a commit just before a rotation would be answered durable
// while only the page cache held it). The engine calls Sync once per
// batch, so one fsync covers every commit of the batch. Badger's value-log
// GC, which rewrites a file's live entries and then deletes the file, runs
// with an iterator open so that the deletion waits until a Sync has made
// the rewritten entries durable (valueLogGC). DetectConflicts is off (one writer) and NumVersionsToKeep is 1.
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
//	0x04    delayed   RunAt(8) id(8)              queue
//	0x05    expiry    ExpiresAt(8) id(8)          queue
//	0x06    leased    id(8)                       LeaseExpires(8) Attempt LeaseID queue (below)
//	0x07    dead      queue 0x00 id(8)            (empty)
//	0x08    dedupe    queue 0x00 form key         id(8), with a Badger TTL
//	0x09    sequence  (none)                      seq(8)
//	0x0a    reclaim   (none)                      (empty), written and dropped by reclaim
//
// A payload of up to 512 bytes (inlinePayloadMax) lives in the record, so a
// typical job is two entries at enqueue (record, ready), two at lease
// (ready delete, leased set: see Lease overlay) and two deletes at ack
// (record, leased) instead of three each: Badger's cost is per entry,
// and BenchmarkRawJobLayout (small profile, 64-job transactions each with a
// db.Sync, amd64) made 35k jobs/s with 3 entries a job, 43k with 2 and 52k
// with 1. A state change rewrites the record with its inline payload, a
// cost that grows with the payload; a larger payload keeps its own key, so
// that a state change rewrites only the small record. Delete learns from
// the job's Size whether there is a payload key to delete, without reading
// the record; Update copies the stored record's payload section, which the
// write transaction keeps from its last read or write of the job, or builds
// it from next when next carries its whole payload (the engine's in-memory
// copy of a job it created), or reads the record again: it needs no payload
// from the caller.
//
// Index values carry what a Ref needs (the queue of a delayed, expiry or
// leased entry; the id and RunAt of a ready one), so Ready, Due,
// Leased and Counts never read records. A leased value is LeaseExpires (8
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
// A lease writes only index entries, not the record: Badger's cost is per
// entry and per byte, and a state change rewrites the record with its
// inline payload (about 400 bytes for a typical job). Txn.Update takes this
// light path when next is leased, prev is ready or leased, and next differs
// from prev only in State, Attempt, LeaseID and LeaseExpires (Payload and
// Size are never written from next): it deletes prev's ready entry (and
// its expiry entry, if any) and sets the leased entry, whose value carries
// those four fields. A lease is then two small entries (a delete and a set
// of about 30 bytes) instead of three including the record; an extension
// (leased to leased) is one. The record keeps what it said before, ready
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
// Ready seeks straight to (queue, after+1): the engine's per-queue cursor
// keeps reads off the tombstones of consumed entries at the start of the
// range, which after a million enqueue+ack cycles cost 0.5-3 s per read when
// seeking from the prefix. Iterators set Prefix and do not prefetch values;
// Counts, Dead and the ready key scan read no value they do not need.
//
// # Job record (version 2)
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
// # Payload frame
//
// A payload over 512 bytes is stored under its payload key as version byte
// 1, the CRC-32C of the payload (big-endian, 4 bytes), the payload; Job also
// checks its length against the record's Size. Badger logs and swallows
// value-log read errors (Item.Value then yields nothing and no error), so
// without the frame a damaged value log would read as an empty payload; with
// it, Job answers an error. An inline payload carries the same CRC in the
// record, since a record that reaches ValueThreshold goes to the value log
// too. Badger's own value checksums are therefore off.
//
// # Transaction size: Room
//
// Badger refuses a transaction past db.MaxBatchCount entries or
// db.MaxBatchSize bytes (15% of the memtable) by its own estimate: per write,
// the key, 12 bytes, and the value when it is below ValueThreshold (a 12-byte
// pointer otherwise). The Txn mirrors that estimate for every write it
// issues. Room answers against 80% of both limits; it adds 32 bytes a write
// to the caller's byte count and, since a value at or above ValueThreshold
// costs only a pointer, counts at most ValueThreshold-1 bytes a write. A
// caller that respects Room never sees badger.ErrTxnTooBig; one that does not
// gets it wrapped, for the whole operation before any of its writes (so an
// operation never half-applies). Badger keeps a transaction's pending writes
// in memory until Commit, large payloads included.
//
// # Memory profiles
//
// Badger's defaults (five 64 MiB memtables, a 256 MiB block cache, 1 GiB
// value-log files, Snappy) reached about 900 MiB RSS filling a million
// 256-byte jobs. Config.Memory picks one of two profiles; both use no
// compression (no block cache needed, less CPU on ARM), BaseTableSize equal
// to MemTableSize with TableSizeMultiplier 1, two compactors, ValueThreshold
// 1 KiB (a typical payload stays in the LSM tree, a large one goes to the
// value log) and block checksums checked on read:
//
//	                         small (default)   default
//	MemTableSize             4 MiB             32 MiB
//	BaseTableSize            4 MiB             32 MiB
//	NumMemtables             2                 3
//	BaseLevelSize            32 MiB            128 MiB
//	NumLevelZeroTables/Stall 3 / 8             4 / 12
//	BlockCacheSize           0                 32 MiB
//	IndexCacheSize           0                 16 MiB
//	ValueLogFileSize         32 MiB            128 MiB
//	MaxBatchSize (15%)       614 KiB           4.8 MiB
//
// The small profile's memtable is as small as a transaction of 1024
// job-sized records allows (BenchmarkRawGroupCommit); Room fits about 700
// engine-estimated 256-byte enqueues in one transaction, so a full engine
// batch takes two commits and still one Sync. The default profile is for
// devices with 1 GiB or more; 64 MiB memtables were not chosen because each
// memtable costs about 1.3 times its size in heap and each table builder
// twice the table size.
//
// What drives memory, measured with BenchmarkBacklogRSS (fill 30,000 and
// 300,000 jobs of 256 bytes, then runtime.GC; amd64, Go 1.26):
//
//   - The heap (RssAnon) is dominated by Badger's table builders: each
//     allocates twice the table size up front (8 MiB here), a compaction runs
//     up to five subcompactions with up to 8+5 builders in flight, and
//     Badger's allocator pool keeps up to 8 idle buffers, releasing one every
//     2 s of idleness (no runtime figure shows one released until a GC runs:
//     the daemon's trimmer, memtrim.go, trims blindly after a burst for that).
//     The memtable arenas add about 5 MiB each. The live heap
//     peaks near 75 MiB during the compactions of a growing backlog; with the
//     Go default GOGC=100 the process heap then reaches 160-190 MiB. With a
//     soft memory limit (GOMEMLIMIT=64MiB, which main.go or the unit file
//     sets) RssAnon stays at 43-52 MiB for both 30,000 and 300,000 jobs.
//   - Tables are memory-mapped, and Badger writes each new table through its
//     mapping (table.CreateTable), so every page of a new table starts
//     resident and counted in VmRSS (RssFile: about the size of the tables,
//     130-170 MiB at 300,000 jobs, before the pager). Badger v4 has no option
//     to read tables without mmap. So once a second the maintenance loop
//     asks the kernel to reclaim the mapping of each new table whose file
//     has not changed since the last tick, once (madvise MADV_PAGEOUT,
//     pageout_linux.go; Linux 5.4 and later, a no-op elsewhere): the pages
//     are clean after Badger's msync and are simply dropped, and reads
//     fault back the pages they touch. TestTablePagerReleasesNewTables
//     shows two new tables going from 8.4 MB resident to 0. With it, the real daemon's VmRSS stays under
//     64 MiB at 300,000 jobs (e2e BenchmarkBacklogRSS, docs/BENCHMARKS.md).
//
// Reproduce with:
//
//	go test -run x -bench BacklogRSS -benchtime 1x -count 3 ./storage/
//
// # 32-bit ARM
//
// Badger builds every table (memtable flush, compaction) in a ristretto
// z.Allocator sized twice the table size. In ristretto v2.2.0 (and still
// v2.4.2), when an allocator outgrows its first buffer, Allocate computes
// the next position as uint64((bufIdx+1)<<32) in int: 0 on 32-bit
// platforms, so the allocator starts again at the first buffer's offset 0
// and overwrites a table under construction. edgeq builds against a copy of
// ristretto v2.2.0 with that one expression fixed, uint64(bufIdx+1)<<32
// (go.mod replace => ./third_party/ristretto; its README.edgeq.md has the
// diff and how to upgrade). On 64-bit platforms the result is unchanged.
//
// Options alone were not chosen: BaseTableSize equal to MemTableSize (kept
// in every profile, with TableSizeMultiplier 1) makes a second buffer rare,
// but nothing bounds a table's build to its first buffer on every path
// (a memtable's table outgrowing it, a block regrown for a large value,
// pooled allocators reused across builds), and a miss is silent corruption.
//
// Proof, TestBacklogReopen (backlog_test.go): a backlog of 256-byte jobs
// (every 7th just under ValueThreshold, every 13th in the value log)
// created in Room-sized transactions with a Sync each, a third deleted,
// tables compacted below level 0, closed, reopened, every record, payload
// and ready entry read back; 200,000 jobs by default, EDGEQ_BACKLOG_JOBS
// sets the number (the runs quoted here used 240,000). Under qemu-arm (GOARM=7), with Badger's tables forced
// smaller than the memtable (BaseTableSize 1 MiB, MemTableSize 4 MiB, a
// local experiment) and without the fix, Badger panicked in a compaction
// goroutine ("slice bounds out of range" reading a garbage block) within 3 s;
// with 20,000 jobs (two level-0 tables, no compaction) the read-back found
// 9,923 jobs missing, 1,673 unreadable and 806 deleted ones back. With the
// fix both passed (240,000: 121 tables, all below level 0). With the
// shipped profile it passes with and without the fix, which shows the
// options hide the defect on this workload, not that they avoid it.
// ristretto's own regression test (TestAllocatorSecondBufferEdgeq) fails
// under qemu-arm without the fix and passes with it. make test-arm runs
// the first on arm64, arm/v7 and arm/v6 (60,000 jobs) and the second on
// arm/v7 and arm/v6:
//
//	GOARCH=arm GOARM=7 go test -exec qemu-arm -run BacklogReopen -v ./storage/
//	cd third_party/ristretto && GOARCH=arm GOARM=7 go test -exec qemu-arm -run Edgeq ./z
//
// Limits: only this defect is fixed; Badger is not tested upstream on
// 32-bit platforms, and a table file is memory-mapped, so the LSM tree and
// value log together must fit the 32-bit address space (about 2-3 GiB of
// mappings): keep a 32-bit device's backlog to a few hundred MiB on disk.
//
// # Corruption
//
// Badger panics on some corrupt files; Open and every read recover a panic on
// the calling goroutine and return it as an error. TestCorruption covers:
//
//   - a value log cut mid-record: Badger logs the failed reads and the
//     payload frame turns them into errors (the test's large payloads are
//     the ones in the value log);
//   - a memtable WAL (.mem) cut mid-record or with garbage: Badger replays it
//     up to the damage, whole transactions only; the store comes back short
//     of the checkpoint and says so;
//   - flipped bytes in a table's data: Badger treats a block that fails its
//     checksum as absent keys, so the one-time table pass after Open logs
//     "store corrupt: table verification failed" (Badger v4.9.6 panics while
//     reporting the damaged block; the pass recovers it);
//   - flipped bytes in a table's index, or a garbage MANIFEST: Open fails with
//     Badger's error, prefixed "open store DIR";
//   - a MANIFEST cut mid-record: Badger drops the torn change and deletes the
//     table files it no longer lists, saying so only at debug level; the
//     store, which replayed the MANIFEST before Open and saw the torn tail,
//     logs that as a warning (jobs may be lost) and opens. With a whole
//     MANIFEST an unlisted table file is what a crash leaves between writing
//     a flush's or a compaction's table and listing it (its data is still in
//     the memtable's log or the listed tables): that deletion is logged at
//     info, as nothing is lost.
//
// Damage that Badger meets in its own goroutines (memtable flush,
// compaction, value-log GC) cannot be recovered here: Badger's y.Check and
// y.AssertTrue call log.Fatal there, and the process exits. The test leaves
// those out.
//
// A directory held by another process (Badger's lock file) fails Open with
// "data dir DIR is locked by another process (is edgeq already running?)",
// wrapping [ErrLocked]. A full disk surfaces as an error wrapping
// job.ErrDiskFull (see Full disk).
//
// # Full disk
//
// Badger writes its memtable WAL (.mem), its value log (.vlog) and each new
// table through shared mappings of files it sizes up front. A sparse file's
// page that the file system cannot back faults on the write (SIGBUS: the
// process dies, and dies again at the next Open). edgeq's copy of ristretto
// allocates those files' blocks (fallocate) where Badger sizes them, so a
// full disk is an ENOSPC error at a file's creation (a memtable or
// value-log rotation, a table build) instead
// (third_party/ristretto/README.edgeq.md). Badger v4.9.6 mishandled two of
// these errors: a failed memtable rotation left it without a memtable, and
// its next write stopped the process (y.AssertTrue); a compaction that could
// not build one of its tables committed without it, losing its keys
// (TestFullDisk found it). edgeq's copy of Badger fixes both
// (third_party/badger/README.edgeq.md); DropPrefix, which reclaim uses to
// flush, still loses its memtable when it cannot make a new one, so
// reclaim only forces a flush where the new memtable will find room.
//
// Still, a store whose disk is full can take no write, so two measures keep
// it from getting there. Admission ([Badger.Reserve], asked by the engine for every
// enqueue, critical queues included) refuses with job.ErrDiskFull when the
// bytes admitted and not yet committed would leave less free space (statfs
// of the directory, read again after each MiB admitted and once a second)
// than the headroom: the next memtable WAL (twice MemTableSize), the tables
// of the memtables waiting for a flush, the next value-log file (twice
// ValueLogFileSize) and a compaction's new tables (BaseLevelSize plus the
// level-0 tables): 124 MiB in the small profile, 672 MiB in the default one.
// And a reserve file, DIR/edgeq.reserve, holds back what Open needs (a new
// WAL and value-log file, the replayed memtables' tables) plus a memtable
// rotation: 88 MiB small, 480 MiB default. When one of Badger's
// allocations finds the disk full (another program filled it, or the
// leases, acks and purges of a store that no longer takes enqueues used
// the headroom), the store deletes the reserve file and the allocation is
// tried again (z.NoSpace), so a store opened on a full disk comes up and
// drains its backlog. While the reserve is gone admission also keeps room
// to make it again, and the next reading of the free space that finds the
// room makes it. Open makes it when it is missing and there is room; when
// there is none the store runs without one and refuses enqueues.
//
// TestFullDisk (a tmpfs of headroom + reserve + the open files + 24 MiB,
// filled through Reserve until it refuses, then to the last byte by
// another file; closed, reopened, read back, drained) and e2e TestDiskFull
// (the real binary, HTTP and MQTT, every class) prove it; both mount a
// tmpfs and are skipped where they cannot.
//
// # Reclaim
//
// A purged queue's jobs are deleted one by one (the record keys are by id,
// not by queue, so DropPrefix cannot drop a queue's jobs), and Badger drops
// a deleted key and the value it hides only when a compaction writes them
// into the bottom level; its value-log GC rewrites a file only once
// compactions counted its entries as discarded. A store that refuses
// enqueues gets no new writes to push the deletions down: purging 47,800
// jobs left 195 MB on disk (issue 14). So the store counts the bytes of the
// jobs it deletes, and once they reach a quarter of the tables and value
// log on disk (and 8 MiB), or as soon as any were deleted while admission
// refuses for want of space, the maintenance loop reclaims, at most once
// every 10 s: it writes a marker key and drops its prefix (Badger flushes
// every memtable before a DropPrefix; commits wait on writeMu meanwhile,
// since Badger refuses writes during the flush), compacts every level into
// one (Flatten), then runs the value-log GC (up to four files a run).
// TestReclaimAfterPurge: after deleting 50,000 jobs, one table of under
// 1 KiB and the active value-log file are left; docs/BENCHMARKS.md has the
// figure for 1,000,000.
//
// # In memory
//
// Config.InMemory runs Badger without files, for tests. Badger keeps every
// value in the LSM tree then and fails (in its write goroutine) on a value at
// or above ValueThreshold, so the in-memory profile sets the threshold to
// Badger's maximum, 1 MiB, with 16 MiB memtables, and Create refuses with
// job.ErrTooLarge a payload of 1 MiB - 5 bytes or more. Large payloads then
// count whole against the transaction, so Room is only as good as the
// caller's byte count (the engine counts at most 1 KiB of a payload, the
// on-disk threshold): several large payloads in one in-memory transaction
// can fail it with ErrTxnTooBig, never half-applied.
package storage
