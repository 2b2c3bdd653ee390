// Package crashfs is a FUSE file system for tests that forgets, at a
// simulated power cut, everything that was not synced.
//
// A mount passes every operation through to a backing directory, so a
// process working on it sees an ordinary file system. Beside that, the FS
// keeps a volatile layer in memory: for each file, an undo record of every
// write and truncate since its last fsync, fdatasync or msync (shared
// writable mappings reach FUSE as writes at writeback or msync, followed by
// an fsync); for each directory, the entries it had at its last fsync.
// [FS.Cut] stops the mount, unmounts it and rolls the backing directory back
// to what a disk would have kept: file contents and sizes as of their last
// sync, directory entries as of their directory's last sync (a created file
// whose directory was not synced vanishes, an unsynced rename is undone, an
// unsynced unlink is undone). [Options.Mode] chooses how unsynced data goes:
// all of it (the default), all but the first half of the last write (a torn
// write), or a random prefix of each file's unsynced writes, chosen per file
// (writes to different files reordered).
//
// Only for tests: the edgeq binary never imports it. Hard links, symlinks,
// device nodes, rename flags and renaming a directory are refused with
// ENOTSUP; the store does not use them.
//
// A test mounts the FS in its own process and runs the process under test
// (the daemon) as a child working in [FS.Dir]. The test process itself may
// read and write files on the mount but must not map them: a page fault on
// its own mount waits for a FUSE server goroutine, which a stop-the-world
// pause of the same process can hold still, and the process deadlocks.
//
// Goroutines: go-fuse serves requests on goroutines of its own, started by
// [Mount] and stopped by [FS.Cut] or [FS.Close]. One mutex (FS.mu) guards
// the volatile layer and serialises every operation that changes data or
// names, so the layer's order is the order the backing directory saw.
package crashfs
