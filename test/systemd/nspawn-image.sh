#!/usr/bin/env bash
# Builds (once) a minimal Debian bookworm root with systemd as PID 1 for the
# nspawn test, from this machine's configured Debian mirror. Cached under
# $HOOKSD_NSPAWN_CACHE (default /var/cache/hooksd-nspawn) so CI pays the ~70 s
# once. Prints the image's path on stdout; progress goes to stderr.
set -euo pipefail

cache=${HOOKSD_NSPAWN_CACHE:-/var/cache/hooksd-nspawn}
image="$cache/bookworm"
ready() { [ -e "$image/.hooksd-image-complete" ] && [ -x "$image/lib/systemd/systemd" ]; }
if ready; then echo "$image"; exit 0; fi

mkdir -p "$cache"
# Several test runs may start at once: one builds, the others wait for it.
exec 9>"$cache/.lock"
flock 9
if ready; then echo "$image"; exit 0; fi

# The machine's own Debian mirror: deb822 sources first, then the one-line format.
mirror=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -1 || true)
if [ -z "$mirror" ]; then
  mirror=$(grep -hsE '^deb +(\[[^]]*\] +)?https?://' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    | grep -v -- '-security' | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}' | head -1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

# Built beside the final path and renamed, so an interrupted build is never mistaken for an image.
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "building $image with debootstrap from $mirror (once, about a minute)" >&2
debootstrap --variant=minbase --include=systemd,dbus bookworm "$work/root" "$mirror" >&2
touch "$work/root/.hooksd-image-complete"
rm -rf "$image"
mv "$work/root" "$image"
echo "$image"
