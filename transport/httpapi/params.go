package httpapi

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// Query parameters accepted by each endpoint; parseQuery fills a value slice
// in the same order. An unknown parameter is refused rather than ignored: a
// mistyped "dealy" must not run a job now.
var (
	enqueueParams  = []string{"key", "delay", "run_at", "max_attempts", "ttr", "expires_in", "expires_at"}
	leaseParams    = []string{"max", "wait", "ttr"}
	ackParams      = []string{"lease"}
	nackParams     = []string{"lease", "delay", "error"}
	failParams     = []string{"lease", "error"}
	extendParams   = []string{"lease", "ttr"}
	deadListParams = []string{"limit", "after"}
	limitParams    = []string{"limit"}
)

// parseQuery sets vals[i] to the value of names[i] in the raw query string,
// without building a url.Values. An empty value counts as absent; the last
// of repeated parameters wins.
func parseQuery(raw string, names, vals []string) error {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err := unescape(k)
		if err != nil {
			return invalidArg("query", "bad escape in %q", kv)
		}
		i := 0
		for i < len(names) && names[i] != k {
			i++
		}
		if i == len(names) {
			if len(names) == 0 {
				return invalidArg(k, "unknown query parameter (this endpoint takes none)")
			}
			return invalidArg(k, "unknown query parameter (want one of %s)", strings.Join(names, ", "))
		}
		if vals[i], err = unescape(v); err != nil {
			return invalidArg(k, "bad escape in %q", v)
		}
	}
	return nil
}

func unescape(s string) (string, error) {
	if strings.ContainsAny(s, "%+") {
		return url.QueryUnescape(s)
	}
	return s, nil
}

// parseInt parses a decimal integer in [lo, hi]; "" is def.
func parseInt(field, v string, lo, hi, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		if hi == maxInt {
			return 0, invalidArg(field, "want an integer of at least %d, got %q", lo, v)
		}
		return 0, invalidArg(field, "want an integer from %d to %d, got %q", lo, hi, v)
	}
	return n, nil
}

const maxInt = int(^uint(0) >> 1)

// parseEnqueueQuery fills the options of n from an enqueue query string.
func parseEnqueueQuery(raw string, n *job.New) error {
	if raw == "" {
		return nil
	}
	var v [7]string
	if err := parseQuery(raw, enqueueParams, v[:]); err != nil {
		return err
	}
	if v[1] != "" && v[2] != "" {
		return wire.ErrDelayAndRunAt
	}
	var err error
	n.Key = v[0]
	if n.Delay, err = wire.ParseDuration("delay", v[1]); err != nil {
		return err
	}
	if n.RunAt, err = wire.ParseTime("run_at", v[2]); err != nil {
		return err
	}
	if n.MaxAttempts, err = parseInt("max_attempts", v[3], 0, maxInt, 0); err != nil {
		return err
	}
	if n.TTR, err = wire.ParseDuration("ttr", v[4]); err != nil {
		return err
	}
	if n.ExpiresIn, err = wire.ParseDuration("expires_in", v[5]); err != nil {
		return err
	}
	if n.ExpiresAt, err = wire.ParseTime("expires_at", v[6]); err != nil {
		return err
	}
	return nil
}

// jobHeaders collects Edgeq-Header-<name> request headers as job headers,
// names lowercased; repeated values are joined with ", " (RFC 9110 5.3).
// It answers nil when there are none.
func jobHeaders(h map[string][]string) (map[string]string, error) {
	const prefix = "Edgeq-Header-"
	var out map[string]string
	for k, vs := range h {
		if len(k) < len(prefix) || !strings.EqualFold(k[:len(prefix)], prefix) {
			continue
		}
		name := strings.ToLower(k[len(prefix):])
		if name == "" {
			return nil, invalidArg(k, "header name is empty")
		}
		if out == nil {
			out = make(map[string]string, 4)
		}
		if len(vs) == 1 {
			out[name] = vs[0]
		} else {
			out[name] = strings.Join(vs, ", ")
		}
	}
	return out, nil
}
