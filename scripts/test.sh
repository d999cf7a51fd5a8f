#!/usr/bin/env bash
# The test command: installs dependencies, builds with warnings as errors,
# installs the extension, then runs `make installcheck` (pg_regress against a
# temporary instance, then the TAP tests in t/) as an ordinary user.
#
# initdb refuses to run as root: when run as root, the tests run as the user
# $TRAFFICAGG_TEST_USER (created if needed, default "tatest") on a copy of
# the tree in $TRAFFICAGG_TEST_DIR (default /tmp/trafficagg-test).
# Extra arguments go to make, e.g. PROVE_TESTS=t/002_stream_oracle.pl.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. scripts/lib.sh

build_and_install WERROR=1

run_dir=$root
if [ "$(id -u)" -eq 0 ]; then
    run_dir=${TRAFFICAGG_TEST_DIR:-/tmp/trafficagg-test}
    rm -rf "$run_dir"
    mkdir -p "$run_dir"
    # the built tree, with node_modules and the Kafka jars; timestamps kept so nothing rebuilds
    tar -C "$root" --exclude=./.git --exclude=./tmp_check --exclude=./results -cf - . | tar -C "$run_dir" -xpf -
fi
ordinary_user "${TRAFFICAGG_TEST_USER:-tatest}" "$run_dir"

status=0
"${as_user[@]}" make -C "$run_dir" installcheck "$@" || status=$?

if [ $status -ne 0 ]; then
    echo "==== tests failed (exit $status); details in $run_dir" >&2
    [ -f "$run_dir/regression.diffs" ] && head -n 200 "$run_dir/regression.diffs" >&2
    for f in "$run_dir"/tmp_check/log/regress_log_*; do
        [ -f "$f" ] && grep -q "not ok" "$f" && { echo "---- $f" >&2; tail -n 60 "$f" >&2; }
    done
fi
exit $status
