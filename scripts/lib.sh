# Shell helpers shared by scripts/run.sh, scripts/test.sh, scripts/test-pg.sh
# and bench/run.sh.
# Source it from the repository root.

# Install the dependencies, build (extra make arguments, e.g. WERROR=1) and
# install the extension.
build_and_install() {
    bash scripts/install-deps.sh
    make -s "$@"
    install_built
}

# `make install` of what is already built (extra make arguments, e.g. -C DIR),
# with sudo unless root.
install_built() {
    if [ "$(id -u)" -eq 0 ]; then make -s "$@" install; else sudo make -s "$@" install; fi
}

# PostgreSQL refuses to run as root.  Sets the array as_user to the prefix
# that runs a command as an ordinary user: empty when not root, else runuser
# for $1 (created if needed), who is given the directories $2...
ordinary_user() {
    local user=$1
    shift
    as_user=()
    [ "$(id -u)" -eq 0 ] || return 0
    id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
    [ $# -eq 0 ] || chown -R "$user" "$@"
    as_user=(runuser -u "$user" --)
}

# copy_tree DIR: this tree ($root), built, with node_modules and the Kafka
# jars, into DIR (emptied first); timestamps kept so nothing rebuilds
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
# installcheck` in $run_dir shows that pg_regress passed its tests (unless
# REGRESS= was given empty) and that prove ran every requested TAP file, none
# skipped, and more than zero tests in all (unless TAP_TESTS= was given
# empty).  Prints what is missing.  No reliance on set -e: it is called from
# an `if`.
check_tests_ran() {
    local log=$1 ok=0 regress=1 tap=1 a t n=0 summary nfiles ntests
    shift
    for a in "$@"; do
        case $a in
            REGRESS=) regress=0 ;; REGRESS=*) regress=1 ;;
            TAP_TESTS=) tap=0 ;; TAP_TESTS=*) tap=1 ;;
        esac
    done
    # 15's pg_regress prints " All N tests passed. ", 16's (TAP output) "# All N tests passed."
    if [ $regress -eq 1 ] && ! grep -Eq '^(# )? *All [0-9]+ tests passed\.' "$log"; then
        echo "==== pg_regress did not report \"All N tests passed.\"" >&2
        ok=1
    fi
    [ $tap -eq 1 ] || return $ok
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

# run_installcheck MAKE_ARGS...: `make installcheck` in $run_dir as the user
# of $as_user (see ordinary_user), its output kept in $run_dir/installcheck.log;
# fails if make fails or check_tests_ran does, and then shows the diffs, the
# failing TAP files' logs and any failed assertion in the servers' logs.
run_installcheck() {
    local log=$run_dir/installcheck.log status=0 f
    # pipefail: the pipeline's status is make's when make fails
    "${as_user[@]}" make -C "$run_dir" installcheck "$@" 2>&1 | tee "$log" || status=$?
    if [ $status -eq 0 ] && ! check_tests_ran "$log" "$@"; then
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
    return $status
}
