#!/usr/bin/env bash
# Removes the haloy CLI. Your ~/.config/haloy (servers and tokens) is kept.
set -euo pipefail
prefix="${PREFIX:-$HOME/.local}"
rm -f "$prefix/bin/haloy"
echo "removed $prefix/bin/haloy; ~/.config/haloy is kept (delete it to forget servers and tokens)"
