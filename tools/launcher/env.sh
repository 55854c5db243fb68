# Shared by every launcher script: locates the project, a JDK >= 22 and Maven, and builds what is missing.
# Sourced, not executed.

BRIDGE_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BRIDGE_VERSION="0.1.0-SNAPSHOT"
BRIDGE_MIN_JAVA=22
BRIDGE_JVM_ARGS=(--add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED
  --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow)
BRIDGE_JOB_JAR="$BRIDGE_HOME/bridge-job/job/target/bridge-job-$BRIDGE_VERSION.jar"
BRIDGE_WORKER_JAR="$BRIDGE_HOME/workers/java/target/worker-$BRIDGE_VERSION.jar"
BRIDGE_RUNNER_JAR="$BRIDGE_HOME/bridge-job/runner/target/runner-$BRIDGE_VERSION.jar"
BRIDGE_RUST_WORKER="$BRIDGE_HOME/workers/rust/target/release/flink-bridge-worker"

die() { echo "flink-bridge: $*" >&2; exit 1; }

# Prints the feature release of the java binary $1 (17, 25, ...), or nothing.
java_feature_version() {
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n1
}

# Sets JAVA_HOME to a JDK >= BRIDGE_MIN_JAVA: JAVA_HOME if it fits, else the newest under /usr/lib/jvm.
find_jdk() {
  local candidate version best="" best_version=0
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/javac" ]]; then
    version=$(java_feature_version "$JAVA_HOME/bin/java")
    if [[ -n "$version" && "$version" -ge "$BRIDGE_MIN_JAVA" ]]; then return 0; fi
  fi
  for candidate in "${BRIDGE_JVM_DIR:-/usr/lib/jvm}"/*; do
    [[ -x "$candidate/bin/javac" && ! -L "$candidate" ]] || continue
    version=$(java_feature_version "$candidate/bin/java")
    if [[ -n "$version" && "$version" -ge "$BRIDGE_MIN_JAVA" && "$version" -gt "$best_version" ]]; then
      best="$candidate"; best_version="$version"
    fi
  done
  [[ -n "$best" ]] || die "no JDK >= $BRIDGE_MIN_JAVA found (JAVA_HOME=${JAVA_HOME:-unset}, searched ${BRIDGE_JVM_DIR:-/usr/lib/jvm}).
Install one (for example Temurin 25 into /usr/lib/jvm) or point JAVA_HOME at it, then run again."
  export JAVA_HOME="$best"
}

# Maven's console library ends even a batch run by writing two colour resets ("\e[0m\e[0m") to standard output,
# which then lead whatever the launcher prints next (a run's summary line).
export MAVEN_OPTS="${MAVEN_OPTS:+$MAVEN_OPTS }-Djansi.noreset=true"

find_maven() {
  command -v mvn >/dev/null 2>&1 || die "Maven (mvn) is not on the PATH; install it (apt-get install maven) and run again."
}

mvn_run() {
  with_build_lock mvn_in_home "$@"
}

mvn_in_home() (
  cd "$BRIDGE_HOME" && mvn -B -q "$@"
)

# Runs "$@" holding this checkout's build lock, so that two launcher commands at once (a worker in one
# terminal, a run in another) do not rebuild the same jars under each other; the second waits for the first.
# Commands run inside (the test suite drives the launcher) inherit the lock.
with_build_lock() {
  if [[ -n "${FLINK_BRIDGE_BUILD_LOCK_HELD:-}" ]]; then
    "$@"
    return
  fi
  local lock="$BRIDGE_HOME/.flink-bridge/build.lock"
  mkdir -p "$(dirname "$lock")"
  (
    if ! flock -n 9; then
      echo "flink-bridge: another launcher command is building this checkout; waiting for it ($lock) ..." >&2
      flock 9
    fi
    export FLINK_BRIDGE_BUILD_LOCK_HELD=1
    "$@"
  ) 9>"$lock"
}

# Installs the Debian packages named when any is missing (apt-get, as root), or says how to.
ensure_debian_packages() {
  local package missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  (( ${#missing[@]} == 0 )) && return 0
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing Debian packages: ${missing[*]}; install them (apt-get install ${missing[*]}) and run again."
  fi
  echo "flink-bridge: installing ${missing[*]} with apt-get ..." >&2
  if ! apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1 || true
    apt-get install -y -q "${missing[@]}" >/dev/null || die "apt-get could not install ${missing[*]}; install them and run again."
  fi
}

# clang with its sanitizer and libFuzzer runtimes, for native/'s sanitized checks and fuzzers.
CLANG_PACKAGES=(clang-14 libclang-rt-14-dev)

# The Python worker runs on Debian's gRPC and protobuf packages (no PyPI).
PYTHON_PACKAGES=(python3-grpcio python3-protobuf)
PYTHON_MODULES_CHECK='import grpc, google.protobuf'

# The Rust worker builds offline from Debian's crate packages (workers/rust/.cargo/config.toml points cargo at
# /usr/share/cargo/registry), generates its messages with Debian's protoc and links Debian's libpython3 (it
# hosts Python segments).
RUST_PACKAGES=(librust-hyper-dev librust-tokio-dev librust-prost-dev librust-prost-build-dev librust-memmap2-dev
  librust-libc-dev librust-serde-json-dev librust-h2-dev librust-futures-util-dev librust-bytes-dev librust-http-dev
  librust-http-body-dev librust-indexmap-dev librust-pyo3-dev python3-dev protobuf-compiler)
# The oldest cargo that builds worker-rust (its code uses Rust 1.77's language).
RUST_MIN_VERSION=1.77

# Puts a cargo of at least RUST_MIN_VERSION on the PATH (the PATH's, else ~/.cargo/bin's) and installs the crate
# packages, or says what to do.
ensure_rust() {
  local cargo version
  for cargo in "$(command -v cargo 2>/dev/null || true)" "$HOME/.cargo/bin/cargo"; do
    [[ -n "$cargo" && -x "$cargo" ]] || continue
    version="$("$cargo" --version 2>/dev/null | awk '{print $2}')"
    if [[ "$(printf '%s\n' "$RUST_MIN_VERSION" "$version" | sort -V | head -1)" == "$RUST_MIN_VERSION" ]]; then
      export PATH="$(dirname "$cargo"):$PATH"
      ensure_debian_packages "${RUST_PACKAGES[@]}"
      return 0
    fi
  done
  die "the Rust worker needs cargo $RUST_MIN_VERSION or newer (found ${version:-none}): install Rust with rustup (or put its cargo on the PATH) and run again."
}

# Sets BRIDGE_PYTHON to an interpreter that imports grpc and protobuf: FLINK_BRIDGE_PYTHON if set, else Debian's
# /usr/bin/python3, else the python3 on the PATH (often another build without the packages); when none does,
# installs Debian's packages (as root). Returns 1 when there is none and they cannot be installed.
find_python() {
  local candidate
  for candidate in "${FLINK_BRIDGE_PYTHON:-}" /usr/bin/python3 "$(command -v python3 2>/dev/null || true)"; do
    [[ -n "$candidate" && -x "$candidate" ]] || continue
    if "$candidate" -c "$PYTHON_MODULES_CHECK" 2>/dev/null; then
      BRIDGE_PYTHON="$candidate"
      return 0
    fi
  done
  [[ -x /usr/bin/python3 && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1 || return 1
  ensure_debian_packages "${PYTHON_PACKAGES[@]}"
  /usr/bin/python3 -c "$PYTHON_MODULES_CHECK" 2>/dev/null || return 1
  BRIDGE_PYTHON=/usr/bin/python3
}

require_python() {
  find_python || die "no Python 3 that imports grpc and protobuf for the Python worker: install Debian's python3 ${PYTHON_PACKAGES[*]} (apt-get install python3 ${PYTHON_PACKAGES[*]}), or set FLINK_BRIDGE_PYTHON to an interpreter that has them, and run again."
}

# The Flink options that let a job spawn the Python or the Rust worker of this checkout (the interpreter only
# where one was found: a job that needs none runs without).
spawned_worker_options() {
  echo "-Dflink-bridge.worker.python.runtime=$BRIDGE_HOME/workers/python"
  echo "-Dflink-bridge.worker.rust.binary=$BRIDGE_RUST_WORKER"
  if [[ -n "${BRIDGE_PYTHON:-}" ]]; then echo "-Dflink-bridge.worker.python.executable=$BRIDGE_PYTHON"; fi
}

# Builds the jars when any is missing or older than a source or pom file; under the build lock, so a command
# that waited for another's build finds the jars fresh.
ensure_built() {
  # Tests that drive the launcher run inside a build that has just made the jars.
  [[ "${FLINK_BRIDGE_NO_BUILD:-}" == 1 ]] && return 0
  with_build_lock build_if_stale || exit 1
}

# Prints one build input newer than file $1, if any. What the launcher and the builds write inside the checkout
# (.flink-bridge/: the cluster's configuration, the sandbox's build contexts; target/; out/: runs' output and
# results) is no input, or every cluster start would make the next command rebuild everything.
newer_sources() {
  find "$BRIDGE_HOME" \( -name .git -o -name .flink-bridge -o -name target -o -name out -o -name __pycache__ -o -path "$BRIDGE_HOME/docs" \) -prune \
    -o \( -name '*.java' -o -name 'pom.xml' -o -name '*.proto' -o -name '*.c' -o -name '*.h' -o -name '*.yaml' \) \
    -newer "$1" -print -quit 2>/dev/null
}

build_if_stale() {
  local jar stale=""
  # The Python worker's message classes are generated by the same build (proto/wire).
  [[ -f "$BRIDGE_HOME/workers/python/flink_bridge/_proto/bridge_control_pb2.py" ]] || stale=1
  for jar in "$BRIDGE_JOB_JAR" "$BRIDGE_WORKER_JAR" "$BRIDGE_RUNNER_JAR"; do
    [[ -f "$jar" ]] || { stale=1; break; }
    if [[ -n "$(newer_sources "$jar")" ]]; then
      stale=1; break
    fi
  done
  [[ -x "$BRIDGE_RUST_WORKER" ]] || stale=1
  if [[ -z "$stale" && -n "$(find "$BRIDGE_HOME/workers/rust" -path "$BRIDGE_HOME/workers/rust/target" -prune -o \( -name '*.rs' -o -name 'Cargo.*' \) -newer "$BRIDGE_RUST_WORKER" -print -quit 2>/dev/null)" ]]; then
    stale=1
  fi
  if [[ -n "$stale" ]]; then
    ensure_rust
    echo "flink-bridge: building (mvn install -DskipTests) ..." >&2
    mvn_in_home install -DskipTests || die "the build failed; see the Maven output above."
  fi
}

# Builds the chaos module (the chaos run and the sandbox load test) and the cluster's lib folder when missing or
# older than their sources.
ensure_chaos_built() {
  cd "$BRIDGE_HOME"
  if [[ "${FLINK_BRIDGE_NO_BUILD:-}" != 1 && ( ! -f tools/chaos/target/classpath.txt \
      || ! -f deploy/cluster/target/flink-lib/flink-runtime-2.2.1.jar \
      || ! -f "deploy/cluster/target/flink-lib/cluster-$BRIDGE_VERSION-reporter.jar" \
      || -n "$(find tools/chaos/src tools/chaos/pom.xml -newer tools/chaos/target/classpath.txt -print -quit)" ) ]]; then
    echo "flink-bridge: building the chaos module (mvn install -pl :chaos -am -DskipTests) ..." >&2
    mvn_run install -pl :chaos -am -DskipTests || die "the build failed; see the Maven output above."
  fi
}

java_bin() { echo "$JAVA_HOME/bin/java"; }
