#!/usr/bin/env bash
# Installs the haloy CLI from a release archive (a file, a URL, or by default the latest
# release), after checking it against the release's SHA256SUMS: into ~/.local/bin, or
# /usr/local/bin as root (PREFIX overrides). `--from-source` builds this checkout instead.
#
#   curl -fsSL https://raw.githubusercontent.com/haloydev/haloy/main/deploy/install-haloy.sh | bash
#   deploy/install-haloy.sh dist/haloy-0.1.0-x86_64-unknown-linux-gnu.tar.gz
set -euo pipefail
binaries=(haloy)

# --- shared by install-haloy.sh and install-haloyadm.sh (each is run alone, e.g. piped
# from curl, so each carries its own copy of this part) ---
target=x86_64-unknown-linux-gnu
download_url="${HALOY_DOWNLOAD_URL:-https://github.com/haloydev/haloy/releases/latest/download}"
if [ "$(id -u)" -eq 0 ]; then prefix="${PREFIX:-/usr/local}"; else prefix="${PREFIX:-$HOME/.local}"; fi

die() { echo "error: $*" >&2; exit 1; }

usage() {
  cat >&2 <<USAGE
usage: $0 [ARCHIVE | URL]     install from a release archive (default: the latest release)
       $0 --from-source       build from this checkout with cargo (for developers)
A local ARCHIVE needs SHA256SUMS beside it (or HALOY_SHA256SUMS=<file>). Without an
argument the archive is downloaded from HALOY_DOWNLOAD_URL ($download_url);
HALOY_VERSION picks a version. Binaries go to \$PREFIX/bin ($prefix/bin).
USAGE
  exit 2
}

fetch() { # URL FILE
  if command -v curl >/dev/null; then curl -fsSL -o "$2" "$1"
  elif command -v wget >/dev/null; then wget -q -O "$2" "$1"
  else die "neither curl nor wget is installed; install one, or pass a downloaded archive"
  fi || die "cannot download $1; check the address (HALOY_DOWNLOAD_URL) and your connection"
}

# Puts the verified archive's binaries named in $@ into $work/bin.
unpack_release() {
  local source="$1"; shift
  local archive sums name expected actual
  case "$source" in
    "")
      fetch "$download_url/SHA256SUMS" "$work/SHA256SUMS"
      sums="$work/SHA256SUMS"
      name=$(awk -v t="$target" -v v="${HALOY_VERSION:-}" \
        '$2 ~ ("^haloy-" (v == "" ? ".*" : v) "-" t ".tar.gz$") { n = $2 } END { print n }' "$sums")
      [ -n "$name" ] || die "$download_url/SHA256SUMS names no archive for $target${HALOY_VERSION:+ version $HALOY_VERSION}"
      archive="$work/$name"
      fetch "$download_url/$name" "$archive" ;;
    http://* | https://* | file://*)
      name=$(basename "$source")
      archive="$work/$name"
      fetch "$source" "$archive"
      sums="$work/SHA256SUMS"
      fetch "$(dirname "$source")/SHA256SUMS" "$sums" ;;
    *)
      [ -f "$source" ] || die "no archive at $source; pass a haloy-<version>-$target.tar.gz file or URL"
      archive="$source"
      name=$(basename "$source")
      sums="${HALOY_SHA256SUMS:-$(dirname "$source")/SHA256SUMS}"
      [ -f "$sums" ] || die "no $sums to verify $name against; put SHA256SUMS beside it or set HALOY_SHA256SUMS" ;;
  esac
  expected=$(awk -v n="$name" '$2 == n || $2 == "*" n { print $1 }' "$sums" | head -1)
  [ -n "$expected" ] || die "$sums has no checksum for $name; use the SHA256SUMS of the same release"
  actual=$(sha256sum "$archive" | cut -d' ' -f1)
  [ "$actual" = "$expected" ] ||
    die "checksum mismatch for $name (expected $expected, got $actual): the archive is damaged or tampered with; download it again, nothing was installed"
  mkdir -p "$work/unpacked" "$work/bin"
  tar -xzf "$archive" -C "$work/unpacked" || die "cannot unpack $name; it is not a Haloy release archive"
  local bin found
  for bin in "$@"; do
    found=$(find "$work/unpacked" -type f -name "$bin" | head -1)
    [ -n "$found" ] || die "$name has no $bin; it is not a Haloy release archive"
    cp "$found" "$work/bin/$bin"
  done
}

install_binaries() {
  local bin
  mkdir -p "$prefix/bin" || die "cannot create $prefix/bin; run as root or set PREFIX"
  for bin in "$@"; do
    install -m 0755 "$work/bin/$bin" "$prefix/bin/$bin.new" && mv -f "$prefix/bin/$bin.new" "$prefix/bin/$bin" ||
      die "cannot write $prefix/bin/$bin; run as root or set PREFIX"
  done
  echo "installed$(printf " $prefix/bin/%s" "$@")"
}

from_source() {
  command -v cargo >/dev/null || die "--from-source needs cargo (https://rustup.rs)"
  local root bin
  root="$(cd "$(dirname "$0")/.." && pwd)"
  [ -f "$root/Cargo.toml" ] || die "--from-source runs from deploy/ in a Haloy checkout"
  (cd "$root" && cargo build --release --locked $(printf -- "--bin %s " "$@"))
  for bin in "$@"; do cp "$root/target/release/$bin" "$work/bin/$bin"; done
}

work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
mkdir -p "$work/bin"
case "${1:-}" in
  -h | --help) usage ;;
  --from-source) [ $# -eq 1 ] || usage; from_source "${binaries[@]}" ;;
  -*) usage ;;
  *) [ $# -le 1 ] || usage; unpack_release "${1:-}" "${binaries[@]}" ;;
esac
install_binaries "${binaries[@]}"
# --- end of the shared part ---

case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "add $prefix/bin to your PATH, e.g. export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
echo "next: haloy server add <server> <api-token> (the token: haloyadm api token, on the server)"
