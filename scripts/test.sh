#!/usr/bin/env bash
# The test command: installs dependencies, builds with warnings as errors,
# installs the extension, then runs `make installcheck` (pg_regress against a
# temporary instance, then the TAP tests in t/) as an ordinary user.
#
#   bash scripts/test.sh [--asserts] [make arguments...]
#
# initdb refuses to run as root: when run as root, the tests run as the user
# $TRAFFICAGG_TEST_USER (created if needed, default "tatest") on a copy of
# the tree in $TRAFFICAGG_TEST_DIR (default /tmp/trafficagg-test).
# Extra arguments go to make, e.g. PROVE_TESTS=t/002_stream_oracle.pl.
#
# --asserts: the assertion pass (CI's second pass).  The extension is built
# with ASSERTS=1 (-DUSE_ASSERT_CHECKING: its Assert()s run although the server
# is built without cassert) in a copy of the tree, $TRAFFICAGG_TEST_DIR-asserts
# (default /tmp/trafficagg-test-asserts, also when not root), after `make
# clean` there, so this tree's objects stay those of the normal build; that
# build is installed and runs pg_regress and PROVE_TESTS=t/002_stream_oracle.pl
# (extra arguments still go to make and may override it).  Then, pass or fail,
# the normal build is rebuilt here and installed again, so the machine never
# keeps the assertion build.
#
# Fails unless pg_regress and prove both really ran: a pass where prove runs
# no test ("TAP tests not enabled", a file skipped, Tests=0) is a failure.
# The output of `make installcheck` is kept in installcheck.log of the tree the
# tests ran in.
set -euo pipefail

asserts=0
if [ "${1:-}" = --asserts ]; then
    asserts=1
    shift
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. scripts/lib.sh

if [ $asserts -eq 0 ]; then
    build_and_install WERROR=1
    run_dir=$root
    if [ "$(id -u)" -eq 0 ]; then
        run_dir=${TRAFFICAGG_TEST_DIR:-/tmp/trafficagg-test}
        copy_tree "$run_dir"
    fi
    ordinary_user "${TRAFFICAGG_TEST_USER:-tatest}" "$run_dir"
    make_args=("$@")
else
    bash scripts/install-deps.sh
    run_dir=${TRAFFICAGG_TEST_DIR:-/tmp/trafficagg-test}-asserts
    copy_tree "$run_dir"
    # make does not track flags: without the clean, the copied objects of the normal build would be kept
    make -s -C "$run_dir" clean
    make -s -C "$run_dir" WERROR=1 ASSERTS=1
    # the define took effect: Assert() calls ExceptionalCondition (a normal build never does)
    syms=$(nm -D --undefined-only "$run_dir/trafficagg.so")
    if ! grep -qw ExceptionalCondition <<<"$syms"; then
        echo "==== $run_dir/trafficagg.so has no assertion compiled in (ASSERTS=1 ignored?)" >&2
        exit 1
    fi
    # whatever may fail comes before the install: from it to the restore below, nothing exits
    ordinary_user "${TRAFFICAGG_TEST_USER:-tatest}" "$run_dir"
    install_built -C "$run_dir"
    echo "==== assertion build installed; pg_regress and TAP on it" >&2
    make_args=(PROVE_TESTS=t/002_stream_oracle.pl "$@")
fi

status=0
run_installcheck "${make_args[@]}" || status=$?

if [ $asserts -eq 1 ]; then
    # the normal build back, pass or fail: -B rebuilds every object whatever this tree held
    echo "==== reinstalling the normal build" >&2
    build_and_install -B WERROR=1
fi
exit $status
