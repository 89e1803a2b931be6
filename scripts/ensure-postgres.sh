#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries that internal/pgtest needs are
# here: pgtest starts a throwaway cluster with initdb from
# `pg_config --bindir`, /usr/lib/postgresql/*/bin or $PATH.
#
# Missing, and running as root where apt-get exists, it installs Debian's
# "postgresql" package. Otherwise it says what to install and exits 0: the
# tests then fail with pgtest's own explanation.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

if [[ -n "${GWORKER_TEST_DATABASE_URL:-}" ]]; then
	echo "ensure-postgres: tests use \$GWORKER_TEST_DATABASE_URL"
	exit 0
fi

have_initdb() {
	local bindir f
	if command -v pg_config >/dev/null 2>&1 && bindir=$(pg_config --bindir 2>/dev/null) && [[ -x "$bindir/initdb" ]]; then
		return 0
	fi
	for f in /usr/lib/postgresql/*/bin/initdb; do
		[[ -x "$f" ]] && return 0
	done
	command -v initdb >/dev/null 2>&1
}

if have_initdb; then
	exit 0
fi

apt_install ensure-postgres postgresql have_initdb "PostgreSQL server binaries (initdb)"

cat >&2 <<'MSG'
ensure-postgres: PostgreSQL server binaries (initdb) not found, and they cannot be
installed from here (this needs root and apt-get). Install them, e.g.
    sudo apt-get install postgresql        (Debian/Ubuntu)
    brew install postgresql                (macOS)
or point the tests at a server: export GWORKER_TEST_DATABASE_URL=postgres://...
Continuing: the tests that need PostgreSQL will fail with the same advice.
MSG
