package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeKey writes a hex key file of byte b with mode.
func writeKey(t *testing.T, dir, name string, b byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(hex.EncodeToString(bytes.Repeat([]byte{b}, 32))+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// keyConfig writes a configuration naming keyFile as the store's key.
func keyConfig(t *testing.T, dir, keyFile string) string {
	t.Helper()
	p := filepath.Join(dir, "edgeq-"+filepath.Base(keyFile)+".yaml")
	if err := os.WriteFile(p, []byte("storage:\n  encryption_key_file: "+keyFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// grepDir lists the files under dir holding needle.
func grepDir(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, needle) {
			found = append(found, filepath.Base(p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// exitOf runs edgeq with args and answers its exit code and output.
func exitOf(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(binary(t), args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatal(err)
	return 0, ""
}

// TestEncryptionAtRest: answered jobs survive SIGKILL in an encrypted store
// whose files never hold a payload in the clear; a wrong key, no key or a
// key file open to others is refused (exit 78) and changes nothing;
// `edgeq storage rotate-key` refuses while the daemon runs and, once it is
// stopped, moves the store to the new key.
func TestEncryptionAtRest(t *testing.T) {
	tmp, data := t.TempDir(), t.TempDir()
	key1 := writeKey(t, tmp, "key1", 1, 0o600)
	key2 := writeKey(t, tmp, "key2", 2, 0o640)
	open := writeKey(t, tmp, "open", 3, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	secret := "edgeq-e2e-secret-reading-42"

	d := startDaemon(t, data, "--config", keyConfig(t, tmp, key1))
	var ids []string
	for i := range 20 {
		var res struct {
			ID string `json:"id"`
		}
		body := fmt.Sprintf(`{"device":%q,"n":%d}`, secret, i)
		if code, err := call(ctx, http.DefaultClient, "POST", d.base+"/v1/queues/telemetry/jobs", []byte(body), &res); err != nil || code != 201 {
			t.Fatalf("enqueue %d: %d %v", i, code, err)
		}
		ids = append(ids, res.ID)
	}
	if code, out := exitOf(t, "storage", "rotate-key", "--data-dir", data, "--key-file", key1, "--new-key-file", key2); code != 75 ||
		!strings.Contains(out, "locked by another process") {
		t.Errorf("rotate-key while serving: exit %d, %s; want 75 naming the lock", code, out)
	}
	d.kill()
	if found := grepDir(t, data, []byte(secret)); len(found) > 0 {
		t.Fatalf("files of the encrypted store hold a payload in the clear: %v", found)
	}

	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"wrong key":          {[]string{"--config", keyConfig(t, tmp, key2)}, "the encryption key does not open this store"},
		"no key":             {nil, "it is encrypted and no key was given"},
		"key open to others": {[]string{"--config", keyConfig(t, tmp, open)}, "storage.encryption_key_file: " + open + " is open to others (mode 0644)"},
	} {
		args := append([]string{"serve", "--data-dir", data, "--http-addr", freePort(t)}, tc.args...)
		if code, out := exitOf(t, args...); code != 78 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, %s; want 78 saying %q", name, code, out, tc.want)
		}
	}

	if code, out := exitOf(t, "storage", "rotate-key", "--config", keyConfig(t, tmp, key1), "--data-dir", data, "--new-key-file", key2); code != 0 {
		t.Fatalf("rotate-key: exit %d, %s", code, out)
	}
	if code, out := exitOf(t, "serve", "--data-dir", data, "--http-addr", freePort(t), "--config", keyConfig(t, tmp, key1)); code != 78 ||
		!strings.Contains(out, "the encryption key does not open this store") {
		t.Errorf("the old key after rotation: exit %d, %s", code, out)
	}
	d = startDaemon(t, data, "--config", keyConfig(t, tmp, key2))
	for _, id := range ids {
		var j apiJob
		if code, err := call(ctx, http.DefaultClient, "GET", d.base+"/v1/jobs/"+id, nil, &j); err != nil || code != 200 {
			t.Fatalf("job %s after SIGKILL and rotation: %d %v", id, code, err)
		}
		if !strings.Contains(string(j.Payload), secret) {
			t.Fatalf("job %s payload %s", id, j.Payload)
		}
	}
	if err := d.term(); err != nil {
		t.Fatal(err)
	}
	if found := grepDir(t, data, []byte(secret)); len(found) > 0 {
		t.Errorf("files holding a payload in the clear after a clean stop: %v", found)
	}
}
