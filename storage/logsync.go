package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Rotated logs. db.Sync fsyncs the active memtable's WAL and the newest
// value-log file only. Badger rotates both while writing, without an fsync
// when SyncWrites is off: a memtable that fills is handed to the flusher
// with its WAL unsynced (DB.ensureRoomForWrite), and a full value-log file
// is truncated and left unsynced (logFile.doneWriting). A transaction
// committed just before a rotation and synced just after would be answered
// durable while its records sit in the page cache of a file no fsync
// covered: a power cut before the memtable's flush (or ever, for the value
// log) loses it. A SIGKILL does not: the page cache survives the process.
//
// So Sync also fsyncs every WAL and value-log file that Badger left since
// the previous Sync. Badger numbers both kinds of file one after another
// (memtables 00001.mem, 00002.mem, ...; value logs 000001.vlog, ...): a
// Sync stats the file after the last active one and, only when that exists
// (about once per 4 MiB of writes in the small profile), fsyncs the files
// from the last active one up to the newest, which db.Sync covered. A file
// already gone was flushed into a table, which Badger syncs before it
// deletes the WAL.

// logKind is one kind of log file Badger rotates: its extension and the
// width of its zero-padded file number.
type logKind struct {
	ext   string
	width int
}

var (
	walLog   = logKind{ext: ".mem", width: 5}  // memtable.go: "%05d.mem"
	valueLog = logKind{ext: ".vlog", width: 6} // value.go: "%06d.vlog"
)

func (k logKind) path(dir string, fid int64) string {
	return filepath.Join(dir, fmt.Sprintf("%0*d%s", k.width, fid, k.ext))
}

// rotatedLogs tracks the active file of each kind. Safe for concurrent use.
type rotatedLogs struct {
	dir   string
	fsync func(path string) error // fsyncPath; tests record the calls

	mu    sync.Mutex
	kinds []activeLog // the WAL, then the value log
}

// activeLog is the newest file number of one kind seen so far.
type activeLog struct {
	logKind
	active int64
}

// newRotatedLogs reads dir (after Badger opened it) for the newest file of
// each kind.
func newRotatedLogs(dir string) (*rotatedLogs, error) {
	r := &rotatedLogs{dir: dir, fsync: fsyncPath, kinds: []activeLog{{logKind: walLog}, {logKind: valueLog}}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		for i := range r.kinds {
			k := &r.kinds[i]
			num, ok := strings.CutSuffix(e.Name(), k.ext)
			if !ok {
				continue
			}
			if fid, err := strconv.ParseInt(num, 10, 64); err == nil && fid > k.active {
				k.active = fid
			}
		}
	}
	return r, nil
}

// syncRotated fsyncs the files Badger left since the last call. Called
// after db.Sync, before the Sync's callers are answered.
func (r *rotatedLogs) syncRotated() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.kinds {
		k := &r.kinds[i]
		newest := k.active
		for {
			if _, err := os.Stat(k.path(r.dir, newest+1)); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					break
				}
				return err
			}
			newest++
		}
		for fid := k.active; fid < newest; fid++ {
			path := k.path(r.dir, fid)
			if err := r.fsync(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("fsync rotated %s: %w", filepath.Base(path), err)
			}
		}
		k.active = newest
	}
	return nil
}

// fsyncPath fsyncs the file or directory at path through a fresh
// descriptor: fsync writes back the file's dirty pages whichever descriptor
// or mapping dirtied them.
func fsyncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
