#!/usr/bin/env bash
# hudong side by side with the peer baselines (shared/bench/peers), same run, same generator.
#
# The harness folder is shared and read-only; bench.py keeps its venv and logs beside
# itself. So this builds a folder of symbolic links to the harness's files (nothing is
# copied) with its own .venv and results/, and runs bench.py from there: servers c, d,
# e, f and hudong (h, loadtest/peers_system.json) at N viewers, M=200 msg/s, then the
# light pass (M=20). Results: loadtest/results/peers-<stamp>.{jsonl,md,txt}.
#
# HUDONG_SRC=DIR runs hudong from that source tree (e.g. `git archive HEAD | tar -x -C DIR`)
# instead of this checkout, so edits made meanwhile in the checkout do not change what is
# measured; the system file is then written to $PEERS_RUN/hudong_system.json.
#
#   flock /tmp/hudong-cpu.lock loadtest/run_peers.sh
#   SYSTEMS=e,f,h NS=2000,5000 REPS=2 flock /tmp/hudong-cpu.lock loadtest/run_peers.sh
#   SYSTEMS=a,h,h0 NS=5000 RATE=500 LIGHT=0 HUDONG_SRC=DIR flock /tmp/hudong-cpu.lock \
#     loadtest/run_peers.sh      # the issue's target workload against Socket.IO (a);
#                                 # h0 (HUDONG_SRC only) is hudong with degrade_auto off
#
# Knobs: SYSTEMS, NS, REPS, RATE (msg/s, main pass), DURATION (s), LIGHT (1: also the
# M=20 pass), MAIN_BUDGET / LIGHT_BUDGET (bench.py --budget-s). System a (node
# Socket.IO v4 + Redis adapter) needs node_modules: they are installed with `npm ci`
# into $RUN/node_sio (server.js and the lock file are links to the harness's), and a
# redis-server for it is started on 127.0.0.1:6390, pinned to CPU 0 like the servers,
# with its pid in $RUN/run/redis.pid so bench.py counts its CPU (aux_cpu_pct).
set -euo pipefail
PEERS=${PEERS:-/work/shared/bench/peers}
RUN=${PEERS_RUN:-/tmp/peers-run}
HERE=$(cd "$(dirname "$0")" && pwd)
SYSTEMS=${SYSTEMS:-c,d,e,f,h}
NS=${NS:-2000}
REPS=${REPS:-1}
LIGHT=${LIGHT:-1}
RATE=${RATE:-200}
DURATION=${DURATION:-15}
MAIN_BUDGET=${MAIN_BUDGET:-480}
LIGHT_BUDGET=${LIGHT_BUDGET:-200}
export HUDONG_ADMIN_TOKEN=peers-bench-admin-token  # the dialect's; matches peers_system.json

mkdir -p "$RUN/results" "$HERE/results"
for f in bench.py drainer.py loadgen.py summarize.py requirements.txt dialects servers; do
  ln -sfn "$PEERS/$f" "$RUN/$f"
done
if [ ! -x "$RUN/.venv/bin/python" ]; then
  python3 -m venv "$RUN/.venv"
  "$RUN/.venv/bin/pip" install -q -r "$RUN/requirements.txt"
fi
ulimit -n "$(ulimit -Hn)"

case ",$SYSTEMS," in
  *,a,*|*,b,*)
    mkdir -p "$RUN/node_sio" "$RUN/run"
    for f in server.js package.json package-lock.json; do
      ln -sfn "$PEERS/node_sio/$f" "$RUN/node_sio/$f"
    done
    [ -d "$RUN/node_sio/node_modules" ] || (cd "$RUN/node_sio" && npm ci --no-audit --no-fund)
    # node resolves server.js's link to the harness folder, which has no node_modules
    export NODE_PATH=$RUN/node_sio/node_modules
    if [ -f "$RUN/run/redis.pid" ] && kill -0 "$(cat "$RUN/run/redis.pid")" 2>/dev/null; then
      echo "reusing redis pid $(cat "$RUN/run/redis.pid")"
    else
      taskset -c 0 redis-server --port 6390 --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize yes --pidfile "$RUN/run/redis.pid" --logfile "$RUN/run/redis.log"
      sleep 0.5
      STARTED_REDIS=1
    fi
    ;;
esac
cleanup() {
  if [ "${STARTED_REDIS:-0}" = 1 ] && [ -f "$RUN/run/redis.pid" ]; then
    kill "$(cat "$RUN/run/redis.pid")" 2>/dev/null || true
  fi
}
trap cleanup EXIT

SYSTEM_JSON=$HERE/peers_system.json
if [ -n "${HUDONG_SRC:-}" ]; then
  SYSTEM_JSON=$RUN/hudong_system.json
  rm -rf "$RUN/hudong-data-h" "$RUN/hudong-data-h0"  # a fresh embedded store each run
  SRC=$(cd "$HUDONG_SRC" && pwd) RUN=$RUN HERE=$HERE HUDONG_PYTHON=$(command -v python3) python3 - "$SYSTEM_JSON" <<'PYEOF'
import json, os, sys
src, here = os.environ["SRC"], os.environ["HERE"]
# the checkout's .venv if it has one, else the python3 that installed hudong
venv = os.path.join(os.path.dirname(here), ".venv", "bin", "python")
py = venv if os.access(venv, os.X_OK) else os.environ["HUDONG_PYTHON"]
spec = json.load(open(os.path.join(here, "peers_system.json")))
h = spec["h"]
h["cmd"] = [py, "-m", "server", "serve", "--port", str(h["port"])]
# the embedded default, in a data directory of this run's own (a fresh store each run)
h["env"] = {**h.get("env", {}), "HUDONG_DATA_DIR": os.path.join(os.environ["RUN"], "hudong-data-h")}
h["cwd"] = src  # `python -m server` imports from its working directory first
h["env"] = {**h.get("env", {}), "PYTHONPATH": src}
h["name"] += f" @ {src}"
# h0: the same server held at degrade level 0 (hub.degrade_auto = false), to see what
# level 0 costs and delivers at a load where h climbs levels.
spec["h0"] = {**h, "port": h["port"] + 1, "name": h["name"] + " (degrade_auto off)",
              "env": {**h["env"], "HUDONG_HUB_DEGRADE_AUTO": "false",
                      "HUDONG_DATA_DIR": os.path.join(os.environ["RUN"], "hudong-data-h0")}}
spec["h0"]["cmd"] = [*h["cmd"][:-1], str(h["port"] + 1)]
json.dump(spec, open(sys.argv[1], "w"), indent=1)
PYEOF
  echo "hudong from $HUDONG_SRC: $SYSTEM_JSON"
fi

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$HERE/results/peers-$STAMP.jsonl
cd "$RUN"
{
  .venv/bin/python bench.py --systems "$SYSTEMS" --n "$NS" --reps "$REPS" --rate "$RATE" \
    --duration "$DURATION" --warmup 2 --settle 1.5 --cooldown 4 --budget-s "$MAIN_BUDGET" \
    --out "$OUT" --tag main --extra-systems "$SYSTEM_JSON"
  if [ "$LIGHT" = 1 ]; then
    .venv/bin/python bench.py --systems "$SYSTEMS" --n 2000 --reps 1 --rate 20 \
      --duration 10 --warmup 2 --settle 1.5 --cooldown 4 --budget-s "$LIGHT_BUDGET" \
      --out "$OUT" --tag light --extra-systems "$SYSTEM_JSON"
  fi
} 2>&1 | tee "$HERE/results/peers-$STAMP.txt"
# summarize.py stops at a row without "n" (a run that failed before loadgen started):
# summarize the others and list the failed runs below the tables.
.venv/bin/python - "$OUT" "$RUN/results/summarizable.jsonl" <<'PYEOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
with open(sys.argv[2], "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows if "n" in r)
PYEOF
{
  .venv/bin/python summarize.py "$RUN/results/summarizable.jsonl"
  .venv/bin/python - "$OUT" <<'PYEOF'
import json, sys
bad = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
bad = [r for r in bad if "fatal" in r]
if bad:
    print("\nFailed runs:\n")
    for r in bad:
        print(f"- {r['label']} ({r.get('tag')}): {r['fatal']}")
PYEOF
} > "$HERE/results/peers-$STAMP.md"
echo "wrote $OUT and $HERE/results/peers-$STAMP.md"
