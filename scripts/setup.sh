#!/usr/bin/env bash
# System packages the project needs: the guest toolchain (gcc/binutils) and, where allowed,
# QEMU as a comparison peer. Idempotent; quiet when everything is there.
set -euo pipefail
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
