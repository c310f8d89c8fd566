#!/usr/bin/env bash
# Make sure PostgreSQL, Redis and Chromium are available for the test suite:
# start them when they are stopped, install them with apt-get when they are missing.
set -euo pipefail

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
apt_updated=0
apt_install() {
  if [ $apt_updated = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! command -v pg_isready >/dev/null || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  if ! { command -v pg_isready >/dev/null && pg_up; }; then
    echo "installing PostgreSQL"
    apt_install postgresql postgresql-client
  fi
fi
if ! pg_up; then
  echo "starting PostgreSQL"
  ver=$(ls /etc/postgresql | sort -V | tail -n1)
  hba=/etc/postgresql/$ver/main/pg_hba.conf
  # The suite connects as postgres over TCP without a password, as on the project machines.
  if ! grep -q "wmb-trust" "$hba"; then
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust # wmb-trust\nhost all all ::1/128 trust # wmb-trust' "$hba"
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || $SUDO pg_ctlcluster "$ver" main start
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL did not start" >&2; exit 1; }
fi

if ! command -v redis-server >/dev/null && ! redis_up; then
  echo "installing Redis"
  apt_install redis-server
fi
if ! redis_up; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/wmb-redis.log
  for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
  redis_up || { echo "Redis did not start" >&2; exit 1; }
fi

if ! command -v chromium >/dev/null; then
  echo "installing Chromium (browser tests)"
  apt_install chromium
fi
if [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
  echo "installing a Chinese font (posters, browser screenshots)"
  apt_install fonts-wqy-microhei fontconfig
fi
if ! command -v wrk >/dev/null && [ "${WMB_NEED_WRK:-0}" = "1" ]; then
  echo "installing wrk (benchmarks)"
  apt_install wrk
fi
echo "services ready: PostgreSQL on $PGHOST:$PGPORT, Redis on 127.0.0.1:6379"
