package uplink

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// topicPart is a literal part of a topic template or, when ph is set, a
// placeholder: "queue", "id" or "header.NAME".
type topicPart struct{ lit, ph string }

const headerPrefix = "header."

// parseTopic parses a topic template.
func parseTopic(s string) ([]topicPart, error) {
	var parts []topicPart
	for rest := s; rest != ""; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			open = len(rest)
		}
		if i := strings.IndexByte(rest[:open], '}'); i >= 0 {
			return nil, fmt.Errorf("%q: } without {", s)
		}
		if open > 0 {
			parts = append(parts, topicPart{lit: rest[:open]})
		}
		if open == len(rest) {
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("%q: unclosed {", s)
		}
		ph := rest[open+1 : open+end]
		if ph != "queue" && ph != "id" && (!strings.HasPrefix(ph, headerPrefix) || len(ph) == len(headerPrefix)) {
			return nil, fmt.Errorf("%q: unknown placeholder {%s} (want {queue}, {id} or {header.NAME})", s, ph)
		}
		parts = append(parts, topicPart{ph: ph})
		rest = rest[open+end+1:]
	}
	return parts, nil
}

// checkTopic accepts a topic template for publishing: placeholders known,
// no wildcards.
func checkTopic(s string) error {
	parts, err := parseTopic(s)
	if err != nil {
		return err
	}
	for _, pt := range parts {
		if strings.ContainsAny(pt.lit, "+#\x00") {
			return fmt.Errorf("%q must not hold the wildcards + or # (or NUL)", s)
		}
	}
	return nil
}

// topicUnsafe replaces what a header's value must not bring into a topic:
// a level separator, wildcards, NUL.
var topicUnsafe = strings.NewReplacer("/", "_", "+", "_", "#", "_", "\x00", "_")

// topicOf expands the topic template for a job of queue with id and
// headers; a header the job lacks expands to "".
func (p *mqttPub) topicOf(queue, id string, headers map[string]string) string {
	var b strings.Builder
	for _, pt := range p.topic {
		switch {
		case pt.ph == "":
			b.WriteString(pt.lit)
		case pt.ph == "queue":
			b.WriteString(queue)
		case pt.ph == "id":
			b.WriteString(id)
		default:
			b.WriteString(topicUnsafe.Replace(header(headers, pt.ph[len(headerPrefix):])))
		}
	}
	return b.String()
}

// header answers headers' value for name, matched exactly or else without
// regard to case.
func header(headers map[string]string, name string) string {
	if v, ok := headers[name]; ok {
		return v
	}
	for k, v := range headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// validateMQTT checks the keys of an mqtt uplink.
func (c Config) validateMQTT(bad func(key, format string, args ...any)) {
	tlsURL := false
	if c.URL == "" {
		bad("url", "required for mqtt uplinks")
	} else if u, err := url.Parse(c.URL); err != nil {
		bad("url", "%q: %v", c.URL, err)
	} else if secure, ok := mqttSchemes[u.Scheme]; !ok {
		bad("url", "%q: want tcp://, mqtt://, ssl://, tls:// or mqtts://", c.URL)
	} else if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
		bad("url", "%q: want host:port", c.URL)
	} else {
		tlsURL = secure
	}
	if c.ClientID == "" {
		bad("client_id", "required for mqtt uplinks")
	}
	switch c.Protocol {
	case "", "3.1.1", "5":
	default:
		bad("protocol", "unknown protocol %q (want 3.1.1 or 5)", c.Protocol)
	}
	if c.Topic == "" {
		bad("topic", "required for mqtt uplinks")
	} else if err := checkTopic(c.Topic); err != nil {
		bad("topic", "%v", err)
	}
	if c.URL != "" && !tlsURL {
		if len(c.ALPN) > 0 {
			bad("alpn", "needs a TLS url (ssl://, tls:// or mqtts://)")
		}
		if c.TLS != (TLSFiles{}) {
			bad("tls", "needs a TLS url (ssl://, tls:// or mqtts://)")
		}
	}
	if slices.Contains(c.ALPN, "") {
		bad("alpn", "an empty protocol name")
	}
	if err := CheckEncoding(c.Compress); err != nil {
		bad("compress", "%v", err)
	}
	for _, f := range []struct {
		key string
		set bool
	}{{"stream", c.Stream != ""}, {"subject", c.Subject != ""}, {"creds_file", c.CredsFile != ""},
		{"headers", len(c.Headers) > 0}, {"token_file", c.TokenFile != ""}} {
		if f.set {
			bad(f.key, "not used by mqtt uplinks")
		}
	}
}
