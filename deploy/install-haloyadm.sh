#!/usr/bin/env bash
# Installs haloyadm and haloyd from this checkout: into /usr/local/bin as root, or into
# ~/.local/bin otherwise (then use `haloyadm init --local-install`). The server needs
# nothing else but Docker: haloyadm runs haloyd and HAProxy as Docker containers that
# Docker restarts after a crash or a reboot (no systemd unit of ours is needed; Docker's
# own service starts at boot).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then prefix="${PREFIX:-/usr/local}"; else prefix="${PREFIX:-$HOME/.local}"; fi
command -v docker >/dev/null || echo "warning: Docker is not installed; haloyadm start needs it" >&2
cargo build --release --locked -p haloy-admin -p haloyd --bin haloyadm --bin haloyd
install -D -m 0755 target/release/haloyadm "$prefix/bin/haloyadm"
install -D -m 0755 target/release/haloyd "$prefix/bin/haloyd"
echo "installed $prefix/bin/haloyadm and $prefix/bin/haloyd"
if [ "$(id -u)" -eq 0 ]; then
  echo "next: haloyadm init, then haloyadm start (and haloyadm upgrade after a later install)"
else
  echo "next: haloyadm init --local-install, then haloyadm start --local-install"
fi
