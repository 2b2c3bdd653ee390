// edgeq: see README.edgeq.md, "Table writes".

package table

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// iovMax is Linux's IOV_MAX: the most buffers one writev takes.
const iovMax = 1024

// writePieces writes ps in order with writev, a thousand blocks a call.
func writePieces(fd *os.File, ps [][]byte) error {
	sc, err := fd.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	if err := sc.Write(func(raw uintptr) bool {
		werr = writevAll(int(raw), ps)
		return true
	}); err != nil {
		return err
	}
	return werr
}

// writevAll writes every byte of ps, going on after a short write.
func writevAll(fd int, ps [][]byte) error {
	for {
		for len(ps) > 0 && len(ps[0]) == 0 {
			ps = ps[1:]
		}
		if len(ps) == 0 {
			return nil
		}
		n, err := unix.Writev(fd, ps[:min(len(ps), iovMax)])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case n == 0:
			return io.ErrShortWrite
		}
		for n > 0 {
			k := min(n, len(ps[0]))
			ps[0], n = ps[0][k:], n-k
			if len(ps[0]) == 0 {
				ps = ps[1:]
			}
		}
	}
}

// datasync flushes fd's data and the metadata needed to read it, as msync
// with MS_SYNC does for a mapping.
func datasync(fd *os.File) error {
	sc, err := fd.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := sc.Control(func(raw uintptr) {
		for {
			serr = unix.Fdatasync(int(raw))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
