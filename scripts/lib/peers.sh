# Sourced by the benchmark scripts that compare edgeq with Debian's peers
# (bench-pi.sh, bench-peers.sh).

# install_peers PKG...: installs the packages with apt-get where we may
# (root with apt-get; nothing to do otherwise) and stops the services Debian
# starts with them: the benchmark runs its own. Fails when apt-get did.
install_peers() {
	command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] || return 0
	echo "installing $* with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"; } >/dev/null 2>&1 || return 1
	for svc in redis-server beanstalkd; do
		command -v systemctl >/dev/null && systemctl stop $svc 2>/dev/null || true
	done
}
