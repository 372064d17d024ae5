#!/usr/bin/env bash
# Installs the haloy CLI from this checkout into ~/.local/bin (or $PREFIX/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${PREFIX:-$HOME/.local}"
cargo build --release --locked --bin haloy
install -D -m 0755 target/release/haloy "$prefix/bin/haloy"
echo "installed $prefix/bin/haloy"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "add $prefix/bin to your PATH, e.g. export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
