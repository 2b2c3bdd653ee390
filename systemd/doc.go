// Package systemd holds edgeq's systemd unit, edgeq.service, which `make
// install` and `make deb` install. The package has no code: its test checks
// the unit (the keys edgeq depends on, and systemd-analyze verify when it is
// installed). docs/deploy.md explains the unit's choices.
package systemd
