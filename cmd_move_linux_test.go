package main

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMoveProgressTerminal gives move a terminal for standard error: the
// progress is redrawn in place, and the line cleared at the end.
func TestMoveProgressTerminal(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	enqueueN(t, addr, "slow", "1", "2", "3", "4", "5", "6", "7", "8")
	master, tty := openPTY(t)
	var screen workOutput
	var reader sync.WaitGroup
	reader.Go(func() { _, _ = io.Copy(&screen, master) })

	var stdout bytes.Buffer
	e := env{stdin: strings.NewReader(""), stdout: &stdout, stderr: tty, lookupEnv: mapEnv(nil)}
	code := exitCode(run(t.Context(), []string{"edgeq", "move", "slow", "--to", "fast", "--rate", "8", "--addr", addr}, e), tty)
	if code != 0 || stdout.String() != "moved 8 ready jobs from slow to fast; 0 left in slow\n" {
		t.Fatalf("move: exit %d, stdout %q", code, stdout.String())
	}
	tty.Close()
	reader.Wait() // the master reads EIO once the tty is closed
	got := screen.String()
	if !regexp.MustCompile(`^\rmoved 4 of 8; 4 left in slow; [0-9.]+ jobs/s; ETA \S+\x1b\[K\r\x1b\[K$`).MatchString(got) {
		t.Errorf("move's progress on a terminal = %q, want one line redrawn in place, then cleared", got)
	}
}

// openPTY opens a pseudo-terminal pair; both ends close with the test.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}
