/*
 * SPDX-FileCopyrightText: © Hypermode Inc. <hello@hypermode.com>
 * SPDX-License-Identifier: Apache-2.0
 */

package z

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Truncate would truncate the mmapped file to the given size. On Linux, we truncate
// the underlying file and then call mremap, but on other systems, we unmap first,
// then truncate, then re-map.
func (m *MmapFile) Truncate(maxSz int64) error {
	if err := m.Sync(); err != nil {
		return fmt.Errorf("while sync file: %s, error: %v\n", m.Fd.Name(), err)
	}
	if err := allocate(m.Fd, maxSz); err != nil {
		return fmt.Errorf("while truncate file: %s, error: %v\n", m.Fd.Name(), err)
	}

	var err error
	m.Data, err = mremap(m.Data, int(maxSz)) // Mmap up to max size.
	return err
}

// allocate sets the size of fd to sz. Growing, it allocates the file's blocks
// (fallocate) instead of leaving a hole: a write through a shared mapping
// into a hole that the file system cannot back faults (SIGBUS), while
// fallocate answers ENOSPC here. Where fallocate is not supported the file
// is only truncated, as before. (edgeq: see README.edgeq.md.)
func allocate(fd *os.File, sz int64) error {
	fi, err := fd.Stat()
	if err != nil {
		return err
	}
	if sz <= fi.Size() {
		return fd.Truncate(sz)
	}
	err = unix.Fallocate(int(fd.Fd()), 0, 0, sz)
	if errors.Is(err, unix.ENOSPC) && NoSpace != nil && NoSpace(fd.Name()) {
		err = unix.Fallocate(int(fd.Fd()), 0, 0, sz)
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return fd.Truncate(sz)
	}
	if err != nil {
		// Give back the blocks a failed fallocate may have taken.
		_ = fd.Truncate(fi.Size())
		return &os.PathError{Op: "fallocate", Path: fd.Name(), Err: err}
	}
	return nil
}
