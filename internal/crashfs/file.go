package crashfs

import (
	"context"
	"os"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// file is an open file on the backing directory whose writes and truncates
// are recorded before they happen.
type file struct {
	c   *FS
	f   *os.File
	ino uint64
}

var (
	_ fs.FileReader    = (*file)(nil)
	_ fs.FileWriter    = (*file)(nil)
	_ fs.FileGetattrer = (*file)(nil)
	_ fs.FileReleaser  = (*file)(nil)
	_ fs.FileFlusher   = (*file)(nil)
	_ fs.FileAllocater = (*file)(nil)
	_ fs.FileLseeker   = (*file)(nil)
)

func (h *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.f.ReadAt(dest, off)
	if n == 0 && err != nil && n < len(dest) && !isEOF(err) {
		return nil, fs.ToErrno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := h.c.lockLive(); errno != 0 {
		return 0, errno
	}
	defer h.c.mu.Unlock()
	idx, errno := h.recordLocked(off, int64(len(data)))
	if errno != 0 {
		return 0, errno
	}
	n, err := h.f.WriteAt(data, off)
	h.c.last = &lastWrite{ino: h.ino, rec: idx, off: off, data: append([]byte(nil), data[:n]...)}
	if err != nil {
		return uint32(n), fs.ToErrno(err)
	}
	return uint32(n), 0
}

// truncateLocked records and makes a change of the file's size.
func (h *file) truncateLocked(size int64) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(h.f.Fd()), &st); err != nil {
		return fs.ToErrno(err)
	}
	if _, errno := h.recordLocked(size, max(st.Size-size, 0)); errno != 0 {
		return errno
	}
	if h.c.last != nil && h.c.last.ino == h.ino {
		h.c.last = nil // a tear is of the last change, which is not a write
	}
	return fs.ToErrno(h.f.Truncate(size))
}

// recordLocked saves what the file holds in [off, off+n) and its size, so a
// cut can undo a change of that range. It returns the record's index.
func (h *file) recordLocked(off, n int64) (int, syscall.Errno) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(h.f.Fd()), &st); err != nil {
		return 0, fs.ToErrno(err)
	}
	var old []byte
	if end := min(off+n, st.Size); end > off {
		old = make([]byte, end-off)
		if _, err := h.f.ReadAt(old, off); err != nil {
			return 0, fs.ToErrno(err)
		}
	}
	s := h.c.files[h.ino]
	if s == nil {
		s = &fileState{}
		h.c.files[h.ino] = s
	}
	s.undo = append(s.undo, undoRecord{off: off, old: old, size: st.Size})
	return len(s.undo) - 1, 0
}

func (h *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(h.f.Fd()), &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&st)
	return 0
}

func (h *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	n, err := h.f.Seek(int64(off), int(whence))
	return uint64(n), fs.ToErrno(err)
}

// Allocate is refused: preallocation would change sizes the undo log does
// not see.
func (h *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	return syscall.ENOTSUP
}

func (h *file) Flush(ctx context.Context) syscall.Errno { return 0 }

func (h *file) Release(ctx context.Context) syscall.Errno {
	return fs.ToErrno(h.f.Close())
}
