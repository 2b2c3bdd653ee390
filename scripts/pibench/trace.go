package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// traceFlags is -trace: an strace log of the daemon during a load
// (strace -f -y -s 0 -e trace=fsync,fdatasync,msync,pwrite64,write,mmap,
// rename,ftruncate,fallocate), with the card's counters over the same load.
type traceFlags struct {
	path                                   string
	from                                   int    // count the calls from this line on (the load's); mmaps from the start
	dir                                    string // count only the files under this directory (the card)
	devWIOs, devWBytes, jbd2Tx, jbd2Blocks float64
}

// fileCalls is what the traced calls did to one kind of file.
type fileCalls struct {
	syncs  int   // fsync, fdatasync, msync
	writes int   // write, pwrite64
	bytes  int64 // their byte counts
	other  int   // rename, ftruncate, fallocate
}

var (
	// "1234  name(args" and the rest of the line; "[pid 1234] " is strace's other prefix.
	traceCall = regexp.MustCompile(`^(?:\[pid\s+)?(\d+)\]?\s+([a-z0-9_]+)\((.*)$`)
	// "1234  <... mmap resumed>) = 0x7f..."
	traceResumed = regexp.MustCompile(`^(?:\[pid\s+)?(\d+)\]?\s+<\.\.\. ([a-z0-9_]+) resumed>.*= (0x[0-9a-f]+|-?\d+)`)
	traceFD      = regexp.MustCompile(`^\d+<([^>]*)>`)
	traceResult  = regexp.MustCompile(`\) += (0x[0-9a-f]+|-?\d+)`)
	traceQuoted  = regexp.MustCompile(`"([^"]*)"`)
)

// traceStats counts a trace's calls by kind of file. A group commit is one
// msync of the memtable's WAL (Store.Sync: db.Sync syncs the active WAL
// once, then the value log).
type traceStats struct {
	files   map[string]*fileCalls
	commits int
}

func parseTrace(r io.Reader, from int, dir string) (traceStats, error) {
	st := traceStats{files: map[string]*fileCalls{}}
	maps := map[string]string{}        // mapping address → file (mmap of a file)
	pendingMmap := map[string]string{} // pid → file of an mmap that has not returned yet
	file := func(path string) *fileCalls {
		if dir != "" && !strings.HasPrefix(path, dir) && !strings.HasPrefix(path, "(") {
			return &fileCalls{} // not on the card: not counted
		}
		k := kindOf(path)
		if st.files[k] == nil {
			st.files[k] = &fileCalls{}
		}
		return st.files[k]
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		counting := n >= from
		if m := traceResumed.FindStringSubmatch(line); m != nil {
			if m[2] == "mmap" && pendingMmap[m[1]] != "" {
				maps[m[3]] = pendingMmap[m[1]]
			}
			delete(pendingMmap, m[1])
			continue
		}
		m := traceCall.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		pid, name, rest := m[1], m[2], m[3]
		args := strings.Split(strings.TrimSuffix(rest, " <unfinished ...>"), ", ")
		path := ""
		if fd := traceFD.FindStringSubmatch(args[0]); fd != nil {
			path = fd[1]
		}
		if !counting && name != "mmap" {
			continue
		}
		switch name {
		case "fsync", "fdatasync":
			if path != "" {
				file(path).syncs++
			}
		case "msync":
			f, ok := maps[args[0]]
			if !ok {
				f = "(unknown mapping)"
			}
			file(f).syncs++
			if strings.HasSuffix(f, ".mem") {
				st.commits++
			}
		case "write", "pwrite64":
			if path == "" || !strings.HasPrefix(path, "/") || len(args) < 3 {
				continue // a socket or a pipe
			}
			c := file(path)
			c.writes++
			c.bytes += writeLen(name, args)
		case "mmap":
			noteMmap(line, pid, args, maps, pendingMmap)
		case "rename", "renameat", "renameat2", "ftruncate", "fallocate":
			p := path
			if q := traceQuoted.FindAllStringSubmatch(rest, -1); p == "" && len(q) > 0 {
				p = q[len(q)-1][1] // a rename's new name
			}
			file(p).other++
		}
	}
	return st, sc.Err()
}

// writeLen is the byte count a traced write or pwrite64 call asked for.
func writeLen(name string, args []string) int64 {
	n := args[2]
	if name == "pwrite64" && len(args) >= 4 {
		n = args[len(args)-2]
	} else if name == "write" {
		n = strings.TrimSuffix(strings.SplitN(args[len(args)-1], ")", 2)[0], " <unfinished ...>")
	}
	v, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// noteMmap records the file a traced mmap maps: at its address in maps, or
// in pending by pid while the call has not returned yet.
func noteMmap(line, pid string, args []string, maps, pending map[string]string) {
	if len(args) < 5 {
		return
	}
	fd := traceFD.FindStringSubmatch(args[4])
	if fd == nil {
		return
	}
	if res := traceResult.FindStringSubmatch(line); res != nil {
		maps[res[1]] = fd[1]
	} else {
		pending[pid] = fd[1]
	}
}

// kindOf names the kind of Badger or edgeq file at path.
func kindOf(path string) string {
	base := filepath.Base(path)
	switch {
	case strings.HasSuffix(base, ".mem"):
		return "WAL (.mem)"
	case strings.HasSuffix(base, ".vlog"):
		return "value log (.vlog)"
	case strings.HasSuffix(base, ".sst"):
		return "tables (.sst)"
	case strings.HasPrefix(base, "MANIFEST"):
		return "MANIFEST"
	case strings.Contains(base, "checkpoint"):
		return "checkpoint"
	case base == "KEYREGISTRY" || base == "DISCARD" || base == "LOCK" || strings.HasPrefix(path, "("):
		return base
	case !strings.Contains(base, "."):
		return "directory"
	}
	return base
}

func (tf traceFlags) report(w io.Writer) error {
	f, err := os.Open(tf.path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := parseTrace(f, tf.from, tf.dir)
	if err != nil {
		return fmt.Errorf("%s: %w", tf.path, err)
	}
	if st.commits == 0 {
		return fmt.Errorf("%s: no msync of a WAL (.mem): no group commit traced", tf.path)
	}
	n := float64(st.commits)
	kinds := make([]string, 0, len(st.files))
	for k := range st.files {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int {
		return cmp.Or(cmp.Compare(st.files[b].syncs+st.files[b].writes, st.files[a].syncs+st.files[a].writes), strings.Compare(a, b))
	})
	fmt.Fprintf(w, "%d group commits traced\n\n", st.commits)
	fmt.Fprintln(w, "| file | syncs | writes | bytes written | syncs/commit | writes/commit | bytes/commit |")
	fmt.Fprintln(w, "| --- | --: | --: | --: | --: | --: | --: |")
	for _, k := range kinds {
		c := st.files[k]
		fmt.Fprintf(w, "| %s | %d | %d | %d | %.3f | %.3f | %.0f |\n", k, c.syncs, c.writes, c.bytes,
			float64(c.syncs)/n, float64(c.writes)/n, float64(c.bytes)/n)
	}
	if tf.devWIOs > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| on the card, per commit | write IOs | bytes | journal transactions | journal blocks (4 KiB) |")
		fmt.Fprintln(w, "| --- | --: | --: | --: | --: |")
		fmt.Fprintf(w, "| all | %.2f | %.0f | %.2f | %.2f |\n", tf.devWIOs/n, tf.devWBytes/n, tf.jbd2Tx/n, tf.jbd2Blocks/n)
	}
	return nil
}
