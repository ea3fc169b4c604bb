#!/usr/bin/env bash
# One throw-away PostgreSQL for a whole `cargo nextest run`: the store's unit tests run twice,
# once on SQLite and once on PostgreSQL (their `postgres` twins, src/store/testing.rs), and each
# PostgreSQL twin makes its own schema in this server instead of starting a server of its own.
#
# Run by nextest as a setup script (.config/nextest.toml) before the first test that needs it;
# it prints GSMGATE_TEST_PG_URL and GSMGATE_TEST_PG_PASSWORD into $NEXTEST_ENV for the tests.
# Debian's `postgresql` package, initdb into a fresh temp dir, loopback only, a free port,
# scram-sha-256 over TCP. As root (CI) the server runs as the `postgres` system user, since
# PostgreSQL refuses root. A watcher stops the server and removes its dir when the nextest
# process that ran this script exits, so a run never leaves a server behind.
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb): the store" \
       "tests need a real server. Install Debian's package: apt-get install postgresql" >&2
  exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/gsmgate-test-pg.XXXXXX")
chmod 700 "$dir"
run=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  run=(runuser -u postgres --)
fi

"${run[@]}" "$bin/initdb" -D "$dir/data" -U pgadmin -E UTF8 --locale=C.UTF-8 \
  --auth-local=trust --auth-host=scram-sha-256 --no-sync --no-instructions \
  >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The tests exercise SQL and concurrency, not the server's crash safety: no fsync.
cat >>"$dir/data/postgresql.conf" <<CONF
# gsmgate test run
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 200
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
CONF

"${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 90 start >/dev/null ||
  { cat "$dir/postgres.log" >&2; exit 1; }

password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
"$bin/psql" -h "$dir" -p "$port" -U pgadmin -d postgres -v ON_ERROR_STOP=1 -q >/dev/null <<SQL
SET password_encryption = 'scram-sha-256';
CREATE ROLE gsmgate_test LOGIN PASSWORD '$password';
CREATE DATABASE gsmgate_test OWNER gsmgate_test;
SQL

# Stop the server when nextest (this script's parent) is gone.
parent=$PPID
setsid bash -c "
  while kill -0 $parent 2>/dev/null; do sleep 1; done
  ${run[*]} '$bin/pg_ctl' -D '$dir/data' -m immediate stop >/dev/null 2>&1
  rm -rf '$dir'
" </dev/null >/dev/null 2>&1 &

{
  echo "GSMGATE_TEST_PG_URL=postgres://gsmgate_test@127.0.0.1:$port/gsmgate_test?sslmode=disable"
  echo "GSMGATE_TEST_PG_PASSWORD=$password"
} >>"${NEXTEST_ENV:-/dev/stdout}"
