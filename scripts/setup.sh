#!/usr/bin/env bash
# System packages the project needs: the guest toolchain (gcc/binutils) and, where allowed,
# QEMU as a comparison peer. Idempotent; quiet when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v as >/dev/null || need+=(binutils)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need[@]}"
  else
    echo "setup: please install: ${need[*]}" >&2
  fi
fi

# QEMU is the reference for the guests whose .expected came from QEMU TCG (`expect=qemu` in
# their header; regenerate with `node scripts/build-guests.mjs --update-expected`). Peers only:
# CI never needs it, so it is skipped when CI is set.
if [ -z "${CI:-}" ] && ! command -v qemu-system-x86_64 >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq qemu-system-x86 >/dev/null || echo "setup: qemu-system-x86 not installed (optional)" >&2
  else
    echo "setup: optional: install qemu-system-x86 to regenerate QEMU-sourced guest expectations" >&2
  fi
fi

# Debian's kernel and busybox for test/linux/boot.test.ts (scripts/linux/fetch.sh, into
# .cache/linux, outside git). Developer machines only: the boot takes a minute or more of host
# time, so CI leaves it out (the test then skips, naming the missing images).
if [ -z "${CI:-}" ] && [ "$(id -u)" = 0 ] && [ ! -f .cache/linux/vmlinux ]; then
  { sh scripts/linux/fetch.sh >/dev/null 2>&1 || { apt-get update -qq && sh scripts/linux/fetch.sh >/dev/null; }; } \
    || echo "setup: Debian kernel images not fetched (test/linux skips)" >&2
fi
