# Shared helpers for the test stages in scripts/test.d/. Source it; do not run it.
# Everything a stage needs is installed here, from the package registries only.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ROOT
VENV="$ROOT/.venv"
S3S_VERSION=0.14.1

log() { printf '\n=== %s\n' "$*" >&2; }

# A Python virtualenv with tests/python/requirements.txt, reinstalled when the file changes.
ensure_venv() {
  local req="$ROOT/tests/python/requirements.txt" stamp="$VENV/.requirements.sha256"
  local want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Python test requirements into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

# The s3s-fs S3 server, built from crates.io.
ensure_s3s() {
  if ! command -v s3s-fs >/dev/null 2>&1 || ! s3s-fs --version 2>/dev/null | grep -q "$S3S_VERSION"; then
    log "installing s3s-fs $S3S_VERSION"
    cargo install --locked s3s-fs --version "$S3S_VERSION" --features binary \
      || cargo install s3s-fs --version "$S3S_VERSION" --features binary
  fi
}

# GNU time (/usr/bin/time, Debian package `time`): the benchmark reads peak RSS from it.
ensure_gnu_time() {
  if [ ! -x /usr/bin/time ]; then
    log "installing GNU time"
    if [ "$(id -u)" = 0 ]; then apt-get install -y time; else sudo apt-get install -y time; fi
  fi
}

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until something listens on 127.0.0.1:$1 (at most $2 seconds, default 60).
wait_port() {
  local port=$1 limit=${2:-60} i=0
  until python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(('127.0.0.1',$port)))" 2>/dev/null; do
    i=$((i+1)); [ "$i" -ge $((limit*4)) ] && { echo "nothing listens on port $port after ${limit}s" >&2; return 1; }
    sleep 0.25
  done
}

# Processes started by start_bg are stopped when the stage exits.
BG_PIDS=()
start_bg() { "$@" & BG_PIDS+=($!); }
stop_bg() { for p in "${BG_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; wait 2>/dev/null || true; }
trap stop_bg EXIT
