package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeQuickStart holds the README's quick start to what a fresh
// clone can run: the binary is built, and said where it lands, before the
// first CLI example; ids that differ on every run are marked placeholders.
func TestReadmeQuickStart(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no Quick start section")
	}
	section, _, _ = strings.Cut(section, "\n## ")

	makefile, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^BINARY\s*:?=\s*(\S+)$`).FindSubmatch(makefile)
	if m == nil || !regexp.MustCompile(`(?m)^build:.*\n\t.*go build .*-o \$\(BINARY\) \.$`).Match(makefile) {
		t.Fatal("Makefile: want BINARY and a build target that writes it")
	}
	bin := "./" + string(m[1])

	build := strings.Index(section, "make build")
	cli := regexp.MustCompile(`(^|[\s\x60(])(\./)?edgeq (serve|enqueue|stats|queue|dead|job|move|work|governor|bench|config)\b`).FindStringIndex(section)
	switch {
	case build < 0:
		t.Error("the quick start does not say to run make build")
	case cli == nil:
		t.Error("the quick start has no CLI example")
	case cli[0] < build:
		t.Errorf("the quick start runs the CLI (%q) before make build", section[cli[0]:cli[1]])
	case !strings.Contains(section[build:], bin):
		t.Errorf("the quick start does not say that make build writes %s", bin)
	}
	for _, l := range regexp.MustCompile(`lease=([^&'"\s]+)`).FindAllStringSubmatch(section, -1) {
		if !regexp.MustCompile(`^[A-Z_]+$`).MatchString(l[1]) {
			t.Errorf("the quick start acks with lease=%s: want a placeholder such as LEASE_ID (each lease has its own)", l[1])
		}
	}
}
