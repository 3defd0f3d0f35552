/**
 * The real-KVM peer: builds bench/peers/kvm-bench.c with the system gcc (into
 * bench/peers/build/, git-ignored) and runs an image through it on /dev/kvm.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { PeerRun, SerialLine } from "./types.js";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "kvm-bench.c");
const bin = join(here, "build", "kvm-bench");

/** Builds kvm-bench if it is missing or older than its source; returns why it cannot, or undefined. */
export function kvmUnavailable(): string | undefined {
  if (!existsSync("/dev/kvm")) return "no /dev/kvm";
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(dirname(bin), { recursive: true });
    const r = spawnSync("gcc", ["-O2", "-Wall", "-Wextra", "-Werror", "-o", bin, src], { encoding: "utf8" });
    if (r.error) return `gcc: ${r.error.message}`;
    if (r.status !== 0) return `gcc failed: ${r.stderr}`;
  }
  return undefined;
}

export function runOnKvm(imagePath: string, memBytes: number, maxMs: number): PeerRun {
  const r = spawnSync(bin, [imagePath, `0x${memBytes.toString(16)}`], { encoding: "utf8", timeout: maxMs });
  if (r.error) throw new Error(`kvm-bench: ${r.error.message}`);
  if (r.status === 3) throw new Error(`kvm-bench: no usable KVM: ${r.stderr.trim()}`);
  if (r.status !== 0) throw new Error(`kvm-bench: status ${r.status}: ${r.stderr.trim()}`);
  const lines: SerialLine[] = [];
  let first = -1;
  let stop = "error";
  let exits = 0, io = 0, mmio = 0;
  for (const l of r.stdout.split("\n")) {
    let m: RegExpExecArray | null;
    if ((m = /^L (\d+) (\d+) (.*)$/.exec(l))) lines.push({ startNs: Number(m[1]), endNs: Number(m[2]), text: m[3]! });
    else if ((m = /^F (-?\d+)$/.exec(l))) first = Number(m[1]);
    else if ((m = /^S (\S+) exits=(\d+) io=(\d+) mmio=(\d+)$/.exec(l))) {
      stop = m[1]!; exits = Number(m[2]); io = Number(m[3]); mmio = Number(m[4]);
    }
  }
  return { lines, firstByteNs: first, stop, detail: r.stderr.trim(), exits, io, mmio, hasInsns: false };
}
