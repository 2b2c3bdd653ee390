package httpapi

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// param is a query parameter an endpoint takes and where its value goes.
type param struct {
	name string
	val  *string
}

// parseQuery sets the value of each param named in the raw query string,
// without building a url.Values. An empty value counts as absent; the last
// of repeated parameters wins. An unknown parameter is refused rather than
// ignored: a mistyped "dealy" must not run a job now.
func parseQuery(raw string, params ...param) error {
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
		for i < len(params) && params[i].name != k {
			i++
		}
		if i == len(params) {
			return unknownParam(k, params)
		}
		if *params[i].val, err = unescape(v); err != nil {
			return invalidArg(k, "bad escape in %q", v)
		}
	}
	return nil
}

func unknownParam(k string, params []param) error {
	if len(params) == 0 {
		return invalidArg(k, "unknown query parameter (this endpoint takes none)")
	}
	var names strings.Builder
	for i := range params {
		if i > 0 {
			names.WriteString(", ")
		}
		names.WriteString(params[i].name)
	}
	return invalidArg(k, "unknown query parameter (want one of %s)", names.String())
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
	var keyMode, delay, runAt, maxAttempts, ttr, expiresIn, expiresAt, onSuccess, followUpPayload string
	err := parseQuery(raw,
		param{"key", &n.Key}, param{"key_mode", &keyMode}, param{"group", &n.Group}, param{"delay", &delay}, param{"run_at", &runAt},
		param{"max_attempts", &maxAttempts}, param{"ttr", &ttr},
		param{"expires_in", &expiresIn}, param{"expires_at", &expiresAt},
		param{"on_success", &onSuccess}, param{"on_success_payload", &followUpPayload})
	if err != nil {
		return err
	}
	if n.OnSuccess, err = followUpQuery(onSuccess, followUpPayload); err != nil {
		return err
	}
	if delay != "" && runAt != "" {
		return wire.ErrDelayAndRunAt
	}
	if n.KeyMode, err = wire.ParseKeyMode(keyMode); err != nil {
		return err
	}
	if n.Delay, err = wire.ParseDuration("delay", delay); err != nil {
		return err
	}
	if n.RunAt, err = wire.ParseTime("run_at", runAt); err != nil {
		return err
	}
	if n.MaxAttempts, err = parseInt("max_attempts", maxAttempts, 0, maxInt, 0); err != nil {
		return err
	}
	if n.TTR, err = wire.ParseDuration("ttr", ttr); err != nil {
		return err
	}
	if n.ExpiresIn, err = wire.ParseDuration("expires_in", expiresIn); err != nil {
		return err
	}
	if n.ExpiresAt, err = wire.ParseTime("expires_at", expiresAt); err != nil {
		return err
	}
	return nil
}

// followUpQuery is the follow-up of the query parameters on_success (its
// queue) and on_success_payload (its payload; absent or empty: the
// job's result).
func followUpQuery(queue, payload string) (*job.FollowUp, error) {
	switch {
	case queue == "" && payload != "":
		return nil, invalidArg("on_success_payload", "needs on_success (the follow-up's queue)")
	case queue == "":
		return nil, nil
	case payload == "":
		return &job.FollowUp{Queue: queue}, nil
	}
	return &job.FollowUp{Queue: queue, Payload: []byte(payload), HasPayload: true}, nil
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
