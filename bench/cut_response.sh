#!/usr/bin/env bash
# What the client sees when a FastCGI response is cut short (issue 16), for every candidate
# signal from the FastCGI side, through nginx, Apache mod_proxy_fcgi, lighttpd and HAProxy, over
# a unix socket and TCP, for chunked and Content-Length responses. The measurements behind the
# README's "A response cut short" table and `Connection::cut_response`.
#
# The backend is bench/cut_responder.py (raw FastCGI): 200 and SIZE body bytes, a 200 ms pause,
# then the mode's ending. curl is the client (HTTP/1.1). Each cell: status, bytes received,
# seconds, curl's exit code; e0 = the client took the response as complete, e18 (partial
# transfer) or e52 (empty reply) = it saw the response broken, e28 = it hung until curl's 12 s
# timeout.
#
# Not run by `cargo test`. Needs root (nginx `user root`), .ci/setup's nginx, apache2, lighttpd,
# haproxy and curl.
#
#   bench/cut_response.sh                         # every mode, 100,000 body bytes
#   SIZE=12 MODES="close unknown" bench/cut_response.sh
set -uo pipefail

SIZE=${SIZE:-100000}
MODES=${MODES:-"clean status1 stderr close rst unknown badver"}
root="$(cd "$(dirname "$0")/.." && pwd)"
for tool in nginx apache2 lighttpd haproxy curl python3; do
  command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin:/sbin"
  command -v "$tool" >/dev/null || { echo "missing $tool: run .ci/setup" >&2; exit 1; }
done

W="$(mktemp -d /tmp/iiswsgi-cut-XXXXXX)"
chmod 755 "$W"
mkdir -p "$W/t"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

tcp=$(free_port)
python3 "$root/bench/cut_responder.py" "unix:$W/r.sock" 2>/dev/null & pids+=($!)
python3 "$root/bench/cut_responder.py" "tcp:127.0.0.1:$tcp" 2>/dev/null & pids+=($!)

declare -A port
for name in nginx-unix-keep nginx-unix nginx-tcp-keep nginx-tcp nginx-unix-keep-unbuffered \
            nginx-unix-unbuffered apache-unix-reuse apache-unix apache-tcp-reuse apache-tcp \
            lighttpd-unix lighttpd-tcp lighttpd-unix-stream2 haproxy-unix-keep haproxy-unix \
            haproxy-tcp-keep haproxy-tcp; do
  port[$name]=$(free_port)
done

params='fastcgi_param REQUEST_METHOD $request_method; fastcgi_param REQUEST_URI $request_uri;
  fastcgi_param SCRIPT_NAME ""; fastcgi_param PATH_INFO $uri;
  fastcgi_param SERVER_PROTOCOL $server_protocol; fastcgi_param CONTENT_LENGTH $content_length;'
ngx() { echo "server { listen 127.0.0.1:${port[$1]}; location / { $params $2 } }"; }
cat > "$W/nginx.conf" <<EOF
daemon off; worker_processes 1; user root; pid $W/nginx.pid; error_log $W/nginx.err info;
events { worker_connections 256; }
http {
  access_log off; client_body_temp_path $W/t; fastcgi_temp_path $W/t; proxy_temp_path $W/t;
  scgi_temp_path $W/t; uwsgi_temp_path $W/t;
  upstream ux { server unix:$W/r.sock; keepalive 4; }
  upstream tc { server 127.0.0.1:$tcp; keepalive 4; }
  $(ngx nginx-unix-keep "fastcgi_keep_conn on; fastcgi_pass ux;")
  $(ngx nginx-unix "fastcgi_pass unix:$W/r.sock;")
  $(ngx nginx-tcp-keep "fastcgi_keep_conn on; fastcgi_pass tc;")
  $(ngx nginx-tcp "fastcgi_pass 127.0.0.1:$tcp;")
  $(ngx nginx-unix-keep-unbuffered "fastcgi_keep_conn on; fastcgi_buffering off; fastcgi_pass ux;")
  $(ngx nginx-unix-unbuffered "fastcgi_buffering off; fastcgi_pass unix:$W/r.sock;")
}
EOF
nginx -p "$W" -e "$W/nginx.err" -c "$W/nginx.conf" & pids+=($!)

vhost() { printf 'Listen 127.0.0.1:%s\n<VirtualHost 127.0.0.1:%s>\n  ProxyPass "/" "%s"%s\n</VirtualHost>\n' \
  "${port[$1]}" "${port[$1]}" "$2" "$3"; }
{ cat <<EOF
ServerRoot $W
ServerName localhost
PidFile $W/apache.pid
ErrorLog $W/apache.err
LogLevel warn
Mutex file:$W default
DefaultRuntimeDir $W
User www-data
Group www-data
LoadModule mpm_event_module  /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule proxy_module      /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_fcgi_module /usr/lib/apache2/modules/mod_proxy_fcgi.so
EOF
  vhost apache-unix-reuse "unix:$W/r.sock|fcgi://localhost/" " enablereuse=on"
  vhost apache-unix "unix:$W/r.sock|fcgi://localhost2/" ""
  vhost apache-tcp-reuse "fcgi://127.0.0.1:$tcp/" " enablereuse=on"
  vhost apache-tcp "fcgi://127.0.0.1:$tcp/" ""
} > "$W/apache.conf"
apache2 -X -f "$W/apache.conf" & pids+=($!)

sock() { echo "( \"/\" => (( \"socket\" => \"$W/r.sock\", \"check-local\" => \"disable\" )))"; }
cat > "$W/lighttpd.conf" <<EOF
server.modules = ( "mod_fastcgi" )
server.bind = "127.0.0.1"
server.port = ${port[lighttpd-unix]}
server.document-root = "$W"
server.errorlog = "$W/lighttpd.err"
\$SERVER["socket"] == "127.0.0.1:${port[lighttpd-unix-stream2]}" {
  server.stream-response-body = 2
  fastcgi.server = $(sock)
}
else \$SERVER["socket"] == "127.0.0.1:${port[lighttpd-tcp]}" {
  fastcgi.server = ( "/" => (( "host" => "127.0.0.1", "port" => $tcp, "check-local" => "disable" )))
}
else { fastcgi.server = $(sock) }
EOF
lighttpd -D -f "$W/lighttpd.conf" & pids+=($!)

hap() { printf 'frontend f%s\n  bind 127.0.0.1:%s\n  default_backend b%s\nbackend b%s\n  use-fcgi-app g%s\n  http-reuse always\n  server s1 %s proto fcgi\nfcgi-app g%s\n  docroot %s\n  path-info ^()(/.*)$\n%s\n' \
  "$1" "${port[$1]}" "$1" "$1" "$1" "$2" "$1" "$W" "$3"; }
{ printf 'global\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 15s\n  timeout server 15s\n'
  hap haproxy-unix-keep "$W/r.sock" "  option keep-conn"
  hap haproxy-unix "$W/r.sock" ""
  hap haproxy-tcp-keep "127.0.0.1:$tcp" "  option keep-conn"
  hap haproxy-tcp "127.0.0.1:$tcp" ""
} > "$W/haproxy.cfg"
haproxy -db -f "$W/haproxy.cfg" 2>"$W/haproxy.err" & pids+=($!)

for name in "${!port[@]}"; do
  for _ in $(seq 1 500); do
    (exec 3<>"/dev/tcp/127.0.0.1/${port[$name]}") 2>/dev/null && break
    sleep 0.02
  done
done

printf '%-34s' "server/transport/framing"
for m in $MODES; do printf '%-22s' "$m"; done
echo
for name in nginx-unix-keep nginx-unix nginx-tcp-keep nginx-tcp nginx-unix-keep-unbuffered \
            nginx-unix-unbuffered apache-unix-reuse apache-unix apache-tcp-reuse apache-tcp \
            lighttpd-unix lighttpd-tcp lighttpd-unix-stream2 haproxy-unix-keep haproxy-unix \
            haproxy-tcp-keep haproxy-tcp; do
  for framing in chunked cl; do
    printf '%-34s' "$name/$framing"
    for m in $MODES; do
      if [[ $m == rst && $name != *tcp* ]]; then printf '%-22s' "-"; continue; fi
      out=$(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}' --max-time 12 \
            "http://127.0.0.1:${port[$name]}/$m/$framing/$SIZE")
      rc=$?
      read -r code bytes secs <<< "$out"
      printf '%-22s' "$code $bytes ${secs%.*}s e$rc"
    done
    echo
  done
done
