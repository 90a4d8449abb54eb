#!/usr/bin/env bash
# nginx → `iiswsgi run --diagnostic=hello` versus nginx → a C libfcgi hello-world responder
# (bench/c-responder/hello.c), same nginx, same config, same machine, interleaved rounds.
# Load comes from wrk on loopback; nginx keeps upstream connections (fastcgi_keep_conn on +
# keepalive). Prints req/s and p99 latency side by side and the iiswsgi/C ratio.
#
# Not run by `cargo test`. Needs root (nginx `user root`) and .ci/setup's packages
# (nginx-light, libfcgi-dev, wrk).
#
#   bench/fastcgi.sh                      # 5 rounds x 10 s per backend and scenario
#   ROUNDS=3 DURATION=5s bench/fastcgi.sh
#   CARGO_FLAGS=--no-default-features bench/fastcgi.sh   # build without the Python feature
#
# Scenarios:
#   serial  wrk -t1 -c1: one request at a time. Both backends are one single-threaded process
#           (the C responder as in libfcgi's examples): the like-for-like comparison.
#   c8-one  wrk -t2 -c8: eight client connections, so nginx keeps up to eight upstream
#           connections. A single-threaded libfcgi responder cannot serve that (it blocks on
#           one idle kept-alive connection while the others wait), so the C responder runs 8
#           threads, one per connection: libfcgi at its best. iiswsgi stays ONE process that
#           runs one application call at a time over all its connections.
#   c8      as c8-one, but iiswsgi runs as 8 processes sharing one listening socket on fd 0
#           (`run --processes 8`: the lighttpd bin-path / spawn-fcgi / IIS maxInstances model):
#           8 workers each side.
# Rows pair adjacent runs (iiswsgi then C), so each row's ratio shares machine conditions;
# the verdict uses the median of those per-round ratios.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
SCENARIOS=${SCENARIOS:-"serial c8-one c8"}
CARGO_FLAGS=${CARGO_FLAGS:-}

root="$(cd "$(dirname "$0")/.." && pwd)"
for tool in nginx wrk cc curl; do
  command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin:/sbin"
  command -v "$tool" >/dev/null || { echo "missing $tool: run .ci/setup" >&2; exit 1; }
done
[ -e /usr/include/fcgiapp.h ] || { echo "missing libfcgi-dev: run .ci/setup" >&2; exit 1; }

work="$(mktemp -d /tmp/iiswsgi-bench-XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "== build"
(cd "$root" && cargo build --release --quiet $CARGO_FLAGS)
iiswsgi="$root/target/release/iiswsgi"
cc -O2 -pthread -o "$work/c-responder" "${C_SOURCE:-$root/bench/c-responder/hello.c}" -lfcgi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() { # wait_for <what> <command...>
  local what=$1; shift
  for _ in $(seq 1 500); do "$@" >/dev/null 2>&1 && return 0; sleep 0.02; done
  echo "timed out waiting for $what" >&2; exit 1
}

# start_pair <scenario> <C threads> <iiswsgi processes>: both backends and one nginx with a
# port for each.
start_pair() {
  local scenario=$1 threads=$2 procs=$3
  local dir="$work/$scenario"
  mkdir -p "$dir"/{t_body,t_fcgi,t_proxy,t_scgi,t_uwsgi}
  local serve=("$iiswsgi" run --diagnostic=hello --log "$dir/iiswsgi.log" --log-level warn)
  if [ "$procs" -gt 1 ]; then
    # N worker processes sharing one listening socket (each gets it on fd 0, as lighttpd or
    # spawn-fcgi start them), started and supervised by iiswsgi itself.
    "${serve[@]}" --processes "$procs" --listen "unix:$dir/iiswsgi.sock" \
      </dev/null >"$dir/iiswsgi.out" 2>&1 &
  else
    "${serve[@]}" --listen "unix:$dir/iiswsgi.sock" </dev/null >"$dir/iiswsgi.out" 2>&1 &
  fi
  pids+=($!)
  pid_i=$!
  if [ "$threads" -gt 1 ]; then
    "$work/c-responder" --listen "$dir/c.sock" --threads "$threads" </dev/null >"$dir/c.out" 2>&1 &
  else
    "$work/c-responder" --listen "$dir/c.sock" </dev/null >"$dir/c.out" 2>&1 &
  fi
  pids+=($!)
  pid_c=$!
  wait_for "iiswsgi socket" test -S "$dir/iiswsgi.sock"
  wait_for "C socket" test -S "$dir/c.sock"
  chmod 666 "$dir/c.sock"

  port_i=$(free_port); port_c=$(free_port)
  server_block() { # <port> <upstream>
    cat <<EOF
  server {
    listen 127.0.0.1:$1;
    location / {
      fastcgi_param REQUEST_METHOD    \$request_method;
      fastcgi_param REQUEST_URI       \$request_uri;
      fastcgi_param QUERY_STRING      \$query_string;
      fastcgi_param CONTENT_TYPE      \$content_type;
      fastcgi_param CONTENT_LENGTH    \$content_length;
      fastcgi_param SCRIPT_NAME       "";
      fastcgi_param PATH_INFO         \$uri;
      fastcgi_param SERVER_PROTOCOL   \$server_protocol;
      fastcgi_param REQUEST_SCHEME    \$scheme;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
      fastcgi_param REMOTE_ADDR       \$remote_addr;
      fastcgi_param REMOTE_PORT       \$remote_port;
      fastcgi_param SERVER_ADDR       \$server_addr;
      fastcgi_param SERVER_PORT       \$server_port;
      fastcgi_param SERVER_NAME       \$server_name;
      fastcgi_keep_conn on;
      fastcgi_pass $2;
    }
  }
EOF
  }
  cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
user root;
pid $dir/nginx.pid;
error_log $dir/nginx.err warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/t_body;
  fastcgi_temp_path $dir/t_fcgi;
  proxy_temp_path $dir/t_proxy;
  scgi_temp_path $dir/t_scgi;
  uwsgi_temp_path $dir/t_uwsgi;
  upstream iiswsgi { server unix:$dir/iiswsgi.sock; keepalive 8; }
  upstream libfcgi { server unix:$dir/c.sock; keepalive 8; }
$(server_block "$port_i" iiswsgi)
$(server_block "$port_c" libfcgi)
}
EOF
  nginx -p "$dir" -e "$dir/nginx.err" -c "$dir/nginx.conf" </dev/null >"$dir/nginx.out" 2>&1 &
  pids+=($!)
  pid_nginx=$!
  wait_for "nginx" curl -sf "http://127.0.0.1:$port_i/hello"
  for port in "$port_i" "$port_c"; do
    body=$(curl -sS "http://127.0.0.1:$port/hello")
    [ "$body" = "Hello, world!" ] || { echo "port $port answered: $body" >&2; exit 1; }
  done
}

# cpu_ns <pid>: CPU time used so far by the process, its threads and its children, in ns.
cpu_ns() {
  local total=0 p t
  for p in "$1" $(pgrep -P "$1" || true); do
    for t in /proc/"$p"/task/*/schedstat; do
      read -r ns _ <"$t" 2>/dev/null && total=$((total + ns))
    done
  done
  echo "$total"
}

# run_wrk <port> <backend pid> <wrk args...> → "req/s p99_ms non2xx backend_us/req nginx_us/req"
run_wrk() {
  local port=$1 backend=$2; shift 2
  local out b0 n0 b1 n1
  b0=$(cpu_ns "$backend"); n0=$(cpu_ns "$pid_nginx")
  out=$(wrk "$@" -d "$DURATION" --latency "http://127.0.0.1:$port/hello")
  b1=$(cpu_ns "$backend"); n1=$(cpu_ns "$pid_nginx")
  local rps p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {n += $5} /Socket errors:/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
  local requests
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  awk -v r="$rps" -v p="${p99:-nan}" -v e="${errors:-0}" -v n="${requests:-0}" \
      -v b=$((b1 - b0)) -v x=$((n1 - n0)) \
      'BEGIN {if (n > 0) printf "%s %s %s %.1f %.1f\n", r, p, e, b/n/1000, x/n/1000; else print r, p, e, "nan nan"}'
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

echo "== machine: $(nproc) CPUs, $(uname -sr); nginx $(nginx -v 2>&1 | cut -d/ -f2), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "== iiswsgi: $("$iiswsgi" --version | head -1) (release${CARGO_FLAGS:+ $CARGO_FLAGS}), run --diagnostic=hello"
echo "== C: bench/c-responder/hello.c against $(dpkg-query -W -f='libfcgi ${Version}' libfcgi0ldbl 2>/dev/null || echo libfcgi), cc -O2"
echo "== rounds: $ROUNDS x $DURATION per backend, interleaved (iiswsgi, C, iiswsgi, C, ...)"

for scenario in $SCENARIOS; do
  case $scenario in
    serial) wrk_args=(-t1 -c1); threads=1; procs=1 ;;
    c8-one) wrk_args=(-t2 -c8); threads=8; procs=1 ;;
    c8) wrk_args=(-t2 -c8); threads=8; procs=8 ;;
    *) echo "unknown scenario $scenario" >&2; exit 1 ;;
  esac
  start_pair "$scenario" "$threads" "$procs"
  echo
  echo "== scenario $scenario: wrk ${wrk_args[*]}; iiswsgi processes: $procs; C responder threads: $threads"
  # Warm both paths (connections, page cache) before measuring.
  wrk "${wrk_args[@]}" -d1s "http://127.0.0.1:$port_i/hello" >/dev/null
  wrk "${wrk_args[@]}" -d1s "http://127.0.0.1:$port_c/hello" >/dev/null
  echo "(cpu: µs of CPU per request spent by the backend process(es), and by nginx for that backend)"
  printf '%-6s %14s %10s %8s %8s %14s %10s %8s %8s %8s\n' round "iiswsgi req/s" "p99 ms" "cpu" "nginx" \
    "C req/s" "p99 ms" "cpu" "nginx" ratio
  : >"$work/i.rps"; : >"$work/c.rps"; : >"$work/i.p99"; : >"$work/c.p99"; : >"$work/ratio"
  for round in $(seq 1 "$ROUNDS"); do
    read -r i_rps i_p99 i_err i_cpu i_ngx < <(run_wrk "$port_i" "$pid_i" "${wrk_args[@]}")
    read -r c_rps c_p99 c_err c_cpu c_ngx < <(run_wrk "$port_c" "$pid_c" "${wrk_args[@]}")
    [ "$i_err" = 0 ] || echo "   iiswsgi: $i_err non-2xx responses or socket errors in round $round" >&2
    [ "$c_err" = 0 ] || echo "   C: $c_err non-2xx responses or socket errors in round $round" >&2
    ratio=$(awk -v a="$i_rps" -v b="$c_rps" 'BEGIN {if (b > 0) printf "%.2f", a/b; else print "nan"}')
    printf '%-6s %14s %10s %8s %8s %14s %10s %8s %8s %8s\n' "$round" "$i_rps" "$i_p99" "$i_cpu" "$i_ngx" \
      "$c_rps" "$c_p99" "$c_cpu" "$c_ngx" "$ratio"
    echo "$i_rps" >>"$work/i.rps"; echo "$c_rps" >>"$work/c.rps"
    echo "$i_p99" >>"$work/i.p99"; echo "$c_p99" >>"$work/c.p99"; echo "$ratio" >>"$work/ratio"
  done
  printf '%-6s %14s %10s %8s %8s %14s %10s %8s %8s %8s\n' median "$(median <"$work/i.rps")" \
    "$(median <"$work/i.p99")" "" "" "$(median <"$work/c.rps")" "$(median <"$work/c.p99")" "" "" \
    "$(median <"$work/ratio")"
  ratio=$(median <"$work/ratio")
  verdict=$(awk -v r="$ratio" 'BEGIN {print (r != "nan" && r + 0 >= 1.0) ? "meets" : "BELOW"}')
  echo "iiswsgi/C req/s, median of per-round ratios ($scenario): ${ratio}x ($verdict the 1.0x target)"
  if grep -qE '\[(error|crit|alert|emerg)\]' "$work/$scenario/nginx.err"; then
    echo "nginx logged errors:" >&2; grep -E '\[(error|crit|alert|emerg)\]' "$work/$scenario/nginx.err" | head -5 >&2
  fi
  # Stop this scenario's processes before the next one.
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
done
