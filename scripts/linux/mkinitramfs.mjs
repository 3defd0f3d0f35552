#!/usr/bin/env node
// Build a minimal initramfs (newc cpio; gzip when the name ends in .gz) around a static busybox:
//   /bin/busybox, /bin/sh -> busybox, /dev/console, /dev/ttyS0, /init.
// /init mounts proc/sys/dev, installs the applet links, prints the READY marker and runs a
// shell on the console.  Usage: mkinitramfs.mjs <busybox> <out.cpio[.gz]>
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

export const READY_MARKER = "TSKVM-SHELL-READY";

const INIT = `#!/bin/sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PS1='# '
echo ${READY_MARKER}
exec /bin/sh
`;

const [busyboxPath, outPath] = process.argv.slice(2);
if (!busyboxPath || !outPath) {
  console.error("usage: mkinitramfs.mjs <busybox> <out.cpio.gz>");
  process.exit(2);
}

const S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000, S_IFCHR = 0o020000;
const parts = [];
let ino = 1;
const hex8 = (n) => n.toString(16).padStart(8, "0");
const pad4 = (n) => (4 - (n % 4)) % 4;

/** One newc record (include/linux cpio "070701" format, see the kernel's initramfs docs). */
function entry(name, mode, data = Buffer.alloc(0), rdevMajor = 0, rdevMinor = 0) {
  const nameBytes = Buffer.from(name + "\0");
  const header =
    "070701" + hex8(ino++) + hex8(mode) + hex8(0) + hex8(0) + hex8(1) + hex8(0) +
    hex8(data.length) + hex8(0) + hex8(0) + hex8(rdevMajor) + hex8(rdevMinor) +
    hex8(nameBytes.length) + hex8(0);
  parts.push(Buffer.from(header, "ascii"), nameBytes, Buffer.alloc(pad4(110 + nameBytes.length)));
  parts.push(data, Buffer.alloc(pad4(data.length)));
}

for (const d of ["bin", "dev", "proc", "sys", "tmp", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root"]) {
  entry(d, S_IFDIR | 0o755);
}
entry("bin/busybox", S_IFREG | 0o755, readFileSync(busyboxPath));
entry("bin/sh", S_IFLNK | 0o777, Buffer.from("busybox"));
entry("dev/console", S_IFCHR | 0o600, undefined, 5, 1);
entry("dev/ttyS0", S_IFCHR | 0o660, undefined, 4, 64);
entry("init", S_IFREG | 0o755, Buffer.from(INIT));
entry("TRAILER!!!", 0);
// A plain .cpio is accepted by the kernel too and skips the in-guest gunzip (~30 s emulated).
const cpio = Buffer.concat(parts);
writeFileSync(outPath, outPath.endsWith(".gz") ? gzipSync(cpio, { level: 9 }) : cpio);
