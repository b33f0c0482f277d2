#!/usr/bin/env bash
# Autobahn|Testsuite conformance run for pure-ws.
#
# Builds the release binary, starts it on an ephemeral port, drives the
# Autobahn "fuzzingclient" against it (cases 1.* .. 10.*; 12.* and 13.* need
# permessage-deflate, which pure-ws does not offer), writes the reports to
# target/autobahn/ and prints a summary. Exits non-zero unless every case's
# behavior and behaviorClose are OK or INFORMATIONAL.
#
# wstest (autobahntestsuite 0.8.x) is Python 2 code, so it runs in a Python
# 2.7 virtualenv cached outside the repo and reused between runs.
#
# Environment knobs:
#   AUTOBAHN_CASES    comma-separated case patterns, e.g. "1.*,5.*"
#                     (default: every case in 1.* .. 10.*)
#   AUTOBAHN_URL      ws://HOST:PORT of an already-running server; skips the
#                     build and the server start
#   AUTOBAHN_SERVER   path of a server binary to start instead of building
#                     target/release/pure-ws (it gets the same arguments)
#   AUTOBAHN_TIMEOUT  seconds the fuzzing run may take (default 900)
#   AUTOBAHN_REPORT_DIR  where the reports go (default target/autobahn); it is
#                     emptied first
#   AUTOBAHN_VENV     where to keep the Python 2.7 virtualenv
#                     (default ${XDG_CACHE_HOME:-$HOME/.cache}/pure-ws/autobahn-venv)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { printf 'autobahn.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------

py2_version="2.7.18"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/pure-ws"
venv="${AUTOBAHN_VENV:-$cache_root/autobahn-venv}"
report_dir="${AUTOBAHN_REPORT_DIR:-$repo_root/target/autobahn}"
agent="pure-ws"
run_timeout="${AUTOBAHN_TIMEOUT:-900}"
# Categories 8 and 11 do not exist in the suite; 12 and 13 are compression.
cases="${AUTOBAHN_CASES:-1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*}"

# virtualenv 16.x is a single module with no dependencies that runs on 2.7
# and seeds pip 20.3.4 (the last pip for 2.7) from wheels it ships, so making
# the venv needs nothing else from the network.
virtualenv_pin="virtualenv==16.7.12"

# The complete, explicitly pinned set that makes wstest 0.8.2 run on 2.7.
# Installed with --no-deps so nothing floats; `pip check` then proves the set
# is self-consistent. These are the last releases of each that still support
# Python 2 (autobahntestsuite itself requires autobahn==0.10.9 and
# txaio<=2.1.0). wsaccel and ujson are C extensions (autobahn's
# "accelerate" extra) and need a C compiler; wsaccel makes the 9.* cases with
# multi-megabyte messages much faster.
requirements=(
  pip==20.3.4
  setuptools==44.1.1
  wheel==0.37.1
  autobahntestsuite==0.8.2
  autobahn==0.10.9
  txaio==2.1.0
  six==1.17.0
  wsaccel==0.6.6
  ujson==2.0.3
  Twisted==20.3.0
  zope.interface==5.5.2
  Automat==22.10.0
  attrs==21.4.0
  constantly==15.1.0
  hyperlink==21.0.0
  idna==2.10
  incremental==22.10.0
  PyHamcrest==1.10.1
  typing==3.10.0.0
  klein==20.6.0
  Tubes==0.2.1
  Werkzeug==1.0.1
  enum34==1.1.10
  Jinja2==2.11.3
  MarkupSafe==1.1.1
  pyOpenSSL==21.0.0
  cryptography==3.3.2
  cffi==1.15.1
  pycparser==2.21
  ipaddress==1.0.23
  service-identity==21.1.0
  pyasn1==0.5.1
  pyasn1-modules==0.3.0
  unittest2==1.1.0
  argparse==1.4.0
  linecache2==1.0.0
  traceback2==1.4.0
)

# ---------------------------------------------------------------------------
# Python 2.7 and the wstest virtualenv
# ---------------------------------------------------------------------------

# Prints the path of a Python 2.7.18 interpreter from pyenv, installing it
# with pyenv if pyenv is there but lacks that version.
find_python2() {
  local pyenv_bin="" root py
  if command -v pyenv >/dev/null 2>&1; then
    pyenv_bin="$(command -v pyenv)"
  elif [[ -x "${PYENV_ROOT:-$HOME/.pyenv}/bin/pyenv" ]]; then
    pyenv_bin="${PYENV_ROOT:-$HOME/.pyenv}/bin/pyenv"
  fi
  if [[ -n "$pyenv_bin" ]]; then
    root="$("$pyenv_bin" root)"
  else
    root="${PYENV_ROOT:-$HOME/.pyenv}"
  fi
  py="$root/versions/$py2_version/bin/python2.7"
  if [[ ! -x "$py" ]]; then
    [[ -n "$pyenv_bin" ]] ||
      die "Python $py2_version not found at $py and pyenv is not installed; wstest needs Python 2.7"
    log "installing Python $py2_version with pyenv (this takes a few minutes)"
    "$pyenv_bin" install -s "$py2_version" </dev/null >&2 ||
      die "'pyenv install $py2_version' failed; wstest needs Python 2.7"
    [[ -x "$py" ]] || die "pyenv installed $py2_version but $py is missing"
  fi
  printf '%s\n' "$py"
}

# Creates the virtualenv unless a complete one with the same pins exists.
# The stamp is written last and holds the pin list, so an interrupted build
# or a change of pins both lead to a clean rebuild.
ensure_venv() {
  local stamp="$venv/.pure-ws-autobahn-stamp"
  local want
  want="$(printf '%s\n' "$virtualenv_pin" "${requirements[@]}")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/wstest" ]]; then
    return 0
  fi

  local py2
  py2="$(find_python2)"
  log "building the wstest virtualenv in $venv (about a minute, once)"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"

  # pip warns on every call that 2.7 is end-of-life; that is known.
  export PIP_NO_PYTHON_VERSION_WARNING=1 PIP_DISABLE_PIP_VERSION_CHECK=1

  # A fresh pyenv build has pip (ensurepip); make sure, without network.
  if ! "$py2" -m pip --version >/dev/null 2>&1; then
    "$py2" -m ensurepip --default-pip >&2 || die "$py2 has no pip and ensurepip failed"
  fi

  # virtualenv goes into a private directory, not into the pyenv
  # interpreter's site-packages, so the shared interpreter stays untouched.
  local bootstrap="$cache_root/virtualenv-bootstrap"
  rm -rf "$bootstrap"
  "$py2" -m pip install -qq --disable-pip-version-check --no-cache-dir \
    --target "$bootstrap" "$virtualenv_pin" </dev/null >&2 ||
    die "could not install $virtualenv_pin for Python 2.7"
  PYTHONPATH="$bootstrap" "$py2" -m virtualenv --quiet --no-download "$venv" </dev/null >&2 ||
    die "could not create the virtualenv $venv"
  rm -rf "$bootstrap"

  "$venv/bin/python" -m pip install --quiet --no-input --no-deps \
    "${requirements[@]}" </dev/null >&2 ||
    die "installing the pinned wstest dependencies into $venv failed"
  local check
  check="$("$venv/bin/python" -m pip check 2>&1)" ||
    die "the pinned wstest dependencies are inconsistent (pip check): $check"
  "$venv/bin/wstest" --autobahnversion >/dev/null 2>&1 ||
    die "wstest does not start in $venv"

  printf '%s\n' "$want" >"$stamp"
}

# ---------------------------------------------------------------------------
# Server under test
# ---------------------------------------------------------------------------

tmp_dir=""
server_pid=""

# shellcheck disable=SC2317  # only ever called from the traps below
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    # Give it 5 s to stop on SIGTERM, then SIGKILL, so a server that
    # ignores SIGTERM cannot hang the script.
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ -n "$tmp_dir" ]]; then
    rm -rf "$tmp_dir"
  fi
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap stops the server.
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts the server on an ephemeral port and sets ws_url from the
# "http://HOST:PORT" its first stdout line contains.
start_server() {
  local bin="$1"
  "$bin" --port 0 --echo exact --quiet \
    >"$tmp_dir/server.out" 2>"$tmp_dir/server.err" </dev/null &
  server_pid=$!

  # Stdout goes to a file rather than a pipe so the server can never block
  # on a full pipe later on; poll the file for the first line.
  local line="" waited=0
  while :; do
    if [[ -s "$tmp_dir/server.out" ]]; then
      IFS= read -r line <"$tmp_dir/server.out" || true
      [[ "$line" == *"http://"* ]] && break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
      cat "$tmp_dir/server.err" >&2 || true
      die "the server exited before printing its address"
    fi
    if ((waited >= 300)); then
      die "the server printed no http://HOST:PORT line within 30 s (got: '${line}')"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done

  # Take HOST:PORT from the first http:// URL on the line.
  local hostport="${line#*http://}"
  hostport="${hostport%%[/ ]*}"
  local host="${hostport%:*}" port="${hostport##*:}"
  [[ "$port" =~ ^[0-9]+$ ]] || die "could not parse a port from the server's first line: '$line'"
  # A wildcard bind address is not something to connect to; use loopback.
  case "$host" in
    0.0.0.0 | "") host="127.0.0.1" ;;
    "[::]") host="[::1]" ;;
  esac
  ws_url="ws://$host:$port"
  log "server pid $server_pid listening on $ws_url"
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

ensure_venv

tmp_dir="$(mktemp -d "${TMPDIR:-/tmp}/pure-ws-autobahn.XXXXXX")"
ws_url=""

if [[ -n "${AUTOBAHN_URL:-}" ]]; then
  ws_url="$AUTOBAHN_URL"
  log "using the running server at $ws_url"
else
  server_bin="${AUTOBAHN_SERVER:-}"
  if [[ -z "$server_bin" ]]; then
    command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH (or set AUTOBAHN_URL / AUTOBAHN_SERVER)"
    log "cargo build --release"
    cargo build --release --quiet
    server_bin="$repo_root/target/release/pure-ws"
  fi
  [[ -x "$server_bin" ]] || die "no server binary at $server_bin"
  start_server "$server_bin"
fi

# Start from an empty report directory so a run that produces no report
# can never be summarized from an older one.
rm -rf "$report_dir"
mkdir -p "$report_dir"

# The spec is written with Python's json module so case patterns from the
# environment are quoted correctly.
"$venv/bin/python" - "$tmp_dir/spec.json" "$ws_url" "$agent" "$report_dir" "$cases" <<'PY'
import json, sys
path, url, agent, outdir, cases = sys.argv[1:]
spec = {
    "outdir": outdir,
    "servers": [{"agent": agent, "url": url}],
    "cases": [c.strip() for c in cases.split(",") if c.strip()],
    "exclude-cases": ["12.*", "13.*"],
    "exclude-agent-cases": {},
}
with open(path, "w") as f:
    json.dump(spec, f, indent=2)
PY

log "running wstest fuzzingclient (cases: $cases; limit ${run_timeout}s)"
started=$SECONDS
wstest_rc=0
# --foreground keeps wstest in our process group so Ctrl-C reaches it; the
# run is still killed if it outlives the limit (a hung server would
# otherwise stall the fuzzer for good). Its output goes to a log as well,
# for the "will run N test cases" line. PYTHONWARNINGS hides cryptography's
# "Python 2 is deprecated" warning; unbuffered output keeps progress live.
(cd "$tmp_dir" && PYTHONWARNINGS=ignore PYTHONUNBUFFERED=1 \
  timeout --foreground -k 10 "$run_timeout" \
  "$venv/bin/wstest" -m fuzzingclient -s "$tmp_dir/spec.json" </dev/null) \
  2>&1 | tee "$tmp_dir/wstest.log" || wstest_rc=${PIPESTATUS[0]}
elapsed=$((SECONDS - started))
log "wstest finished in ${elapsed}s"

if ((wstest_rc == 124 || wstest_rc == 137)); then
  die "wstest did not finish within ${run_timeout}s (AUTOBAHN_TIMEOUT)"
elif ((wstest_rc != 0)); then
  die "wstest exited with status $wstest_rc"
fi

# A server that crashed mid-run makes wstest stop early and report only the
# cases it got through; catch that rather than summarize a partial run.
if [[ -n "$server_pid" ]] && ! kill -0 "$server_pid" 2>/dev/null; then
  log "the server exited during the run; its stderr:"
  tail -n 20 "$tmp_dir/server.err" >&2 || true
  server_died=1
else
  server_died=0
fi
planned="$(sed -n 's/.*will run \([0-9][0-9]*\) test cases.*/\1/p' "$tmp_dir/wstest.log" | head -n 1)"

# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------

summary_rc=0
# Report texts may hold non-ASCII; Python 2 would fail printing it to a pipe.
PYTHONIOENCODING=utf-8 "$venv/bin/python" - "$report_dir" "$agent" "${planned:-0}" <<'PY' || summary_rc=$?
from __future__ import print_function
import io, json, os, sys

report_dir, agent, planned = sys.argv[1], sys.argv[2], int(sys.argv[3])
BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
PASSING = ("OK", "INFORMATIONAL")

index_path = os.path.join(report_dir, "index.json")
try:
    with io.open(index_path, encoding="utf-8") as f:
        results = json.load(f).get(agent, {})
except (IOError, ValueError) as e:
    print("autobahn: cannot read %s: %s" % (index_path, e))
    results = {}

def case_key(case_id):
    return [int(p) if p.isdigit() else p for p in case_id.split(".")]

def counts(field):
    """'OK 3, NON-STRICT 0, ...': the five known behaviors, then any other."""
    c = {}
    for r in results.values():
        c[r[field]] = c.get(r[field], 0) + 1
    names = BEHAVIORS + sorted(set(c) - set(BEHAVIORS))
    return ", ".join("%s %d" % (b, c.get(b, 0)) for b in names)

passed = {}
failing = []
for case_id in sorted(results, key=case_key):
    r = results[case_id]
    if r["behavior"] in PASSING and r["behaviorClose"] in PASSING:
        passed[r["behavior"]] = passed.get(r["behavior"], 0) + 1
    else:
        failing.append(case_id)

total = len(results)
print()
print("behavior:      " + counts("behavior"))
print("behaviorClose: " + counts("behaviorClose"))

for case_id in failing:
    r = results[case_id]
    detail = ""
    try:
        with io.open(os.path.join(report_dir, r["reportfile"]), encoding="utf-8") as f:
            case = json.load(f)
        detail = (case.get("result") or "").strip().replace("\n", " ")
        if case.get("resultClose"):
            detail += " | close: " + case["resultClose"].strip().replace("\n", " ")
    except (IOError, ValueError, KeyError):
        pass
    if len(detail) > 300:
        detail = detail[:297] + "..."
    print("failing case %-8s behavior=%s behaviorClose=%s  %s"
          % (case_id, r["behavior"], r["behaviorClose"], detail))

ok = total > 0 and not failing
if planned and total != planned:
    print("autobahn: wstest planned %d cases but reported %d" % (planned, total))
    ok = False
breakdown = ", ".join("%s %d" % (b, passed[b]) for b in PASSING if passed.get(b))
print("autobahn: %d cases, %d passed%s, %d failed"
      % (total, total - len(failing), " (%s)" % breakdown if breakdown else "", len(failing)))
if total == 0:
    print("autobahn: no case was run (did the server accept connections?)")
print("autobahn: reports in %s (open index.html)" % report_dir)
# The plain closing line that CI counts as a test result.
print("autobahn: %d passed, %d failed" % (total - len(failing), len(failing)))
sys.exit(0 if ok else 1)
PY

if ((server_died)); then
  die "the server exited during the run"
fi
exit "$summary_rc"
