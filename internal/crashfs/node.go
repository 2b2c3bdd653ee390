package crashfs

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node whose changes to names and data are recorded in
// the FS's volatile layer before they reach the backing directory.
type node struct {
	fs.LoopbackNode
	c *FS
}

func (n *node) backingPath() string {
	return filepath.Join(n.RootData.Path, n.Path(n.Root()))
}

// backingIno is the node's inode in the backing directory: the volatile
// layer's key (the root's FUSE node id is 1, not its inode).
func (n *node) backingIno() (uint64, syscall.Errno) {
	var st syscall.Stat_t
	if err := syscall.Lstat(n.backingPath(), &st); err != nil {
		return 0, fs.ToErrno(err)
	}
	return st.Ino, 0
}

func fdIno(f *os.File) (uint64, syscall.Errno) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0, fs.ToErrno(err)
	}
	return st.Ino, 0
}

// noteDirLocked remembers the directory's entries as synced, unless they
// already are remembered since its last sync.
func (c *FS) noteDirLocked(dir string) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		return fs.ToErrno(err)
	}
	ino := st.Ino
	if _, ok := c.dirs[ino]; ok {
		return 0
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fs.ToErrno(err)
	}
	m := make(map[string]dirent, len(ents))
	for _, e := range ents {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(dir, e.Name()), &st); err != nil {
			return fs.ToErrno(err)
		}
		m[e.Name()] = dirent{ino: st.Ino, dir: e.IsDir()}
	}
	c.dirs[ino] = m
	return 0
}

// buryLocked keeps a hard link to the file at p in the graveyard, so a cut
// can bring back a name that an unsynced unlink or rename took away.
func (c *FS) buryLocked(p string) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return fs.ToErrno(err)
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return 0
	}
	g := filepath.Join(c.graveyard, strconv.FormatUint(st.Ino, 10))
	if err := os.Link(p, g); err != nil && !os.IsExist(err) {
		return fs.ToErrno(err)
	}
	return 0
}

func (c *FS) lockLive() syscall.Errno {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return syscall.EIO
	}
	return 0
}

var (
	_ fs.NodeCreater   = (*node)(nil)
	_ fs.NodeOpener    = (*node)(nil)
	_ fs.NodeMkdirer   = (*node)(nil)
	_ fs.NodeRmdirer   = (*node)(nil)
	_ fs.NodeUnlinker  = (*node)(nil)
	_ fs.NodeRenamer   = (*node)(nil)
	_ fs.NodeSetattrer = (*node)(nil)
	_ fs.NodeFsyncer   = (*node)(nil)
	_ fs.NodeLinker    = (*node)(nil)
	_ fs.NodeSymlinker = (*node)(nil)
	_ fs.NodeMknoder   = (*node)(nil)
)

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if errno := n.c.lockLive(); errno != 0 {
		return nil, nil, 0, errno
	}
	defer n.c.mu.Unlock()
	if errno := n.c.noteDirLocked(n.backingPath()); errno != 0 {
		return nil, nil, 0, errno
	}
	p := filepath.Join(n.backingPath(), name)
	f, err := os.OpenFile(p, int(flags&^(syscall.O_APPEND|syscall.O_TRUNC))|os.O_CREATE, os.FileMode(mode))
	if err != nil {
		return nil, nil, 0, fs.ToErrno(err)
	}
	ch, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno != 0 {
		f.Close()
		return nil, nil, 0, errno
	}
	ino, errno := fdIno(f)
	if errno != 0 {
		f.Close()
		return nil, nil, 0, errno
	}
	h := &file{c: n.c, f: f, ino: ino}
	if flags&syscall.O_TRUNC != 0 {
		if errno := h.truncateLocked(0); errno != 0 {
			f.Close()
			return nil, nil, 0, errno
		}
	}
	return ch, h, 0, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if errno := n.c.lockLive(); errno != 0 {
		return nil, 0, errno
	}
	defer n.c.mu.Unlock()
	f, err := os.OpenFile(n.backingPath(), int(flags&^(syscall.O_APPEND|syscall.O_TRUNC|fuse.FMODE_EXEC)), 0)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	ino, errno := fdIno(f)
	if errno != 0 {
		f.Close()
		return nil, 0, errno
	}
	h := &file{c: n.c, f: f, ino: ino}
	if flags&syscall.O_TRUNC != 0 {
		if errno := h.truncateLocked(0); errno != 0 {
			f.Close()
			return nil, 0, errno
		}
	}
	// No FOPEN_DIRECT_IO: shared writable mappings need the page cache.
	return h, 0, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.c.lockLive(); errno != 0 {
		return nil, errno
	}
	defer n.c.mu.Unlock()
	if errno := n.c.noteDirLocked(n.backingPath()); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Mkdir(ctx, name, mode, out)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if errno := n.c.lockLive(); errno != 0 {
		return errno
	}
	defer n.c.mu.Unlock()
	if errno := n.c.noteDirLocked(n.backingPath()); errno != 0 {
		return errno
	}
	return n.LoopbackNode.Rmdir(ctx, name)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := n.c.lockLive(); errno != 0 {
		return errno
	}
	defer n.c.mu.Unlock()
	if errno := n.c.noteDirLocked(n.backingPath()); errno != 0 {
		return errno
	}
	if errno := n.c.buryLocked(filepath.Join(n.backingPath(), name)); errno != 0 {
		return errno
	}
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok || flags != 0 {
		return syscall.ENOTSUP
	}
	if errno := n.c.lockLive(); errno != 0 {
		return errno
	}
	defer n.c.mu.Unlock()
	src := filepath.Join(n.backingPath(), name)
	var st syscall.Stat_t
	if err := syscall.Lstat(src, &st); err != nil {
		return fs.ToErrno(err)
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return syscall.ENOTSUP
	}
	for _, d := range []*node{n, np} {
		if errno := n.c.noteDirLocked(d.backingPath()); errno != 0 {
			return errno
		}
	}
	if errno := n.c.buryLocked(src); errno != 0 {
		return errno
	}
	dst := filepath.Join(np.backingPath(), newName)
	if errno := n.c.buryLocked(dst); errno != 0 && errno != syscall.ENOENT {
		return errno
	}
	return n.LoopbackNode.Rename(ctx, name, &np.LoopbackNode, newName, flags)
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := n.c.lockLive(); errno != 0 {
		return errno
	}
	defer n.c.mu.Unlock()
	if sz, ok := in.GetSize(); ok {
		h, _ := f.(*file)
		if h == nil {
			fd, err := os.OpenFile(n.backingPath(), os.O_RDWR, 0)
			if err != nil {
				return fs.ToErrno(err)
			}
			defer fd.Close()
			ino, errno := fdIno(fd)
			if errno != 0 {
				return errno
			}
			h = &file{c: n.c, f: fd, ino: ino}
		}
		if errno := h.truncateLocked(int64(sz)); errno != 0 {
			return errno
		}
		in.Valid &^= fuse.FATTR_SIZE
	}
	return n.LoopbackNode.Setattr(ctx, f, in, out)
}

// Fsync makes a file's data or a directory's entries durable: FUSE sends
// FSYNC for fsync, fdatasync and msync (after writing the dirty pages back),
// FSYNCDIR for a directory.
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if errno := n.c.lockLive(); errno != 0 {
		return errno
	}
	defer n.c.mu.Unlock()
	var ino uint64
	if h, ok := f.(*file); ok {
		ino = h.ino
	} else {
		var errno syscall.Errno
		if ino, errno = n.backingIno(); errno != 0 {
			return errno
		}
	}
	if n.IsDir() {
		delete(n.c.dirs, ino)
		return 0
	}
	delete(n.c.files, ino)
	if n.c.last != nil && n.c.last.ino == ino {
		n.c.last = nil
	}
	return 0
}

// OpendirHandle hides the loopback's own FSYNCDIR so it reaches Fsync.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	h, fl, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{h}, fl, 0
}

func (n *node) Link(context.Context, fs.InodeEmbedder, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.ENOTSUP
}

func (n *node) Symlink(context.Context, string, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.ENOTSUP
}

func (n *node) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.ENOTSUP
}

// dirHandle forwards reading a directory and nothing else.
type dirHandle struct{ h fs.FileHandle }

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	return d.h.(fs.FileReaddirenter).Readdirent(ctx)
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	return d.h.(fs.FileSeekdirer).Seekdir(ctx, off)
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	d.h.(fs.FileReleasedirer).Releasedir(ctx, flags)
}
