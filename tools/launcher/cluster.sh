#!/usr/bin/env bash
# A standalone Flink cluster on 127.0.0.1 (JobManager + one TaskManager with 2 slots, REST and Web UI on
# :8081) run from jars Maven Central ships (deploy/cluster/target/flink-lib), and Flink's own CLI against it.
# Called by ./flink-bridge as `cluster start|stop|status|upgrade-worker` and `flink ARGS...`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

CLUSTER_DIR="$BRIDGE_HOME/.flink-bridge/cluster"
CONF_DIR="$CLUSTER_DIR/conf"
LOG_DIR="$CLUSTER_DIR/log"
LIB_DIR="$BRIDGE_HOME/deploy/cluster/target/flink-lib"
REST_PORT=8081
REST_URL="http://127.0.0.1:$REST_PORT"
PROMETHEUS_PORTS=9249-9259
# Every process of this cluster carries this marker, so stop finds strays without pid files too.
MARKER="-Dflink-bridge.cluster=$CLUSTER_DIR"
START_TIMEOUT_SECONDS=90
STOP_GRACE_SECONDS=15
# A spawned worker notices within a fraction of a second that its TaskManager is gone; this allows for its exit.
WORKER_EXIT_SECONDS=10

ensure_lib() {
  if [[ ! -f "$LIB_DIR/flink-runtime-2.2.1.jar" ]]; then
    [[ "${FLINK_BRIDGE_NO_BUILD:-}" == 1 ]] && die "the cluster's lib folder $LIB_DIR is missing; build it with ./flink-bridge build"
    echo "flink-bridge: assembling the Flink lib folder (mvn install -pl :cluster -am -DskipTests) ..." >&2
    mvn_run install -pl :cluster -am -DskipTests || die "building the cluster's lib folder failed"
  fi
}

write_conf() {
  mkdir -p "$CONF_DIR" "$LOG_DIR"
  cp "$BRIDGE_HOME/deploy/cluster/conf/log4j.properties" "$CONF_DIR/log4j.properties"
  cp "$BRIDGE_HOME/deploy/cluster/conf/log4j-cli.properties" "$CONF_DIR/log4j-cli.properties"
  cat > "$CONF_DIR/config.yaml" <<CONF
# Written by ./flink-bridge cluster start; edits are overwritten on the next start.
jobmanager.rpc.address: 127.0.0.1
jobmanager.rpc.port: 6123
jobmanager.bind-host: 127.0.0.1
jobmanager.memory.process.size: 1024m
taskmanager.host: 127.0.0.1
taskmanager.bind-host: 127.0.0.1
taskmanager.memory.process.size: 2048m
taskmanager.numberOfTaskSlots: 2
parallelism.default: 1
rest.address: 127.0.0.1
rest.bind-address: 127.0.0.1
rest.port: $REST_PORT
blob.server.port: 0
taskmanager.rpc.port: 0
taskmanager.data.port: 0
io.tmp.dirs: $CLUSTER_DIR/tmp
web.tmpdir: $CLUSTER_DIR/tmp/web
# A TaskManager that dies is noticed within seconds, not the default 50 s, so a job restarts promptly.
heartbeat.interval: 1000
heartbeat.timeout: 5000
# Worker state is operator state of any size: Flink's default storage, the JobManager's memory, refuses over 5 MiB.
execution.checkpointing.storage: filesystem
execution.checkpointing.dir: file://$CLUSTER_DIR/checkpoints
# Every metric, the bridge's among them, for Prometheus: the JobManager and the TaskManager each take the first free
# port of the range (the reporter has no host option: scrape it on 127.0.0.1).
metrics.reporter.prom.factory.class: org.apache.flink.metrics.prometheus.PrometheusReporterFactory
metrics.reporter.prom.port: $PROMETHEUS_PORTS
env.java.opts.all: ${BRIDGE_JVM_ARGS[*]}
CONF
  mkdir -p "$CLUSTER_DIR/tmp/web"
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

cluster_pids() { pgrep -f -- "$MARKER" || true; }

rest_get() { curl -sf --max-time 3 "$REST_URL$1"; }

# Starts one cluster process in the background: $1 = jobmanager|taskmanager.
start_process() {
  local role="$1"
  nohup "$BRIDGE_HOME/deploy/cluster/bin/flink-process" "$role" "$CONF_DIR" "$LIB_DIR" "${BRIDGE_JVM_ARGS[@]}" "$MARKER" \
    -Dlog.file="$LOG_DIR/$role.log" -Dlog4j.configurationFile="file:$CONF_DIR/log4j.properties" \
    > "$LOG_DIR/$role.out" 2>&1 < /dev/null &
  echo $! > "$CLUSTER_DIR/$role.pid"
}

cluster_start() {
  find_jdk; ensure_lib
  local role missing=()
  for role in jobmanager taskmanager; do
    pid_alive "$(cat "$CLUSTER_DIR/$role.pid" 2>/dev/null)" || missing+=("$role")
  done
  if (( ${#missing[@]} == 0 )); then
    echo "flink-bridge: the cluster is already running (pids $(cluster_pids | tr '\n' ' ')); Web UI: $REST_URL"
    return 0
  fi
  if (( ${#missing[@]} == 2 )); then
    if (exec 3<>"/dev/tcp/127.0.0.1/$REST_PORT") 2>/dev/null; then
      die "port $REST_PORT on 127.0.0.1 is taken by another process; stop it first (ss -ltnp | grep :$REST_PORT)"
    fi
    write_conf
  fi
  # A running JobManager keeps its place: only what is missing starts (a TaskManager that was killed, say).
  for role in "${missing[@]}"; do
    start_process "$role"
  done
  local deadline=$((SECONDS + START_TIMEOUT_SECONDS)) overview
  while (( SECONDS < deadline )); do
    overview=$(rest_get /overview || true)
    if grep -q '"taskmanagers":1' <<<"$overview" && grep -q '"slots-total":2' <<<"$overview"; then
      echo "flink-bridge: cluster running (JobManager pid $(cat "$CLUSTER_DIR/jobmanager.pid"), TaskManager pid $(cat "$CLUSTER_DIR/taskmanager.pid"), 2 slots); Web UI: $REST_URL"
      return 0
    fi
    for role in jobmanager taskmanager; do
      pid_alive "$(cat "$CLUSTER_DIR/$role.pid")" || {
        cluster_stop >/dev/null
        die "the $role exited during start-up; see $LOG_DIR/$role.log and $LOG_DIR/$role.out"
      }
    done
    sleep 1
  done
  cluster_stop >/dev/null
  die "the cluster did not report one TaskManager with 2 slots within ${START_TIMEOUT_SECONDS}s; see the logs in $LOG_DIR"
}

# Prints the pids of spawned workers (`--parent-pid P` on their command line) whose parent is no longer P:
# their TaskManager is gone, and a spawned worker must never outlive it.
orphaned_workers() {
  local pid args spawner parent
  for pid in $(pgrep -f -- '--parent-pid [0-9]' || true); do
    args=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || continue
    spawner=$(sed -n 's/.*--parent-pid \([0-9][0-9]*\).*/\1/p' <<<"$args")
    parent=$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ') || continue
    [[ -n "$spawner" && -n "$parent" && "$parent" != "$spawner" ]] && echo "$pid"
  done
  return 0
}

# Waits up to WORKER_EXIT_SECONDS for the workers of a stopped or killed TaskManager to end by themselves;
# kills and names any that do not, and fails.
check_no_worker_left() {
  local deadline=$((SECONDS + WORKER_EXIT_SECONDS)) left
  left=$(orphaned_workers)
  while [[ -n "$left" ]] && (( SECONDS < deadline )); do sleep 0.5; left=$(orphaned_workers); done
  if [[ -n "$left" ]]; then
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    die "worker processes outlived the TaskManager that spawned them (killed now): $(tr '\n' ' ' <<<"$left")"
  fi
}

cluster_stop() {
  local pids deadline
  pids=$(cluster_pids)
  if [[ -z "$pids" ]]; then
    rm -f "$CLUSTER_DIR"/*.pid
    check_no_worker_left
    echo "flink-bridge: no cluster is running; no worker process it spawned remains"
    return 0
  fi
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  deadline=$((SECONDS + STOP_GRACE_SECONDS))
  while [[ -n "$(cluster_pids)" ]] && (( SECONDS < deadline )); do sleep 0.5; done
  pids=$(cluster_pids)
  if [[ -n "$pids" ]]; then
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 1
  fi
  [[ -z "$(cluster_pids)" ]] || die "cluster processes survived SIGKILL: $(cluster_pids | tr '\n' ' ')"
  rm -f "$CLUSTER_DIR"/*.pid
  check_no_worker_left
  echo "flink-bridge: cluster stopped; no cluster process and no worker it spawned remains"
}

# The worker processes the cluster's TaskManager spawned: its children carrying `--parent-pid` with its pid
# (a Python worker's session processes are its own children and go with it).
spawned_workers() {
  local tm
  tm=$(cat "$CLUSTER_DIR/taskmanager.pid" 2>/dev/null) || return 0
  pid_alive "$tm" || return 0
  pgrep -P "$tm" -f -- "--parent-pid $tm" || true
}

# Asks every worker of the running cluster to stop (SIGTERM): each answers what it has read and ends its sessions
# as stopped, and their bridges move them to new worker processes of the build installed now, with no job
# restart (docs/protocol.md, "Stopping and upgrades"). --jar installs a new Java worker build first, at the path
# the running workers were started from.
cluster_upgrade_worker() {
  local jar="" pids target targets=() deadline left
  while (( $# )); do
    case "$1" in
      --jar) (( $# >= 2 )) || die "--jar needs the path of the new worker jar"; jar="$2"; shift 2 ;;
      --jar=*) jar="${1#--jar=}"; shift ;;
      *) die "usage: ./flink-bridge cluster upgrade-worker [--jar NEW_WORKER_JAR]" ;;
    esac
  done
  [[ -n "$(cluster_pids)" ]] || die "no cluster is running (./flink-bridge cluster start)"
  pids=$(spawned_workers)
  [[ -n "$pids" ]] || die "no worker runs under the cluster's TaskManager, so there is nothing to upgrade (a job's first session spawns one)"
  if [[ -n "$jar" ]]; then
    [[ -f "$jar" ]] || die "--jar $jar: no such file"
    while read -r target; do
      [[ -n "$target" ]] && targets+=("$target")
    done < <(for pid in $pids; do tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | sed -n '/^-jar$/{n;p}'; done | sort -u)
    (( ${#targets[@]} > 0 )) || die "--jar: the TaskManager's workers are not Java workers (none runs -jar)"
    for target in "${targets[@]}"; do
      # Whole at once: a worker starting meanwhile reads the old jar or the new one, never half of one.
      cp "$jar" "$target.next" && mv -f "$target.next" "$target" || die "cannot install $jar at $target"
      echo "flink-bridge: installed $jar at $target"
    done
  fi
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  deadline=$((SECONDS + STOP_GRACE_SECONDS))
  left=$pids
  while [[ -n "$left" ]] && (( SECONDS < deadline )); do
    sleep 0.5
    left=$(for pid in $left; do if pid_alive "$pid"; then echo "$pid"; fi; done)
  done
  [[ -z "$left" ]] || die "worker processes did not stop within ${STOP_GRACE_SECONDS}s of SIGTERM: $(tr '\n' ' ' <<<"$left")"
  echo "flink-bridge: $(wc -w <<<"$pids") worker process(es) stopped as asked (pids $(tr '\n' ' ' <<<"$pids" | sed 's/ $//')); their sessions moved to new worker processes of the build installed now, with no job restart (the TaskManager log says \"moved to a new worker\" for each)"
}

cluster_status() {
  local pids
  pids=$(cluster_pids)
  if [[ -z "$pids" ]]; then
    echo "flink-bridge: no cluster is running"
    return 3
  fi
  echo "flink-bridge: cluster processes: $(tr '\n' ' ' <<<"$pids")"
  if rest_get /overview >/dev/null; then
    echo "REST $REST_URL: $(rest_get /overview)"
    echo "jobs: $(rest_get /jobs/overview)"
  else
    echo "REST $REST_URL: not answering"
  fi
}

flink_cli() {
  find_jdk; ensure_lib
  [[ -f "$CONF_DIR/config.yaml" ]] || write_conf
  FLINK_CONF_DIR="$CONF_DIR" exec "$(java_bin)" "${BRIDGE_JVM_ARGS[@]}" \
    -Dlog.file="$LOG_DIR/cli.log" -Dlog4j.configurationFile="file:$CONF_DIR/log4j-cli.properties" \
    -Dflink-bridge.worker.jar="$BRIDGE_WORKER_JAR" $(find_python || true; spawned_worker_options) \
    -cp "$LIB_DIR/*" org.apache.flink.client.cli.CliFrontend "$@"
}

case "${1:-}" in
  cluster)
    case "${2:-}" in
      start) cluster_start ;;
      stop) cluster_stop ;;
      status) cluster_status ;;
      upgrade-worker) shift 2; cluster_upgrade_worker "$@" ;;
      *) die "usage: ./flink-bridge cluster start|stop|status|upgrade-worker [--jar NEW_WORKER_JAR]" ;;
    esac
    ;;
  flink) shift; flink_cli "$@" ;;
  *) die "usage: cluster.sh cluster start|stop|status|upgrade-worker | flink ARGS..." ;;
esac
