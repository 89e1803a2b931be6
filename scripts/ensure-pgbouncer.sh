#!/usr/bin/env bash
# Makes sure the pgbouncer binary that the PgBouncer tests (package
# pgbouncer) start in front of their throwaway PostgreSQL is here: on $PATH,
# in /usr/sbin (where Debian puts it), or at $GWORKER_PGBOUNCER.
#
# Missing, and running as root where apt-get exists, it installs Debian's
# "pgbouncer" package (1.18 on Debian 12). Otherwise it says what to install
# and exits 0: those tests then fail with the same advice (they never skip).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

if [[ -n "${GWORKER_PGBOUNCER:-}" ]]; then
	if [[ -x "$GWORKER_PGBOUNCER" ]]; then
		exit 0
	fi
	echo "ensure-pgbouncer: \$GWORKER_PGBOUNCER=$GWORKER_PGBOUNCER is not an executable file" >&2
	exit 1
fi

have_pgbouncer() {
	command -v pgbouncer >/dev/null 2>&1 || [[ -x /usr/sbin/pgbouncer ]]
}

if have_pgbouncer; then
	exit 0
fi

apt_install ensure-pgbouncer pgbouncer have_pgbouncer "pgbouncer"

cat >&2 <<'MSG'
ensure-pgbouncer: pgbouncer not found, and it cannot be installed from here (this
needs root and apt-get). Install it, e.g.
    sudo apt-get install pgbouncer         (Debian/Ubuntu)
    brew install pgbouncer                 (macOS)
or point the tests at a binary: export GWORKER_PGBOUNCER=/path/to/pgbouncer
Continuing: the PgBouncer tests will fail with the same advice.
MSG
