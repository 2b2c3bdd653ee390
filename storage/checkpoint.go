package storage

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// CheckpointFile is the name, in the data directory, of the file that
// records the highest synced sequence (see doc.go, "Checkpoint").
const CheckpointFile = "edgeq.checkpoint"

const checkpointFormat = "edgeq-checkpoint v1 seq=%d\n"

// Maintenance intervals.
const (
	checkpointEvery = time.Second
	// valueLogGCRatio: rewrite a value-log file when half of it is garbage.
	valueLogGCRatio = 0.5
)

// valueLogGCTicks paces Badger's value-log GC (every 5 minutes), which
// reclaims the space of deleted jobs' large payloads (those at or above
// ValueThreshold). A variable only for the torture build (torture.go).
var valueLogGCTicks = 300

// checkStart compares the store's sequence with the checkpoint at Open.
func (b *Badger) checkStart(seq uint64) {
	path := filepath.Join(b.cfg.Dir, CheckpointFile)
	cp, err := readCheckpoint(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && seq == 0:
		// A new store.
	case errors.Is(err, fs.ErrNotExist):
		b.log.Warn("no checkpoint: cannot tell whether the store came back whole", "path", path, "seq", seq)
	case err != nil:
		b.log.Warn("unreadable checkpoint: cannot tell whether the store came back whole", "path", path, "seq", seq, "err", err)
	case cp > seq:
		b.short = true
		b.log.Error("store came back short", "checkpoint_seq", cp, "store_seq", seq,
			"lost", cp-seq, "dir", b.cfg.Dir)
		// checkpointed is seq: the file keeps claiming cp until a Sync
		// makes a new sequence durable, so a restart before then reports
		// the loss again.
	}
}

// maintain is the store's one goroutine: it writes the checkpoint at most
// once a second when the durable sequence changed, reads the free space
// (space.go), gives back the resident pages of tables Badger wrote since the
// last tick (pageout_linux.go), gives back the space of deleted jobs when
// they are worth it (reclaim.go), and runs the value-log GC every few
// minutes. Close stops it and waits for it.
func (b *Badger) maintain() {
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	pager := newTablePager(b.cfg.Dir)
	lastReclaim := 0
	for n := 1; ; n++ {
		select {
		case <-b.stop:
			return
		case <-tick.C:
		}
		if err := b.checkpoint(); err != nil {
			b.log.Error("write checkpoint", "err", err)
		}
		b.space.refresh()
		if _, err := pager.run(); err != nil {
			b.log.Warn("page out new tables", "err", err)
		}
		if n-lastReclaim >= reclaimTicks && b.reclaimDue() {
			lastReclaim = n
			if err := b.reclaim(); err != nil {
				b.log.Warn("reclaim", "err", err)
			}
		}
		if n%valueLogGCTicks == 0 {
			if err := b.valueLogGC(); err != nil {
				b.log.Warn("value log gc", "err", err)
			}
		}
	}
}

// checkpoint writes the durable sequence when it differs from the file's.
func (b *Badger) checkpoint() error {
	seq := b.durableSeq.Load()
	if seq == b.checkpointed {
		return nil
	}
	if err := writeCheckpoint(filepath.Join(b.cfg.Dir, CheckpointFile), seq); err != nil {
		return err
	}
	b.checkpointed = seq
	return nil
}

// valueLogGC rewrites value-log files until one is not worth it (at most a
// few per run, to bound the I/O burst).
//
// Badger's GC writes a file's live entries again through the ordinary write
// path (not fsynced: SyncWrites is off) and then deletes the file at once,
// unless an iterator is open, in which case the deletion waits for the last
// iterator to close. A power cut after the deletion reached the disk but
// before the rewritten entries did would lose them: acknowledged jobs'
// payloads. So the GC runs with an iterator open, then Syncs, then closes
// the iterator, which lets Badger delete the rewritten files. If the Sync
// fails the iterator is left open: those files stay until the next start.
func (b *Badger) valueLogGC() (err error) {
	defer b.recovered(&err, "value log gc")
	hold := b.db.NewTransaction(false)
	it := hold.NewIterator(badger.IteratorOptions{})
	rewrote := false
	defer func() {
		if rewrote {
			if serr := b.gcSync(); serr != nil {
				b.log.Error("value log gc: sync of the rewritten entries failed; the rewritten files stay until the next start", "err", serr)
				err = cmp.Or(err, serr)
				return
			}
		}
		it.Close()
		hold.Discard()
	}()
	for range 4 {
		switch err := b.db.RunValueLogGC(valueLogGCRatio); {
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
			return nil
		case err != nil:
			// A failed rewrite may have written some entries again.
			rewrote = true
			return translate("value log gc", err)
		}
		rewrote = true
	}
	return nil
}

// verifyTables checks the checksum of every table once after Open. Badger
// checks a block only when a read needs it, and then treats a damaged block
// as absent keys, so without this pass damage would show only as jobs that
// silently went missing. It is a sequential read of the LSM tree (not of
// the value log); Close waits for it.
func (b *Badger) verifyTables() {
	start := time.Now()
	if err := b.verifyChecksum(); err != nil {
		b.log.Error("store corrupt: table verification failed", "dir", b.cfg.Dir, "err", err)
		return
	}
	b.log.Debug("tables verified", "took", time.Since(start))
}

// verifyChecksum is db.VerifyChecksum with a panic turned into an error:
// Badger panics on some damaged tables (y.Check). It checks one block at a
// time and keeps none (third_party/badger/README.edgeq.md, "Checking an
// encrypted table").
func (b *Badger) verifyChecksum() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("badger panicked while verifying (a damaged block): %v", r)
		}
	}()
	return b.db.VerifyChecksum()
}

func readCheckpoint(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var seq uint64
	if _, err := fmt.Sscanf(string(data), checkpointFormat, &seq); err != nil || string(data) != fmt.Sprintf(checkpointFormat, seq) {
		return 0, fmt.Errorf("checkpoint %s: malformed: %q", path, data)
	}
	return seq, nil
}

// writeCheckpoint replaces the file atomically and durably: write a temporary
// file, fsync it, rename it over the old one, fsync the directory.
func writeCheckpoint(path string, seq uint64) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return translate("write checkpoint", err)
	}
	_, err = fmt.Fprintf(f, checkpointFormat, seq)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return translate("write checkpoint", err)
	}
	return translate("sync checkpoint dir", fsyncPath(filepath.Dir(path)))
}
