#!/usr/bin/env node
// Pull the ELF vmlinux out of a bzImage: the setup header's payload_offset/payload_length
// (Documentation/arch/x86/boot.rst, protocol 2.08+) locate the compressed kernel inside the
// protected-mode part; it is decompressed with the matching host tool.  Booting the ELF via
// PVH skips the in-guest decompressor (tens of seconds of emulated xz).
// Usage: extract-vmlinux.mjs <bzImage> <out-vmlinux>
import { readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

const [inPath, outPath] = process.argv.slice(2);
if (!inPath || !outPath) {
  console.error("usage: extract-vmlinux.mjs <bzImage> <out-vmlinux>");
  process.exit(2);
}
const img = readFileSync(inPath);
if (img.readUInt32LE(0x202) !== 0x53726448) throw new Error(`${inPath}: no 'HdrS' setup header`);
const setupSects = img[0x1f1] || 4;
const pmStart = (setupSects + 1) * 512;
const payloadOffset = img.readUInt32LE(0x248);
const payloadLength = img.readUInt32LE(0x24c);
const payload = img.subarray(pmStart + payloadOffset, pmStart + payloadOffset + payloadLength);

const tools = [
  { magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], cmd: "xz", args: ["-dc", "--single-stream"] },
  { magic: [0x1f, 0x8b], cmd: "gzip", args: ["-dc"] },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], cmd: "zstd", args: ["-dc"] },
  { magic: [0x02, 0x21, 0x4c, 0x18], cmd: "lz4", args: ["-dc", "-l"] },
];
const tool = tools.find((t) => t.magic.every((b, i) => payload[i] === b));
if (!tool) throw new Error(`${inPath}: unknown payload compression (magic ${payload.subarray(0, 6).toString("hex")})`);
// The kernel build appends the uncompressed size after the stream; tools stop at stream end.
let out;
try {
  out = execFileSync(tool.cmd, tool.args, { input: payload, maxBuffer: 1 << 30, stdio: ["pipe", "pipe", "ignore"] });
} catch (e) {
  if (!e.stdout || e.stdout.length === 0) throw e;
  out = e.stdout; // trailing-garbage warnings (gzip) still produce the full stream
}
if (out.readUInt32BE(0) !== 0x7f454c46) throw new Error("decompressed payload is not an ELF file");
writeFileSync(outPath, out);
