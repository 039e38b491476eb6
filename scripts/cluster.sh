#!/usr/bin/env bash
# A three-node cluster on this machine (docs/cluster.md): a three-server NATS JetStream
# engine and three restate-server nodes, all on loopback.
#
#   scripts/cluster.sh start     # start everything, wait until every node is healthy
#   scripts/cluster.sh status    # which processes run
#   scripts/cluster.sh stop      # stop every process it started, by PID
#
# Ports (RESTATE_CLUSTER_BASE_PORT=B moves all of them to B, B+1, ...):
#   node 1, 2, 3: ingress 8080 8081 8082, admin 9070 9071 9072, node 5122 5132 5142
#   engine: clients 4222 4223 4224 (routes 6222-6224, monitoring 8222-8224)
# Data and logs go to RESTATE_CLUSTER_DIR (default ./restate-cluster).
# Needs nats-server (Debian: apt-get install -y nats-server) and restate-server
# (RESTATE_SERVER, default .venv/bin/restate-server).
set -euo pipefail

DIR="${RESTATE_CLUSTER_DIR:-./restate-cluster}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
SERVER="${RESTATE_SERVER:-.venv/bin/restate-server}"
NATS="$(command -v nats-server || echo /usr/sbin/nats-server)"
HOST=127.0.0.1

port() {  # port NAME INDEX (INDEX 0..2)
    local name=$1 i=$2
    if [ -n "${RESTATE_CLUSTER_BASE_PORT:-}" ]; then
        local base=$RESTATE_CLUSTER_BASE_PORT
        case $name in
            ingress) echo $((base + i)) ;;
            admin) echo $((base + 3 + i)) ;;
            node) echo $((base + 6 + i)) ;;
            fabric) echo $((base + 9 + i)) ;;
            js) echo $((base + 12 + i)) ;;
            route) echo $((base + 15 + i)) ;;
            monitor) echo $((base + 18 + i)) ;;
        esac
        return
    fi
    case $name in
        ingress) echo $((8080 + i)) ;;
        admin) echo $((9070 + i)) ;;
        node) echo $((5122 + 10 * i)) ;;
        fabric) echo $((5123 + 10 * i)) ;;
        js) echo $((4222 + i)) ;;
        route) echo $((6222 + i)) ;;
        monitor) echo $((8222 + i)) ;;
    esac
}

launch() {  # launch NAME COMMAND...: in the background, its PID in $DIR/pids/NAME.pid
    local name=$1
    shift
    nohup "$@" > "$DIR/logs/$name.log" 2>&1 &
    echo $! > "$DIR/pids/$name.pid"
}

healthy() {  # healthy URL: within 60 s
    for _ in $(seq 300); do
        if curl -fsS -o /dev/null "$1" 2> /dev/null; then
            return 0
        fi
        sleep 0.2
    done
    echo "not healthy: $1 (logs in $DIR/logs)" >&2
    return 1
}

start() {
    mkdir -p "$DIR/pids" "$DIR/logs"
    if compgen -G "$DIR/pids/*.pid" > /dev/null; then
        echo "already started (scripts/cluster.sh stop first)" >&2
        exit 1
    fi
    [ -x "$NATS" ] || { echo "nats-server not found: apt-get install -y nats-server" >&2; exit 1; }
    [ -x "$SERVER" ] || { echo "restate-server not found at $SERVER (set RESTATE_SERVER)" >&2; exit 1; }
    local engine=""
    for i in 0 1 2; do
        local routes=""
        for j in 0 1 2; do
            [ "$j" = "$i" ] || routes="$routes${routes:+, }\"nats-route://$HOST:$(port route "$j")\""
        done
        mkdir -p "$DIR/engine-$((i + 1))"
        cat > "$DIR/engine-$((i + 1)).conf" <<EOF
server_name: "engine-$((i + 1))"
listen: "$HOST:$(port js "$i")"
http: "$HOST:$(port monitor "$i")"
jetstream { store_dir: "$DIR/engine-$((i + 1))" }
cluster {
  name: "restate-engine"
  listen: "$HOST:$(port route "$i")"
  routes: [$routes]
}
EOF
        launch "engine-$((i + 1))" "$NATS" -c "$DIR/engine-$((i + 1)).conf"
        engine="$engine${engine:+,}nats://$HOST:$(port js "$i")"
    done
    for i in 0 1 2; do
        healthy "http://$HOST:$(port monitor "$i")/healthz" || { stop; exit 1; }
    done
    for i in 0 1 2; do
        local n=$((i + 1))
        cat > "$DIR/node-$n.toml" <<EOF
node-name = "node-$n"
base-dir = "$DIR/node-$n"
bind-address = "$HOST:$(port node "$i")"

[ingress]
bind-address = "$HOST:$(port ingress "$i")"

[admin]
bind-address = "$HOST:$(port admin "$i")"

[py.cluster]
engine-address = "$engine"
fabric-bind-address = "$HOST:$(port fabric "$i")"
EOF
        launch "node-$n" "$SERVER" --config-file "$DIR/node-$n.toml"
    done
    for i in 0 1 2; do
        healthy "http://$HOST:$(port admin "$i")/health" || { stop; exit 1; }
    done
    echo "cluster up: ingress on $HOST:$(port ingress 0), :$(port ingress 1), :$(port ingress 2);" \
        "admin on :$(port admin 0), :$(port admin 1), :$(port admin 2); logs in $DIR/logs"
}

stop() {
    compgen -G "$DIR/pids/*.pid" > /dev/null || { echo "nothing started in $DIR"; return 0; }
    # the nodes first (they hand their partitions back to the engine), then the engine
    for group in node engine; do
        local pids=()
        for file in "$DIR"/pids/"$group"-*.pid; do
            [ -e "$file" ] || continue
            local pid
            pid=$(cat "$file")
            if kill -0 "$pid" 2> /dev/null; then
                kill -TERM "$pid"
                pids+=("$pid")
            fi
        done
        for pid in "${pids[@]}"; do
            for _ in $(seq 150); do
                kill -0 "$pid" 2> /dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2> /dev/null && kill -KILL "$pid"
        done
        rm -f "$DIR"/pids/"$group"-*.pid
    done
    echo "cluster stopped"
}

status() {
    for file in "$DIR"/pids/*.pid; do
        [ -e "$file" ] || { echo "nothing started in $DIR"; return 0; }
        local pid name
        pid=$(cat "$file")
        name=$(basename "$file" .pid)
        if kill -0 "$pid" 2> /dev/null; then echo "$name: running (pid $pid)"; else echo "$name: gone"; fi
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
