#!/bin/sh
# Fetch Debian's x86-64 kernel and busybox-static with apt, unpack them into a cache dir
# outside git, and build the initramfs.  Usage: scripts/linux/fetch.sh [cache-dir]
# Default cache dir: <repo>/.cache/linux.  Needs apt-get + dpkg-deb (Debian/Ubuntu host);
# apt-get update once beforehand (run as root).  Idempotent: existing files are kept.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${1:-$repo/.cache/linux}
mkdir -p "$cache/debs"
cd "$cache/debs"

# linux-image-amd64 is a metapackage: resolve the real image package it depends on.
kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
[ -n "$kpkg" ] || { echo "fetch.sh: cannot resolve linux-image-amd64 (apt-get update?)" >&2; exit 1; }
ls "$kpkg"_*.deb >/dev/null 2>&1 || apt-get download "$kpkg"
ls busybox-static_*.deb >/dev/null 2>&1 || apt-get download busybox-static

if [ ! -f "$cache/vmlinuz" ]; then
  rm -rf "$cache/kroot" && mkdir -p "$cache/kroot"
  dpkg-deb -x "$(ls "$kpkg"_*.deb | head -n1)" "$cache/kroot"
  cp "$cache"/kroot/boot/vmlinuz-* "$cache/vmlinuz"
  cp "$cache"/kroot/boot/System.map-* "$cache/System.map"
  cp "$cache"/kroot/boot/config-* "$cache/config"
  rm -rf "$cache/kroot"
fi
if [ ! -f "$cache/busybox" ]; then
  rm -rf "$cache/bbroot" && mkdir -p "$cache/bbroot"
  dpkg-deb -x "$(ls busybox-static_*.deb | head -n1)" "$cache/bbroot"
  cp "$cache/bbroot/bin/busybox" "$cache/busybox"
  rm -rf "$cache/bbroot"
fi
[ -f "$cache/vmlinux" ] || node "$here/extract-vmlinux.mjs" "$cache/vmlinuz" "$cache/vmlinux"
node "$here/mkinitramfs.mjs" "$cache/busybox" "$cache/initramfs.cpio.gz"
node "$here/mkinitramfs.mjs" "$cache/busybox" "$cache/initramfs.cpio"
echo "kernel:    $cache/vmlinuz ($kpkg)"
echo "vmlinux:   $cache/vmlinux (ELF, PVH entry)"
echo "initramfs: $cache/initramfs.cpio.gz, $cache/initramfs.cpio (uncompressed: faster to unpack)"
