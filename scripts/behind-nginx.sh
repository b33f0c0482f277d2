#!/usr/bin/env bash
# pure-ws behind nginx, tested for real: deploy/nginx.conf with TLS in front of
# release builds of pure-ws, driven by headless Chromium, the Autobahn|Testsuite and
# a small WebSocket client (scripts/wsprobe.py, Python 3 standard library only).
#
# Prints one PASS or FAIL line per check and ends with "N passed, M failed"; exits
# non-zero if a check failed. Everything runs on 127.0.0.1 (and ::1) on free ports,
# with a private nginx (-p/-c in a temporary directory, never the system service);
# every process started here is stopped by its id on exit.
#
# Each check gets its own nginx, generated from deploy/nginx.conf with only its
# ports, certificate paths and read timeout replaced, in front of its own pair of
# pure-ws instances:
#   main       two instances as deployed (prefix echo)     checks 1, 2, 5, 6
#   autobahn   two instances with --echo exact             check 3
#   ping       proxy_read_timeout 3s, --ping-interval 1    check 4
#   noping     proxy_read_timeout 3s, --ping-interval 0    check 4 (the control)
#
# Needs: cargo, python3, openssl; nginx and chromium are installed with apt when
# missing. Screenshots go to target/behind-nginx*.png, the Autobahn report to
# target/autobahn-nginx/.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { printf 'behind-nginx.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

chromium_bin="${PURE_WS_CHROMIUM:-/usr/bin/chromium}"
# Short timeouts for check 4: nginx drops a connection silent for this long ...
idle_timeout=3
# ... the client stays silent this long, twice the timeout ...
idle_seconds=6
# ... and pure-ws pings a silent client this often.
idle_ping=1

# ---------------------------------------------------------------------------
# Processes we started, stopped on exit
# ---------------------------------------------------------------------------

tmp=""
# Kill targets: a PID, or -PGID for a process started with setsid (nginx and
# Chromium, whose worker and helper processes share the group).
targets=()

# forget TARGET: drops a process that has already been stopped and reaped.
forget() {
  local t keep=()
  for t in "${targets[@]}"; do
    [[ "$t" == "$1" ]] || keep+=("$t")
  done
  targets=("${keep[@]}")
}

# shellcheck disable=SC2317  # called from the traps below
cleanup() {
  local t i
  for t in "${targets[@]}"; do
    kill -s TERM -- "$t" 2>/dev/null || true
  done
  # 5 s for everything to stop on SIGTERM, then SIGKILL.
  for t in "${targets[@]}"; do
    for ((i = 0; i < 50; i++)); do
      kill -0 -- "$t" 2>/dev/null || break
      sleep 0.1
    done
    kill -s KILL -- "$t" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [[ -n "$tmp" ]]; then
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap runs.
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------

apt_install() {
  log "installing $* with apt"
  apt-get update -qq
  # Where the init system allows it, Debian's package starts the system nginx; this
  # script never uses it (its nginx has its own config, prefix and ports).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

nginx_bin="$(command -v nginx || true)"
[[ -n "$nginx_bin" ]] || [[ ! -x /usr/sbin/nginx ]] || nginx_bin=/usr/sbin/nginx
if [[ -z "$nginx_bin" ]]; then
  apt_install nginx
  nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
fi
if [[ ! -x "$chromium_bin" ]]; then
  apt_install chromium
fi
for tool in cargo python3 openssl; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH"
done
log "$("$nginx_bin" -v 2>&1)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/pure-ws-nginx.XXXXXX")"
# nginx's worker runs as an unprivileged user and must reach its temp paths in here.
chmod 755 "$tmp"

log "cargo build --release"
cargo build --release --quiet
bin="$repo_root/target/release/pure-ws"
probe=(python3 "$repo_root/scripts/wsprobe.py")

# A self-signed certificate for 127.0.0.1, ::1 and localhost; it is also the CA
# file the probes verify nginx against.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost" 2>/dev/null ||
  die "openssl could not make a self-signed certificate"

# ---------------------------------------------------------------------------
# pure-ws instances and their nginx
# ---------------------------------------------------------------------------

# free_port FAMILY_ADDR: a port the kernel just handed out and took back.
free_port() {
  python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.bind((sys.argv[1], 0))
print(s.getsockname()[1])' "$1"
}

ipv6=1
free_port ::1 >/dev/null 2>&1 || ipv6=0

# start_instance NAME ARGS...: starts pure-ws on a free port; sets instance_pid and
# instance_port. Its stdout and stderr (the log) go to $tmp/NAME.out and .err.
start_instance() {
  local name="$1"
  shift
  "$bin" --host 127.0.0.1 --port 0 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null &
  instance_pid=$!
  targets+=("$instance_pid")
  local line="" i
  # The first stdout line is "pure-ws listening on http://127.0.0.1:PORT".
  for ((i = 0; i < 100; i++)); do
    IFS= read -r line 2>/dev/null <"$tmp/$name.out" || true
    [[ "$line" == *"http://"* ]] && break
    kill -0 "$instance_pid" 2>/dev/null ||
      die "pure-ws $name ($*) exited: $(head -c 300 "$tmp/$name.err")"
    sleep 0.1
  done
  instance_port="${line##*:}"
  [[ "$instance_port" =~ ^[0-9]+$ ]] || die "pure-ws $name printed no address within 10 s"
}

# replace TEXT FROM TO: TEXT with every FROM replaced by TO; fails if FROM is absent,
# so a change to deploy/nginx.conf cannot silently leave a production value in.
replace() {
  [[ "$1" == *"$2"* ]] || die "deploy/nginx.conf no longer contains '$2'"
  printf '%s' "${1//"$2"/"$3"}"
}

# start_nginx NAME READ_TIMEOUT UPSTREAM_PORT UPSTREAM_PORT: runs deploy/nginx.conf,
# substituted, under its own prefix $tmp/nginx-NAME; sets nginx_port (HTTPS).
start_nginx() {
  local name="$1" read_timeout="$2" up1="$3" up2="$4"
  local dir="$tmp/nginx-$name" site v6
  mkdir -p "$dir"
  nginx_port="$(free_port 127.0.0.1)"
  site="$(<deploy/nginx.conf)"
  site="$(replace "$site" "listen 443 ssl http2;" "listen 127.0.0.1:$nginx_port ssl http2;")"
  v6="listen [::1]:$nginx_port ssl http2;"
  ((ipv6)) || v6="# no IPv6 loopback on this machine"
  site="$(replace "$site" "listen [::]:443 ssl http2;" "$v6")"
  site="$(replace "$site" "server 127.0.0.1:4001;" "server 127.0.0.1:$up1;")"
  site="$(replace "$site" "server 127.0.0.1:4002;" "server 127.0.0.1:$up2;")"
  site="$(replace "$site" "/etc/letsencrypt/live/echo.example.com/fullchain.pem" "$tmp/cert.pem")"
  site="$(replace "$site" "/etc/letsencrypt/live/echo.example.com/privkey.pem" "$tmp/key.pem")"
  site="$(replace "$site" "proxy_read_timeout 60s;" "proxy_read_timeout $read_timeout;")"
  printf '%s\n' "$site" >"$dir/pure-ws.conf"
  # The main config around the site, as Debian's /etc/nginx/nginx.conf would be,
  # with every path inside the prefix.
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log notice;
events { worker_connections 512; }
http {
    access_log $dir/access.log;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    include $dir/pure-ws.conf;
}
EOF
  local nginx_args=(-p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log")
  "$nginx_bin" -t -q "${nginx_args[@]}" 2>"$dir/test.log" ||
    die "nginx -t refused the $name config: $(cat "$dir/test.log")"
  setsid "$nginx_bin" "${nginx_args[@]}" -g "daemon off;" </dev/null >"$dir/stdout" 2>&1 &
  local pid=$! i
  targets+=("-$pid")
  for ((i = 0; i < 100; i++)); do
    (: <>"/dev/tcp/127.0.0.1/$nginx_port") 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  die "nginx ($name) is not listening on $nginx_port: $(tail -n 5 "$dir/error.log" 2>/dev/null)"
}

trusted=()
if "$bin" --help | grep -q -- --trusted-proxy; then
  trusted=(--trusted-proxy 127.0.0.1)
fi

start_instance main-a "${trusted[@]}"
main_a_pid=$instance_pid main_a_port=$instance_port
start_instance main-b "${trusted[@]}"
main_b_port=$instance_port
start_nginx main 60s "$main_a_port" "$main_b_port"
main=$nginx_port

start_instance autobahn-a --echo exact --quiet
port_a=$instance_port
start_instance autobahn-b --echo exact --quiet
start_nginx autobahn 60s "$port_a" "$instance_port"
autobahn=$nginx_port

start_instance ping-a --ping-interval "$idle_ping"
port_a=$instance_port
start_instance ping-b --ping-interval "$idle_ping"
start_nginx ping "${idle_timeout}s" "$port_a" "$instance_port"
ping=$nginx_port

start_instance noping-a --ping-interval 0
port_a=$instance_port
start_instance noping-b --ping-interval 0
start_nginx noping "${idle_timeout}s" "$port_a" "$instance_port"
noping=$nginx_port

log "nginx on https://127.0.0.1:{$main,$autobahn,$ping,$noping}/; main instances on :$main_a_port and :$main_b_port"

# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------

passed=0
failed=0
# result NUMBER NAME STATUS DETAIL: one line per check.
result() {
  if (($3 == 0)); then
    passed=$((passed + 1))
    printf 'PASS %s %s: %s\n' "$1" "$2" "$4"
  else
    failed=$((failed + 1))
    printf 'FAIL %s %s: %s\n' "$1" "$2" "$4"
  fi
}

# run_probe SECONDS ARGS...: runs wsprobe.py with a time limit; sets out and rc.
run_probe() {
  local limit="$1"
  shift
  rc=0
  out="$(timeout -k 5 "$limit" "${probe[@]}" "$@" 2>&1)" || rc=$?
  ((rc != 124)) || out="no answer within ${limit} s; ${out}"
  out="${out//$'\n'/ | }"
}

# Chromium, started once for checks 1 and 2.
profile="$tmp/chromium"
mkdir -p "$profile"
setsid "$chromium_bin" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
  --disable-background-networking --disable-component-update --disable-sync \
  --no-first-run --no-default-browser-check --ignore-certificate-errors \
  --window-size=1000,760 --remote-debugging-port=0 --user-data-dir="$profile" \
  about:blank </dev/null >"$tmp/chromium.log" 2>&1 &
chromium_pid=$!
targets+=("-$chromium_pid")
devtools=""
for ((i = 0; i < 600; i++)); do
  if [[ -s "$profile/DevToolsActivePort" ]]; then
    devtools="$(head -n 1 "$profile/DevToolsActivePort")"
    [[ "$devtools" =~ ^[0-9]+$ ]] && break
  fi
  kill -0 "$chromium_pid" 2>/dev/null || break
  sleep 0.1
done
mkdir -p target

for n in 1 2; do
  if ((n == 1)); then
    name="page over https echoes through wss" path="/" shot="target/behind-nginx.png"
  else
    name="page under /echo/ echoes" path="/echo/" shot="target/behind-nginx-subpath.png"
  fi
  if [[ ! "$devtools" =~ ^[0-9]+$ ]]; then
    result "$n" "$name" 1 "Chromium did not open its DevTools port: $(tail -n 3 "$tmp/chromium.log")"
    continue
  fi
  rm -f "$shot"
  run_probe 60 page "$devtools" "https://127.0.0.1:$main$path" "wss://127.0.0.1:$main$path" "$shot"
  [[ ! -s "$shot" ]] || out="$out; screenshot $shot"
  result "$n" "$name" "$rc" "$out"
done

# 3. Autobahn through nginx, over TLS (wstest 0.8.2 connects with wss:// and does
# not check the certificate).
rc=0
started=$SECONDS
AUTOBAHN_URL="wss://127.0.0.1:$autobahn/" AUTOBAHN_TIMEOUT=150 \
  AUTOBAHN_REPORT_DIR="$repo_root/target/autobahn-nginx" \
  timeout -k 10 200 bash scripts/autobahn.sh >"$tmp/autobahn.log" 2>&1 || rc=$?
out="$(grep -E '^autobahn: [0-9]+ cases' "$tmp/autobahn.log" | tail -n 1 || true)"
[[ -n "$out" ]] || out="no summary: $(tail -n 3 "$tmp/autobahn.log" | tr '\n' ' ')"
out="${out#autobahn: }"
if ((rc != 0)); then
  failing="$(grep -c '^failing case' "$tmp/autobahn.log" || true)"
  ((failing == 0)) || out="$out; first failing: $(grep -m 3 '^failing case' "$tmp/autobahn.log" | cut -c 1-120 | tr '\n' ' ')"
fi
result 3 "Autobahn 1-10 through nginx (wss)" "$rc" "$out in $((SECONDS - started)) s; report in target/autobahn-nginx/"

# 4. Idle connections: both at once, each silent for twice the proxy's read timeout.
"${probe[@]}" idle "wss://127.0.0.1:$ping/" "$idle_seconds" --cafile "$tmp/cert.pem" \
  >"$tmp/idle-ping.txt" 2>&1 &
idle_ping_pid=$!
"${probe[@]}" idle "wss://127.0.0.1:$noping/" "$idle_seconds" --cafile "$tmp/cert.pem" \
  >"$tmp/idle-noping.txt" 2>&1 &
idle_noping_pid=$!
targets+=("$idle_ping_pid" "$idle_noping_pid")
# The probes bound their own waits (WAIT = 15 s); this bounds them once more.
for ((i = 0; i < 10 * (idle_seconds + 20); i++)); do
  kill -0 "$idle_ping_pid" 2>/dev/null || kill -0 "$idle_noping_pid" 2>/dev/null || break
  sleep 0.1
done
ping_rc=0 noping_rc=0
kill -0 "$idle_ping_pid" 2>/dev/null && ping_rc=124
kill -0 "$idle_noping_pid" 2>/dev/null && noping_rc=124
((ping_rc == 124)) || wait "$idle_ping_pid" || ping_rc=$?
((noping_rc == 124)) || wait "$idle_noping_pid" || noping_rc=$?
((ping_rc == 124)) || forget "$idle_ping_pid"
((noping_rc == 124)) || forget "$idle_noping_pid"
ping_out="$(tr '\n' ' ' <"$tmp/idle-ping.txt")"
noping_out="$(tr '\n' ' ' <"$tmp/idle-noping.txt")"
# The control must be cut: if it survived too, the proxy timeout is not being tested.
rc=0
((ping_rc == 0)) || rc=1
((noping_rc == 1)) || rc=1
result 4 "idle connection kept alive by pings" "$rc" \
  "proxy_read_timeout ${idle_timeout}s, --ping-interval $idle_ping: ${ping_out% }; control with --ping-interval 0: ${noping_out% }"

# 5. One instance killed: new connections go to the other.
kill -s TERM "$main_a_pid" 2>/dev/null || true
wait "$main_a_pid" 2>/dev/null || true
forget "$main_a_pid"
run_probe 30 echo "wss://127.0.0.1:$main/" --count 6 --cafile "$tmp/cert.pem"
refused="$(grep -c 'connect() failed (111' "$tmp/nginx-main/error.log" || true)"
result 5 "one instance killed, new connections served" "$rc" \
  "instance :$main_a_port stopped; $out; nginx logged $refused refused upstream connect(s)"

# 6. The client address from X-Forwarded-For in the log of a --trusted-proxy instance.
# nginx appends the address it sees (127.0.0.1) to the header the client sent.
before="$(wc -l <"$tmp/main-b.err")"
run_probe 30 echo "wss://127.0.0.1:$main/" --header "X-Forwarded-For: 203.0.113.7" \
  --cafile "$tmp/cert.pem"
line=""
if ((rc == 0)); then
  # The line is written when the connection ends, just after the client's close.
  for ((i = 0; i < 30; i++)); do
    line="$(tail -n +"$((before + 1))" "$tmp/main-b.err" | head -n 1)"
    [[ -z "$line" ]] || break
    sleep 0.1
  done
  if [[ "$line" == *203.0.113.7* ]]; then
    out="log: $line"
  else
    rc=1
    out="log shows '${line:-nothing}', not 203.0.113.7"
    ((${#trusted[@]})) || out="$out (this pure-ws has no --trusted-proxy option)"
  fi
fi
result 6 "X-Forwarded-For client address logged" "$rc" "$out"

printf '%d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
