#!/usr/bin/env bash
# The nightly DAG on the CeleryExecutor, on this machine: Redis broker, PostgreSQL metadata database, the
# api-server, scheduler and dag-processor, and TWO Celery workers; triggers one run on demo data through the
# REST API and shows which worker ran each embedding shard. Not part of `make test`.
#
#   scripts/celery_demo.sh [WORK_DIR]        (default: a new /tmp/postloan-celery.* folder)
#
# Installs the Debian packages redis-server / postgresql with apt-get when missing (root or sudo), and the
# Python extra `.[celery]` into .venv (pinned by requirements.lock). Everything it starts is stopped on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/.venv/bin"
WORK="${1:-$(mktemp -d /tmp/postloan-celery.XXXXXX)}"
CUSTOMERS="${CUSTOMERS:-400}"
mkdir -p "$WORK" && chmod 755 "$WORK"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
say() { printf '\n== %s\n' "$*"; }
free_port() { "$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

say "system packages (Debian): redis-server, postgresql"
if ! command -v redis-server >/dev/null; then
  $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server
fi
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$PG_BIN" ]; then
  $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi
redis-server --version; "$PG_BIN/postgres" --version

say "python extra [celery] (pinned by requirements.lock)"
if ! "$BIN/python" -c "import airflow.providers.celery, redis, psycopg2, asyncpg" 2>/dev/null; then
  "$BIN/pip" install -q -c "$ROOT/requirements.lock" -e "$ROOT[dev,celery]"
fi
"$BIN/pip" list 2>/dev/null | grep -E "^(apache-airflow |apache-airflow-providers-celery|celery |redis |psycopg2|asyncpg)"

GROUPS_STARTED=()
start() {  # start NAME CMD...: in its own process group, output to $WORK/NAME.log
  local name=$1; shift
  setsid "$@" >"$WORK/$name.log" 2>&1 &
  GROUPS_STARTED+=("$!")
}
cleanup() {
  say "stopping everything this script started"
  for pid in "${GROUPS_STARTED[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  sleep 8
  for pid in "${GROUPS_STARTED[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  if [ -f "$WORK/pg/postmaster.pid" ]; then as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null || true; fi
  echo "logs and data kept in $WORK"
}
trap cleanup EXIT

export REDIS_HOST=127.0.0.1 REDIS_PORT="$(free_port)"
export PG_HOST=127.0.0.1 PG_PORT="$(free_port)" PG_PASSWORD=airflow
export API_HOST=127.0.0.1 API_PORT="$(free_port)"
export AIRFLOW_JWT_SECRET="celery-demo-$(date +%s%N)"

say "redis on $REDIS_HOST:$REDIS_PORT"
start redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.5; done

say "postgresql on $PG_HOST:$PG_PORT (cluster in $WORK/pg)"
mkdir -p "$WORK/pg" && touch "$WORK/postgres.log"
[ "$(id -u)" = 0 ] && chown postgres "$WORK/pg" "$WORK/postgres.log"
as_postgres "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth=trust >/dev/null
as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/postgres.log" -w \
  -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1" start >/dev/null
as_postgres "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres \
  -c "create user airflow password '$PG_PASSWORD'" -c "create database airflow owner airflow"

say "airflow: CeleryExecutor (config/airflow/celery.env), api-server on port $API_PORT"
export AIRFLOW_HOME="$WORK/airflow"
mkdir -p "$AIRFLOW_HOME"
# shellcheck source=../config/airflow/celery.env
source "$ROOT/config/airflow/celery.env"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags" AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__API__PORT="$API_PORT" AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__WORKERS=1
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$WORK/passwords.json"
echo '{"admin": "celery-demo"}' >"$WORK/passwords.json"
# the demo runs only what it triggers (no cron-created run for yesterday)
export AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False
"$BIN/airflow" db migrate >"$WORK/migrate.log" 2>&1
start api-server "$BIN/airflow" api-server
start scheduler "$BIN/airflow" scheduler
start dag-processor "$BIN/airflow" dag-processor
for n in 1 2; do
  start "worker$n" env POSTLOAN_WORKER_NAME="worker$n" AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="$(free_port)" \
    "$BIN/airflow" celery worker --celery-hostname "worker$n@%h" --concurrency 2
done

say "demo data, trigger through the REST API, wait"
STARTED_PIDS="${GROUPS_STARTED[*]}" "$BIN/python" - "$WORK" "$CUSTOMERS" <<'PY'
import os
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import httpx

from pipelines.demo import write_demo_data
from pipelines.warehouse import Warehouse

work, customers = Path(sys.argv[1]), int(sys.argv[2])
base = os.environ["AIRFLOW__API__BASE_URL"]
dag_id = "care_segments_nightly"
demo = write_demo_data(work / "landing" / "2026-06-30", customers=customers, seed=7, as_of=date(2026, 6, 30))
(demo.landing_dir / "_READY").touch()
config = work / "shards.yaml"
config.write_text("embedding: {batch_size: 16}\nembed_sharding: {shard_size: 96}\n", encoding="utf-8")
conf = {"landing": str(work / "landing" / "{as_of}" / "landing"), "warehouse": str(work / "warehouse.duckdb"),
        "exports": str(work / "exports"), "config": str(config)}
client = httpx.Client(base_url=base, timeout=30)


def wait(what, check, seconds=600):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for pid in os.environ["STARTED_PIDS"].split():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                sys.exit(f"a process this script started (pid {pid}) has exited; see the logs in {work}")
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(2)
    sys.exit(f"gave up waiting for {what}")


wait("the api-server", lambda: client.get("/api/v2/monitor/health").status_code == 200)
token = client.post("/auth/token", json={"username": "admin", "password": "celery-demo"}).json()["access_token"]
client.headers["Authorization"] = f"Bearer {token}"
wait("the DAG", lambda: client.get(f"/api/v2/dags/{dag_id}").status_code == 200)
client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
started = time.monotonic()
run = client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": "2026-07-01T02:00:00+08:00",
                                                          "conf": conf})
run.raise_for_status()
run_id = run.json()["dag_run_id"]
print(f"triggered {run_id} (business date 2026-06-30, {customers} demo customers)", flush=True)
state = wait("the run", lambda: (lambda s: s if s in ("success", "failed") else None)(
    client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"]), seconds=1200)
print(f"run {state} in {time.monotonic() - started:.0f} s", flush=True)
tis = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}).json()
rows = sorted(tis["task_instances"], key=lambda t: (t["start_date"] or "", t["map_index"]))
print("\ntask instances (Airflow metadata DB, PostgreSQL):")
print(f"  {'task':<18}{'map':>4}  {'state':<8}{'hostname':<14}{'pid':>8}  {'queue':<8} start")
for t in rows:
    print(f"  {t['task_id']:<18}{t['map_index']:>4}  {t['state']:<8}{(t['hostname'] or '-'):<14}"
          f"{t['pid'] or '-':>8}  {t['queue'] or '-':<8} {(t['start_date'] or '')[11:19]}")
with Warehouse(work / "warehouse.duckdb").session(read_only=True) as session:
    shards = session.frame("select stage, worker, rows_in as texts, round(seconds, 1) as seconds, "
                           "strftime(started_at, '%H:%M:%S') as started, strftime(ended_at, '%H:%M:%S') as ended "
                           "from run_log where stage like 'embed_shard%' order by started_at")
    segments = session.frame("select segment, count(*) as customers from care_segments group by all order by 1")
print("\nembedding shards (run_log in the DuckDB warehouse; worker = $POSTLOAN_WORKER_NAME/pid):")
print(shards.to_string(index=False))
by_worker = Counter(w.split("/")[0] for w in shards["worker"])
print(f"\nshards per Celery worker: {dict(sorted(by_worker.items()))}")
print("\ncare segments:")
print(segments.to_string(index=False))
if state != "success" or len(by_worker) < 2:
    sys.exit("FAILED: the run did not succeed or the shards did not spread over both workers")
PY
