#!/usr/bin/env bash
# Builds (once) a minimal Debian bookworm root with systemd as PID 1, for the
# nspawn test. Cached under $HOOKSD_NSPAWN_CACHE so CI pays the ~70 s once.
# Prints the image's path on stdout.
set -euo pipefail

cache=${HOOKSD_NSPAWN_CACHE:-/var/cache/hooksd-nspawn}
image="$cache/bookworm"
if [ -x "$image/lib/systemd/systemd" ] && [ -e "$image/.complete" ]; then
  echo "$image"
  exit 0
fi

# The machine's own Debian mirror (deb822 sources first, then the one-line format).
mirror=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -1 || true)
if [ -z "$mirror" ]; then
  mirror=$(grep -hsE '^deb +(\[[^]]*\] +)?https?://' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    | grep -v -- '-security' | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}' | head -1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$cache"
# Build beside the final path and rename, so an interrupted build is never mistaken for an image.
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "building $image from $mirror (once)" >&2
debootstrap --variant=minbase --include=systemd,dbus bookworm "$work/root" "$mirror" >&2
# No getty on a console nobody reads; boot straight to multi-user.
rm -f "$work/root/etc/systemd/system/getty.target.wants/"* 2>/dev/null || true
touch "$work/root/.complete"
rm -rf "$image"
mv "$work/root" "$image"
echo "$image"
