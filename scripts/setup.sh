#!/usr/bin/env bash
# Fresh-machine setup, safe to run again: redis-server (Debian package), Java 17+ and Maven, the Python
# dependencies in $VENV (.venv), and the Kafka broker's jars from Maven Central into the devstack cache
# (~/.cache/payments-devstack, or $PAYMENTS_DEVSTACK_CACHE). Unattended: never prompts (CI=true, no stdin).
# As root, missing system packages are installed with apt-get; otherwise it says which ones to install.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

say() { printf '==> %s\n' "$*"; }
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

apt_updated=0
apt_install() {
  # Only as root, and without letting the packages start their services: a redis-server daemon left on
  # 6379 would quietly serve any code that forgot to take the test's Redis URL.
  [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null || return 1
  if [ "$apt_updated" -eq 0 ]; then
    apt-get update -q </dev/null
    apt_updated=1
  fi
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
  fi
  local rc=0
  apt-get install -y -q --no-install-recommends "$@" </dev/null || rc=$?
  if [ "$own_policy" -eq 1 ]; then rm -f "$policy"; fi
  return "$rc"
}

need() {  # need COMMAND DEBIAN-PACKAGE WHAT
  command -v "$1" >/dev/null && return 0
  say "installing $3 ($2)"
  apt_install "$2" || die "$3 is missing: install the Debian package '$2' (sudo apt-get install -y $2)"
}

need redis-server redis-server "redis-server"
need java openjdk-17-jdk-headless "Java 17"
need mvn maven "Maven"

java_version=$(java -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ {print $2}')
if [ "${java_version%%.*}" -lt 17 ] 2>/dev/null || [ -z "$java_version" ]; then
  die "Kafka 4 needs Java 17 or newer, 'java' is ${java_version:-unknown}: install openjdk-17-jdk-headless"
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  if ! "$PYTHON" -m venv "$VENV"; then
    # Debian's python3 keeps venv/ensurepip in a separate package.
    rm -rf "$VENV"
    apt_install python3-venv || die "'$PYTHON -m venv' failed: install the Debian package 'python3-venv'"
    "$PYTHON" -m venv "$VENV"
  fi
fi
say "installing the Python dependencies into $VENV"
"$VENV/bin/python" -m pip install -q -e '.[dev]'

say "fetching the Kafka broker's jars (once; later runs are offline)"
"$VENV/bin/python" - <<'EOF'
import time

from payments.devstack.kafka import fetch_kafka_jars

started = time.monotonic()
libs = fetch_kafka_jars()
print(f"==> Kafka jars ready in {libs} ({time.monotonic() - started:.1f} s)")
EOF
say "setup complete: 'make test' runs the suite, 'make run' starts the stack"
