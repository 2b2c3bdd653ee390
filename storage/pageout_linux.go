//go:build linux

package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// tablePager gives back the resident pages of LSM tables that Badger has
// just written. Badger builds each table in memory and copies it into a
// fresh memory-mapped file (table.CreateTable), so every page of a new table
// starts resident and counted in the process's RSS; a backlog's tables then
// show up as RSS that grows with the backlog although no read needs them.
// Once per maintenance tick the pager reads /proc/self/maps and asks the
// kernel to reclaim each table mapping it has not seen before
// (madvise MADV_PAGEOUT, Linux 5.4 and later: the pages are clean after
// Badger's msync, so they are simply dropped). Reads fault back the pages
// they touch, as they would with pread.
//
// An address range read from /proc/self/maps may be unmapped (a table
// compacted away) and reused before the madvise call. MADV_PAGEOUT never
// changes what memory holds: on a reused anonymous range it would at most
// move pages to swap, on another file mapping drop clean pages early. So
// the race costs a page fault at worst, never data.
type tablePager struct {
	dir  string              // the data dir, absolute
	seen map[string]struct{} // "start-end inode" of the table mappings already paged out
	off  bool                // the kernel refused MADV_PAGEOUT: stop trying
}

func newTablePager(dir string) *tablePager {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	return &tablePager{dir: abs, seen: make(map[string]struct{})}
}

// run pages out the tables mapped since the last run and reports how many
// bytes it asked the kernel to reclaim.
func (p *tablePager) run() (reclaimed int64, err error) {
	if p.off {
		return 0, nil
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	now := make(map[string]struct{}, len(p.seen))
	for line := range bytes.Lines(maps) {
		// start-end perms offset dev inode path
		f := bytes.Fields(line)
		if len(f) < 6 || !bytes.HasSuffix(f[5], []byte(".sst")) || filepath.Dir(string(f[5])) != p.dir {
			continue
		}
		key := string(f[0]) + " " + string(f[4])
		now[key] = struct{}{}
		if _, ok := p.seen[key]; ok {
			continue
		}
		start, end, ok := parseRange(f[0])
		if !ok {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_PAGEOUT); errno != 0 {
			if errors.Is(errno, unix.EINVAL) {
				p.off = true // kernel before 5.4
				return reclaimed, nil
			}
			continue // ENOMEM: unmapped since the read
		}
		reclaimed += int64(end - start)
	}
	p.seen = now
	return reclaimed, nil
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
