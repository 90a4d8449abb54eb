#!/usr/bin/env bash
# Reloads under load (issue 13): a `django-admin startproject` site behind nginx, wrk for
# BENCH_SECONDS (30) while a file of the site changes every BENCH_EVERY (5) seconds; printed
# side by side for `iiswsgi run --reload` (alone, and with --processes 2) behind nginx's stock
# fastcgi_params (examples/servers/nginx.conf, as written) and gunicorn --reload (1 and 2
# workers) behind nginx proxy_pass, its documented setup.
#
# Columns: requests served, requests/s, non-2xx answers, wrk socket errors (connect, read,
# write, timeout), the slowest request, how many restarts happened, and how many times a
# check of the socket file (in a tight loop) found it missing.
#
# Builds (once) a venv of the embedded Python with Django and gunicorn from PyPI and the
# release binary. Needs nginx-light and wrk (.ci/setup). Not part of `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

: "${BENCH_SECONDS:=30}"
: "${BENCH_EVERY:=5}"
: "${PYO3_PYTHON:=$(python3 -c 'import sys; print(sys.executable)')}"
export PYO3_PYTHON
minor="$("$PYO3_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
venv="$root/target/tmp/reload-bench-venv-py$minor"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
command -v nginx >/dev/null || PATH="$PATH:/usr/sbin"

if [ ! -e "$venv/.ready" ]; then
  rm -rf "$venv"
  "$PYO3_PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "Django>=4.2,<6" gunicorn
  touch "$venv/.ready"
fi
cargo build --release --quiet --bin iiswsgi
iiswsgi="$root/target/release/iiswsgi"

work="$(mktemp -d /tmp/iiswsgi-reload-bench-XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The site, as Django's tutorial and deployment checklist set it up.
site="$work/site"
mkdir -p "$site"
"$venv/bin/django-admin" startproject mysite "$site"
cat >>"$site/mysite/settings.py" <<'EOF'
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
STATIC_ROOT = BASE_DIR / "static"
EOF
(cd "$site" && "$venv/bin/python" manage.py migrate --noinput >/dev/null \
  && "$venv/bin/python" manage.py collectstatic --noinput >/dev/null)
cat >"$site/iiswsgi.toml" <<EOF
[app]
name = "MySite"
title = "My Site"
version = "1.0.0"
description = "django-admin startproject output"

[wsgi]
app = "mysite.wsgi:application"
venv = "$venv"

[iis]
[iis.fastcgi]
[package]
EOF

port=18480
sock="$work/mysite.sock"

# nginx: the main config of a Debian install reduced to a sandbox, the site's file included.
start_nginx() { # $1: server block file
  local dir="$work/nginx"
  rm -rf "$dir" && mkdir -p "$dir"/{t_body,t_fcgi,t_proxy,t_scgi,t_uwsgi}
  ln -s /etc/nginx/fastcgi_params "$dir/fastcgi_params"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 2;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  client_body_temp_path $dir/t_body; fastcgi_temp_path $dir/t_fcgi; proxy_temp_path $dir/t_proxy;
  scgi_temp_path $dir/t_scgi; uwsgi_temp_path $dir/t_uwsgi;
  include $1;
}
EOF
  nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" &
  pids+=($!)
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && return; sleep 0.1; done
  echo "nginx did not start" >&2; cat "$dir/error.log" >&2; exit 1
}

stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

# One run: wrk, the file changes, the socket check. Prints a table row.
measure() { # $1 label, $2 log file, $3 restart pattern, $4 socket (or "")
  local label="$1" log="$2" pattern="$3" socket="$4"
  local missing="$work/missing"; : >"$missing"
  local stop="$work/stop"; rm -f "$stop"
  if [ -n "$socket" ]; then
    ( while [ ! -e "$stop" ]; do [ -S "$socket" ] || echo x >>"$missing"; done ) &
    pids+=($!)
  fi
  local before; before="$(grep -c -- "$pattern" "$log" 2>/dev/null || true)"
  wrk -t2 -c16 -d"${BENCH_SECONDS}s" --timeout 10s --latency "http://127.0.0.1:$port/admin/login/" \
    >"$work/wrk.out" &
  local wrk_pid=$!
  local t=0
  while [ $((t + BENCH_EVERY)) -lt "$BENCH_SECONDS" ]; do
    sleep "$BENCH_EVERY"; t=$((t + BENCH_EVERY))
    echo "# changed at ${t}s" >>"$site/mysite/urls.py"
  done
  wait "$wrk_pid"
  touch "$stop"
  local after; after="$(grep -c -- "$pattern" "$log" 2>/dev/null || true)"
  local requests rps non2xx errors maxlat
  requests="$(awk '/requests in/ {print $1}' "$work/wrk.out")"
  rps="$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")"
  non2xx="$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out")"
  errors="$(awk '/Socket errors/ {s=0; for (i=1; i<=NF; i++) if ($i ~ /^[0-9]+,?$/) s+=$i; print s}' "$work/wrk.out")"
  maxlat="$(awk '/Latency/ && !/Distribution/ {print $4; exit}' "$work/wrk.out")"
  printf '%-34s %9s %9s %8s %8s %9s %9s %8s\n' "$label" "$requests" "$rps" "${non2xx:-0}" \
    "${errors:-0}" "$maxlat" "$((after - before))" "$(wc -l <"$missing")"
}

printf '%-34s %9s %9s %8s %8s %9s %9s %8s\n' server requests req/s non-2xx sock-err max-lat restarts sock-gone

# iiswsgi behind examples/servers/nginx.conf, as written but for the port and paths.
sed -e "s|listen 80;|listen 127.0.0.1:$port;|" -e "s|/run/iiswsgi/mysite.sock|$sock|" \
  -e "s|/srv/mysite|$site|" examples/servers/nginx.conf >"$work/site-iiswsgi.conf"
for procs in 1 2; do
  log="$work/iiswsgi-$procs.log"
  extra=()
  [ "$procs" -gt 1 ] && extra=(--processes "$procs")
  "$iiswsgi" run --manifest "$site/iiswsgi.toml" --listen "unix:$sock" --log "$log" --reload \
    "${extra[@]}" &
  pids+=($!)
  for _ in $(seq 200); do grep -q "imported mysite.wsgi" "$log" 2>/dev/null && break; sleep 0.1; done
  start_nginx "$work/site-iiswsgi.conf"
  measure "iiswsgi --reload --processes $procs" "$log" "restarting in place" "$sock"
  stop_all
done

# gunicorn, the way its documentation deploys it behind nginx.
gsock="$work/gunicorn.sock"
cat >"$work/site-gunicorn.conf" <<EOF
upstream app_server { server unix:$gsock fail_timeout=0; }
server {
  listen 127.0.0.1:$port;
  location /static/ { alias $site/static/; }
  location / {
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_set_header Host \$http_host;
    proxy_redirect off;
    proxy_pass http://app_server;
  }
}
EOF
for workers in 1 2; do
  log="$work/gunicorn-$workers.log"
  (cd "$site" && exec "$venv/bin/gunicorn" --reload --workers "$workers" --bind "unix:$gsock" \
    --error-logfile "$log" mysite.wsgi:application) &
  pids+=($!)
  for _ in $(seq 200); do [ -S "$gsock" ] && break; sleep 0.1; done
  start_nginx "$work/site-gunicorn.conf"
  measure "gunicorn --reload --workers $workers" "$log" "Booting worker" "$gsock"
  stop_all
done
