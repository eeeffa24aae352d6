# shellcheck shell=bash
# What the benchmark scripts share: a scratch directory removed on exit with every member the
# script started, free ports, 3-member clusters of cairn-server or etcd on loopback, and the
# wait until they are healthy. Sourced by bench/compare and bench/auth.

dir=$(mktemp -d /tmp/cairn-bench.XXXXXX)
pids=()
clusters=0
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

free_ports() {
    python3 -c '
import socket, sys
ip = sys.argv[1]
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind((ip, 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# start_cluster KIND PROGRAM BASE-OCTET [FLAG...]: three members on 127.0.0.BASE+1..3, each
# with the extra FLAGs; sets ENDPOINTS. (Not run in a subshell: the members must stay
# children of the script, for cleanup.)
start_cluster() {
    local kind=$1 program=$2 base=$3 cluster="" endpoints="" i ip
    shift 3
    clusters=$((clusters + 1))
    declare -A client peer
    for i in 1 2 3; do
        ip="127.0.0.$((base + i))"
        read -r client[$i] peer[$i] <<<"$(free_ports "$ip")"
        cluster="${cluster:+$cluster,}$kind$i=http://$ip:${peer[$i]}"
        endpoints="${endpoints:+$endpoints,}http://$ip:${client[$i]}"
    done
    for i in 1 2 3; do
        ip="127.0.0.$((base + i))"
        "$program" --name "$kind$i" --data-dir "$dir/$clusters-$kind$i" \
            --listen-client-urls "http://$ip:${client[$i]}" --advertise-client-urls "http://$ip:${client[$i]}" \
            --listen-peer-urls "http://$ip:${peer[$i]}" --initial-advertise-peer-urls "http://$ip:${peer[$i]}" \
            --initial-cluster "$cluster" --initial-cluster-token "bench-$kind" --initial-cluster-state new \
            "$@" >"$dir/$clusters-$kind$i.log" 2>&1 &
        pids+=($!)
    done
    ENDPOINTS=$endpoints
}

# stop_clusters: stops every member started so far and forgets them.
stop_clusters() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}

# wait_ready ENDPOINTS [ETCDCTL-FLAG...]: until every member is healthy (30 s at most).
wait_ready() {
    local endpoints=$1 _
    shift
    for _ in $(seq 1 300); do
        if ETCDCTL_API=3 etcdctl --endpoints "$endpoints" "$@" endpoint health >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "cluster $endpoints did not become healthy; logs in $dir" >&2
    exit 1
}


# leader_endpoint ENDPOINTS [ETCDCTL-FLAG...]: the client URL of the member that leads.
leader_endpoint() {
    local endpoints=$1
    shift
    ETCDCTL_API=3 etcdctl --endpoints "$endpoints" "$@" endpoint status -w json | python3 -c '
import json, sys
members = json.load(sys.stdin)
print(next(m["Endpoint"] for m in members if m["Status"]["leader"] == m["Status"]["header"]["member_id"]))'
}
