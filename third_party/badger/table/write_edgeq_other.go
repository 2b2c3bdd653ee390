// edgeq: see README.edgeq.md, "Table writes".

//go:build !linux

package table

import "os"

func writePieces(fd *os.File, ps [][]byte) error {
	for _, p := range ps {
		if _, err := fd.Write(p); err != nil {
			return err
		}
	}
	return nil
}

func datasync(fd *os.File) error { return fd.Sync() }
