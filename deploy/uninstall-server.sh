#!/usr/bin/env bash
# Removes Haloy from a server completely, and nothing else: haloyd's and HAProxy's
# containers and every app container of this server (found by their dev.haloy.*
# labels) with every tag of those apps' image repositories, the haloyd images haloyadm
# built, its settings (/etc/haloy; as a user only haloyd.yaml and .env in
# ~/.config/haloy, which also holds the haloy CLI's servers) and data (/var/lib/haloy
# or ~/.local/share/haloy), and the haloyadm and haloyd binaries in $PREFIX/bin. The
# HAProxy image named by haproxy_image is left: haloyadm did not make it.
set -euo pipefail
if [ "$(id -u)" -eq 0 ]; then
  config=/etc/haloy data=/var/lib/haloy flag=() prefix="${PREFIX:-/usr/local}"
else
  config="$HOME/.config/haloy" data="$HOME/.local/share/haloy" flag=(--local-install) prefix="${PREFIX:-$HOME/.local}"
fi
# Containers and images go with Haloy: without Docker nothing is removed, rather
# than the files without the containers that use them.
if ! docker info >/dev/null 2>&1; then
  echo "error: Docker is not reachable (docker info failed), so haloyd's, HAProxy's and the apps' containers cannot be removed; start Docker (or set DOCKER_HOST) and run this again. Nothing was removed." >&2
  exit 1
fi
haloyadm=$(command -v "$prefix/bin/haloyadm" || command -v haloyadm || true)
# YAML quotes an instance that reads as a number ('123456789012').
instance=$(sed -n "s/^instance: *//p" "$config/haloyd.yaml" 2>/dev/null | tr -d "'\"" || true)
if [ -n "$haloyadm" ] && ! stopped=$("$haloyadm" stop "${flag[@]}" 2>&1); then
  echo "warning: haloyadm stop failed, removing haloyd's and HAProxy's containers directly: $stopped" >&2
fi
if [ -n "$instance" ]; then
  # haloyd goes first: while it runs, its supervisor brings back an app container
  # removed under it.
  docker ps -aq --filter "label=dev.haloy.server=$instance" | xargs -r docker rm -f >/dev/null
  # The apps' images (every tag of each app's repository: deploys and history) go
  # with their containers.
  repositories=$(docker ps -a --filter "label=dev.haloy.instance=$instance" --format '{{.Image}}' | sed 's/:[^:/]*$//' | sort -u)
  docker ps -aq --filter "label=dev.haloy.instance=$instance" | xargs -r docker rm -f >/dev/null
  for repository in $repositories; do
    docker images -q "$repository" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
  done
fi
# haloyd's images, built by haloyadm from the installed binary.
docker images -q --filter "label=dev.haloy.role=haloyd-image" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
if [ "$(id -u)" -eq 0 ] && [ "$config" = /etc/haloy ]; then
  rm -rf -- /etc/haloy
else
  rm -f -- "$config/haloyd.yaml" "$config/.env"
fi
case "$data" in
  /var/lib/haloy | "$HOME"/.local/share/haloy) rm -rf -- "$data" ;;
esac
if [ -f /etc/systemd/system/haloy.service ] && [ "$(id -u)" -eq 0 ]; then
  systemctl disable --now haloy 2>/dev/null || true
  rm -f /etc/systemd/system/haloy.service
fi
rm -f -- "$prefix/bin/haloyadm" "$prefix/bin/haloyd"
echo "Haloy is removed from this server"
