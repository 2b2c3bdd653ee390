package crashfs

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

func isEOF(err error) bool { return errors.Is(err, io.EOF) }

// revertLocked rolls the backing directory back to what was synced: file
// data first (through any name, the graveyard's included, since a hard link
// shares the data), then each directory's entries, parents before children.
func (c *FS) revertLocked() error {
	paths, err := c.indexLocked()
	if err != nil {
		return err
	}
	r := c.rand()
	inos := make([]uint64, 0, len(c.files))
	for ino := range c.files {
		inos = append(inos, ino)
	}
	slices.Sort(inos) // Reorder's choices follow the seed, not map order
	for _, ino := range inos {
		p, ok := paths[ino]
		if !ok {
			continue // unlinked and never synced under a name: gone
		}
		undo := c.files[ino].undo
		keep := 0
		switch c.opts.Mode {
		case Reorder:
			keep = r.IntN(len(undo) + 1)
		case Tear:
			if c.last != nil && c.last.ino == ino {
				keep = c.last.rec
			}
		}
		c.cut.Writes += len(undo) - keep
		if err := revertFile(p, undo[keep:]); err != nil {
			return err
		}
		if c.opts.Mode == Tear && c.last != nil && c.last.ino == ino {
			if err := writeAt(p, c.last.data[:len(c.last.data)/2], c.last.off); err != nil {
				return err
			}
		}
	}
	dirInos := make([]uint64, 0, len(c.dirs))
	for ino := range c.dirs {
		if _, ok := paths[ino]; ok {
			dirInos = append(dirInos, ino)
		}
	}
	slices.SortFunc(dirInos, func(a, b uint64) int {
		return cmp.Compare(strings.Count(paths[a], "/"), strings.Count(paths[b], "/"))
	})
	for _, ino := range dirInos {
		if err := c.revertDir(paths[ino], c.dirs[ino], paths); err != nil {
			return err
		}
	}
	return nil
}

// indexLocked maps backing inodes to a path: the graveyard's link where
// there is one, since names in the tree may move while directories revert.
func (c *FS) indexLocked() (map[uint64]string, error) {
	paths := map[uint64]string{}
	err := filepath.WalkDir(c.backing, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		paths[st.Ino] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("crashfs: index %s: %w", c.backing, err)
	}
	ents, err := os.ReadDir(c.graveyard)
	if err != nil {
		return nil, fmt.Errorf("crashfs: index graveyard: %w", err)
	}
	for _, e := range ents {
		ino, err := strconv.ParseUint(e.Name(), 10, 64)
		if err != nil {
			continue
		}
		paths[ino] = filepath.Join(c.graveyard, e.Name())
	}
	return paths, nil
}

// revertFile applies undo records newest first.
func revertFile(p string, undo []undoRecord) error {
	if len(undo) == 0 {
		return nil
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("crashfs: revert %s: %w", p, err)
	}
	defer f.Close()
	for i := len(undo) - 1; i >= 0; i-- {
		u := undo[i]
		if len(u.old) > 0 {
			if _, err := f.WriteAt(u.old, u.off); err != nil {
				return fmt.Errorf("crashfs: revert %s: %w", p, err)
			}
		}
		if err := f.Truncate(u.size); err != nil {
			return fmt.Errorf("crashfs: revert %s: %w", p, err)
		}
	}
	return nil
}

func writeAt(p string, data []byte, off int64) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("crashfs: tear %s: %w", p, err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		return fmt.Errorf("crashfs: tear %s: %w", p, err)
	}
	return nil
}

// revertDir gives dir the entries it had at its last sync: names added or
// pointing elsewhere since go, names removed come back from the graveyard.
// A directory that comes back comes back empty, as rmdir left it.
func (c *FS) revertDir(dir string, synced map[string]dirent, paths map[uint64]string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("crashfs: revert %s: %w", dir, err)
	}
	current := map[string]uint64{}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return fmt.Errorf("crashfs: revert %s: %w", p, err)
		}
		if s, ok := synced[e.Name()]; ok && s.ino == st.Ino {
			current[e.Name()] = st.Ino
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("crashfs: revert %s: %w", p, err)
		}
		c.cut.Entries++
	}
	for name, s := range synced {
		if _, ok := current[name]; ok {
			continue
		}
		p := filepath.Join(dir, name)
		c.cut.Entries++
		if s.dir {
			if err := os.Mkdir(p, 0o755); err != nil {
				return fmt.Errorf("crashfs: revert %s: %w", p, err)
			}
			continue
		}
		src, ok := paths[s.ino]
		if !ok {
			return fmt.Errorf("crashfs: revert %s: inode %d lost", p, s.ino)
		}
		if err := os.Link(src, p); err != nil {
			return fmt.Errorf("crashfs: revert %s: %w", p, err)
		}
	}
	return nil
}
