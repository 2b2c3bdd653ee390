package storage

import (
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Reclaim: giving back the space of deleted jobs (doc.go, "Reclaim").
const (
	// deletedJobOverhead is what a deleted job counts as garbage beyond its
	// payload: its record's fixed part and its keys.
	deletedJobOverhead = 256
	// reclaimShare: deleted jobs worth a quarter of the tables and value
	// log on disk.
	reclaimShare = 4
)

// Variables only for the torture build (torture.go).
var (
	// reclaimMinGarbage: reclaim once this many bytes of jobs were deleted
	// since the last one and they are at least a quarter of the tables and
	// value log on disk (reclaimShare), or as soon as any were deleted while
	// admission is refusing for want of space.
	reclaimMinGarbage int64 = 8 << 20
	// reclaimTicks is the shortest interval, in maintenance ticks (seconds),
	// between two reclaims: the bound on how long deleted jobs hold space.
	reclaimTicks = 10
)

// reclaimDue reports whether the deletions since the last reclaim are worth
// one now.
func (b *Badger) reclaimDue() bool {
	g := b.garbage.Load()
	switch {
	case g <= 0, !b.space.canFlush():
		return false
	case b.space.tight():
		return true
	case g < reclaimMinGarbage:
		return false
	}
	return g*reclaimShare >= dataBytes(b.cfg.Dir)
}

// reclaim gives back the space of deleted jobs. Badger drops a deleted key
// and the value it hides only when a compaction writes them into the
// bottom level, and its value-log GC rewrites a file only once compactions
// have counted its entries as discarded; a queue that was purged leaves
// its keys in the memtables and upper levels until enough new writes push
// them down, which a store that refuses enqueues never gets. So reclaim
// flushes the memtables (DropPrefix of a marker key: Badger flushes every
// memtable before it drops a prefix; commits wait on writeMu meanwhile,
// since Badger refuses writes during the flush), compacts every level into
// one (Flatten), then runs the value-log GC. Called by the maintenance
// goroutine.
func (b *Badger) reclaim() (err error) {
	defer b.recovered(&err, "reclaim")
	b.reclaimMu.Lock()
	defer b.reclaimMu.Unlock()
	start := time.Now()
	g := b.garbage.Load()
	before := dataBytes(b.cfg.Dir)
	marker := []byte{prefixReclaim}
	b.writeMu.Lock()
	err = b.db.Update(func(t *badger.Txn) error { return t.Set(marker, nil) })
	if err == nil {
		err = b.db.DropPrefix(marker)
	}
	b.writeMu.Unlock()
	if err != nil {
		return translate("reclaim: flush memtables", err)
	}
	if err := b.db.Flatten(1); err != nil {
		return translate("reclaim: compact", err)
	}
	if err := b.valueLogGC(); err != nil {
		return err
	}
	b.garbage.Add(-g)
	b.log.Info("reclaimed the space of deleted jobs", "deleted_bytes", g, "before", before,
		"after", dataBytes(b.cfg.Dir), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// dataBytes is the size of the tables and value-log files in dir: what
// Badger's compactions and value-log GC can give back.
func dataBytes(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); ext != ".sst" && ext != ".vlog" {
			continue
		}
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}
