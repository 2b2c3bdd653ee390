// Package configs holds edgeq's sample configuration files. The annotated
// reference, edgeq.yaml, is embedded so that `edgeq config example` prints it;
// every *.yaml here is parsed and validated by the tests of package main.
package configs

import "embed"

// FS holds edgeq.yaml, the annotated reference configuration. It is
// read-only and safe for concurrent use.
//
//go:embed edgeq.yaml
var FS embed.FS
