// edgeq: see README.edgeq.md, "Table writes".

package table

import (
	"errors"
	"os"
	"syscall"

	"github.com/dgraph-io/badger/v4/y"
)

// NoSpace, when set, is called with a new table's path when writing it
// fails for want of space; when it answers true (it freed space) the table
// is written once more, as ristretto's z.NoSpace does for a mapped file's
// allocation. It must be safe for concurrent use. (edgeq: the store gives
// up its reserve file there.)
var NoSpace func(path string) bool

// createTable creates the file fname and writes bd to it (writeTable). On
// a full disk it asks NoSpace for room and tries once more; a file it could
// not write is removed.
func createTable(fname string, bd *buildData) (*os.File, error) {
	for retried := false; ; retried = true {
		fd, err := os.OpenFile(fname, os.O_CREATE|os.O_RDWR|os.O_EXCL, 0666)
		if err != nil {
			return nil, err
		}
		if err = writeTable(fd, bd); err == nil {
			return fd, nil
		}
		fd.Close()
		os.Remove(fname)
		if retried || !errors.Is(err, syscall.ENOSPC) || NoSpace == nil || !NoSpace(fname) {
			return nil, err
		}
	}
}

// pieces returns the table's bytes in file order, as Copy writes them.
func (bd *buildData) pieces() [][]byte {
	out := make([][]byte, 0, len(bd.blockList)+4)
	for _, bl := range bd.blockList {
		out = append(out, bl.data[:bl.end])
	}
	return append(out, bd.index, y.U32ToBytes(uint32(len(bd.index))),
		bd.checksum, y.U32ToBytes(uint32(len(bd.checksum))))
}

// writeTable writes bd to the start of the new, empty file fd and makes it
// durable (as the msync of its mapping did).
func writeTable(fd *os.File, bd *buildData) error {
	if err := writePieces(fd, bd.pieces()); err != nil {
		return err
	}
	return datasync(fd)
}
