package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate and its key as PEM files in dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edgeq-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestValidateChecksWhatServeChecks: each file that serve would refuse
// after `config validate` said ok (issue 13, item 21). validate and serve
// both exit 78 with FILE:LINE: KEY:, serve before it creates its data
// directory; --offline skips the files and programs.
func TestValidateChecksWhatServeChecks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	empty := filepath.Join(dir, "empty")
	notPEM := filepath.Join(dir, "not.pem")
	for _, f := range []struct{ path, data string }{{empty, " \n"}, {notPEM, "not a certificate\n"}} {
		if err := os.WriteFile(f.path, []byte(f.data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert, key := selfSigned(t, dir)
	tests := []struct {
		name    string
		yaml    string
		want    string // after "FILE:"
		offline bool   // --offline still refuses
	}{
		{"token file missing", "http:\n  token_file: " + missing + "\n", "2: http.token_file: open " + missing, false},
		{"token file empty", "http:\n  addr: 0.0.0.0:7070\n  token_file: " + empty + "\n", "3: http.token_file: " + empty + " is empty", false},
		{"listener without token", "http:\n  addr: 0.0.0.0:7070\n", "2: http.addr: refusing to serve 0.0.0.0:7070 without a token", true},
		{"native listener without token", "native:\n  listen: 0.0.0.0:7701\n", "2: native.listen: refusing to serve 0.0.0.0:7701 without a token", true},
		{"http tls cert missing", "http:\n  tls:\n    cert: " + missing + "\n    key: " + key + "\n", "3: http.tls.cert: open " + missing, false},
		{"http tls pair mismatch", "http:\n  tls: {cert: " + notPEM + ", key: " + key + "}\n", "2: http.tls: " + notPEM + " and " + key, false},
		{"mqtt password file missing", "mqtt:\n  broker: tcp://127.0.0.1:1883\n  password_file: " + missing + "\n", "3: mqtt.password_file: open " + missing, false},
		{"mqtt ca not PEM", "mqtt:\n  broker: tcp://127.0.0.1:1883\n  tls:\n    ca: " + notPEM + "\n", "4: mqtt.tls.ca: no PEM certificate in " + notPEM, false},
		{"mqtt client key missing", "mqtt:\n  broker: tcp://127.0.0.1:1883\n  tls:\n    cert: " + cert + "\n    key: " + missing + "\n", "5: mqtt.tls.key: open " + missing, false},
		{"uplink token file missing", "uplinks:\n  cloud:\n    type: http\n    url: 'http://127.0.0.1:1/'\n    token_file: " + missing + "\n", "5: uplinks.cloud.token_file: open " + missing, false},
		{"uplink token file empty", "uplinks:\n  cloud:\n    type: http\n    url: 'http://127.0.0.1:1/'\n    token_file: " + empty + "\n", "5: uplinks.cloud.token_file: " + empty + " is empty", false},
		{"uplink ca not PEM", "uplinks:\n  cloud:\n    type: http\n    url: 'https://127.0.0.1:1/'\n    tls: {ca: " + notPEM + "}\n", "5: uplinks.cloud.tls.ca: no PEM certificate in " + notPEM, false},
		{"http handler reserved header", "queues:\n  hook:\n    handler: {type: http, url: 'http://127.0.0.1:1/', headers: {Idempotency-Key: x}}\n", "3: queues.hook.handler: headers.Idempotency-Key: set by the handler", true},
		{"exec program missing", "queues:\n  notify:\n    handler: {type: exec, command: [" + missing + "]}\n", "3: queues.notify.handler: command[0]: exec: ", false},
		{"exec program not on PATH", "queues:\n  notify:\n    handler:\n      type: exec\n      command: [edgeq-no-such-program]\n", "3: queues.notify.handler: command[0]: exec: \"edgeq-no-such-program\": executable file not found", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := writeFile(t, "edgeq.yaml", tt.yaml)
			want := file + ":" + tt.want
			r := runCLI(t, env{}, "config", "validate", file)
			if r.code != exitConfig || !strings.Contains(r.stderr, want) || r.stdout != "" {
				t.Errorf("validate: %+v, want exit 78 and %q", r, want)
			}
			r = runCLI(t, env{}, "config", "validate", "--offline", file)
			if tt.offline && (r.code != exitConfig || !strings.Contains(r.stderr, want)) {
				t.Errorf("validate --offline: %+v, want exit 78 and %q", r, want)
			}
			if !tt.offline && (r.code != 0 || r.stdout != "ok\n") {
				t.Errorf("validate --offline: %+v, want ok: the files may exist only on the target", r)
			}
			// settled's daemon stands in for runDaemon, which opens the store
			// and binds the port: serve must refuse before it.
			s, r := settled(t, nil, "--config", file)
			if r.code != exitConfig || !strings.Contains(r.stderr, want) || s.cfg != nil {
				t.Errorf("serve: %+v (daemon started: %v), want exit 78 and %q before the daemon starts", r, s.cfg != nil, want)
			}
		})
	}

	// Everything in order: ok, and serve takes the token.
	token := writeFile(t, "token", "s3cret\n")
	good := writeFile(t, "good.yaml", fmt.Sprintf(`http:
  addr: 0.0.0.0:7070
  token_file: %s
  tls: {cert: %s, key: %s}
mqtt:
  broker: tcp://127.0.0.1:1883
  password_file: %s
  tls: {ca: %s, cert: %s, key: %s}
queues:
  notify:
    handler: {type: exec, command: [true]}
`, token, cert, key, token, cert, cert, key))
	if r := runCLI(t, env{}, "config", "validate", good); r.code != 0 || r.stdout != "ok\n" {
		t.Errorf("validate of a good file: %+v", r)
	}
	if s, r := settled(t, nil, "--config", good); r.code != 0 || s.token != "s3cret" {
		t.Errorf("serve of a good file: %+v, token %q", r, s.token)
	}
	open := writeFile(t, "open.yaml", "http: {addr: 0.0.0.0:7070}\n")
	for _, e := range []struct {
		vars map[string]string
		args []string
	}{{nil, []string{"--insecure-no-auth"}}, {map[string]string{insecureEnv: "true"}, nil}} {
		if r := runCLI(t, env{lookupEnv: mapEnv(e.vars)}, append(append([]string{"config", "validate"}, e.args...), open)...); r.code != 0 {
			t.Errorf("validate %v %v of an open listener: %+v, want ok as serve would start", e.vars, e.args, r)
		}
	}
}
