package storage

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Memory profiles (Config.Memory). docs/design.md explains the numbers.
const (
	ProfileSmall   = "small"
	ProfileDefault = "default"
)

// profile is the part of Badger's options that a memory profile sets.
type profile struct {
	memTableSize     int64 // also BaseTableSize: see docs/design.md, "32-bit ARM"
	numMemtables     int
	baseLevelSize    int64
	tableSizeMult    int
	numL0Tables      int
	numL0TablesStall int
	numCompactors    int
	builders         int // Badger's CompactionBuilders: tables a compaction finishes at once
	blockCacheSize   int64
	indexCacheSize   int64
	valueLogFileSize int64
	valueThreshold   int64
	// goMemory is the Go runtime's soft memory limit that suits the
	// profile when nothing tighter is known (SoftMemoryLimit).
	goMemory int64
}

var profiles = map[string]profile{
	ProfileSmall: {
		memTableSize:     4 << 20,
		numMemtables:     2,
		baseLevelSize:    32 << 20,
		tableSizeMult:    1,
		numL0Tables:      3,
		numL0TablesStall: 8,
		numCompactors:    2,
		builders:         1,
		blockCacheSize:   0,
		indexCacheSize:   0,
		valueLogFileSize: 32 << 20,
		valueThreshold:   1 << 10,
		goMemory:         64 << 20,
	},
	ProfileDefault: {
		memTableSize:     32 << 20,
		numMemtables:     3,
		baseLevelSize:    128 << 20,
		tableSizeMult:    1,
		numL0Tables:      4,
		numL0TablesStall: 12,
		numCompactors:    2,
		builders:         8,
		blockCacheSize:   32 << 20,
		indexCacheSize:   16 << 20,
		valueLogFileSize: 128 << 20,
		valueThreshold:   1 << 10,
		goMemory:         256 << 20,
	},
}

// SoftMemoryLimit is the Go runtime's soft memory limit (GOMEMLIMIT) that
// suits a memory profile's store: its memtables and table builders fit
// under it with room for the engine. 0 for an unknown profile.
func SoftMemoryLimit(profile string) int64 { return profiles[profile].goMemory }

// inMemoryProfile serves Config.InMemory (tests). Badger keeps every value
// in the LSM in memory mode and refuses one at or above ValueThreshold, so
// the threshold is Badger's maximum (1 MiB) and the memtable is large enough
// that a transaction holds such a value (15% of 16 MiB = 2.4 MiB).
var inMemoryProfile = profile{
	memTableSize:     16 << 20,
	numMemtables:     2,
	baseLevelSize:    32 << 20,
	tableSizeMult:    1,
	numL0Tables:      3,
	numL0TablesStall: 8,
	numCompactors:    2,
	builders:         1,
	valueLogFileSize: 32 << 20,
	valueThreshold:   1 << 20,
}

// badgerOptions builds Badger's options for a validated cfg.
func badgerOptions(cfg Config, log *slog.Logger) badger.Options {
	p := profiles[cfg.Memory]
	if cfg.InMemory {
		p = inMemoryProfile
	}
	opt := badger.DefaultOptions(cfg.Dir)
	if cfg.InMemory {
		opt = badger.DefaultOptions("").WithInMemory(true)
	}
	opt.Logger = badgerLogger{log: log}
	opt.MetricsEnabled = false
	opt.NumGoroutines = 2 // Stream only; edgeq does not stream.

	// Durability and concurrency: see doc.go.
	opt.SyncWrites = false
	opt.DetectConflicts = false
	opt.NumVersionsToKeep = 1

	opt.MemTableSize = p.memTableSize
	opt.BaseTableSize = p.memTableSize
	opt.NumMemtables = p.numMemtables
	opt.BaseLevelSize = p.baseLevelSize
	opt.TableSizeMultiplier = p.tableSizeMult
	opt.NumLevelZeroTables = p.numL0Tables
	opt.NumLevelZeroTablesStall = p.numL0TablesStall
	opt.NumCompactors = p.numCompactors
	opt.CompactionBuilders = p.builders
	opt.Compression = options.None
	opt.BlockCacheSize = p.blockCacheSize
	opt.IndexCacheSize = p.indexCacheSize
	opt.ValueLogFileSize = p.valueLogFileSize
	opt.ValueThreshold = p.valueThreshold
	if len(cfg.EncryptionKey) > 0 {
		opt.EncryptionKey = cfg.EncryptionKey
		opt.BlockCacheSize = max(opt.BlockCacheSize, encryptedBlockCache)
		opt.IndexCacheSize = max(opt.IndexCacheSize, encryptedIndexCache)
	}

	// An SD card rots: check a table block's checksum when it is read.
	// (Badger's table iterators then treat a damaged block as absent keys,
	// so verifyTables also checks every table once after Open.) Value-log
	// checksums are not verified by Badger: it logs and swallows a failed
	// value-log read, so payloads carry their own CRC (record.go).
	opt.ChecksumVerificationMode = options.OnBlockRead
	opt.VerifyValueChecksum = false
	return opt
}

// badgerLogger routes Badger's logger into slog. Badger's Infof and Debugf
// are chatty (every compaction, every open): they are dropped.
// manifestWhole says whether the MANIFEST replayed to its end before Open
// (manifestWhole), for the one debug message that is kept.
type badgerLogger struct {
	log           *slog.Logger
	manifestWhole bool
}

func (l badgerLogger) Errorf(f string, v ...any) {
	l.log.Error("badger", "msg", strings.TrimSpace(fmt.Sprintf(f, v...)))
}

func (l badgerLogger) Warningf(f string, v ...any) {
	l.log.Warn("badger", "msg", strings.TrimSpace(fmt.Sprintf(f, v...)))
}

func (badgerLogger) Infof(string, ...any) {}

// Debugf drops Badger's debug messages but one: at Open, Badger deletes the
// table files its MANIFEST does not list and says so only at debug level.
// With a whole MANIFEST such a file is the output of a memtable flush or a
// compaction that a crash cut short before listing it: its data is still
// in the memtable's write-ahead log or in the tables the MANIFEST lists, so
// nothing is lost (info). With a MANIFEST whose tail was torn or damaged,
// the lost record may have listed it: that is lost data (warning).
func (l badgerLogger) Debugf(f string, v ...any) {
	if f != badgerUnreferencedTable {
		return
	}
	msg := strings.TrimSpace(fmt.Sprintf(f, v...))
	if l.manifestWhole {
		l.log.Info("badger removed a table file that a crash left unlisted in its MANIFEST: a flush or compaction cut short, nothing lost",
			"msg", msg)
		return
	}
	l.log.Warn("badger deleted a table file that its damaged MANIFEST does not list: jobs may be lost",
		"msg", msg)
}

// manifestWhole reports whether dir's MANIFEST replays to its end, as
// Badger's Open will replay it: false when it is missing, unreadable,
// damaged, or ends in a torn record that Open will cut off.
func manifestWhole(dir string, opt badger.Options) bool {
	f, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	_, end, err := badger.ReplayManifestFile(f, opt.ExternalMagicVersion, opt)
	return err == nil && end == fi.Size()
}

// badgerUnreferencedTable is Badger's format in levels.go, revertToManifest
// (TestCorruption pins it).
const badgerUnreferencedTable = "Table file %d not referenced in MANIFEST\n"
