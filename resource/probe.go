package resource

import (
	"bytes"
	"errors"
	"math"
	"strconv"
)

// The parsers below are pure: they take a file's bytes and never keep them.

var errNoField = errors.New("field not found")

// parsePSI parses a pressure file (/proc/pressure/memory, memory.pressure):
//
//	some avg10=1.53 avg60=0.87 avg300=0.21 total=1234567
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//
// The "full" line is optional (older kernels have none for cpu).
func parsePSI(b []byte) (Pressure, error) {
	var p Pressure
	found := false
	for line := range bytes.Lines(b) {
		kind, rest, _ := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
		var dst *float64
		switch string(kind) {
		case "some":
			dst = &p.Some10
		case "full":
			dst = &p.Full10
		default:
			continue
		}
		v, err := fieldValue(rest, "avg10=")
		if err != nil {
			return Pressure{}, err
		}
		*dst = v
		if dst == &p.Some10 {
			found = true
		}
	}
	if !found {
		return Pressure{}, errors.New("psi: no \"some\" line")
	}
	return p, nil
}

// fieldValue finds key=value among space-separated fields.
func fieldValue(b []byte, key string) (float64, error) {
	for f := range bytes.FieldsSeq(b) {
		if v, ok := bytes.CutPrefix(f, []byte(key)); ok {
			return strconv.ParseFloat(string(v), 64)
		}
	}
	return 0, errNoField
}

// parseKeyValue finds "key value" in a flat keyed file (memory.stat,
// /proc/vmstat) and parses the value as an unsigned integer.
func parseKeyValue(b []byte, key string) (uint64, error) {
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
		if ok && string(k) == key {
			return strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
	return 0, errNoField
}

// unlimited is a memory limit that is no limit.
const unlimited = math.MaxUint64

// parseLimit parses a cgroup memory limit: "max" (v2) or a byte count; v1
// writes "no limit" as a huge page-aligned number, so anything at or above
// 2^62 is unlimited.
func parseLimit(b []byte) (uint64, error) {
	b = bytes.TrimSpace(b)
	if string(b) == "max" {
		return unlimited, nil
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, err
	}
	if n >= 1<<62 {
		return unlimited, nil
	}
	return n, nil
}

// procCgroup is the process's place in the cgroup hierarchies, from
// /proc/self/cgroup ("hierarchy-ID:controller-list:path" per line).
type procCgroup struct {
	v2     string // path in the unified (v2) hierarchy
	hasV2  bool
	v1Mem  string // path in the v1 memory hierarchy
	hasV1M bool
}

func parseProcCgroup(b []byte) (procCgroup, error) {
	var pc procCgroup
	for line := range bytes.Lines(b) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		id, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return procCgroup{}, errors.New("cgroup: malformed line " + strconv.Quote(string(line)))
		}
		controllers, path, ok := bytes.Cut(rest, []byte(":"))
		if !ok {
			return procCgroup{}, errors.New("cgroup: malformed line " + strconv.Quote(string(line)))
		}
		if string(id) == "0" && len(controllers) == 0 {
			pc.v2, pc.hasV2 = string(path), true
			continue
		}
		for c := range bytes.SplitSeq(controllers, []byte(",")) {
			if string(c) == "memory" {
				pc.v1Mem, pc.hasV1M = string(path), true
			}
		}
	}
	return pc, nil
}

// parseMilliCelsius parses a thermal zone's temp file (millidegrees).
// Values outside -50..200 °C come from absent or broken sensors.
func parseMilliCelsius(b []byte) (float64, error) {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, err
	}
	c := float64(n) / 1000
	if c <= -50 || c >= 200 {
		return 0, errors.New("thermal: implausible temperature " + strconv.FormatInt(n, 10))
	}
	return c, nil
}
