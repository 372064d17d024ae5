# Shared by scripts/test and scripts/demo: check and install what Haloy's scripts need.
# Sourced, not run.

# Packages the integration suite needs, by the Debian package name.
HALOY_TEST_APT_PACKAGES=()

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
