#!/usr/bin/env bash
# Makes sure the database servers the suite talks to are up on loopback:
# PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and MariaDB on
# 127.0.0.1:3306 (root, no password). Starts a stopped one; as root on a
# machine without it, installs it from Debian's packages first. Fails loudly,
# naming the server, when one cannot be reached.
set -uo pipefail

apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  echo "installing $* ..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") >/dev/null 2>&1
}

wait_for() { # name, probe command...
  local name=$1
  shift
  for _ in $(seq 1 60); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "cannot reach $name on loopback: start it (README, Quick start) and run again" >&2
  return 1
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
ensure_postgres() {
  pg_up >/dev/null 2>&1 && return 0
  local fresh=0
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt_install postgresql postgresql-client || {
      echo "missing PostgreSQL: install Debian package postgresql" >&2
      return 1
    }
    fresh=1
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ "$fresh" = 1 ]; then
    # A cluster this script just installed: let loopback clients in as the tests do.
    sed -i '1i host all all 127.0.0.1/32 trust' "/etc/postgresql/$version/main/pg_hba.conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1
  wait_for "PostgreSQL (127.0.0.1:5432)" pg_up
}

mysql_up() { mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -u root ping; }
ensure_mariadb() {
  mysql_up >/dev/null 2>&1 && return 0
  local fresh=0
  if [ ! -x /usr/sbin/mariadbd ]; then
    apt_install mariadb-server mariadb-client || {
      echo "missing MariaDB: install Debian package mariadb-server" >&2
      return 1
    }
    fresh=1
  fi
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >/dev/null 2>&1
  if [ "$fresh" = 1 ]; then
    wait_for "MariaDB (socket)" mysqladmin -u root ping || return 1
    mysql -u root -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('');" \
      >/dev/null 2>&1
  fi
  wait_for "MariaDB (127.0.0.1:3306)" mysql_up
}

status=0
for service in "$@"; do
  "ensure_$service" || status=1
done
exit $status
