#!/usr/bin/env bash
# Installs haloyadm and haloyd from this checkout: into /usr/local/bin as root (plus a
# systemd unit that runs `haloyadm start` at boot), or into ~/.local/bin otherwise
# (then use `haloyadm init --local-install`). Installs HAProxy when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then prefix="${PREFIX:-/usr/local}"; else prefix="${PREFIX:-$HOME/.local}"; fi
if ! command -v haproxy >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq haproxy
  # haloyd runs its own HAProxy; the distribution's service would take ports 80/443.
  $sudo systemctl disable --now haproxy 2>/dev/null || true
fi
cargo build --release --locked -p haloy-admin -p haloyd --bin haloyadm --bin haloyd
install -D -m 0755 target/release/haloyadm "$prefix/bin/haloyadm"
install -D -m 0755 target/release/haloyd "$prefix/bin/haloyd"
echo "installed $prefix/bin/haloyadm and $prefix/bin/haloyd"
if [ "$(id -u)" -eq 0 ] && [ -d /etc/systemd/system ]; then
  sed "s#/usr/local/bin#$prefix/bin#g" deploy/systemd/haloy.service > /etc/systemd/system/haloy.service
  systemctl daemon-reload 2>/dev/null || true
  echo "next: haloyadm init, then systemctl enable --now haloy"
else
  echo "next: haloyadm init --local-install, then haloyadm start --local-install"
fi
