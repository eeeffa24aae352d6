# Shared by scripts/up and scripts/test: install missing Debian/Ubuntu packages, find cargo.

# ensure_packages PKG...: installs what is missing (as root), or prints the exact command.
ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local cmd="apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            echo "==> installing ${missing[*]} (sudo)"
            sudo apt-get update -qq && sudo env DEBIAN_FRONTEND=noninteractive $cmd -qq
            return
        fi
        echo "missing system packages: ${missing[*]}" >&2
        echo "run as root:  apt-get update && $cmd" >&2
        exit 1
    fi
    echo "==> installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $cmd -qq >/dev/null
}

# ensure_cargo: cargo must be on PATH (rustup's default location is tried too).
ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "cargo not found: install Rust (https://rustup.rs) and re-run" >&2
        exit 1
    fi
}

# Build-time packages: protoc and the well-known .proto files (etcd-client's build needs them).
BUILD_PACKAGES=(protobuf-compiler libprotobuf-dev gcc)

# ensure_moto: moto_server (PyPI moto[server]), the S3-compatible store the backup tests run on
# loopback; installed into a venv under ~/.cache/cairn-moto and put on PATH when missing.
ensure_moto() {
    if command -v moto_server >/dev/null 2>&1; then
        return 0
    fi
    local venv="$HOME/.cache/cairn-moto"
    if [ ! -x "$venv/bin/moto_server" ]; then
        ensure_packages python3 python3-venv
        echo "==> installing moto[server] into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q 'moto[server]'
    fi
    export PATH="$venv/bin:$PATH"
}
