# Shared by the bench scripts (sourced, not run): the config they start needle with.

# Prints a needle.toml with every source and enricher on, as in configs/needle.toml (read-only
# opens included), and the file sink writing to $1; RING_KIB sets the ring's size.
all_sources_config() {
  echo '[needle]'
  echo 'log_level = "info"'
  echo "ring_kib = ${RING_KIB:-8192}"
  for s in process file ipc dns container network; do
    echo '[[source]]'
    echo "plugin = \"$s\""
    [ "$s" = file ] && echo 'read_only = true'
  done
  for e in lineage cgroup hash cri; do
    echo '[[enricher]]'
    echo "plugin = \"$e\""
  done
  echo '[[sink]]'
  echo 'plugin = "file"'
  echo "path = \"$1\""
}

# Starts "$1 run" with $2/needle.toml (its stderr in $2/stderr), sets `pid`, and returns once
# needle printed its readiness line (exits with needle's stderr when it stops before).
start_needle() {
  "$1" run -c "$2/needle.toml" 2>"$2/stderr" &
  pid=$!
  until grep -q "needle running:" "$2/stderr"; do
    kill -0 "$pid" 2>/dev/null || { cat "$2/stderr"; exit 1; }
    sleep 0.005
  done
}
