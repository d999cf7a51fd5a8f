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

# copy_tree DIR: this tree, built, with node_modules and the Kafka jars, into
# DIR (emptied first); timestamps kept so nothing rebuilds
copy_tree() {
    rm -rf "$1"
    mkdir -p "$1"
    tar -C "$root" --exclude=./.git --exclude=./tmp_check --exclude=./results -cf - . | tar -C "$1" -xpf -
}

# The TAP files prove is asked to run, one per line, relative to $run_dir:
# PROVE_TESTS from the environment or the make arguments $@ (the last one
# wins, as in make), else t/*.pl, as in PGXS.
requested_tap_tests() {
    local spec=${PROVE_TESTS:-} a t
    for a in "$@"; do
        case $a in PROVE_TESTS=*) spec=${a#PROVE_TESTS=} ;; esac
    done
    [ -n "$spec" ] || spec='t/*.pl'
    # unquoted on purpose: a list of files, maybe with globs, as prove's shell sees it
    (cd "$run_dir" && for t in $spec; do printf '%s\n' "$t"; done)
}

# check_tests_ran LOG MAKE_ARGS...: succeeds only if the output LOG of `make
# installcheck` shows that pg_regress passed its tests (unless REGRESS= was
# given empty) and that prove ran every requested TAP file, none skipped, and
# more than zero tests in all.  Prints what is missing.  No reliance on set -e:
# it is called from an `if`.
check_tests_ran() {
    local log=$1 ok=0 regress=1 a t n=0 summary nfiles ntests
    shift
    for a in "$@"; do
        case $a in REGRESS=) regress=0 ;; REGRESS=*) regress=1 ;; esac
    done
    if [ $regress -eq 1 ] && ! grep -Eq '^ *All [0-9]+ tests passed\.' "$log"; then
        echo "==== pg_regress did not report \"All N tests passed.\"" >&2
        ok=1
    fi
    if grep -q 'TAP tests not enabled' "$log"; then
        echo "==== prove did not run: TAP tests not enabled in this PostgreSQL build" >&2
        ok=1
    fi
    while IFS= read -r t; do
        n=$((n + 1))
        if [ ! -f "$run_dir/tmp_check/log/regress_log_$(basename "$t" .pl)" ]; then
            echo "==== $t did not run (no tmp_check/log/regress_log_$(basename "$t" .pl))" >&2
            ok=1
        fi
    done < <(requested_tap_tests "$@")
    if grep -E '^t/[^ ]*\.pl [. ]*skipped' "$log" >&2; then
        echo "==== TAP files were skipped (above)" >&2
        ok=1
    fi
    summary=$(sed -n 's/^Files=\([0-9]*\), Tests=\([0-9]*\),.*/\1 \2/p' "$log" | tail -n 1)
    read -r nfiles ntests <<<"$summary"
    if ! grep -qx 'Result: PASS' "$log" || [ "${ntests:-0}" -eq 0 ] || [ "${nfiles:-0}" -ne $n ]; then
        echo "==== prove did not report \"Result: PASS\" with Files=$n and Tests > 0 (got: ${summary:-no summary})" >&2
        ok=1
    fi
    return $ok
}

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

log=$run_dir/installcheck.log
status=0
# pipefail: the pipeline's status is make's when make fails
"${as_user[@]}" make -C "$run_dir" installcheck "${make_args[@]}" 2>&1 | tee "$log" || status=$?
if [ $status -eq 0 ] && ! check_tests_ran "$log" "${make_args[@]}"; then
    status=1
fi

if [ $status -ne 0 ]; then
    echo "==== tests failed (exit $status); details in $run_dir" >&2
    [ -f "$run_dir/regression.diffs" ] && head -n 200 "$run_dir/regression.diffs" >&2
    for f in "$run_dir"/tmp_check/log/regress_log_*; do
        [ -f "$f" ] && grep -q "not ok" "$f" && { echo "---- $f" >&2; tail -n 60 "$f" >&2; }
    done
    # failed assertions (and other aborts) in the server logs of pg_regress' and the TAP tests' instances
    for f in "$run_dir"/log/*.log "$run_dir"/tmp_check/log/*.log; do
        [ -f "$f" ] && grep -q "TRAP:" "$f" && { echo "---- $f" >&2; grep -m 10 -A 3 "TRAP:" "$f" >&2 || true; }
    done
fi

if [ $asserts -eq 1 ]; then
    # the normal build back, pass or fail: -B rebuilds every object whatever this tree held
    echo "==== reinstalling the normal build" >&2
    build_and_install -B WERROR=1
fi
exit $status
