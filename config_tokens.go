package main

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// validateTokens checks http.tokens but for their files (checkHost reads
// those).
func (c *Config) validateTokens(v *validator) {
	names := map[string]int{}
	for i, t := range c.HTTP.Tokens {
		key := fmt.Sprintf("http.tokens[%d]", i)
		switch j, dup := names[t.Name]; {
		case t.Name == "":
			v.add(key+".name", "required")
		case t.Name == httpapi.TokenFileName:
			v.add(key+".name", "%q is the name of http.token_file's token", t.Name)
		case dup:
			v.add(key+".name", "%q is also the name of http.tokens[%d]", t.Name, j)
		default:
			names[t.Name] = i
		}
		if t.File == "" {
			v.add(key+".file", "required")
		}
		if len(t.Roles) == 0 {
			v.add(key+".roles", "required: some of %s", roleNames())
		}
		for _, r := range t.Roles {
			if !slices.Contains(httpapi.Roles, httpapi.Role(r)) {
				v.add(key+".roles", "unknown role %q (want some of %s)", r, roleNames())
			}
		}
		for _, g := range t.Queues {
			if _, err := path.Match(g, ""); err != nil || g == "" {
				v.add(key+".queues", "bad glob %q (path.Match syntax: * ? [a-z])", g)
			}
		}
	}
}

func roleNames() string {
	var s []string
	for _, r := range httpapi.Roles {
		s = append(s, string(r))
	}
	return strings.Join(s, ", ")
}
