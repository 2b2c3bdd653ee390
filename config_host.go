package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	exechandler "github.com/edgeq/edgeq/engine/handler/exec"
	"github.com/edgeq/edgeq/storage"
	"github.com/edgeq/edgeq/transport/httpapi"
)

// secrets are what checkHost read from the files the configuration names,
// so that serve reads each of them once.
type secrets struct {
	token        string          // the HTTP API's bearer token (http.token_file); "" when none
	tokens       []httpapi.Token // http.tokens with the values their files hold
	mqttPassword string          // the MQTT password file's first line
	storeKey     []byte          // the store's encryption key; nil when it is not encrypted
}

// hostCheck says what checkHost may skip or allow.
type hostCheck struct {
	offline   bool // skip the files and programs: they may exist only on the target
	allowOpen bool // --insecure-no-auth: a non-loopback listener without a token
}

// checkHost checks what serve needs beyond a valid configuration, before it
// opens the store or binds a port: the token, TLS and MQTT password files
// can be read and hold what they should, each exec handler's program is
// found, and a listener beyond loopback has a token. serve and `config
// validate` run it alike. It answers the secrets it read (none offline) and
// a *ConfigError naming each problem's key, or nil.
func checkHost(cfg *Config, hc hostCheck) (sec secrets, err error) {
	var v validator
	if f := cfg.HTTP.TokenFile; f != "" && !hc.offline {
		if b, err := os.ReadFile(f); err != nil {
			v.add("http.token_file", "%v", err)
		} else if sec.token = strings.TrimSpace(string(b)); sec.token == "" {
			v.add("http.token_file", "%s is empty", f)
		}
	}
	if !hc.offline {
		sec.tokens = readTokens(&v, cfg.HTTP.Tokens, sec.token)
	}
	if addr := cfg.HTTP.Addr; cfg.HTTP.TokenFile == "" && len(cfg.HTTP.Tokens) == 0 && !hc.allowOpen && checkHostPort(addr) == nil && !isLoopback(addr) {
		v.add("http.addr", "refusing to serve %s without a token: set http.token_file (--token-file) or pass --insecure-no-auth", addr)
	}
	if addr := cfg.Native.Listen; cfg.HTTP.TokenFile == "" && !hc.allowOpen && addr != "" && checkHostPort(addr) == nil && !isLoopback(addr) {
		v.add("native.listen", "refusing to serve %s without a token: set http.token_file (--token-file) or pass --insecure-no-auth", addr)
	}
	if hc.offline {
		return sec, v.err()
	}

	if f := cfg.Storage.EncryptionKeyFile; f != "" {
		if sec.storeKey, err = storage.ReadKeyFile(f); err != nil {
			v.add("storage.encryption_key_file", "%v", err)
		}
	}
	v.keyPair("http.tls", cfg.HTTP.TLS.Cert, cfg.HTTP.TLS.Key)
	if m := cfg.MQTT; m.Broker != "" {
		if m.PasswordFile != "" {
			if b, err := os.ReadFile(m.PasswordFile); err != nil {
				v.add("mqtt.password_file", "%v", err)
			} else {
				sec.mqttPassword = strings.TrimRight(string(b), "\r\n")
			}
		}
		if m.TLS.CA != "" {
			if pem, err := os.ReadFile(m.TLS.CA); err != nil {
				v.add("mqtt.tls.ca", "%v", err)
			} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				v.add("mqtt.tls.ca", "no PEM certificate in %s", m.TLS.CA)
			}
		}
		v.keyPair("mqtt.tls", m.TLS.Cert, m.TLS.Key)
	}
	cfg.checkUplinkFiles(&v)
	for _, name := range slices.Sorted(maps.Keys(cfg.Queues)) {
		if h := cfg.Queues[name].Handler; h != nil && h.Type == "exec" && len(h.Command) > 0 && h.Command[0] != "" {
			if _, err := newExecHandler(h); err != nil {
				v.add("queues."+name+".handler", "%v", err)
			}
		}
	}
	return sec, v.err()
}

// readTokens reads the files of http.tokens: each must hold a token, be
// closed to other users and hold a token no other holds (token_file's
// included).
func readTokens(v *validator, tcs []TokenConfig, tokenFile string) []httpapi.Token {
	seen := map[string]string{}
	if tokenFile != "" {
		seen[tokenFile] = "http.token_file"
	}
	var out []httpapi.Token
	for i, tc := range tcs {
		key := fmt.Sprintf("http.tokens[%d].file", i)
		if tc.File == "" {
			continue // Validate names it
		}
		fi, err := os.Stat(tc.File)
		if err != nil {
			v.add(key, "%v", err)
			continue
		}
		if perm := fi.Mode().Perm(); perm&0o007 != 0 {
			v.add(key, "%s is open to other users (mode %04o): chmod o-rwx %s", tc.File, perm, tc.File)
			continue
		}
		b, err := os.ReadFile(tc.File)
		if err != nil {
			v.add(key, "%v", err)
			continue
		}
		tok := strings.TrimSpace(string(b))
		switch other, dup := seen[tok]; {
		case tok == "":
			v.add(key, "%s is empty", tc.File)
			continue
		case dup:
			v.add(key, "%s holds the same token as %s", tc.File, other)
			continue
		}
		seen[tok] = fmt.Sprintf("http.tokens[%d]", i)
		t := httpapi.Token{Name: tc.Name, Value: tok, Queues: tc.Queues}
		for _, r := range tc.Roles {
			t.Roles = append(t.Roles, httpapi.Role(r))
		}
		out = append(out, t)
	}
	return out
}

// keyPair checks a certificate and its key when both are named (Validate
// reports one without the other).
func (v *validator) keyPair(key, certFile, keyFile string) {
	if certFile == "" || keyFile == "" {
		return
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		v.add(key+".cert", "%v", err)
	}
	keyPEM, kerr := os.ReadFile(keyFile)
	if kerr != nil {
		v.add(key+".key", "%v", kerr)
	}
	if err != nil || kerr != nil {
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		v.add(key, "%s and %s: %v", certFile, keyFile, err)
	}
}

// newExecHandler builds the exec handler of h, as serve runs it.
func newExecHandler(h *HandlerConfig) (*exechandler.Handler, error) {
	return exechandler.New(exechandler.Config{Command: h.Command, Timeout: time.Duration(h.Timeout)})
}
