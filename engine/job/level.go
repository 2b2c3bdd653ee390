package job

import (
	"fmt"
	"strconv"
)

// Level is the host pressure level set by the resource governor.
type Level uint8

// Pressure levels, in increasing order of pressure.
const (
	LevelNormal Level = iota
	LevelElevated
	LevelHigh
	LevelCritical
)

var levelNames = [...]string{"normal", "elevated", "high", "critical"}

func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "level(" + strconv.Itoa(int(l)) + ")"
}

// ParseLevel parses a level name.
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if n == s {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("unknown level %q (want normal, elevated, high or critical)", s)
}
