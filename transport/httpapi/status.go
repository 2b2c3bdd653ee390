package httpapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strings"
)

// statusHTML is the status page served at GET /: one self-contained
// document (inline CSS and JS, no external assets) that works offline. It
// holds no data: its script reads GET /v1/stats every 2s with the bearer
// token kept in the tab's sessionStorage, so the page itself is served
// without a token.
//
//go:embed status.html
var statusHTML []byte

// statusCSP allows the page's own inline style and script (by hash, so that
// anything injected would not run) and fetches to this origin only.
var statusCSP = buildStatusCSP(statusHTML)

func buildStatusCSP(page []byte) string {
	return "default-src 'none'" +
		"; style-src " + inlineHashes(page, "style") +
		"; script-src " + inlineHashes(page, "script") +
		"; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// inlineHashes answers the CSP sources of page's inline <tag> elements
// (written without attributes): their contents' SHA-256 hashes, or 'none'.
func inlineHashes(page []byte, tag string) string {
	open, end := []byte("<"+tag+">"), []byte("</"+tag+">")
	var srcs []string
	for {
		_, rest, ok := bytes.Cut(page, open)
		if !ok {
			break
		}
		body, after, ok := bytes.Cut(rest, end)
		if !ok {
			break
		}
		sum := sha256.Sum256(body)
		srcs = append(srcs, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		page = after
	}
	if len(srcs) == 0 {
		return "'none'"
	}
	return strings.Join(srcs, " ")
}

// statusPage serves GET / (the pattern "GET /{$}", so that other unknown
// paths still reach the JSON 404 catch-all). ServeHTTP lets it through
// without a token: the page carries no data.
func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", statusCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if _, err := w.Write(statusHTML); err != nil {
		s.log.Debug("write status page", "err", err)
	}
}
