// edgeq: see README.edgeq.md, "Resident pages and compaction builders".

package table

import (
	"github.com/dgraph-io/ristretto/v2/z"
	"golang.org/x/sys/unix"
)

// dropResident unmaps a table's pages from the process (MADV_DONTNEED) and
// then drops them from the page cache (POSIX_FADV_DONTNEED, which also
// flushes the per-CPU page lists that keep just-written pages from
// reclaim). A later read faults back what it touches, from the file. Table
// files are never written through their mapping (CreateTable writes them
// with write(2) and maps them read-only), so no data is at stake. An in-memory table (no file) is left alone: its
// Data is the Go heap, which MADV_DONTNEED would zero.
func dropResident(mf *z.MmapFile) {
	if mf == nil || mf.Fd == nil || len(mf.Data) == 0 {
		return
	}
	_ = unix.Madvise(mf.Data, unix.MADV_DONTNEED)
	_ = unix.Fadvise(int(mf.Fd.Fd()), 0, 0, unix.FADV_DONTNEED)
}
