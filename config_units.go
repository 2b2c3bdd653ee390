package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Sizes in bytes.
const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
)

// Size is a number of bytes, written as 512KiB, 1MiB, 1GB or plain bytes.
type Size int64

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"kib": KiB, "mib": MiB, "gib": GiB, "tib": 1 << 40,
}

// parseSize parses a size: a number, optionally with a fraction, then an
// optional unit (B, KB, MB, GB, TB in powers of 1000; KiB, MiB, GiB, TiB in
// powers of 1024; case does not matter).
func parseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("invalid size %q (want bytes or a number with KiB, MiB, GiB, KB, MB or GB)", s)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err == nil && n <= math.MaxInt64/int64(mult) {
			return Size(n * int64(mult)), nil
		}
	} else if f, err := strconv.ParseFloat(num, 64); err == nil && f*mult < math.MaxInt64 {
		return Size(math.Round(f * mult)), nil
	}
	return 0, fmt.Errorf("invalid size %q (too large or malformed)", s)
}

// String formats the size in the largest binary unit that divides it.
func (s Size) String() string {
	for _, u := range []struct {
		n    Size
		name string
	}{{GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if s != 0 && s%u.n == 0 {
			return strconv.FormatInt(int64(s/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// Duration is a time.Duration written in Go syntax (500ms, 30s, 1h30m). A
// plain number other than 0 is refused: "30" would be 30 nanoseconds.
type Duration time.Duration

func parseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want Go syntax such as 500ms, 30s, 5m or 1h)", s)
	}
	return Duration(d), nil
}

// String formats d in Go syntax.
func (d Duration) String() string { return time.Duration(d).String() }

// Rate is a number of jobs per second, written 200/s, 10/m, 5/h or as a
// plain number per second; 0 means unlimited.
type Rate float64

func parseRate(s string) (Rate, error) {
	t := strings.TrimSpace(s)
	num, per, hasUnit := strings.Cut(t, "/")
	div := 1.0
	if hasUnit {
		switch strings.TrimSpace(per) {
		case "s":
		case "m":
			div = 60
		case "h":
			div = 3600
		default:
			num = "" // refuse below
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("invalid rate %q (want N/s, N/m, N/h or a number per second)", s)
	}
	return Rate(f / div), nil
}

// String formats r as jobs per second, such as 200/s.
func (r Rate) String() string { return strconv.FormatFloat(float64(r), 'g', -1, 64) + "/s" }
