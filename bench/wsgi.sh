#!/usr/bin/env bash
# Load figures for the WSGI bridge against its peers (bench/wsgi_peers.rs), side by side.
#
# Builds (once) a venv of the embedded Python with the peers from PyPI: wfastcgi 3.0.0, flup,
# pyuwsgi, granian; then runs the release build of the bench. Needs nginx and wrk
# (apt-get install nginx-light wrk). Knobs: BENCH_ROUNDS (5), BENCH_SECONDS (5),
# BENCH_ONLY=iis|nginx, BENCH_BASELINE=<git revision>: also builds that revision (release, in a
# worktree under target/bench-baseline) and prints its IIS-mode row beside this build's (issue
# 15 compares with main before the stable-ABI change: BENCH_BASELINE=155d8b8).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${PYO3_PYTHON:=$(python3 -c 'import sys; print(sys.executable)')}"
export PYO3_PYTHON
minor="$("$PYO3_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
venv="$PWD/target/tmp/wsgi-bench-venv-py$minor"

if [ ! -e "$venv/.ready" ]; then
  rm -rf "$venv"
  "$PYO3_PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "wfastcgi==3.0.0" "flup>=1.0.3" pyuwsgi granian
  touch "$venv/.ready"
fi
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }

# The C libfcgi responder of bench/fastcgi.sh, as a second floor for IIS mode (optional).
c_responder=""
if [ -e /usr/include/fcgiapp.h ] && command -v cc >/dev/null; then
  mkdir -p target/tmp
  cc -O2 -pthread -o target/tmp/c-responder bench/c-responder/hello.c -lfcgi && c_responder="$PWD/target/tmp/c-responder"
fi

baseline_bin=""
if [ -n "${BENCH_BASELINE:-}" ]; then
  tree="$PWD/target/bench-baseline/$BENCH_BASELINE"
  if [ ! -d "$tree" ]; then
    git worktree add --detach "$tree" "$BENCH_BASELINE" >/dev/null
  fi
  (cd "$tree" && cargo build --release --quiet --bin iiswsgi)
  baseline_bin="$tree/target/release/iiswsgi"
  export BENCH_BASELINE_NAME="iiswsgi @ $(git rev-parse --short "$BENCH_BASELINE")"
fi

BENCH_VENV="$venv" BENCH_C_RESPONDER="$c_responder" BENCH_BASELINE_BIN="${BENCH_BASELINE_BIN:-$baseline_bin}" \
  cargo bench --bench wsgi_peers
