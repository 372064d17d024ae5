# Shared by scripts/test and scripts/demo: check and install what Haloy's scripts need.
# Sourced, not run.

# Packages the integration suite needs, by the Debian package name: HAProxy, busybox for
# FROM-scratch app images, hey as the load generator, curl for the demo, and a private
# registry with htpasswd auth (docker-registry, apache2-utils) for the push tests,
# pebble (Let's Encrypt's ACME test server) with openssl for the TLS tests, and
# socat, iproute2 and util-linux (nsenter) for servers on Docker Engines of their own,
# and prometheus for `promtool check metrics` on haloyd's metrics.
HALOY_TEST_APT_PACKAGES=(haproxy busybox-static hey curl docker-registry apache2-utils pebble openssl socat iproute2 util-linux redis-server redis-tools tmux prometheus)
HALOY_DEMO_APT_PACKAGES=(haproxy busybox-static curl)

step() {
  printf '\n==> %s\n' "$*"
}

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

need_rust() {
  command -v cargo >/dev/null || die "cargo is not installed; install Rust (rustup) and run this again"
  cargo fmt --version >/dev/null 2>&1 || die "rustfmt is missing; run: rustup component add rustfmt"
  cargo clippy --version >/dev/null 2>&1 || die "clippy is missing; run: rustup component add clippy"
}

# need_apt_packages PKG...: installs the packages that are not installed yet.
need_apt_packages() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# need_docker: a Docker Engine that answers; installs and starts one when missing.
# stop_package_services: Debian starts some daemons on install (redis-server, and
# prometheus, which would also take port 9090); the tests only copy their binaries
# into images or run promtool, so none may keep running here.
stop_package_services() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if command -v redis-server >/dev/null && pgrep -x redis-server >/dev/null 2>&1; then
    $sudo service redis-server stop >/dev/null 2>&1 || redis-cli shutdown nosave >/dev/null 2>&1 || true
  fi
  if [ -x /usr/bin/prometheus ] && pgrep -x prometheus >/dev/null 2>&1; then
    $sudo service prometheus stop >/dev/null 2>&1 || true
  fi
  if command -v systemctl >/dev/null && systemctl is-enabled prometheus >/dev/null 2>&1; then
    $sudo systemctl disable prometheus >/dev/null 2>&1 || true
  fi
}

need_docker() {
  if ! command -v docker >/dev/null; then
    need_apt_packages docker.io
  fi
  if ! docker info >/dev/null 2>&1; then
    step "starting dockerd"
    (dockerd >/tmp/haloy-dockerd.log 2>&1 &)
    local i
    for i in $(seq 1 60); do
      docker info >/dev/null 2>&1 && return 0
      sleep 1
    done
    die "Docker does not answer; see /tmp/haloy-dockerd.log"
  fi
}

# need_pip_tool COMMAND PACKAGE: installs a PyPI package that provides COMMAND.
need_pip_tool() {
  command -v "$1" >/dev/null && return 0
  step "installing $2 (pip)"
  python3 -m pip install --quiet "$2"
  hash -r
  command -v "$1" >/dev/null || die "$2 did not provide $1 on PATH"
}
