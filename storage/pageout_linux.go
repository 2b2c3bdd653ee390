//go:build linux

package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// tablePager gives back the resident pages of LSM tables that Badger has
// just written. Badger builds each table in memory and copies it into a
// fresh memory-mapped file (table.CreateTable), so every page of a new table
// used to start resident and counted in the process's RSS; a backlog's tables
// then showed up as RSS that grows with the backlog although no read needs
// them. edgeq's Badger now reclaims them right after the copy
// (third_party/badger/README.edgeq.md); what is left for the pager is what
// opening the table (its index) and its first reads fault back.
// Once per maintenance tick the pager reads /proc/self/maps and asks the
// kernel to reclaim each new table mapping, once it is written
// (madvise MADV_PAGEOUT, Linux 5.4 and later: the pages are clean after
// Badger's msync, so they are simply dropped). Reads fault back the pages
// they touch, as they would with pread.
//
// An address range read from /proc/self/maps may be unmapped (a table
// compacted away) and reused before the madvise call. MADV_PAGEOUT never
// changes what memory holds: on a reused anonymous range it would at most
// move pages to swap, on another file mapping drop clean pages early. So
// the race costs a page fault at worst, never data.
//
// A mapping appears in /proc/self/maps before Badger has copied the table
// into it, and on a loaded machine the copy can outlast a tick. So a table
// is paged out only once its file's modification time (which writes
// through the mapping and Badger's msync update) has not changed between
// two ticks, and then once.
type tablePager struct {
	dir  string                // the data dir, absolute
	seen map[string]pagerEntry // by "start-end inode": the table mappings of the last run
	off  bool                  // the kernel refused MADV_PAGEOUT: stop trying
}

// pagerEntry is what the pager knows of one table mapping.
type pagerEntry struct {
	mtime time.Time // of the file, when last looked at
	paged bool      // paged out: nothing more to do
}

func newTablePager(dir string) *tablePager {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	return &tablePager{dir: abs, seen: make(map[string]pagerEntry)}
}

// run pages out the table mappings that have not been paged out and whose
// file did not change since the last run, and reports how many bytes it
// asked the kernel to reclaim.
func (p *tablePager) run() (reclaimed int64, err error) {
	if p.off {
		return 0, nil
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	now := make(map[string]pagerEntry, len(p.seen))
	for _, m := range tableMappings(maps, p.dir) {
		last, known := p.seen[m.key]
		if last.paged {
			now[m.key] = last
			continue
		}
		fi, err := os.Stat(m.path)
		if err != nil {
			continue // deleted since the read
		}
		now[m.key] = pagerEntry{mtime: fi.ModTime()}
		if !known || !fi.ModTime().Equal(last.mtime) {
			continue // new, or still being written: look again next tick
		}
		now[m.key] = pagerEntry{mtime: fi.ModTime(), paged: true}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_PAGEOUT); errno != 0 {
			if errors.Is(errno, unix.EINVAL) {
				p.off = true // kernel before 5.4
				return reclaimed, nil
			}
			continue // ENOMEM: unmapped since the read
		}
		reclaimed += int64(m.end - m.start)
	}
	p.seen = now
	return reclaimed, nil
}

// tableMapping is one mapping of a table file.
type tableMapping struct {
	key        string // "start-end inode": the mapping, as the pager knows it
	path       string
	start, end uintptr
}

// tableMappings lists the mappings of the .sst files in dir (absolute) in
// the text of /proc/self/maps.
func tableMappings(maps []byte, dir string) []tableMapping {
	var out []tableMapping
	for line := range bytes.Lines(maps) {
		// start-end perms offset dev inode path
		f := bytes.Fields(line)
		if len(f) < 6 || !bytes.HasSuffix(f[5], []byte(".sst")) || filepath.Dir(string(f[5])) != dir {
			continue
		}
		start, end, ok := parseRange(f[0])
		if !ok {
			continue
		}
		out = append(out, tableMapping{key: string(f[0]) + " " + string(f[4]), path: string(f[5]), start: start, end: end})
	}
	return out
}

// parseRange parses "start-end" in hex.
func parseRange(b []byte) (start, end uintptr, ok bool) {
	s, e, found := bytes.Cut(b, []byte("-"))
	if !found {
		return 0, 0, false
	}
	a, err1 := strconv.ParseUint(string(s), 16, 64)
	z, err2 := strconv.ParseUint(string(e), 16, 64)
	if err1 != nil || err2 != nil || z <= a {
		return 0, 0, false
	}
	return uintptr(a), uintptr(z), true
}
