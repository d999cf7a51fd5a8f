# Shell helpers shared by scripts/run.sh, scripts/test.sh and bench/run.sh.
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
