#!/bin/sh
# tests/dist.sh: checks the init-system and package files under dist/ (dist/README.md).
#
#   systemd    `systemd-analyze verify` of dist/systemd/rcron.service prints nothing (run
#              against a temporary root holding a stub /usr/sbin/rcron, so nothing is
#              installed on this machine), and the unit keeps its deliberate settings
#   lint       every shell script under dist/, and this file, pass shellcheck as POSIX sh
#   procd      dist/openwrt/rcron/files/rcron.init sourced with stub procd functions that
#              log their arguments: start_service, reload_service (running, not running,
#              invalid config, disabled) and service_triggers set exactly what they should
#   uci2conf   a sample UCI config converts to the expected rcron.conf, which
#              `rcron --check` accepts; the `uci export` path (a stub uci on PATH) gives the
#              same; values rcron.conf cannot carry are refused
#   packages   the files the Buildroot and OpenWrt packages install exist in the repository
#
# usage: sh tests/dist.sh          (after `cargo build --release`; RCRON=FILE for another
#                                   binary)
# Needs: shellcheck, systemd-analyze (Debian: shellcheck, systemd). Exits 1 if any check
# failed, naming each failure.

# The checks match the literal text of units and Makefiles: `$` in single quotes on purpose.
# shellcheck disable=SC2016

set -u
cd "$(dirname "$0")/.." || exit 1
TOP=$PWD
RCRON=${RCRON:-$TOP/target/release/rcron}
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
: >"$TMP/failures"

fail() {
	printf 'FAIL: %s\n' "$*"
	printf '%s\n' "$*" >>"$TMP/failures"
}
ok() {
	printf 'ok:   %s\n' "$*"
}
# expect_file NAME EXPECTED ACTUAL: the two files are equal, else a diff.
expect_file() {
	if diff -u "$2" "$3" >"$TMP/diff" 2>&1; then
		ok "$1"
	else
		fail "$1"
		sed 's/^/      /' "$TMP/diff"
	fi
}

[ -x "$RCRON" ] || fail "no $RCRON: run cargo build --release first"

# ---- systemd ------------------------------------------------------------------------------

check_systemd() {
	unit=$TOP/dist/systemd/rcron.service
	if ! command -v systemd-analyze >/dev/null 2>&1; then
		fail "systemd: systemd-analyze missing (apt-get install systemd)"
		return
	fi
	# verify resolves ExecStart= and ExecReload= inside --root and loads the unit and its
	# dependencies from there: a copy of the system's units, stubs of /usr/sbin/rcron and
	# /bin/kill.
	root=$TMP/root
	mkdir -p "$root/usr/sbin" "$root/bin" "$root/usr/lib/systemd" "$root/etc/systemd/system"
	cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
	for f in usr/sbin/rcron bin/kill; do
		printf '#!/bin/sh\nexit 0\n' >"$root/$f"
		chmod 755 "$root/$f"
	done
	cp "$unit" "$root/etc/systemd/system/rcron.service"
	# Documentation=man:... is checked with man(1): the repository's pages on MANPATH.
	man=$TMP/man
	mkdir -p "$man/man8" "$man/man5"
	for page in rcron.8:man8 rcron.conf.5:man5; do
		if [ -f "$TOP/man/${page%%:*}" ]; then
			cp "$TOP/man/${page%%:*}" "$man/${page#*:}/"
		else
			fail "systemd: man/${page%%:*} missing (the unit's Documentation= names it)"
		fi
	done
	out=$(MANPATH=$man systemd-analyze verify --root="$root" \
		"$root/etc/systemd/system/rcron.service" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && [ -z "$out" ]; then
		ok "systemd: systemd-analyze verify prints nothing"
	else
		fail "systemd: systemd-analyze verify (exit $rc):"
		printf '%s\n' "$out" | sed 's/^/      /'
	fi
	# The settings the design depends on (dist/README.md); verify cannot judge them.
	for line in \
		'Type=exec' \
		'ExecStart=/usr/sbin/rcron --daemon --foreground --conf /etc/rcron/rcron.conf' \
		'ExecReload=/bin/kill -HUP $MAINPID' \
		'Restart=on-failure' \
		'RestartPreventExitStatus=64 78' \
		'KillMode=mixed' \
		'RuntimeDirectory=rcron' \
		'RuntimeDirectoryPreserve=yes' \
		'CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN CAP_NET_BIND_SERVICE CAP_CHOWN'; do
		if grep -qxF "$line" "$unit"; then
			ok "systemd: $line"
		else
			fail "systemd: the unit lacks the line: $line"
		fi
	done
}

# ---- shellcheck ---------------------------------------------------------------------------

check_shellcheck() {
	if ! command -v shellcheck >/dev/null 2>&1; then
		fail "shellcheck: missing (apt-get install shellcheck)"
		return
	fi
	# Every file under dist/ and rootfs/ whose first line is a shell's #! (the procd
	# script's is `#!/bin/sh /etc/rc.common`), the test scripts, and this file.
	{ find dist rootfs -type f; ls tests/*.sh; } | sort >"$TMP/files"
	n=0
	while read -r f; do
		case $(head -n 1 "$f") in
			'#!/bin/sh'*) ;;
			*) continue ;;
		esac
		n=$((n + 1))
		if out=$(shellcheck -s sh "$f" 2>&1); then
			ok "shellcheck: $f"
		else
			fail "shellcheck: $f"
			printf '%s\n' "$out" | sed 's/^/      /'
		fi
	done <"$TMP/files"
	[ $n -ge 3 ] || fail "shellcheck: found only $n shell scripts under dist/ (expected 3 or more)"
	if out=$(shellcheck -s sh tests/dist.sh 2>&1); then
		ok "shellcheck: tests/dist.sh"
	else
		fail "shellcheck: tests/dist.sh"
		printf '%s\n' "$out" | sed 's/^/      /'
	fi
}

# ---- the UCI sample and the rcron.conf it must give ------------------------------------------

# As an operator writes it: comments, double quotes, bare words, a list given twice, an
# anonymous section of another type (ignored), an empty option (unset).
cat >"$TMP/sample.uci" <<'EOF'
# test sample
config rcron 'main'
	option enabled '1'
	option cluster_name 'billing pair'
	option interface "eth0"
	option virtual_router_id 51
	option priority '150'
	option advert_int '1'
	option preempt 'off'
	option run_ledger 'true'
	option unicast_src_ip '192.0.2.1'
	list unicast_peer '192.0.2.2'
	list unicast_peer '192.0.2.3 192.0.2.4'
	list virtual_ipaddress '192.0.2.100'
	option auth_pass 'pa#ss'
	option notify_active '/bin/true active'
	option track_script "sh -c 'test -d /'"
	option state_file ''
	option nice_level '10'

config other
	option ignored 'yes'
EOF

cat >"$TMP/expected.conf" <<'EOF'
# rcron.conf generated from the UCI config rcron (/etc/config/rcron) by uci2conf.sh.
# Edit the UCI config (uci set rcron.main.KEY=VALUE; uci commit rcron), not this file.
cluster_name = "billing pair"
interface = eth0
virtual_router_id = 51
priority = 150
advert_int = 1
preempt = no
run_ledger = yes
unicast_src_ip = 192.0.2.1
unicast_peer = 192.0.2.2
unicast_peer = 192.0.2.3 192.0.2.4
virtual_ipaddress = 192.0.2.100
auth_pass = "pa#ss"
notify_active = /bin/true active
track_script = sh -c 'test -d /'
nice_level = 10
EOF

UCI2CONF=$TOP/dist/openwrt/rcron/files/uci2conf.sh

check_uci2conf() {
	if sh "$UCI2CONF" -f "$TMP/sample.uci" >"$TMP/got.conf" 2>"$TMP/err"; then
		expect_file "uci2conf: the sample gives the expected rcron.conf" \
			"$TMP/expected.conf" "$TMP/got.conf"
	else
		fail "uci2conf: exit $? on the sample:"
		sed 's/^/      /' "$TMP/err"
	fi
	if out=$("$RCRON" --check --conf "$TMP/got.conf" 2>&1); then
		ok "uci2conf: rcron --check accepts the result"
	else
		fail "uci2conf: rcron --check refuses the result:"
		printf '%s\n' "$out" | sed 's/^/      /'
	fi
	# The shipped /etc/config/rcron converts to a config rcron accepts.
	if sh "$UCI2CONF" -f dist/openwrt/rcron/files/rcron.config >"$TMP/shipped.conf" &&
		out=$("$RCRON" --check --conf "$TMP/shipped.conf" 2>&1); then
		ok "uci2conf: the shipped rcron.config converts to a valid rcron.conf"
	else
		fail "uci2conf: the shipped rcron.config does not give a valid rcron.conf:"
		printf '%s\n' "${out:-}" | sed 's/^/      /'
	fi
	# On OpenWrt the text comes from `uci export rcron`: a stub uci prints the sample.
	mkdir -p "$TMP/bin"
	cat >"$TMP/bin/uci" <<EOF
#!/bin/sh
[ "\$*" = "-q export rcron" ] || { echo "stub uci: unexpected \$*" >&2; exit 1; }
cat "$TMP/sample.uci"
EOF
	chmod 755 "$TMP/bin/uci"
	if (PATH=$TMP/bin:$PATH; unset RCRON_UCI_FILE; sh "$UCI2CONF" -o "$TMP/via-uci.conf" 2>/dev/null); then
		expect_file "uci2conf: through uci export (-o FILE)" "$TMP/expected.conf" "$TMP/via-uci.conf"
	else
		fail "uci2conf: failed through a stub uci"
	fi
	# Refused: a value with both quote characters, a non-boolean preempt.
	printf "config rcron\n\toption cluster_name 'a\"b'\\\\''c'\n\toption preempt maybe\n" >"$TMP/bad.uci"
	if sh "$UCI2CONF" -f "$TMP/bad.uci" >"$TMP/bad.out" 2>"$TMP/bad.err"; then
		fail "uci2conf: accepted values rcron.conf cannot carry"
	elif [ "$(grep -c 'cluster_name\|preempt' "$TMP/bad.err")" -ne 2 ]; then
		fail "uci2conf: both bad values should be named:"
		sed 's/^/      /' "$TMP/bad.err"
	else
		ok "uci2conf: refuses (and names) values rcron.conf cannot carry"
	fi
	# --enabled: the default is enabled; '0' is not.
	if sh "$UCI2CONF" -f "$TMP/sample.uci" --enabled &&
		printf 'config rcron\n' >"$TMP/e1.uci" && sh "$UCI2CONF" -f "$TMP/e1.uci" --enabled &&
		printf "config rcron\n\toption enabled '0'\n" >"$TMP/e0.uci" &&
		! sh "$UCI2CONF" -f "$TMP/e0.uci" --enabled; then
		ok "uci2conf: --enabled"
	else
		fail "uci2conf: --enabled gives the wrong answer"
	fi
}

# ---- the procd init script ------------------------------------------------------------------

# Runs in a subshell: the init script's functions and the stubs stay there. The stubs are
# called by the sourced init script, which shellcheck does not see:
# shellcheck disable=SC2317
check_procd() (
	log=$TMP/procd.log
	: >"$log"
	# rc.common and procd.sh provide these on OpenWrt; here they log their arguments,
	# one bracketed word each, so that word boundaries show.
	stub() {
		printf '%s' "$1"
		shift
		for a in "$@"; do printf ' [%s]' "$a"; done
		printf '\n'
	}
	procd_open_instance() { stub open_instance "$@" >>"$log"; }
	procd_set_param() { stub set_param "$@" >>"$log"; }
	procd_append_param() { stub append_param "$@" >>"$log"; }
	procd_close_instance() { stub close_instance "$@" >>"$log"; }
	procd_send_signal() { stub send_signal "$@" >>"$log"; }
	procd_add_reload_trigger() { stub add_reload_trigger "$@" >>"$log"; }
	procd_running() { stub running "$@" >>"$log"; [ "$RUNNING" = yes ]; }
	start() { stub start "$@" >>"$log"; }
	stop() { stub stop "$@" >>"$log"; }
	logger() { stub logger "$@" >>"$log"; }

	# (linted on its own by check_shellcheck)
	# shellcheck source=/dev/null
	. "$TOP/dist/openwrt/rcron/files/rcron.init"

	defaults="$START $STOP $USE_PROCD $PROG $UCI2CONF $RCRON_CONF"
	want="45 10 1 /usr/sbin/rcron /usr/libexec/rcron/uci2conf.sh /var/etc/rcron.conf"
	if [ "$defaults" = "$want" ]; then
		ok "procd: START STOP USE_PROCD PROG UCI2CONF RCRON_CONF = $want"
	else
		fail "procd: START STOP USE_PROCD PROG UCI2CONF RCRON_CONF = $defaults, not $want"
	fi
	# The paths, made local: the real binary for --check, the converter from dist/.
	PROG=$RCRON
	UCI2CONF=$TOP/dist/openwrt/rcron/files/uci2conf.sh
	RCRON_CONF=$TMP/var/etc/rcron.conf
	RCRON_UCI_FILE=$TMP/uci
	export RCRON_UCI_FILE
	cp "$TMP/sample.uci" "$TMP/uci"
	RUNNING=no

	# start_service: the converted config, then exactly one instance with these params.
	start_service
	rc=$?
	cat >"$TMP/want.log" <<EOF
open_instance
set_param [command] [$PROG] [--daemon] [--foreground] [--conf] [$RCRON_CONF]
set_param [respawn] [3600] [5] [5]
set_param [term_timeout] [15]
close_instance
EOF
	[ $rc -eq 0 ] || fail "procd: start_service returned $rc"
	expect_file "procd: start_service sets the command line and respawn" "$TMP/want.log" "$log"
	if [ -f "$RCRON_CONF" ]; then
		expect_file "procd: start_service writes the converted config" \
			"$TMP/expected.conf" "$RCRON_CONF"
	else
		fail "procd: start_service wrote no $RCRON_CONF"
	fi
	[ -e "$RCRON_CONF.new" ] && fail "procd: $RCRON_CONF.new left behind"

	# reload_service while running: the new config in place, then SIGHUP, nothing else.
	: >"$log"
	sed -i "s/option priority '150'/option priority '120'/" "$TMP/uci"
	RUNNING=yes
	reload_service
	rc=$?
	printf 'running [rcron]\nsend_signal [rcron] [*] [HUP]\n' >"$TMP/want.log"
	[ $rc -eq 0 ] || fail "procd: reload_service returned $rc"
	expect_file "procd: reload_service sends HUP to the running instance" "$TMP/want.log" "$log"
	if grep -qx 'priority = 120' "$RCRON_CONF"; then
		ok "procd: reload_service rewrites the config"
	else
		fail "procd: reload_service did not rewrite $RCRON_CONF"
	fi

	# reload_service with a config rcron refuses: no signal, the running file untouched.
	: >"$log"
	cp "$RCRON_CONF" "$TMP/before.conf"
	sed -i "s/option priority '120'/option priority '300'/" "$TMP/uci"
	if reload_service; then
		fail "procd: reload_service succeeded with priority 300"
	fi
	if grep -q send_signal "$log" || ! grep -q '^logger .*priority' "$log"; then
		fail "procd: an invalid config must be logged and not signalled:"
		sed 's/^/      /' "$log"
	else
		ok "procd: an invalid config is logged, not signalled"
	fi
	expect_file "procd: an invalid config leaves the running file as it was" \
		"$TMP/before.conf" "$RCRON_CONF"
	[ -e "$RCRON_CONF.new" ] && fail "procd: $RCRON_CONF.new left behind"

	# reload_service when not running: start.
	: >"$log"
	sed -i "s/option priority '300'/option priority '120'/" "$TMP/uci"
	RUNNING=no
	reload_service
	printf 'running [rcron]\nstart\n' >"$TMP/want.log"
	expect_file "procd: reload_service starts a stopped daemon" "$TMP/want.log" "$log"

	# Disabled: start_service starts nothing; reload_service stops.
	: >"$log"
	sed -i "s/option enabled '1'/option enabled '0'/" "$TMP/uci"
	start_service
	reload_service
	printf 'stop\n' >"$TMP/want.log"
	expect_file "procd: disabled: start_service starts nothing, reload_service stops" \
		"$TMP/want.log" "$log"

	# service_triggers: `uci commit rcron` reloads.
	: >"$log"
	service_triggers
	printf 'add_reload_trigger [rcron]\n' >"$TMP/want.log"
	expect_file "procd: service_triggers reloads on uci commit rcron" "$TMP/want.log" "$log"
)

# ---- the packages' file lists -----------------------------------------------------------

check_packages() {
	# Files of the repository that dist/buildroot/rcron/rcron.mk installs ($(@D)/PATH),
	# and files of the package directories.
	sed -n 's/.*\$(@D)\/\([^ ]*\).*/\1/p' dist/buildroot/rcron/rcron.mk |
		grep -v '^target/' >"$TMP/br-files"
	while read -r f; do
		[ -f "$f" ] || fail "buildroot: rcron.mk installs $f, which the repository lacks"
	done <"$TMP/br-files"
	sed -n 's/.*\$(RCRON_PKGDIR)\/\([^ ]*\).*/\1/p' dist/buildroot/rcron/rcron.mk >"$TMP/br-pkg"
	while read -r f; do
		[ -f "dist/buildroot/rcron/$f" ] || fail "buildroot: rcron.mk installs $f, missing"
	done <"$TMP/br-pkg"
	sed -n 's/.*\$(INSTALL_[A-Z]*) \.\/\([^ ]*\).*/\1/p' dist/openwrt/rcron/Makefile >"$TMP/ow-files"
	while read -r f; do
		[ -f "dist/openwrt/rcron/$f" ] || fail "openwrt: the Makefile installs $f, missing"
	done <"$TMP/ow-files"
	for f in br-files br-pkg ow-files; do
		[ -s "$TMP/$f" ] || fail "packages: no installed files found ($f): the patterns are stale"
	done
	grep -qxF '$(eval $(cargo-package))' dist/buildroot/rcron/rcron.mk ||
		fail "buildroot: rcron.mk does not use the cargo-package infrastructure"
	grep -qxF '	depends on BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS' dist/buildroot/rcron/Config.in ||
		fail "buildroot: Config.in must depend on BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS"
	grep -qxF '	select BR2_PACKAGE_HOST_RUSTC' dist/buildroot/rcron/Config.in ||
		fail "buildroot: Config.in must select BR2_PACKAGE_HOST_RUSTC"
	grep -qxF '$(eval $(call RustBinPackage,rcron))' dist/openwrt/rcron/Makefile ||
		fail "openwrt: the Makefile does not use RustBinPackage"
	[ -x dist/buildroot/rcron/S90rcron ] || fail "buildroot: S90rcron is not executable"
	for f in rcron.init uci2conf.sh; do
		[ -x "dist/openwrt/rcron/files/$f" ] || fail "openwrt: files/$f is not executable"
	done
	# The license file Buildroot checks against its hash (legal-info).
	grep '  LICENSE$' dist/buildroot/rcron/rcron.hash | sed 's/^sha256 //' | sha256sum -c --quiet ||
		fail "buildroot: rcron.hash does not match LICENSE"
	ok "packages: the installed files exist, LICENSE matches its hash"
}

check_systemd
check_shellcheck
check_uci2conf
check_procd
check_packages

n=$(wc -l <"$TMP/failures")
if [ "$n" -ne 0 ]; then
	printf '\ntests/dist.sh: %d check(s) failed:\n' "$n"
	sed 's/^/  - /' "$TMP/failures"
	exit 1
fi
printf '\ntests/dist.sh: all checks passed\n'
