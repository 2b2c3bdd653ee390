//go:build !linux

package main

import "io"

// isTerminal reports false: progress is then written a line at a time,
// which any terminal shows too.
func isTerminal(io.Writer) bool { return false }
