#!/usr/bin/env bash
# Makes sure a Chromium the admin package's browser tests can drive is
# here: they look for chromium, chromium-browser, google-chrome or
# $GWORKER_CHROMIUM.
#
# Missing, and running as root where apt-get exists, it installs Debian's
# "chromium" package. Otherwise it says what to install and exits 0: the
# browser tests then fail with the same advice (they never skip).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

if [[ -n "${GWORKER_CHROMIUM:-}" ]]; then
	if [[ -x "$GWORKER_CHROMIUM" ]]; then
		exit 0
	fi
	echo "ensure-chromium: \$GWORKER_CHROMIUM=$GWORKER_CHROMIUM is not an executable file" >&2
	exit 1
fi

have_chromium() {
	local b
	for b in chromium chromium-browser google-chrome google-chrome-stable; do
		command -v "$b" >/dev/null 2>&1 && return 0
	done
	return 1
}

if have_chromium; then
	exit 0
fi

apt_install ensure-chromium chromium have_chromium "Chromium"

cat >&2 <<'MSG'
ensure-chromium: Chromium not found, and it cannot be installed from here (this
needs root and apt-get). Install it, e.g.
    sudo apt-get install chromium          (Debian/Ubuntu)
    brew install --cask chromium           (macOS)
or point the tests at a Chrome or Chromium binary: export GWORKER_CHROMIUM=/path/to/chrome
Continuing: the admin package's browser tests will fail with the same advice.
MSG
