#!/usr/bin/env bash
# Removes haloyadm and haloyd binaries and the systemd unit. Settings, data and app
# containers stay; see uninstall-server.sh to remove everything.
set -euo pipefail
if [ "$(id -u)" -eq 0 ]; then prefix="${PREFIX:-/usr/local}"; else prefix="${PREFIX:-$HOME/.local}"; fi
if [ "$(id -u)" -eq 0 ] && [ -f /etc/systemd/system/haloy.service ]; then
  systemctl disable --now haloy 2>/dev/null || true
  rm -f /etc/systemd/system/haloy.service
fi
rm -f "$prefix/bin/haloyadm" "$prefix/bin/haloyd"
echo "removed haloyadm and haloyd from $prefix/bin"
