#!/bin/sh
# uci2conf.sh: writes rcron.conf from the UCI config /etc/config/rcron.
#
# usage: uci2conf.sh [-f UCI_FILE] [-o OUT]   print rcron.conf (to OUT with -o, replaced
#                                             atomically)
#        uci2conf.sh [-f UCI_FILE] --enabled  exit 0 when the config says enabled (the
#                                             default), 1 when not
#
# Where the UCI config comes from (uci_text below, the only place that reads it):
#   -f UCI_FILE or $RCRON_UCI_FILE   that file, in UCI's file syntax (tests, other systems)
#   `uci` on PATH                    `uci export rcron` (the committed config)
#   otherwise                        /etc/config/rcron, read as a file
#
# The mapping: every option of a `config rcron` section is the rcron.conf key of the same
# name (see rcron.conf(5)); a `list` gives the key once per item. Not passed on:
# `enabled` (the init script's), and empty values (unset in UCI terms). `preempt` and
# `run_ledger` take UCI booleans (1/0, yes/no, on/off, true/false, enabled/disabled).
# The commands (notify_active, notify_passive, notify_fault, track_script) are written
# as they are: rcron splits them into words itself, quotes grouping. Other values that
# contain blanks, quotes, `#` or `;` are quoted; a value with both kinds of quotes cannot
# be written in rcron.conf and is an error. Unknown options are passed on: `rcron --check`
# reports them with the rest.
#
# Exit: 0; 1 when a value cannot be written (each one is named on stderr) or the UCI
# config cannot be read; 64 on a usage error.

UCI_FILE=${RCRON_UCI_FILE:-}
OUT=
MODE=conf

usage() {
	sed -n 's/^# \{0,1\}//; /^usage:/,/^$/p' "$0" | sed '/^$/d' >&2
	exit 64
}

while [ $# -gt 0 ]; do
	case $1 in
		-f) [ $# -ge 2 ] || usage; UCI_FILE=$2; shift ;;
		-o) [ $# -ge 2 ] || usage; OUT=$2; shift ;;
		--enabled) MODE=enabled ;;
		-h | --help) usage ;;
		*) echo "uci2conf.sh: unknown argument $1" >&2; usage ;;
	esac
	shift
done

# Prints the UCI config rcron in UCI's file syntax (what `uci export` prints).
uci_text() {
	if [ -n "$UCI_FILE" ]; then
		cat "$UCI_FILE"
	elif command -v uci >/dev/null 2>&1; then
		uci -q export rcron
	else
		cat /etc/config/rcron
	fi
}

# Reads UCI file syntax on stdin; MODE=conf prints rcron.conf, MODE=enabled prints 1 or 0.
convert() {
	awk -v mode="$MODE" '
	function fail(msg) {
		printf "uci2conf.sh: %s\n", msg > "/dev/stderr"
		errors++
	}
	# Splits the line into tok[1..ntok] as UCI does: blanks separate words, single quotes
	# quote everything, double quotes and bare words take backslash escapes, adjacent
	# pieces join (`'\''`), `#` at the start of a word starts a comment.
	function tokenize(line,   i, c, n, cur, have, q) {
		ntok = 0; cur = ""; have = 0; q = ""; n = length(line)
		for (i = 1; i <= n; i++) {
			c = substr(line, i, 1)
			if (q == "\047") {
				if (c == "\047") q = ""; else cur = cur c
			} else if (q == "\"") {
				if (c == "\\" && i < n) { i++; cur = cur substr(line, i, 1) }
				else if (c == "\"") q = ""
				else cur = cur c
			} else if (c == " " || c == "\t") {
				if (have) { tok[++ntok] = cur; cur = ""; have = 0 }
			} else if (c == "#" && !have) {
				break
			} else if (c == "\047" || c == "\"") {
				q = c; have = 1
			} else if (c == "\\" && i < n) {
				i++; cur = cur substr(line, i, 1); have = 1
			} else {
				cur = cur c; have = 1
			}
		}
		if (q != "") return 0
		if (have) tok[++ntok] = cur
		return 1
	}
	function is_bool_key(k) { return k == "preempt" || k == "run_ledger" }
	function is_command_key(k) {
		return k == "notify_active" || k == "notify_passive" || k == "notify_fault" || k == "track_script"
	}
	function is_list_key(k) {
		return k == "unicast_peer" || k == "virtual_ipaddress" || k == "track_interface" || k == "etcd_endpoints"
	}
	function bool(v, where) {
		v = tolower(v)
		if (v ~ /^(1|yes|on|true|enabled)$/) return "yes"
		if (v ~ /^(0|no|off|false|disabled)$/) return "no"
		fail(where ": " v " is not a boolean (1/0, yes/no, on/off, true/false)")
		return ""
	}
	# The value as rcron.conf reads it back: bare when it is one word (or, for a list
	# key, words rcron splits anyway), else quoted.
	function quote(k, v, where) {
		if (v !~ /[ \t#;"\047]/) return v
		if (is_list_key(k) && v !~ /[#;"\047]/) return v
		if (v !~ /"/) return "\"" v "\""
		if (v !~ /\047/) return "\047" v "\047"
		fail(where ": the value has both quote characters, which rcron.conf cannot carry")
		return ""
	}
	function emit(k, v, where) {
		if (v == "") return
		if (k == "enabled") {
			if (enabled == "") enabled = v
			return
		}
		if (v ~ /[\r\n]/) { fail(where ": the value spans lines"); return }
		if (is_bool_key(k)) v = bool(v, where)
		else if (!is_command_key(k)) v = quote(k, v, where)
		if (v != "") out[++nout] = k " = " v
	}
	BEGIN { section = ""; stype = ""; anon = 0 }
	{
		sub(/\r$/, "")
		if (!tokenize($0)) { fail("line " NR ": unterminated quote"); next }
		if (ntok == 0) next
		if (tok[1] == "package") next
		if (tok[1] == "config") {
			stype = tok[2]
			section = (ntok >= 3) ? tok[3] : "@" stype "[" anon++ "]"
			if (stype != "rcron" && mode == "conf")
				printf "uci2conf.sh: line %d: section type %s ignored (only `config rcron`)\n", NR, stype > "/dev/stderr"
			else
				nsect++
			next
		}
		if (tok[1] == "option" || tok[1] == "list") {
			if (ntok < 2) { fail("line " NR ": " tok[1] " without a name"); next }
			if (stype == "") { fail("line " NR ": " tok[1] " outside a section"); next }
			if (stype != "rcron") next
			emit(tok[2], (ntok >= 3) ? tok[3] : "", "rcron." section "." tok[2])
			next
		}
		fail("line " NR ": not UCI syntax: " $0)
	}
	END {
		if (mode == "enabled") {
			v = tolower(enabled)
			print (v ~ /^(0|no|off|false|disabled)$/) ? 0 : 1
			exit errors ? 1 : 0
		}
		if (errors) exit 1
		if (nsect == 0) printf "uci2conf.sh: no `config rcron` section\n" > "/dev/stderr"
		print "# rcron.conf generated from the UCI config rcron (/etc/config/rcron) by uci2conf.sh."
		print "# Edit the UCI config (uci set rcron.main.KEY=VALUE; uci commit rcron), not this file."
		for (i = 1; i <= nout; i++) print out[i]
	}'
}

if ! text=$(uci_text); then
	echo "uci2conf.sh: cannot read the UCI config rcron" >&2
	exit 1
fi

if [ "$MODE" = enabled ]; then
	on=$(printf '%s\n' "$text" | convert) || exit 1
	[ "$on" = 1 ]
	exit
fi

if [ -z "$OUT" ]; then
	printf '%s\n' "$text" | convert
	exit
fi
tmp="$OUT.tmp.$$"
if printf '%s\n' "$text" | convert >"$tmp"; then
	mv -f "$tmp" "$OUT"
else
	rm -f "$tmp"
	exit 1
fi
