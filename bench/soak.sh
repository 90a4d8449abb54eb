#!/usr/bin/env bash
# Memory soak (issue 16): `iiswsgi run --threads 4` serving bench/wsgi_hello.py behind nginx
# for 1,000,000 requests, RSS sampled every 100,000; the target is RSS within 2 MiB from the
# 100,000th request on. The peer, uWSGI (pyuwsgi, the same app, `--threads 4`, behind the
# same nginx over uwsgi_pass), runs the same load in the same run and is printed beside it.
#
# Load: ApacheBench (ab, keep-alive), per segment of 100,000 requests two runs side by side:
# 50,000 GET / (13 bytes back) and 50,000 POST /echo with a 1 KiB body, 4 connections each,
# through nginx keeping its upstream connections (keepalive 8). ab stops at a request count
# (wrk only stops at a duration); RSS (VmRSS of the serving process) is read between segments.
#
# Not run by `cargo test`. Needs root (nginx `user root`), nginx and ab (apache2-utils), and PyPI
# for the peer's venv (SOAK_PEER=none skips the peer).
#
#   bench/soak.sh                        # 1,000,000 requests each
#   SOAK_REQUESTS=300000 bench/soak.sh   # shorter
#   SOAK_PEER=none bench/soak.sh         # iiswsgi alone
set -euo pipefail

TOTAL=${SOAK_REQUESTS:-1000000}
SEGMENT=${SOAK_SEGMENT:-100000}
PEER=${SOAK_PEER:-uwsgi}
LIMIT_KIB=2048

root="$(cd "$(dirname "$0")/.." && pwd)"
for tool in nginx ab; do
  command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin:/sbin"
  command -v "$tool" >/dev/null || { echo "missing $tool: run .ci/setup" >&2; exit 1; }
done
: "${PYO3_PYTHON:=$(python3 -c 'import sys; print(sys.executable)')}"
export PYO3_PYTHON

work="$(mktemp -d /tmp/iiswsgi-soak-XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "== build"
(cd "$root" && cargo build --release --quiet)
iiswsgi="$root/target/release/iiswsgi"
if [ "$PEER" = uwsgi ]; then
  minor="$("$PYO3_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  venv="$root/target/tmp/soak-venv-py$minor"
  if [ ! -e "$venv/.ready" ]; then
    rm -rf "$venv"
    "$PYO3_PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check pyuwsgi
    touch "$venv/.ready"
  fi
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for <what> <command...>
  local what=$1; shift
  for _ in $(seq 1 1000); do "$@" >/dev/null 2>&1 && return 0; sleep 0.02; done
  echo "$what did not happen" >&2; exit 1
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

port=$(free_port)
mkdir -p "$work/t"
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 > "$work/body"
cat > "$work/nginx.conf" <<EOF
daemon off;
worker_processes 1;
user root;
pid $work/nginx.pid;
error_log $work/nginx.err warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/t; fastcgi_temp_path $work/t; proxy_temp_path $work/t;
  scgi_temp_path $work/t; uwsgi_temp_path $work/t;
  upstream fcgi { server unix:$work/fcgi.sock; keepalive 8; }
  upstream uw { server unix:$work/uw.sock; keepalive 8; }
  server {
    listen 127.0.0.1:$port;
    location /iiswsgi/ {
      fastcgi_param REQUEST_METHOD \$request_method;
      fastcgi_param REQUEST_URI \$request_uri;
      fastcgi_param QUERY_STRING \$query_string;
      fastcgi_param CONTENT_TYPE \$content_type;
      fastcgi_param CONTENT_LENGTH \$content_length;
      fastcgi_param SCRIPT_NAME "";
      fastcgi_param PATH_INFO \$uri;
      fastcgi_param SERVER_PROTOCOL \$server_protocol;
      fastcgi_param SERVER_NAME \$server_name;
      fastcgi_param SERVER_PORT \$server_port;
      fastcgi_param REMOTE_ADDR \$remote_addr;
      fastcgi_keep_conn on;
      fastcgi_pass fcgi;
    }
    location /uwsgi/ {
      include /etc/nginx/uwsgi_params;
      uwsgi_pass uw;
    }
  }
}
EOF
nginx -p "$work" -e "$work/nginx.err" -c "$work/nginx.conf" &
pids+=($!)
wait_for "nginx listens" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"

# soak <name> <pid> <url prefix>: segments of $SEGMENT requests; prints and records RSS.
declare -A rss
soak() {
  local name=$1 pid=$2 prefix=$3 done=0 seg=0
  rss[$name,0]=$(rss_kib "$pid")
  while [ "$done" -lt "$TOTAL" ]; do
    local half=$((SEGMENT / 2)) base="http://127.0.0.1:$port$prefix"
    ab -q -k -c 4 -n "$half" "$base/" > "$work/get.out" 2>&1 &
    local get=$!
    ab -q -k -c 4 -n "$half" -p "$work/body" -T application/octet-stream "$base/echo" \
      > "$work/post.out" 2>&1 || { cat "$work/post.out" >&2; exit 1; }
    wait "$get" || { cat "$work/get.out" >&2; exit 1; }
    for out in "$work/get.out" "$work/post.out"; do
      if ! grep -q '^Failed requests: *0$' "$out" || grep -q 'Non-2xx' "$out"; then
        echo "$name: errors during the soak:" >&2; cat "$out" >&2; exit 1
      fi
    done
    done=$((done + SEGMENT)); seg=$((seg + 1))
    rss[$name,$seg]=$(rss_kib "$pid")
    printf '  %-8s %8d requests  RSS %7d KiB  (%s + %s req/s)\n' "$name" "$done" \
      "${rss[$name,$seg]}" "$(awk '/^Requests per second/ {print $4}' "$work/get.out")" \
      "$(awk '/^Requests per second/ {print $4}' "$work/post.out")"
  done
}

echo "== iiswsgi run --threads 4 (FastCGI, unix socket)"
"$iiswsgi" run --app wsgi_hello:application --chdir "$root/bench" --threads 4 \
  --listen "unix:$work/fcgi.sock" --log "$work/iiswsgi.log" &
ipid=$!; pids+=($ipid)
wait_for "iiswsgi listens" test -S "$work/fcgi.sock"
soak iiswsgi "$ipid" /iiswsgi
names=(iiswsgi)

if [ "$PEER" = uwsgi ]; then
  echo "== uWSGI (pyuwsgi) --threads 4 (uwsgi protocol, unix socket)"
  (cd "$root/bench" && exec "$venv/bin/pyuwsgi" --socket "$work/uw.sock" --chmod-socket=666 \
      --wsgi-file wsgi_hello.py --threads 4 --processes 1 --disable-logging \
      --logto "$work/uwsgi.log") &
  upid=$!; pids+=($upid)
  wait_for "uWSGI listens" test -S "$work/uw.sock"
  soak uwsgi "$upid" /uwsgi
  names+=(uwsgi)
fi

segments=$((TOTAL / SEGMENT))
echo
printf '== RSS (KiB) every %d requests\n%-10s' "$SEGMENT" requests
for n in "${names[@]}"; do printf '%10s' "$n"; done; echo
for s in $(seq 0 "$segments"); do
  printf '%-10d' $((s * SEGMENT))
  for n in "${names[@]}"; do printf '%10d' "${rss[$n,$s]}"; done; echo
done
status=0
for n in "${names[@]}"; do
  lo=${rss[$n,1]}; hi=${rss[$n,1]}; first=${rss[$n,1]}
  for s in $(seq 1 "$segments"); do
    v=${rss[$n,$s]}; [ "$v" -lt "$lo" ] && lo=$v; [ "$v" -gt "$hi" ] && hi=$v
  done
  last=${rss[$n,$segments]}
  verdict=ok
  if [ $((hi - lo)) -gt "$LIMIT_KIB" ]; then verdict="OVER 2 MiB"; [ "$n" = iiswsgi ] && status=1; fi
  printf '%-8s from %d on: min %d, max %d KiB, spread %d KiB, last - first %+d KiB: %s\n' \
    "$n" "$SEGMENT" "$lo" "$hi" $((hi - lo)) $((last - first)) "$verdict"
done
exit $status
