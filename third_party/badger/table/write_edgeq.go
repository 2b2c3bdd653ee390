// edgeq: see README.edgeq.md, "Table writes".

package table

import (
	"os"

	"github.com/dgraph-io/badger/v4/y"
)

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
