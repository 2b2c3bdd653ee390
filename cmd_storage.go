package main

import (
	"cmp"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/storage"
)

// storageCommand groups the commands that work on a stopped daemon's store.
func storageCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "storage",
		Usage: "work on the store of a stopped daemon",
		Subcommands: []*cli.Command{{
			Name:  "rotate-key",
			Usage: "re-encrypt an encrypted store's data keys under a new key",
			Description: "The daemon must be stopped: the store's directory lock is taken. Only the key\n" +
				"registry is rewritten (atomically): tables and logs stay as they are. The data\n" +
				"dir and the current key file come from --config (data_dir,\n" +
				"storage.encryption_key_file) or the flags. Afterwards, put the new key where\n" +
				"storage.encryption_key_file points before starting edgeq.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: configFlag, Usage: "configuration file naming the data dir and the current key file [$" + configEnv + "]"},
				&cli.StringFlag{Name: "data-dir", Usage: "the store's data directory (default: the configuration's data_dir)"},
				&cli.StringFlag{Name: "key-file", Usage: "file holding the current key (default: storage.encryption_key_file)"},
				&cli.StringFlag{Name: "new-key-file", Usage: "file holding the new key: 32 bytes or 64 hex digits, mode 0600 or 0640 (required)"},
			},
			Action: func(c *cli.Context) error { return rotateKey(c, e) },
		}},
		Action: groupAction,
	}
}

func rotateKey(c *cli.Context, e env) error {
	if c.Args().Present() {
		return usageErrorf("storage rotate-key takes no arguments, got %q", c.Args().First())
	}
	dir, keyFile := c.String("data-dir"), c.String("key-file")
	path := c.String(configFlag)
	if path == "" {
		path, _ = e.getenv(configEnv)
	}
	if path != "" && (dir == "" || keyFile == "") {
		cfg, _, err := readConfig(path)
		if err != nil {
			return err
		}
		dir = cmp.Or(dir, cfg.DataDir)
		keyFile = cmp.Or(keyFile, cfg.Storage.EncryptionKeyFile)
	}
	var missing []string
	for _, m := range [][2]string{{"--data-dir (or data_dir in --config)", dir},
		{"--key-file (or storage.encryption_key_file in --config)", keyFile},
		{"--new-key-file", c.String("new-key-file")}} {
		if m[1] == "" {
			missing = append(missing, m[0])
		}
	}
	if len(missing) > 0 {
		return usageErrorf("storage rotate-key needs %s", strings.Join(missing, " and "))
	}
	oldKey, err := storage.ReadKeyFile(keyFile)
	if err != nil {
		return configErrorf("--key-file: %v", err)
	}
	newKey, err := storage.ReadKeyFile(c.String("new-key-file"))
	if err != nil {
		return configErrorf("--new-key-file: %v", err)
	}
	if err := storage.RotateKey(dir, oldKey, newKey); err != nil {
		if errors.Is(err, storage.ErrLocked) {
			return &exitError{code: exitTempFail, err: err}
		}
		return err
	}
	_, err = fmt.Fprintf(c.App.Writer, "rotated the key of %s: it now opens with %s only; point storage.encryption_key_file at it (or copy it over %s) before starting edgeq\n",
		dir, c.String("new-key-file"), keyFile)
	return err
}
