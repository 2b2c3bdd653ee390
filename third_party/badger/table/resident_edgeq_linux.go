// edgeq: see README.edgeq.md, "Resident pages and compaction builders".

package table

import "golang.org/x/sys/unix"

// dropResident asks the kernel to reclaim the pages of a table's mapping
// (MADV_PAGEOUT, Linux 5.4 and later), or before 5.4 at least to unmap them
// from the process (MADV_DONTNEED: they stay in the page cache). A later
// read faults back what it touches. Table files are never written through
// their mapping after CreateTable's msync, so no data is at stake.
func dropResident(b []byte) {
	if len(b) == 0 || unix.Madvise(b, unix.MADV_PAGEOUT) == nil {
		return
	}
	_ = unix.Madvise(b, unix.MADV_DONTNEED)
}
