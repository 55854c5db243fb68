# Shared by every launcher script: locates the project, a JDK >= 22 and Maven, and builds what is missing.
# Sourced, not executed.

BRIDGE_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BRIDGE_VERSION="0.1.0-SNAPSHOT"
BRIDGE_MIN_JAVA=22
BRIDGE_JVM_ARGS=(--add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED
  --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow)
BRIDGE_JOB_JAR="$BRIDGE_HOME/bridge-job/target/bridge-job-$BRIDGE_VERSION.jar"
BRIDGE_WORKER_JAR="$BRIDGE_HOME/worker/target/worker-$BRIDGE_VERSION.jar"

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

find_maven() {
  command -v mvn >/dev/null 2>&1 || die "Maven (mvn) is not on the PATH; install it (apt-get install maven) and run again."
}

mvn_run() {
  (cd "$BRIDGE_HOME" && mvn -B -q "$@")
}

# Builds the jars when any is missing or older than a source or pom file.
ensure_built() {
  local jar stale=""
  # Tests that drive the launcher run inside a build that has just made the jars.
  [[ "${FLINK_BRIDGE_NO_BUILD:-}" == 1 ]] && return 0
  for jar in "$BRIDGE_JOB_JAR" "$BRIDGE_WORKER_JAR"; do
    [[ -f "$jar" ]] || { stale=1; break; }
    if [[ -n "$(find "$BRIDGE_HOME" -path "$BRIDGE_HOME/.git" -prune -o \( -name '*.java' -o -name 'pom.xml' -o -name '*.proto' -o -name '*.c' -o -name '*.h' -o -name '*.yaml' \) -newer "$jar" -print -quit 2>/dev/null | grep -v '/target/')" ]]; then
      stale=1; break
    fi
  done
  if [[ -n "$stale" ]]; then
    echo "flink-bridge: building (mvn install -DskipTests) ..." >&2
    mvn_run install -DskipTests || die "the build failed; see the Maven output above."
  fi
}

java_bin() { echo "$JAVA_HOME/bin/java"; }
