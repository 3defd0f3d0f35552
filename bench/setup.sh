#!/bin/sh
# Prepares a fresh Debian machine for `npm run bench`: the C toolchain (guests/bench and
# bench/peers/kvm-bench.c) and QEMU TCG as a peer. Idempotent: installs only what is missing.
# The real-KVM peer needs read/write access to /dev/kvm; without it that peer is skipped.
set -eu

need=""
command -v gcc >/dev/null 2>&1 || need="$need gcc"
command -v as >/dev/null 2>&1 || need="$need binutils"
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"

if [ -n "$need" ]; then
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	$sudo apt-get update
	# shellcheck disable=SC2086 # word splitting of the package list is intended
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends $need
fi

qemu-system-x86_64 --version | head -n 1
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	echo "/dev/kvm: usable"
else
	echo "/dev/kvm: not usable by $(id -un); the real-KVM peer will be skipped"
fi
