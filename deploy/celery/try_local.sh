#!/usr/bin/env bash
# Prove the CeleryExecutor configuration (deploy/celery/telbill.env) on one machine, for real:
# Redis broker, PostgreSQL metadata DB, S3 (moto server), api-server + scheduler + dag-processor and TWO
# `airflow celery worker` processes. It triggers the `mediation` DAG on a small generated month, shows
# which worker ran each mapped `stage_batch` task, then runs `telbill mediate` sequentially on a copy of
# the same landing files and checks both lakes published identical usage (down to the Parquet bytes).
# Every process it starts is stopped on exit; logs stay in $WORK.
#
# Needs (Debian): redis-server, postgresql (server binaries; psql), and the project's uv.
#   apt-get install -y redis-server postgresql
#   deploy/celery/try_local.sh            # ~2-3 minutes; WORK=/some/dir to choose the folder
# Builds its own virtualenv ($WORK/venv: requirements.lock + the `celery` extra) so the project's
# .venv is left as the lock says. Set VENV=/path/to/venv to reuse one that already has the extra.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/telbill-celery.XXXXXX)}
REDIS_PORT=${REDIS_PORT:-6391}
PG_PORT=${PG_PORT:-5441}
API_PORT=${API_PORT:-8797}
LOG_PORT=${LOG_PORT:-8798}
S3_PORT=${S3_PORT:-5391}
BUCKET=telbill-local
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
UV=${UV:-$REPO/.venv/bin/uv}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
echo "work folder: $WORK"

PIDS=()
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
  for _ in $(seq 15); do  # give Celery workers time for a warm shutdown, then force what is left
    alive=0; for pid in "${PIDS[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break; sleep 1
  done
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null; done
  wait 2>/dev/null
  [ -f "$WORK/pg/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null
  [ -f "$WORK/redis.pid" ] && redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
  echo "stopped every process this script started; logs in $WORK"
}
trap cleanup EXIT

as_pg() {  # PostgreSQL refuses to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {  # start NAME CMD...: own process group (so cleanup stops its children too), log in $WORK/NAME.log
  local name=$1; shift
  setsid "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
}

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
  local limit=$1 what=$2; shift 2
  for _ in $(seq "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "timed out waiting for $what (logs in $WORK)" >&2; exit 1
}

# 1. Python: the lock plus the celery extra, in a separate venv.
if [ -z "${VENV:-}" ]; then
  VENV=$WORK/venv
  "$UV" venv -q --python "$REPO/.venv/bin/python" "$VENV"
  "$UV" pip sync -q "$REPO/requirements.lock" --python "$VENV/bin/python"
  "$UV" pip install -q -e "$REPO[celery]" --python "$VENV/bin/python"
fi
export PATH="$VENV/bin:$PATH"

# 2. Redis, PostgreSQL and S3 on 127.0.0.1, non-default ports.
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --pidfile "$WORK/redis.pid" \
  --logfile "$WORK/redis.log" --dir "$WORK" --save "" --appendonly no
mkdir -p "$WORK/pg" && chmod 777 "$WORK" && { [ "$(id -u)" != 0 ] || chown postgres "$WORK/pg"; }
as_pg "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth=trust >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -o "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1" \
  -l "$WORK/postgres.log" -w start >/dev/null
psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "create user airflow password 'airflow'" \
  -c "create database airflow owner airflow"
start moto moto_server -H 127.0.0.1 -p "$S3_PORT"
wait_for 30 "redis" redis-cli -p "$REDIS_PORT" ping
wait_for 30 "moto S3" curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/"

# 3. The environment: deploy/celery/telbill.env, then only hosts, ports, paths and secrets overridden.
set -a
# shellcheck source=telbill.env
. "$REPO/deploy/celery/telbill.env"
AIRFLOW_HOME=$WORK/airflow
AIRFLOW__CORE__DAGS_FOLDER=$REPO/dags
AIRFLOW__CORE__PARALLELISM=8
AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$API_PORT/execution/
AIRFLOW__API__HOST=127.0.0.1
AIRFLOW__API__PORT=$API_PORT
AIRFLOW__API_AUTH__JWT_SECRET=$(python -c 'import secrets; print(secrets.token_hex(64))')
AIRFLOW__API__SECRET_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))')
AIRFLOW__CORE__FERNET_KEY=$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')
AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg2://airflow:airflow@127.0.0.1:$PG_PORT/airflow
AIRFLOW__CELERY__BROKER_URL=redis://127.0.0.1:$REDIS_PORT/0
AIRFLOW__CELERY__RESULT_BACKEND=db+postgresql+psycopg2://airflow:airflow@127.0.0.1:$PG_PORT/airflow
AIRFLOW__CELERY__WORKER_CONCURRENCY=2
AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$LOG_PORT
PYTHONPATH=$REPO
TELBILL_LANDING_URI=s3://$BUCKET/celery/landing
TELBILL_LAKE_URI=s3://$BUCKET/celery/lake
TELBILL_TARIFFS_DIR=$REPO/tariffs
TELBILL_OUTPUT_DIR=$WORK/out
TELBILL_WAREHOUSE=$WORK/warehouse.duckdb
TELBILL_S3_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
AWS_ACCESS_KEY_ID=testing
AWS_SECRET_ACCESS_KEY=testing
AWS_DEFAULT_REGION=us-east-1
set +a
mkdir -p "$AIRFLOW_HOME"
cd "$REPO"

# 4. Data: a small generated month landed twice (Celery copy, sequential copy), customers in both lakes.
python -c "import boto3, os; boto3.client('s3', endpoint_url=os.environ['TELBILL_S3_ENDPOINT_URL']).create_bucket(Bucket='$BUCKET')"
telbill generate --subscribers 30 --period 2026-10 --seed 7 --out "$WORK/gen" | tail -1
python - <<'EOF'
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
s3 = Settings.from_env().s3
src, dst = open_store("s3://telbill-local/celery/landing", s3), open_store("s3://telbill-local/seq/landing", s3)
keys = src.list("")
for key in keys:
    dst.write_bytes(key, src.read_bytes(key))
print(f"copied {len(keys)} landing files for the sequential run")
EOF
for lake in celery seq; do
  telbill --lake "s3://$BUCKET/$lake/lake" customers import \
    --accounts "$WORK/gen/accounts.csv" --subscriptions "$WORK/gen/subscriptions.csv" | tail -1
done

# 5. Airflow: metadata DB, then the components and two Celery workers.
airflow db migrate >"$WORK/db-migrate.log" 2>&1
start api-server airflow api-server
start scheduler airflow scheduler
start dag-processor airflow dag-processor
start worker1 airflow celery worker --celery-hostname "worker1@%h" --concurrency 2
start worker2 airflow celery worker --celery-hostname "worker2@%h" --concurrency 2
wait_for 120 "api-server" curl -sf "http://127.0.0.1:$API_PORT/api/v2/monitor/health"
wait_for 120 "worker1" grep -q "worker1@.* ready" "$WORK/worker1.log"
wait_for 120 "worker2" grep -q "worker2@.* ready" "$WORK/worker2.log"
sql() { psql -h 127.0.0.1 -p "$PG_PORT" -U airflow airflow -At -F ' ' -c "$1"; }
dag_parsed() { [ "$(sql "select count(*) from dag where dag_id='mediation'")" = 1 ]; }
runs_done() { [ "$(sql "select count(*) from dag_run where dag_id='mediation' and state in ('queued','running')")" = 0 ]; }
wait_for 120 "the mediation DAG to be parsed" dag_parsed

# 6. Run the mediation DAG (unpausing also schedules the latest hourly run; it is skipped-safe).
airflow dags unpause mediation >/dev/null
airflow dags trigger mediation >/dev/null
echo "waiting for the mediation DAG runs to finish"
wait_for 300 "the mediation DAG runs" runs_done
sql "select run_id, state from dag_run where dag_id='mediation' order by run_id"
if [ "$(sql "select count(*) from dag_run where dag_id='mediation' and state <> 'success'")" != 0 ]; then
  echo "a mediation DAG run failed; see $WORK/worker*.log and $AIRFLOW_HOME/logs" >&2; exit 1
fi

# 7. Where did the mapped tasks run? Celery task id (external_executor_id) -> the worker that received it.
echo "task placement (task[map_index], state, host, Celery worker):"
sql "select task_id, map_index, state, hostname, external_executor_id from task_instance
  where dag_id='mediation' and state='success' order by run_id, task_id, map_index" |
while read -r task index state host celery_id; do
  worker=$(grep -l "$celery_id\] received" "$WORK"/worker1.log "$WORK"/worker2.log | xargs -n1 basename | sed 's/\.log//')
  echo "  $task[$index] $state host=$host worker=$worker"
done | tee "$WORK/placement.txt"
for w in worker1 worker2; do
  n=$(grep -c "stage_batch.* worker=$w" "$WORK/placement.txt" || true)
  echo "$w ran $n stage_batch tasks"
done

# 8. The same landing data mediated sequentially, then the two lakes compared.
TELBILL_LANDING_URI=s3://$BUCKET/seq/landing TELBILL_LAKE_URI=s3://$BUCKET/seq/lake telbill mediate | sed -n 1p
python deploy/celery/compare_lakes.py "s3://$BUCKET/celery/lake" "s3://$BUCKET/seq/lake"
echo "OK: the CeleryExecutor run published exactly what a sequential run publishes"
