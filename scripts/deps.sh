#!/usr/bin/env bash
# Installs the Debian packages kioskd needs to build and test. Idempotent: it
# installs only what is missing. Needs root (or sudo).
set -euo pipefail

pkgs=(
  pkg-config build-essential
  libopencv-dev opencv-data
  libdlib-dev libatlas-base-dev libblas-dev liblapack-dev libjpeg-dev libpng-dev
  mosquitto mosquitto-clients
  python3-venv python3-pip
)
if [ "${KIOSK_DEPS_BROWSER:-1}" = 1 ]; then
  pkgs+=(chromium)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all Debian packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then sudo=sudo; else
    echo "deps: missing packages: ${missing[*]}" >&2
    echo "deps: run 'make deps' as root, or install them with apt-get" >&2
    exit 1
  fi
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Mosquitto's package starts a system broker on :1883; tests start their own.
