#!/usr/bin/env bash
# Creates the reference central client's virtualenv (default var/central-venv):
# paho-mqtt and cryptography from PyPI, plus a .pth line that makes the
# face_recognition venv (KIOSK_VENV, default var/venv, made by scripts/venv.sh)
# importable, so dlib is not installed twice.
#
# Idempotent: a stamp file records what was installed; a second run with the
# same requirements returns at once.
set -euo pipefail
venv=${1:-var/central-venv}
face_venv=${KIOSK_VENV:-var/venv}
reqs="paho-mqtt>=2.1,<3 cryptography>=42"
stamp="$venv/.kioskd-stamp"

if [ ! -x "$face_venv/bin/python" ]; then
  echo "central_py: no face_recognition venv at $face_venv; run 'make venv' (or set KIOSK_VENV)" >&2
  exit 1
fi
face_site=$("$face_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
want="$reqs|$face_site"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  echo "central_py: $venv ok"
  exit 0
fi

echo "central_py: creating $venv with paho-mqtt and cryptography"
"$face_venv/bin/python" -m venv "$venv"
"$venv/bin/python" -m pip --disable-pip-version-check --quiet install $reqs
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$face_site" >"$site/kioskd-face-recognition.pth"
"$venv/bin/python" -c 'import paho.mqtt, cryptography, face_recognition; print("central_py: paho-mqtt", paho.mqtt.__version__, "cryptography", cryptography.__version__, "face_recognition", face_recognition.__version__)'
printf '%s' "$want" >"$stamp"
