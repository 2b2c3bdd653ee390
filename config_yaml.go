package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// loadConfig reads and validates a configuration file. Its errors are
// *ConfigError listing every problem, each naming file, line and key.
func loadConfig(path string) (*Config, error) {
	cfg, lines, err := readConfig(path)
	if cfg == nil {
		return nil, err
	}
	if err := annotate(joinProblems(err, cfg.Validate()), path, lines, nil); err != nil {
		return nil, err
	}
	return cfg, nil
}

// readConfig reads and decodes a configuration file without validating it.
// As decodeConfig, it returns a Config (nil when the file cannot be read or
// is not YAML) and the problems of decoding it.
func readConfig(path string) (cfg *Config, lines map[string]int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, &ConfigError{File: path, Problems: []Problem{{Msg: err.Error()}}}
	}
	cfg, lines, err = decodeConfig(data)
	if cfg == nil {
		err = annotate(err, path, lines, nil)
	}
	return cfg, lines, err
}

// joinProblems merges the problems of *ConfigErrors; nil when there are none.
func joinProblems(errs ...error) error {
	var all []Problem
	for _, err := range errs {
		var ce *ConfigError
		if errors.As(err, &ce) {
			all = append(all, ce.Problems...)
		}
	}
	if len(all) == 0 {
		return nil
	}
	return &ConfigError{Problems: all}
}

// annotate completes a *ConfigError with the file name, the line of each
// problem's key and, for keys set by a flag or variable, where the value
// came from; it sorts the problems by line. Other errors pass through.
func annotate(err error, file string, lines map[string]int, sources map[string]string) error {
	var ce *ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	ce.File = file
	for i := range ce.Problems {
		p := &ce.Problems[i]
		if src, ok := sources[p.Key]; ok {
			p.Msg += " (set by " + src + ")"
			continue
		}
		// A problem about a.b.c is on the line of the nearest key written.
		for k := p.Key; p.Line == 0 && k != ""; k = parentKey(k) {
			p.Line = lines[k]
		}
	}
	// Problems without a line (from flags, or about the whole file) last.
	slices.SortStableFunc(ce.Problems, func(a, b Problem) int {
		return cmp.Compare(cmp.Or(a.Line, math.MaxInt), cmp.Or(b.Line, math.MaxInt))
	})
	return ce
}

func parentKey(k string) string {
	i := strings.LastIndexAny(k, ".[")
	if i < 0 {
		return ""
	}
	return k[:i]
}

// Limits that keep decoding of hostile input cheap: YAML aliases can make a
// small file expand into a large tree.
const (
	maxDecodeNodes = 100_000
	maxProblems    = 50
)

// decodeConfig decodes YAML onto defaultConfig. Unknown and duplicate keys
// and values of the wrong type are problems naming their key path; the
// decoder reports them all, not only the first, and returns the Config with
// defaults where values were refused, so that it can still be validated. cfg
// is nil only when data is not YAML.
//
// It walks the yaml.Node tree itself rather than using Decoder.KnownFields,
// because yaml.v3 reports type errors by line only, and a flow mapping
// ({cpu: {enter: 90, exit: 75}}) puts many keys on one line.
func decodeConfig(data []byte) (cfg *Config, lines map[string]int, err error) {
	defer func() {
		// yaml.v3 re-panics on internal errors; a config file must never
		// take the process down.
		if r := recover(); r != nil {
			cfg, lines, err = nil, nil, &ConfigError{Problems: []Problem{{Msg: fmt.Sprintf("yaml: %v", r)}}}
		}
	}()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, syntaxError(err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, nil, syntaxError(err)
		}
		return nil, nil, &ConfigError{Problems: []Problem{{Line: next.Line, Msg: "a second YAML document; a config file holds one"}}}
	}

	cfg = defaultConfig()
	d := &nodeDecoder{lines: map[string]int{}, budget: maxDecodeNodes}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		d.decode(doc.Content[0], reflect.ValueOf(cfg).Elem(), "")
	}
	if len(d.problems) > 0 {
		return cfg, d.lines, &ConfigError{Problems: d.problems}
	}
	return cfg, d.lines, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

func syntaxError(err error) error {
	msg := err.Error()
	p := Problem{Msg: msg}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Msg = "invalid YAML: " + msg[len(m[0]):]
	}
	return &ConfigError{Problems: []Problem{p}}
}

// nodeDecoder decodes a yaml.Node tree into Config's types, which are
// structs with yaml tags, maps with string keys, slices, pointers, scalars
// and yaml.Unmarshalers.
type nodeDecoder struct {
	problems []Problem
	lines    map[string]int // key path → line
	budget   int            // nodes still allowed
}

func (d *nodeDecoder) add(path string, line int, format string, args ...any) {
	switch {
	case len(d.problems) < maxProblems:
		d.problems = append(d.problems, Problem{Key: path, Line: line, Msg: fmt.Sprintf(format, args...)})
	case len(d.problems) == maxProblems:
		d.problems = append(d.problems, Problem{Msg: "too many problems; stopped"})
	}
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// anyNodeUnmarshaler is a yaml.Unmarshaler that takes a value of any kind,
// not only a scalar (JSONValue).
type anyNodeUnmarshaler interface{ takesAnyNode() }

var anyNodeType = reflect.TypeFor[anyNodeUnmarshaler]()

func (d *nodeDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.add(path, n.Line, "document too large (more than %d values after expanding aliases)", maxDecodeNodes)
		}
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value keeps the default
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if n.Kind != yaml.ScalarNode && !reflect.PointerTo(v.Type()).Implements(anyNodeType) {
			d.add(path, n.Line, "want a single value, got %s", nodeKind(n))
		} else if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.add(path, n.Line, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		fields := yamlFields(v.Type())
		d.mapping(n, path, func(key string, kn, vn *yaml.Node, p string) {
			i, ok := fields[key]
			if !ok {
				d.add(p, kn.Line, "unknown key")
				return
			}
			d.decode(vn, v.Field(i), p)
		})
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		d.mapping(n, path, func(key string, _, vn *yaml.Node, p string) {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(vn, e, p)
			v.SetMapIndex(reflect.ValueOf(key), e)
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.add(path, n.Line, "want a list, got %s", nodeKind(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = e.Line
			d.decode(e, s.Index(i), p)
		}
		v.Set(s)
	default:
		want := map[reflect.Kind]string{
			reflect.String: "a string", reflect.Bool: "true or false",
			reflect.Int: "an integer", reflect.Int64: "an integer", reflect.Float64: "a number",
		}[v.Kind()]
		if n.Kind != yaml.ScalarNode {
			d.add(path, n.Line, "want %s, got %s", want, nodeKind(n))
		} else if err := n.Decode(v.Addr().Interface()); err != nil {
			d.add(path, n.Line, "want %s, got %q", want, n.Value)
		}
	}
}

// mapping calls fn for each entry of mapping node n, in order, after
// checking for duplicate and non-scalar keys.
func (d *nodeDecoder) mapping(n *yaml.Node, path string, fn func(key string, kn, vn *yaml.Node, p string)) {
	if n.Kind != yaml.MappingNode {
		d.add(path, n.Line, "want a mapping, got %s", nodeKind(n))
		return
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind == yaml.AliasNode && kn.Alias != nil {
			kn = kn.Alias
		}
		if kn.Kind != yaml.ScalarNode {
			d.add(path, kn.Line, "keys must be plain strings, got %s", nodeKind(kn))
			continue
		}
		p := kn.Value
		if path != "" {
			p = path + "." + kn.Value
		}
		switch {
		case kn.ShortTag() == "!!merge":
			d.add(path, kn.Line, "merge keys (<<) are not supported")
		case seen[kn.Value]:
			d.add(p, kn.Line, "duplicate key")
		default:
			seen[kn.Value] = true
			d.lines[p] = kn.Line
			fn(kn.Value, kn, vn, p)
		}
	}
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// yamlFields maps the yaml names of a struct's fields to their indexes.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

// UnmarshalYAML parses a size such as 1MiB.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseSize(n.Value)
	if err == nil {
		*s = v
	}
	return err
}

// UnmarshalYAML parses a duration in Go syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err == nil {
		*d = v
	}
	return err
}

// UnmarshalYAML parses a rate such as 200/s.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseRate(n.Value)
	if err == nil {
		*r = v
	}
	return err
}
