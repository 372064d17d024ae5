#!/usr/bin/env bash
# Removes Haloy from a server completely: haloyd's and HAProxy's containers, haloyd's
# images, every app container Haloy started, its settings and data, and the binaries.
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" -eq 0 ]; then
  config=/etc/haloy data=/var/lib/haloy flag=""
else
  config="$HOME/.config/haloy" data="$HOME/.local/share/haloy" flag="--local-install"
fi
instance=$(sed -n 's/^instance: *//p' "$config/haloyd.yaml" 2>/dev/null || true)
haloyadm stop $flag 2>/dev/null || true
if [ -n "$instance" ]; then
  docker ps -aq --filter "label=dev.haloy.instance=$instance" | xargs -r docker rm -f >/dev/null
  docker ps -aq --filter "label=dev.haloy.server=$instance" | xargs -r docker rm -f >/dev/null
fi
# haloyd's images, built by haloyadm from the installed binary.
docker images -q --filter "label=dev.haloy.role=haloyd-image" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
rm -f "$config/haloyd.yaml" "$config/.env"
rm -rf -- "${data:?}"
./uninstall-haloyadm.sh
echo "Haloy is removed from this server"
