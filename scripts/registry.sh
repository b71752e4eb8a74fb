#!/usr/bin/env bash
# The local Schema Registry: Apicurio Registry (the release pinned below),
# fetched from Maven Central into .local/ once, in-memory storage, bound to
# 127.0.0.1. Clients use its Confluent-compatible API. See docs/schemas.md.
#
#   scripts/registry.sh install   fetch and unpack it if absent
#   scripts/registry.sh start     start it, wait until it answers; prints the registry URL
#   scripts/registry.sh stop      SIGTERM, SIGKILL after 30 s; no process or port left
#   scripts/registry.sh status    exit 0 if it is running
#   scripts/registry.sh url       the URL clients use (running or not)
#   scripts/registry.sh wipe      delete the stored schemas (file storage; stopped)
#
# SAGASTREAM_REGISTRY_PORT (default 18081): its HTTP port (its management
# interface takes that port + 10000); one state folder
# per port (.local/registry-<port>/: pid, log, data). Storage, by
# SAGASTREAM_REGISTRY_STORAGE: `memory` (the default: a restart forgets every
# schema, as a test run wants) or `file` (an H2 database in
# .local/registry-<port>/data/ that outlives a restart, as a production
# registry's storage does, so schema ids stay what records name; `wipe`
# deletes it).
# Apicurio 3 needs Java 21 or newer: SAGASTREAM_REGISTRY_JAVA, else
# $JAVA_HOME/bin/java, else `java` on PATH, else the newest JDK under
# /usr/lib/jvm, the first that is new enough.
# With SCHEMA_REGISTRY_URL set, nothing is started: that registry is used.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=3.3.3
artifact="io.apicurio:apicurio-registry-app:$version:tar.gz:all"
port=${SAGASTREAM_REGISTRY_PORT:-18081}
state="$root/.local/registry-$port"
home="$root/.local/apicurio-registry-$version"
heap=${SAGASTREAM_REGISTRY_HEAP:-384m}
start_timeout=${SAGASTREAM_REGISTRY_START_TIMEOUT:-120}
storage=${SAGASTREAM_REGISTRY_STORAGE:-memory}
api=/apis/ccompat/v7

die() { echo "registry: $*" >&2; exit 1; }
alive() { [[ -f "$state/pid" ]] && kill -0 "$(cat "$state/pid")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
url() { echo "${SCHEMA_REGISTRY_URL:-http://127.0.0.1:$port$api}"; }
answers() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port$api/subjects" 2>/dev/null; }

install() {
  if [[ -f "$home/quarkus-run.jar" && -f "$home/.complete" ]]; then return; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed once to fetch Apicurio Registry from Maven Central; install it (apt-get install maven) or set SCHEMA_REGISTRY_URL to a registry of your own"
  echo "registry: fetching Apicurio Registry $version ($artifact, about 160 MB) from Maven Central into .local/ (once)" >&2
  local download="$root/.local/apicurio-download"
  rm -rf "$home" "$download"
  mkdir -p "$home" "$download"
  mvn -q -B -Dmaven.repo.local="$root/.local/m2" dependency:copy -Dartifact="$artifact" -DoutputDirectory="$download" >&2 \
    || die "fetching $artifact from Maven Central failed (output above); check the network, or set SCHEMA_REGISTRY_URL"
  tar -xzf "$download/apicurio-registry-app-$version-all.tar.gz" -C "$home" \
    || die "unpacking $download/apicurio-registry-app-$version-all.tar.gz failed"
  rm -rf "$download"
  [[ -f "$home/quarkus-run.jar" ]] || die "the Apicurio $version assembly holds no quarkus-run.jar (layout changed?); see $home"
  touch "$home/.complete"
}

# major JAVA: the Java major version of a java binary, or 0.
major() {
  local v
  v=$("$1" -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')
  echo "${v%%.*}" | grep -E '^[0-9]+$' || echo 0
}

java_bin() {
  local candidates=() c
  [[ -n "${SAGASTREAM_REGISTRY_JAVA:-}" ]] && candidates+=("$SAGASTREAM_REGISTRY_JAVA")
  [[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME/bin/java")
  command -v java >/dev/null && candidates+=("$(command -v java)")
  for c in $(ls -d /usr/lib/jvm/*/bin/java 2>/dev/null | sort -rV); do candidates+=("$c"); done
  for c in "${candidates[@]}"; do
    if [[ -x "$c" ]] && (($(major "$c") >= 21)); then
      echo "$c"
      return
    fi
  done
  die "Apicurio Registry $version needs Java 21 or newer and none was found (tried: ${candidates[*]:-nothing}); install one (e.g. apt-get install openjdk-21-jre-headless), point SAGASTREAM_REGISTRY_JAVA at its java, or set SCHEMA_REGISTRY_URL"
}

start() {
  if [[ -n "${SCHEMA_REGISTRY_URL:-}" ]]; then
    echo "registry: using SCHEMA_REGISTRY_URL; nothing started" >&2
    url
    return
  fi
  if alive && answers; then
    echo "registry: already running on port $port" >&2
    url
    return
  fi
  install
  local java
  java=$(java_bin)
  port_open "$port" && die "port $port is taken by another process; stop it or set SAGASTREAM_REGISTRY_PORT"
  mkdir -p "$state"
  local datasource=()
  case "$storage" in
    memory) ;;
    file) mkdir -p "$state/data"; datasource=("-Dapicurio.datasource.url=jdbc:h2:file:$state/data/registry") ;;
    *) die "SAGASTREAM_REGISTRY_STORAGE is \"$storage\"; use memory (the default) or file" ;;
  esac
  # The management interface (health, metrics) on 127.0.0.1 and port+10000:
  # Quarkus would bind it to 0.0.0.0:9000, one port for every registry on
  # the machine (it cannot be switched off at run time).
  # setsid: the registry must not die with the terminal or the make target
  # that started it. Every descriptor of the subshell is redirected: one
  # left on the caller's pipe would keep `$(registry.sh start)` waiting
  # for the registry to exit.
  (cd "$home" && exec setsid "$java" -Xms128m -Xmx"$heap" -Djava.awt.headless=true \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
    -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port=$((port + 10000)) \
    ${datasource[@]+"${datasource[@]}"} -jar quarkus-run.jar) > "$state/registry.log" 2>&1 < /dev/null &
  # The subshell became the JVM (exec); setsid may fork, so the pid is found by the port flag.
  local deadline=$((SECONDS + start_timeout)) pid=""
  until answers; do
    [[ -z "$pid" ]] && pid=$(pgrep -f -- "-Dquarkus.http.port=$port " | head -n 1 || true)
    if [[ -n "$pid" ]]; then echo "$pid" > "$state/pid"; fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$state/registry.log" >&2 || true
      die "Apicurio Registry exited during start-up (log tail above; log in $state/registry.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$state/registry.log" >&2 || true
      stop >/dev/null 2>&1 || true
      die "Apicurio Registry did not answer on port $port within ${start_timeout} s (log tail above; log in $state/registry.log)"
    fi
    sleep 0.25
  done
  [[ -n "$pid" ]] || pid=$(pgrep -f -- "-Dquarkus.http.port=$port " | head -n 1)
  echo "$pid" > "$state/pid"
  echo "registry: Apicurio Registry $version running on 127.0.0.1:$port ($storage storage, $("$java" -version 2>&1 | head -n 1), log in $state/registry.log)" >&2
  url
}

stop() {
  if [[ -n "${SCHEMA_REGISTRY_URL:-}" ]] && ! alive; then
    echo "registry: using SCHEMA_REGISTRY_URL; nothing to stop" >&2
    return
  fi
  alive || { rm -f "$state/pid"; echo "registry: not running" >&2; return; }
  local pid
  pid=$(cat "$state/pid")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "registry: pid $pid ignored SIGTERM for 30 s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.1
  done
  rm -f "$state/pid"
  deadline=$((SECONDS + 10))
  while port_open "$port" && ((SECONDS < deadline)); do sleep 0.1; done
  port_open "$port" && die "port $port still answers after the registry stopped"
  echo "registry: stopped (pid $pid)" >&2
}

status() {
  if alive && answers; then
    echo "running: Apicurio Registry $version on $(url)"
  else
    echo "not running"
    return 1
  fi
}

wipe() {
  alive && die "the registry on port $port is running; stop it before wiping its storage"
  rm -rf "$state/data"
  echo "registry: storage of port $port wiped" >&2
}

case "${1:-}" in
  install) install; echo "Apicurio Registry $version in $home" ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  url) url ;;
  wipe) wipe ;;
  *) echo "usage: $0 install|start|stop|status|url|wipe" >&2; exit 2 ;;
esac
