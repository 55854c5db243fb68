#!/usr/bin/env bash
# The benchmarks behind `./flink-bridge bench [--quick] [--profile|--end-to-end [--variants LIST] [--records N]
# [--rounds N]|--journal|--keys [--records N]|--timers|--state [--state-keys LIST] [--workers LIST] [--state-zipf S]
# [--state-rocksdb KEY=VALUE,...]|--backends] [JMH ARGS...]`: the transports' round trip (JMH, Java, Python and Rust
# workers) and the end-to-end job, each run written to out/bench/<UTC time>/results.md; --end-to-end runs the end-to-end
# job only (--variants: only those of its variants; --records: records per throughput run; --rounds: the throughput runs
# repeated in N rounds, the order rotated, each variant's median reported), --journal only the journal of recovery in
# place against chronicle-queue (JMH JournalAppend), --keys only the TaskManager's heap against the number of distinct
# keys (KeyedHeap; --records: the records of each of its two runs), --timers only the timers' cost and a keyed batch's
# latency on a quiet stream (TimerBench, written to timers.md; with --profile, recorded with Java Flight Recorder:
# profile-timers.jfr and its hottest methods), --state only keyed state in cells against whole-instance state, and
# recovery in place on cells, its workers killed with SIGKILL (StateBench, written to state.md, state.json and
# state.png; --state-keys: the key counts, default 1000000,8000000,
# --quick 100000,400000; --workers: of java,python,rust, default all three; --state-zipf: the steady phase's keys drawn
# by a Zipf law of that exponent instead of uniformly; --state-rocksdb: Flink's RocksDB options,
# state.backend.rocksdb.*, set over Flink's defaults, each checked by StateBench), --backends only RocksDB against ForSt
# under the bridge's keyed state access (StateBackends, written to backends.md).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

find_jdk; find_maven; ensure_built
cd "$BRIDGE_HOME"
bench_jar=bench/target/benchmarks.jar
if [[ ! -f "$bench_jar" || -n "$(find bench/src bench/pom.xml "$BRIDGE_JOB_JAR" "$BRIDGE_WORKER_JAR" \
    -newer "$bench_jar" -print -quit)" ]]; then
  echo "flink-bridge: building the benchmarks (mvn install -pl :bench -am -DskipTests) ..." >&2
  mvn_run install -pl :bench -am -DskipTests || die "the build failed; see the Maven output above."
fi
invocation="./flink-bridge bench${*:+ $*}"
timing=(-wi 4 -w 2s -i 6 -r 3s)
e2e_size=(2000000 10)   # end to end: records as fast as they go, then seconds at half that rate
e2e_variants=()   # end to end: every variant unless --variants names some
records=""    # end to end: records per throughput run; keys: records per run; when --records gives them
e2e_rounds=1      # end to end: rounds of throughput runs, each running every variant once
profile=false
journal=false
jmh_runs=true
keys=false
keys_records=3000000
timers=false
timers_size=(2000000 10)   # timers: records per throughput run, then measured rounds of the quiet stream
state=false
state_keys=1000000,8000000
state_rounds=10   # state: steady rounds, one per checkpoint interval
state_interval_ms=3000
state_zipf=0
state_workers=java,python,rust
state_rocksdb=()   # state: Flink's RocksDB options, when --state-rocksdb gives them
backends=false
backends_size=(1000000 10)   # state backends: keys, then rounds of 1% of them after the build
quick=false
while [[ "${1:-}" =~ ^--(quick|profile|end-to-end|journal|variants|records|rounds|keys|timers|state|state-keys|workers|state-zipf|state-rocksdb|backends)$ ]]; do
  case "$1" in
    --quick) timing=(-wi 2 -w 1s -i 3 -r 1s); e2e_size=(300000 3); keys_records=500000; timers_size=(300000 5)
      state_rounds=8; backends_size=(100000 5); quick=true ;;
    --profile) profile=true ;;
    --end-to-end) jmh_runs=false ;;
    --journal) journal=true ;;
    --keys) keys=true ;;
    --timers) timers=true ;;
    --variants) [[ -n "${2:-}" ]] || die "--variants needs a comma-separated list of end-to-end variants"
      e2e_variants=("$2"); shift ;;
    --records) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--records needs a whole number of records, at least 1"
      records="$2"; shift ;;
    --rounds) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--rounds needs a whole number of rounds, at least 1"
      e2e_rounds="$2"; shift ;;
    --state) state=true ;;
    --backends) backends=true ;;
    --state-keys) [[ "${2:-}" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] \
        || die "--state-keys needs a comma-separated list of key counts, each at least 1"
      state_keys="$2"; shift ;;
    --workers) [[ "${2:-}" =~ ^(java|python|rust)(,(java|python|rust))*$ ]] \
        || die "--workers needs a comma-separated list of java, python and rust"
      state_workers="$2"; shift ;;
    --state-zipf) [[ "${2:-}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--state-zipf needs an exponent of at least 0"
      state_zipf="$2"; shift ;;
    --state-rocksdb) [[ -n "${2:-}" ]] || die "--state-rocksdb needs a comma-separated list of KEY=VALUE"
      state_rocksdb=("$2"); shift ;;
  esac
  shift
done
if [[ -n "$records" ]]; then
  e2e_size[0]="$records"
  keys_records="$records"
fi
if [[ "$quick" == true && "$state_keys" == 1000000,8000000 ]]; then
  state_keys=100000,400000
fi
results="out/bench/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$results"
# Every benchmark JVM (and JMH's forks, which inherit its options) finds the worker and the echo segment here.
find_python || true
bench_java=("$(java_bin)" "${BRIDGE_JVM_ARGS[@]}" -Dflink-bridge.worker.jar="workers/java/target/worker-$BRIDGE_VERSION.jar"
  -Dflink-bridge.bench.jar="bench/target/bench-$BRIDGE_VERSION.jar" -Dflink-bridge.home="$BRIDGE_HOME"
  $(spawned_worker_options))
if [[ "$profile" == true && "$timers" == false ]]; then
  # Where the time of a 1 KiB round trip over shm goes, on both sides: Java Flight Recorder in the
  # benchmark's fork (the bridge) and in the worker process, then each side's hottest methods.
  "${bench_java[@]}" -Dflink-bridge.bench.worker-jvm-options="-XX:StartFlightRecording=filename=$results/profile-worker.jfr,settings=profile" \
    -jar "$bench_jar" TransportRoundTrip.roundTrip -p transport=shm -p payloadBytes=1024 -f 1 "${timing[@]}" \
    -jvmArgsAppend "-XX:StartFlightRecording=filename=$results/profile-bridge.jfr,settings=profile" "$@" \
    2>&1 | tee "$results/jmh.log"
  jfr_bin="$(dirname "$(java_bin)")/jfr"
  for side in bridge worker; do
    { "$jfr_bin" view --width 160 hot-methods "$results/profile-$side.jfr"
      "$jfr_bin" view --width 160 allocation-by-class "$results/profile-$side.jfr"; } > "$results/profile-$side.txt"
    echo "flink-bridge: the $side's profile: $results/profile-$side.txt" >&2
  done
  exit 0
fi
if [[ "$journal" == true ]]; then
  "${bench_java[@]}" -jar "$bench_jar" JournalAppend -f 1 "${timing[@]}" -foe true -prof gc -rf json \
    -rff "$results/journal.json" "$@" 2>&1 | tee "$results/jmh.log"
  echo "flink-bridge: results in $results (jmh.log, journal.json)" >&2
  exit 0
fi
e2e_classpath="bench/target/bench-$BRIDGE_VERSION.jar:$BRIDGE_JOB_JAR:$(cat bridge-job/job/target/flink-classpath.txt)"
if [[ "$keys" == true ]]; then
  # A fixed heap as a TaskManager's JVM has; the embedded TaskManager runs in this JVM, whose heap is measured.
  "${bench_java[@]}" -Xms2g -Xmx2g -cp "$e2e_classpath" org.flinkbridge.bench.KeyedHeap "$keys_records" \
    "$results" > "$results/keyed-heap.log" 2>&1 || die "the keys benchmark failed: see $results/keyed-heap.log"
  cat "$results/keyed-heap.md"
  echo "flink-bridge: results in $results/keyed-heap.md" >&2
  exit 0
fi
# RocksDB, the pipelines' default state backend, is left to the cluster by the job: it comes from the runner's
# classpath, which holds the embedded cluster's.
rocksdb="$(tr ':' '\n' < bridge-job/runner/target/classpath.txt | grep -i rocksdb | paste -sd:)"
if [[ "$state" == true ]]; then
  # The whole-instance baseline holds up to twice a session's snapshot on the heap (until the next checkpoint).
  "${bench_java[@]}" -Xmx4g -cp "$e2e_classpath:$rocksdb" org.flinkbridge.bench.StateBench "$state_keys" \
    "$state_rounds" "$state_interval_ms" "$state_zipf" "$results" "$state_workers" "${state_rocksdb[@]}" \
    > "$results/state.log" 2>&1 \
    || state_failed=true
  grep '^flink-bridge bench' "$results/state.log" >&2 || true
  [[ -f "$results/state.md" ]] && cat "$results/state.md"
  [[ "${state_failed:-}" != true ]] || die "the state benchmark failed: see $results/state.log"
  echo "flink-bridge: results in $results/state.md (state.json, state.png)" >&2
  exit 0
fi
if [[ "$backends" == true ]]; then
  # Both backends come from the bench module's own classpath (ForSt is no dependency of the job or the runner).
  "${bench_java[@]}" -Xms2g -Xmx2g -cp "$e2e_classpath:$(cat bench/target/state-backends-classpath.txt)" \
    org.flinkbridge.bench.StateBackends "${backends_size[@]}" "$results" > "$results/backends.log" 2>&1 \
    || die "the state backends' benchmark failed: see $results/backends.log"
  grep '^flink-bridge bench' "$results/backends.log" >&2 || true
  cat "$results/backends.md"
  echo "flink-bridge: results in $results/backends.md" >&2
  exit 0
fi
if [[ "$timers" == true ]]; then
  timers_profile=()
  if [[ "$profile" == true ]]; then
    # Java Flight Recorder in the benchmark's JVM, which runs the bridge's tasks.
    timers_profile=("-XX:StartFlightRecording=filename=$results/profile-timers.jfr,settings=profile")
  fi
  "${bench_java[@]}" "${timers_profile[@]}" -Xms2g -Xmx2g -cp "$e2e_classpath:$rocksdb" org.flinkbridge.bench.TimerBench \
    "${timers_size[@]}" "$results" > "$results/timers.log" 2>&1 || die "the timers benchmark failed: see $results/timers.log"
  grep '^flink-bridge bench' "$results/timers.log" >&2 || true
  cat "$results/timers.md"
  if [[ "$profile" == true ]]; then
    "$(dirname "$(java_bin)")/jfr" view --width 160 hot-methods "$results/profile-timers.jfr" > "$results/profile-timers.txt"
    echo "flink-bridge: the profile: $results/profile-timers.jfr (hot methods: $results/profile-timers.txt)" >&2
  fi
  echo "flink-bridge: results in $results/timers.md" >&2
  exit 0
fi
jmh=("${bench_java[@]}" -jar "$bench_jar" -f 1 "${timing[@]}" -foe true -prof gc -rf json
  -rff "$results/transport.json" -p worker=java,python "$@")
# The Rust worker serves no prototype's service (compat): its round trips are a second run, right after the first.
jmh_rust=("${bench_java[@]}" -jar "$bench_jar" TransportRoundTrip -f 1 "${timing[@]}" -foe true -prof gc -rf json
  -rff "$results/transport-rust.json" "$@" -p worker=rust -p transport=shm,grpc)
if [[ "$jmh_runs" == true ]]; then
  "${jmh[@]}" 2>&1 | tee "$results/jmh.log"
  "${jmh_rust[@]}" 2>&1 | tee -a "$results/jmh.log"
  "$(java_bin)" -Djava.awt.headless=true -cp "$bench_jar" org.flinkbridge.bench.Report \
    "$results/transport.json:$results/transport-rust.json" "$results/results.md" "$invocation" \
    "${jmh[*]}, then ${jmh_rust[*]}"
else
  echo "# $invocation" > "$results/results.md"
fi
ln -sfn "$(basename "$results")" out/bench/latest
# The end-to-end job runs on the job's own Flink classpath, with the worker's SDK for the in-process
# baseline, and a fixed heap as a TaskManager's JVM has.
"${bench_java[@]}" -Xms2g -Xmx2g \
  -cp "$e2e_classpath:$BRIDGE_WORKER_JAR" \
  org.flinkbridge.bench.EndToEnd "${e2e_size[@]}" "$e2e_rounds" "$results" "${e2e_variants[@]}" 2>&1 | grep '^flink-bridge bench' >&2 \
  || die "the end-to-end benchmark failed; run it again to see its output"
cat "$results/endtoend.md" >> "$results/results.md"
cat "$results/endtoend.md"
echo "flink-bridge: results in $results/results.md (also out/bench/latest)" >&2
