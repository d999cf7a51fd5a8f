#!/usr/bin/env bash
# Installs everything trafficagg needs on Debian 12, idempotently: the apt
# packages, the npm packages of the producer and of docker/check (from their
# lock files) and the Kafka broker jars (Maven Central).  Used by the README,
# .ci/run and docker/.
# Run as root, or as a user with sudo.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

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
echo "install-deps.sh: all dependencies present" >&2
