#!/bin/sh
# Installs rcron into a firmware root filesystem (a directory that becomes the image):
#
#   DESTDIR/usr/sbin/rcron            the static binary (mode 0755)
#   DESTDIR/usr/sbin/rcrond           a link to it: invoked as rcrond it is the daemon
#   DESTDIR/etc/init.d/rcron          the init script (busybox sh + start-stop-daemon)
#   DESTDIR/usr/share/man/man8/rcron.8, man5/rcron.conf.5   the man pages (--no-man: not)
#   DESTDIR/etc/rcron/rcron.conf      the two-node example config        } kept if present,
#   DESTDIR/etc/crontabs/root         an example crontab (mode 0600)     } unless --force
#
# usage: rootfs/install.sh [--force] [--target TRIPLE | --binary FILE] DESTDIR
#   --target TRIPLE  take target/TRIPLE/release/rcron (built by cross/build);
#                    default x86_64-unknown-linux-musl
#   --binary FILE    take this binary instead
#   --force          overwrite an existing rcron.conf and crontab
#   --no-man         leave the man pages out (an image without man(1))
#
# Run as root (or under fakeroot) so that the files belong to root: busybox crond ignores
# a crontab that root does not own.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
force=0
man=1
target=x86_64-unknown-linux-musl
binary=

usage() {
    sed -n '/^# usage:/,/^#   --no-man/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit "${1:-64}"
}

while [ $# -gt 0 ]; do
    case $1 in
        --force) force=1 ;;
        --no-man) man=0 ;;
        --target) [ $# -ge 2 ] || usage; target=$2; shift ;;
        --binary) [ $# -ge 2 ] || usage; binary=$2; shift ;;
        -h | --help) usage 0 ;;
        -*) echo "install.sh: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
    shift
done
[ $# -eq 1 ] || usage
dest=$1
[ -n "$binary" ] || binary=$top/target/$target/release/rcron

if [ ! -f "$binary" ]; then
    echo "install.sh: $binary not found (build it with cross/build $target)" >&2
    exit 66
fi
if command -v readelf >/dev/null 2>&1 && readelf -lW "$binary" 2>/dev/null | grep -q INTERP; then
    echo "install.sh: warning: $binary is dynamically linked; the image needs its libraries" >&2
fi

mkdir -p "$dest"
install -D -m 0755 "$binary" "$dest/usr/sbin/rcron"
ln -sfn rcron "$dest/usr/sbin/rcrond"
install -D -m 0755 "$here/etc/init.d/rcron" "$dest/etc/init.d/rcron"
if [ $man -eq 1 ]; then
    install -D -m 0644 "$top/man/rcron.8" "$dest/usr/share/man/man8/rcron.8"
    install -D -m 0644 "$top/man/rcron.conf.5" "$dest/usr/share/man/man5/rcron.conf.5"
fi

# conffile SRC DEST MODE: installs SRC unless DEST exists (or --force).
conffile() {
    if [ -e "$2" ] && [ $force -eq 0 ]; then
        echo "install.sh: kept existing ${2#"$dest"} (--force replaces it)"
    else
        install -D -m "$3" "$1" "$2"
    fi
}
conffile "$here/etc/rcron/rcron.conf" "$dest/etc/rcron/rcron.conf" 0644
conffile "$here/etc/crontabs/root" "$dest/etc/crontabs/root" 0600

echo "install.sh: installed $binary ($(wc -c <"$binary" | tr -d ' ') bytes) into $dest"
