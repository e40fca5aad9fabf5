#!/usr/bin/env bash
# Installs the Debian 'postgresql' package when its server binaries (initdb, pg_ctl) are missing, for the
# benchmark's baseline. Never starts or configures the system service: the benchmark runs a throwaway
# cluster of its own (bench/postgres.py) on a free loopback port and deletes it afterwards.
set -euo pipefail

have_pg() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

if have_pg; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "setup_postgres.sh: PostgreSQL server binaries are missing: install the Debian package 'postgresql'" \
       "(sudo apt-get install -y postgresql)" >&2
  exit 1
fi
echo "==> installing PostgreSQL (Debian package 'postgresql') for the benchmark baseline"
export DEBIAN_FRONTEND=noninteractive
# Debian's policy-rc.d convention: exit 101 = "do not start services", so the package's own cluster on
# port 5432 is not started behind our back.
policy=/usr/sbin/policy-rc.d own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
fi
rc=0
{ apt-get update -q </dev/null && apt-get install -y -q --no-install-recommends postgresql </dev/null; } || rc=$?
if [ "$own_policy" -eq 1 ]; then rm -f "$policy"; fi
if [ "$rc" -ne 0 ]; then
  echo "setup_postgres.sh: apt-get install postgresql failed (exit $rc)" >&2
  exit "$rc"
fi
have_pg || { echo "setup_postgres.sh: postgresql installed but initdb not found" >&2; exit 1; }
