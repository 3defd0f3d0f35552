/**
 * The QEMU TCG peer: boots a guests/bench image with `qemu-system-x86_64 -accel tcg -kernel`
 * (Multiboot; the flat image's header has the address fields, so QEMU takes it although the
 * code inside is 64-bit), serial on stdout, isa-debug-exit at 0xf4. Lines are timestamped when
 * their bytes reach this process through the pipe, so QEMU's per-line times carry pipe and
 * event-loop latency (well under a millisecond); the bench keeps QEMU's phases long enough for
 * that not to matter. The origin is the spawn, so firstByteNs includes QEMU's own start-up.
 */
import { spawn, spawnSync } from "node:child_process";
import type { PeerRun, SerialLine } from "./types.js";

/** Why QEMU cannot be used here, or undefined. */
export function qemuUnavailable(): string | undefined {
  const r = spawnSync("qemu-system-x86_64", ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return "qemu-system-x86_64 not found (bench/setup.sh installs it)";
  return undefined;
}

export function qemuVersion(): string {
  const r = spawnSync("qemu-system-x86_64", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.split("\n")[0]!.trim() : "unknown";
}

export function runOnQemu(imagePath: string, memBytes: number, maxMs: number): Promise<PeerRun> {
  const memMiB = Math.max(16, Math.ceil(memBytes / (1 << 20)));
  const args = ["-accel", "tcg", "-display", "none", "-no-reboot", "-m", String(memMiB), "-serial", "stdio",
    "-monitor", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", imagePath];
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const ns = (): number => Number(process.hrtime.bigint() - t0);
    const child = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "pipe", "pipe"] });
    const lines: SerialLine[] = [];
    let text = "";
    let start = -1;
    let first = -1;
    let stderr = "";
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill("SIGKILL"); }, maxMs);
    child.stdout.on("data", (chunk: Buffer) => {
      const t = ns();
      for (const c of chunk) {
        if (first < 0) first = t;
        if (start < 0) start = t;
        if (c === 0x0a) {
          lines.push({ startNs: start, endNs: t, text });
          text = "";
          start = -1;
        } else {
          text += String.fromCharCode(c);
        }
      }
    });
    child.stderr.on("data", (c: Buffer) => { stderr += c.toString(); });
    child.on("error", (e) => { clearTimeout(timer); reject(e); });
    child.on("close", (status) => {
      clearTimeout(timer);
      if (text.length > 0) lines.push({ startNs: start, endNs: ns(), text });
      // isa-debug-exit makes QEMU exit with (value << 1) | 1.
      const stop = timedOut ? "timeout" : status !== null && (status & 1) === 1 ? "exit-port" : "shutdown";
      resolve({ lines, firstByteNs: first, stop, detail: stderr.trim(), exits: 0, io: 0, mmio: 0, hasInsns: false });
    });
  });
}
