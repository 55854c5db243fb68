#!/usr/bin/env bash
# The Docker sandbox: images built here without a registry (a debootstrap base, a jlink runtime, Flink, the
# workers, Kafka) and a compose project of them on host networking. Called by ./flink-bridge as
# `sandbox build|up|status|check|down|load`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

SANDBOX_DIR="$BRIDGE_HOME/.flink-bridge/sandbox"
CONTEXT_DIR="$SANDBOX_DIR/context"
IMAGES_DIR="$BRIDGE_HOME/deploy/sandbox/images"
COMPOSE_FILE="$BRIDGE_HOME/deploy/sandbox/docker-compose.yml"
PROJECT=flink-bridge-sandbox
BASE_IMAGE=flink-bridge/base:bookworm
TAG=local
DEBIAN_MIRROR=http://deb.debian.org/debian
# Packages the sandbox needs on this machine; dockerd starts with no bridge network and
# no firewall rules, so containers only ever use the host's network, on loopback.
DOCKER_PACKAGES=(docker.io docker-compose debootstrap)
DOCKERD_FLAGS=(--bridge=none --iptables=false --ip6tables=false)
DOCKERD_START_SECONDS=60
UP_TIMEOUT_SECONDS=180
REST_URL="http://127.0.0.1:8081"
# The unprivileged uid:gid every image runs its process as (each Dockerfile's USER, the compose file's user): the same
# for a TaskManager and its worker, whose shared ring folder must belong to both (docs/protocol.md, "The ring folder").
SANDBOX_USER=10001:10001
# Services that must listen on a port while up: a check that finds no socket of theirs has not seen them at all.
LISTENING_SERVICES=(jobmanager taskmanager-1 taskmanager-2 kafka)
# The modules of the trimmed runtime: what Flink, Kafka and the Java worker load.
JRE_MODULES=java.base,java.compiler,java.desktop,java.instrument,java.logging,java.management,java.management.rmi,java.naming,java.net.http,java.prefs,java.rmi,java.scripting,java.security.jgss,java.security.sasl,java.sql,java.transaction.xa,java.xml,jdk.crypto.ec,jdk.httpserver,jdk.jcmd,jdk.jfr,jdk.management,jdk.management.agent,jdk.net,jdk.security.auth,jdk.unsupported,jdk.zipfs

# Makes `docker` answer: installs Debian's packages and starts dockerd when needed (as root), or says why not.
ensure_docker() {
  if docker info >/dev/null 2>&1 && command -v docker-compose >/dev/null 2>&1; then return 0; fi
  [[ "$(id -u)" == 0 ]] || die "the sandbox needs a running Docker engine; as root this command installs Debian's ${DOCKER_PACKAGES[*]} and starts dockerd ${DOCKERD_FLAGS[*]}; run it as root or start Docker yourself."
  ensure_debian_packages "${DOCKER_PACKAGES[@]}"
  if ! docker info >/dev/null 2>&1; then
    mkdir -p "$SANDBOX_DIR"
    echo "flink-bridge: starting dockerd ${DOCKERD_FLAGS[*]} (log: $SANDBOX_DIR/dockerd.log) ..." >&2
    nohup dockerd "${DOCKERD_FLAGS[@]}" > "$SANDBOX_DIR/dockerd.log" 2>&1 < /dev/null &
    local deadline=$((SECONDS + DOCKERD_START_SECONDS))
    until docker info >/dev/null 2>&1; do
      (( SECONDS < deadline )) || die "dockerd did not answer within ${DOCKERD_START_SECONDS}s; see $SANDBOX_DIR/dockerd.log"
      sleep 1
    done
  fi
}

image_label() { docker image inspect -f "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; }

# A digest of a build context: every file's path, mode and content, and the parent image's id.
context_digest() {
  local dir="$1" parent="$2"
  {
    docker image inspect -f '{{.Id}}' "$parent"
    (cd "$dir" && find . -type f -printf '%p %m\n' | sort && find . -type f -print0 | sort -z | xargs -0 cat)
  } | sha256sum | cut -c1-16
}

# Builds image $1 from context $2 on parent $3, unless an image of the same context digest exists.
build_image() {
  local name="$1" dir="$2" parent="$3" digest
  shift 3
  digest=$(context_digest "$dir" "$parent")
  if [[ "$(image_label "$name" org.flinkbridge.context)" == "$digest" ]]; then
    echo "flink-bridge: $name is current" >&2
    return 0
  fi
  echo "flink-bridge: building $name ..." >&2
  local log="$SANDBOX_DIR/build-${name//[\/:]/-}.log"
  # The classic builder: this engine has no BuildKit (buildx).
  DOCKER_BUILDKIT=0 docker build --network host --label org.flinkbridge.context="$digest" "$@" \
    -t "$name" "$dir" > "$log" 2>&1 || die "building $name failed; see $log"
}

# Copies the image folder $1 into a fresh context folder and prints its path.
stage() {
  local dir="$CONTEXT_DIR/$1"
  rm -rf "$dir" && mkdir -p "$dir" && cp -r "$IMAGES_DIR/$1/." "$dir/"
  echo "$dir"
}

build_base() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    echo "flink-bridge: $BASE_IMAGE is current" >&2
    return 0
  fi
  local rootfs="$SANDBOX_DIR/rootfs"
  rm -rf "$rootfs"
  echo "flink-bridge: building $BASE_IMAGE (debootstrap --variant=minbase bookworm, about a minute) ..." >&2
  debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" > "$SANDBOX_DIR/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $SANDBOX_DIR/debootstrap.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null || die "docker import of the base file system failed"
  rm -rf "$rootfs"
}

build_jre() {
  local dir java_home_file="$CONTEXT_DIR/jre.from"
  dir="$CONTEXT_DIR/jre"
  # jlink takes a while: its output is kept while the JDK and the module list stay the same.
  if [[ ! -d "$dir/jre" || "$(cat "$java_home_file" 2>/dev/null)" != "$JAVA_HOME $JRE_MODULES" ]]; then
    rm -rf "$dir" && mkdir -p "$dir"
    echo "flink-bridge: trimming a Java runtime from $JAVA_HOME (jlink) ..." >&2
    "$JAVA_HOME/bin/jlink" --add-modules "$JRE_MODULES" --strip-debug --no-header-files --no-man-pages \
      --compress=zip-6 --output "$dir/jre" || die "jlink failed"
    echo "$JAVA_HOME $JRE_MODULES" > "$java_home_file"
  fi
  cp "$IMAGES_DIR/jre/Dockerfile" "$dir/"
  build_image flink-bridge/jre:$TAG "$dir" "$BASE_IMAGE" --build-arg "BASE=$BASE_IMAGE"
}

build_flink() {
  local dir
  dir=$(stage flink)
  cp -r "$BRIDGE_HOME/deploy/cluster/target/flink-lib" "$dir/lib"
  cp "$BRIDGE_HOME/deploy/cluster/bin/flink-process" "$dir/"
  printf '%s\n' "${BRIDGE_JVM_ARGS[@]}" > "$dir/jvm.args"
  build_image flink-bridge/flink:$TAG "$dir" flink-bridge/jre:$TAG --build-arg "JRE=flink-bridge/jre:$TAG"
}

# The Python worker's runtime (workers/python/) into context $1, without compiled files.
copy_python_runtime() {
  cp -r "$BRIDGE_HOME/workers/python" "$1/python"
  find "$1/python" -name __pycache__ -prune -exec rm -rf {} +
}

# The worker images, as version $1 (an upgrade in the load test replaces a worker by the other version's image).
build_workers() {
  local version="$1" dir
  dir=$(stage worker-java)
  cp "$BRIDGE_WORKER_JAR" "$dir/worker.jar"
  build_image "flink-bridge/worker-java:$version" "$dir" flink-bridge/jre:$TAG \
    --build-arg "JRE=flink-bridge/jre:$TAG" --build-arg "VERSION=$version"
  dir=$(stage worker-python)
  copy_python_runtime "$dir"
  build_image "flink-bridge/worker-python:$version" "$dir" "$BASE_IMAGE" \
    --build-arg "BASE=$BASE_IMAGE" --build-arg "VERSION=$version"
  dir=$(stage worker-rust)
  # The image takes the binary without the debug information the release profile keeps for profiling here.
  strip --strip-debug -o "$dir/flink-bridge-worker" "$BRIDGE_RUST_WORKER" || die "strip $BRIDGE_RUST_WORKER failed"
  copy_python_runtime "$dir"
  build_image "flink-bridge/worker-rust:$version" "$dir" "$BASE_IMAGE" \
    --build-arg "BASE=$BASE_IMAGE" --build-arg "VERSION=$version"
}

# The load generator and the oracle: the chaos module's jar and what it loads (Kafka's client, Jackson).
build_load() {
  local dir jar="$BRIDGE_HOME/tools/chaos/target/chaos-$BRIDGE_VERSION.jar"
  [[ -f "$jar" ]] || die "$jar is missing; build the project (./flink-bridge build)"
  dir=$(stage load)
  mkdir -p "$dir/lib"
  cp "$jar" "$dir/lib/"
  tr ':' '\n' < "$BRIDGE_HOME/tools/chaos/target/classpath.txt" | xargs -I{} cp {} "$dir/lib/"
  build_image flink-bridge/load:$TAG "$dir" flink-bridge/jre:$TAG --build-arg "JRE=flink-bridge/jre:$TAG"
}

build_kafka() {
  local dir classpath="$BRIDGE_HOME/tools/test-support/target/classes/org/flinkbridge/testing/kafka-broker.classpath"
  [[ -f "$classpath" ]] || die "$classpath is missing; build the project (./flink-bridge build)"
  dir=$(stage kafka)
  mkdir -p "$dir/lib"
  tr ':' '\n' < "$classpath" | xargs -I{} cp {} "$dir/lib/"
  build_image flink-bridge/kafka:$TAG "$dir" flink-bridge/jre:$TAG --build-arg "JRE=flink-bridge/jre:$TAG"
}

print_sizes() {
  local image
  for image in "$BASE_IMAGE" flink-bridge/jre:$TAG flink-bridge/flink:$TAG flink-bridge/worker-java:v1 \
      flink-bridge/worker-java:v2 flink-bridge/worker-python:v1 flink-bridge/worker-python:v2 flink-bridge/worker-rust:v1 \
      flink-bridge/worker-rust:v2 flink-bridge/kafka:$TAG flink-bridge/load:$TAG; do
    printf 'sandbox image %-32s %s MB\n' "$image" $(( $(docker image inspect -f '{{.Size}}' "$image") / 1000000 ))
  done
}

sandbox_build() {
  find_jdk; find_maven; ensure_built; ensure_chaos_built; ensure_docker
  # Flink's jars and the cluster module's Prometheus reporter bound to one address (the sandbox's metrics on loopback).
  [[ -f "$BRIDGE_HOME/deploy/cluster/target/flink-lib/flink-runtime-2.2.1.jar" \
      && -f "$BRIDGE_HOME/deploy/cluster/target/flink-lib/cluster-$BRIDGE_VERSION-reporter.jar" ]] \
    || mvn_run install -pl :cluster -am -DskipTests || die "building the cluster's lib folder failed"
  mkdir -p "$CONTEXT_DIR"
  build_base
  build_jre
  build_flink
  build_workers v1
  build_workers v2
  build_kafka
  build_load
  # Images a rebuild replaced are left without a name: they go.
  docker image prune -f --filter label=org.flinkbridge.context >/dev/null
  print_sizes
}

compose() { docker-compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@"; }

sandbox_up() {
  sandbox_build
  if (exec 3<>/dev/tcp/127.0.0.1/8081) 2>/dev/null && [[ -z "$(compose ps -q jobmanager 2>/dev/null)" ]]; then
    die "port 8081 on 127.0.0.1 is taken by another process (./flink-bridge cluster stop, if it is the local cluster)"
  fi
  WORKER_LANGUAGE="${WORKER_LANGUAGE:-java}" compose up -d >&2 || die "docker-compose up failed"
  local deadline=$((SECONDS + UP_TIMEOUT_SECONDS)) overview
  while (( SECONDS < deadline )); do
    overview=$(curl -sf --max-time 3 "$REST_URL/overview" || true)
    if grep -q '"taskmanagers":2' <<<"$overview"; then
      echo "flink-bridge: sandbox up: a JobManager, 2 TaskManagers each with its ${WORKER_LANGUAGE:-java} worker, Kafka on 127.0.0.1:9092; Web UI: $REST_URL"
      if [[ "$(id -u)" == 0 ]]; then
        sandbox_check >&2
      else
        echo "flink-bridge: sandbox check skipped: listing other users' sockets needs root (run ./flink-bridge sandbox check as root)" >&2
      fi
      return 0
    fi
    sleep 2
  done
  compose ps >&2
  die "the sandbox's JobManager did not report 2 TaskManagers within ${UP_TIMEOUT_SECONDS}s; see docker-compose -p $PROJECT logs"
}

sandbox_status() {
  docker info >/dev/null 2>&1 || { echo "flink-bridge: Docker is not running; no sandbox"; return 3; }
  compose ps
  echo "REST $REST_URL: $(curl -sf --max-time 3 "$REST_URL/overview" || echo 'not answering')"
}

# What the host sees of the running sandbox: every process of its containers and the user it runs as, every TCP and
# UDP socket they listen on (ss; host networking puts them all in the host's network namespace) and each worker's ring
# folder. Fails, listing what is wrong, when a process runs as another user than $SANDBOX_USER, a socket is bound to
# an address other than loopback (127.0.0.0/8, ::1), a container is not on the host's network (its sockets would not
# be listed), a service of LISTENING_SERVICES has no listening socket, or a ring folder is not the user's with mode
# 0700. Unix sockets (the workers' control endpoints) are files in the ring folder, not addresses.
sandbox_check() {
  [[ "$(id -u)" == 0 ]] || die "sandbox check lists other users' processes and sockets: run it as root"
  docker info >/dev/null 2>&1 || die "Docker is not running; no sandbox to check"
  local ids id service pid uid gid comm state local_address address netid problems=() sockets=0 processes=0
  ids=$(compose ps -q)
  [[ -n "$ids" ]] || die "no container of the sandbox exists; ./flink-bridge sandbox up"
  declare -A service_of=() listening=()
  for id in $ids; do
    service=$(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}}' "$id")
    state=$(docker inspect -f '{{.State.Status}} {{.HostConfig.NetworkMode}}' "$id")
    [[ "$state" == running* ]] || continue
    [[ "$state" == "running host" ]] || problems+=("$service: network mode ${state#running }, not the host's: its sockets are not listed here")
    for pid in $(docker top "$id" -eo pid | tail -n +2); do
      service_of[$pid]=$service
      read -r uid gid comm < <(ps -o euid=,egid=,comm= -p "$pid") || continue
      processes=$((processes + 1))
      echo "sandbox check: process $service pid $pid uid:gid $uid:$gid $comm"
      [[ "$uid:$gid" == "$SANDBOX_USER" ]] || problems+=("$service: $comm (pid $pid) runs as uid:gid $uid:$gid, not $SANDBOX_USER")
    done
    if [[ "$service" == worker-* ]]; then
      local folder
      folder=$(docker exec "$id" stat -c '%u:%g %a %F' /bridge/rings 2>&1) || folder="missing ($folder)"
      echo "sandbox check: ring folder /bridge/rings of $service: $folder"
      [[ "$folder" == "$SANDBOX_USER 700 directory" ]] \
        || problems+=("$service: the ring folder /bridge/rings is $folder, not a directory of $SANDBOX_USER with mode 700")
    fi
  done
  (( processes > 0 )) || problems+=("no process of the sandbox is running")
  while read -r netid _ _ _ local_address _ users; do
    for pid in $(grep -o 'pid=[0-9]*' <<<"$users" | cut -d= -f2 | sort -u); do
      service=${service_of[$pid]:-}
      [[ -n "$service" ]] || continue
      sockets=$((sockets + 1))
      listening[$service]=1
      address=${local_address%:*}
      address=${address#[}; address=${address%]}; address=${address%%%*}
      echo "sandbox check: listening $netid $local_address $service pid $pid"
      [[ "$address" =~ ^127\. || "$address" == ::1 || "$address" =~ ^::ffff:127\. ]] \
        || problems+=("$service (pid $pid) listens on $netid $local_address, not on loopback")
    done
  done < <(ss -Htulnp)
  for service in "${LISTENING_SERVICES[@]}"; do
    [[ -n "${listening[$service]:-}" ]] || problems+=("$service has no listening socket: is it up, and are its sockets listed?")
  done
  if (( ${#problems[@]} > 0 )); then
    printf 'sandbox check: FAILED: %s\n' "${problems[@]}" >&2
    die "sandbox check found ${#problems[@]} problem(s)"
  fi
  echo "flink-bridge: sandbox check: $processes processes, all uid:gid $SANDBOX_USER; $sockets listening sockets, all on loopback; ring folders private"
}

# Stops and removes every container, network and volume of the project and checks that none is left.
sandbox_down() {
  docker info >/dev/null 2>&1 || { echo "flink-bridge: Docker is not running; no sandbox to stop"; return 0; }
  # With the load test's profile, so that its load generator and oracle go too.
  compose --profile load down -v --remove-orphans --timeout 20 >&2 || die "docker-compose down failed"
  local left
  left="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT") $(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")"
  [[ -z "${left// /}" ]] || die "containers or volumes of $PROJECT are left: $left"
  echo "flink-bridge: sandbox down; no container or volume of it is left"
}

# The load test (chaos module, org.flinkbridge.chaos.SandboxLoad): it brings the sandbox up afresh and down at the end.
sandbox_load() {
  find_jdk; find_maven; ensure_built; ensure_chaos_built; ensure_docker
  exec "$(java_bin)" "${BRIDGE_JVM_ARGS[@]}" -Dflink-bridge.home="$BRIDGE_HOME" \
    -cp "$BRIDGE_HOME/tools/chaos/target/classes:$(cat "$BRIDGE_HOME/tools/chaos/target/classpath.txt")" \
    org.flinkbridge.chaos.SandboxLoad "$@"
}

case "${1:-}" in
  build) sandbox_build ;;
  load) shift; sandbox_load "$@" ;;
  up) sandbox_up ;;
  status) sandbox_status ;;
  check) sandbox_check ;;
  down) sandbox_down ;;
  *) die "usage: ./flink-bridge sandbox build|up|status|check|down | sandbox load [--minutes N] [--rate R] [--transport shm|grpc] [--worker java|python|rust] [--quick]" ;;
esac
