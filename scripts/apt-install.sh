# Sourced by the ensure-*.sh scripts, not run: installing a missing tool
# with Debian's apt-get, the same way for each.

# apt_install SCRIPT PACKAGE CHECK WHAT: when running as root where apt-get
# exists, installs PACKAGE and exits: 0 if the function CHECK then finds
# the tool, else 1, naming WHAT. Elsewhere it returns 0 and does nothing, so
# that the caller can say what to install.
apt_install() {
	local script=$1 pkg=$2 check=$3 what=$4
	if ! command -v apt-get >/dev/null 2>&1 || [[ "$(id -u)" != 0 ]]; then
		return 0
	fi
	echo "$script: $what not found; installing the $pkg package"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg"
	if ! "$check"; then
		echo "$script: installed $pkg but still found no $what" >&2
		exit 1
	fi
	exit 0
}
