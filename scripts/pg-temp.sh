#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for spawnkit: loopback only, in its own directory, its unix socket inside it.
#
#   scripts/pg-temp.sh start <dir> [port]   initdb (if <dir> is new) and start; prints the connection URL on stdout
#   scripts/pg-temp.sh stop <dir>           stop it (fast shutdown); the directory stays
#   scripts/pg-temp.sh destroy <dir>        stop it and delete the directory
#
# The server binaries come from Debian's `postgresql` package (/usr/lib/postgresql/<version>/bin); the script fails
# when none are installed (`apt-get install -y postgresql`). PostgreSQL refuses to run as root, so as root the cluster
# is owned by and run as the `postgres` user. Authentication is `trust` for loopback and the socket only: the cluster
# is for one machine's tests or a single-user setup; give a shared one passwords (`scram-sha-256`).
set -euo pipefail

die() { echo "pg-temp: $*" >&2; exit 1; }

bindir() {
  local dir
  if [ -n "${SPAWNKIT_PG_BIN:-}" ]; then
    [ -x "$SPAWNKIT_PG_BIN/postgres" ] || die "SPAWNKIT_PG_BIN=$SPAWNKIT_PG_BIN has no postgres binary"
    echo "$SPAWNKIT_PG_BIN"
    return
  fi
  # The newest installed version.
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$dir" ] && [ -x "$dir/postgres" ] ||
    die "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin; install them: apt-get install -y postgresql"
  echo "$dir"
}

# Run a command as the cluster's owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  local dir=${1:?usage: pg-temp.sh start <dir> [port]} port=${2:-} bin
  bin=$(bindir)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs the postgres user (created by the postgresql package)"
    runuser -u postgres -- test -x "$dir/.." ||
      die "the postgres user cannot reach $dir: give its parent directories o+x (chmod o+x), or use another directory"
    chown postgres: "$dir"
    chmod 700 "$dir"
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-instructions >"$dir/initdb.log" 2>&1 ||
      die "initdb failed: $(tail -n 20 "$dir/initdb.log")"
  fi
  local tries=0
  while :; do
    if [ -z "$port" ] || [ $tries -gt 0 ]; then
      port=$((20000 + RANDOM % 20000))
      port_free "$port" || { tries=$((tries + 1)); continue; }
    fi
    # Loopback TCP only, the unix socket inside the cluster's directory; durability is the disk's business here.
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=200" \
      start >/dev/null; then
      break
    fi
    tries=$((tries + 1))
    [ $tries -lt 5 ] || die "could not start PostgreSQL: $(tail -n 20 "$dir/server.log")"
  done
  echo "$port" >"$dir/port"
  echo "postgresql://postgres@127.0.0.1:$port/postgres"
}

stop() {
  local dir=${1:?usage: pg-temp.sh stop <dir>} bin
  bin=$(bindir)
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  destroy) shift; stop "$@"; rm -rf "${1:?}" ;;
  bindir) bindir ;;
  *) die "usage: pg-temp.sh start <dir> [port] | stop <dir> | destroy <dir> | bindir" ;;
esac
