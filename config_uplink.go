package main

import (
	"crypto/x509"
	"errors"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/edgeq/edgeq/transport/uplink"
)

// UplinkConfig is one named upstream connection under uplinks: (issue 19);
// queues use it with handler: {type: uplink, uplink: NAME}.
type UplinkConfig struct {
	Type         string            `yaml:"type"`
	URL          string            `yaml:"url"`
	Stream       string            `yaml:"stream"`
	Subject      string            `yaml:"subject"`
	CredsFile    string            `yaml:"creds_file"`
	ClientID     string            `yaml:"client_id"`
	Username     string            `yaml:"username"`
	PasswordFile string            `yaml:"password_file"`
	Protocol     string            `yaml:"protocol"`
	Topic        string            `yaml:"topic"`
	Headers      map[string]string `yaml:"headers"`
	TokenFile    string            `yaml:"token_file"`
	Compress     string            `yaml:"compress"`
	TLS          ClientTLSFiles    `yaml:"tls"`
	ALPN         []string          `yaml:"alpn"`
	Batch        UplinkBatch       `yaml:"batch"`
	MaxRate      Rate              `yaml:"max_rate"`
	MaxBandwidth Size              `yaml:"max_bandwidth"`
	Timeout      Duration          `yaml:"timeout"`
	AlertAfter   Duration          `yaml:"alert_after"`
}

// UplinkBatch bounds one batch of an uplink.
type UplinkBatch struct {
	MaxJobs  int      `yaml:"max_jobs"`
	MaxBytes Size     `yaml:"max_bytes"`
	Linger   Duration `yaml:"linger"`
}

// defaultUplinkBreaker is the breaker of a queue that sends through an
// uplink and sets none: while the uplink is down, the queue stops
// dispatching and probes every cool_down, instead of cycling its whole
// backlog through retries.
var defaultUplinkBreaker = BreakerConfig{Failures: 3, CoolDown: Duration(5 * time.Second)}

var uplinkName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func (c *Config) validateUplinks(v *validator) {
	for _, name := range slices.Sorted(maps.Keys(c.Uplinks)) {
		key := "uplinks." + name
		if !uplinkName.MatchString(name) {
			v.add(key, "invalid uplink name (want ^[a-z0-9][a-z0-9_-]{0,63}$)")
		}
		err := c.Uplinks[name].uplink(name).Validate()
		var errs interface{ Unwrap() []error }
		if errors.As(err, &errs) {
			for _, e := range errs.Unwrap() {
				field, msg, _ := strings.Cut(e.Error(), ": ")
				v.add(key+"."+field, "%s", msg)
			}
		}
	}
}

// uplink maps u, named name, to the uplink package's configuration.
func (u UplinkConfig) uplink(name string) uplink.Config {
	return uplink.Config{
		Name:         name,
		Type:         u.Type,
		URL:          u.URL,
		Stream:       u.Stream,
		Subject:      u.Subject,
		CredsFile:    u.CredsFile,
		ClientID:     u.ClientID,
		Username:     u.Username,
		PasswordFile: u.PasswordFile,
		Protocol:     u.Protocol,
		Topic:        u.Topic,
		Headers:      u.Headers,
		TokenFile:    u.TokenFile,
		Compress:     u.Compress,
		TLS:          uplink.TLSFiles{CA: u.TLS.CA, Cert: u.TLS.Cert, Key: u.TLS.Key},
		ALPN:         u.ALPN,
		Batch:        uplink.Batch{MaxJobs: u.Batch.MaxJobs, MaxBytes: int(u.Batch.MaxBytes), Linger: time.Duration(u.Batch.Linger)},
		MaxRate:      float64(u.MaxRate),
		MaxBandwidth: int64(u.MaxBandwidth),
		Timeout:      time.Duration(u.Timeout),
		AlertAfter:   time.Duration(u.AlertAfter),
	}
}

// uplinks maps the uplinks: section for the daemon.
func (c *Config) uplinks() []uplink.Config {
	var us []uplink.Config
	for _, name := range slices.Sorted(maps.Keys(c.Uplinks)) {
		us = append(us, c.Uplinks[name].uplink(name))
	}
	return us
}

// checkUplinkFiles checks that each uplink's token, CA and client
// certificate files can be read and hold what they should, as the uplink
// reads them when it starts.
func (c *Config) checkUplinkFiles(v *validator) {
	for _, name := range slices.Sorted(maps.Keys(c.Uplinks)) {
		u, key := c.Uplinks[name], "uplinks."+name
		if u.TokenFile != "" {
			if b, err := os.ReadFile(u.TokenFile); err != nil {
				v.add(key+".token_file", "%v", err)
			} else if strings.TrimSpace(string(b)) == "" {
				v.add(key+".token_file", "%s is empty", u.TokenFile)
			}
		}
		if u.TLS.CA != "" {
			if pem, err := os.ReadFile(u.TLS.CA); err != nil {
				v.add(key+".tls.ca", "%v", err)
			} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				v.add(key+".tls.ca", "no PEM certificate in %s", u.TLS.CA)
			}
		}
		v.keyPair(key+".tls", u.TLS.Cert, u.TLS.Key)
	}
}
