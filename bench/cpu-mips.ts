/**
 * `node --import tsx bench/cpu-mips.ts [--jit | --no-jit] [workload[:scale] ...]` (default: int branchy
 * mem at their --short scale): runs each workload on tskvm in this process and prints MIPS on
 * the process's CPU time (`process.cpuUsage()`, user + system) over the whole run, with the
 * retired-instruction count of the vCPU at its last serial line. CPU time moves far less than
 * wall time on the shared machine; compare configurations by alternating runs of this script.
 * `--jit` / `--no-jit` turn the block compiler (src/hw/x86/block_jit.ts) on / off for an A/B
 * comparison; without either, its default applies.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runOnTskvm } from "./peers/tskvm.js";
import { WORKLOADS } from "./workloads.js";
import { blockJit } from "../src/hw/x86/block_jit.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
if (args.includes("--jit")) blockJit.enabled = true;
if (args.includes("--no-jit")) blockJit.enabled = false;
const names = args.filter((a) => !a.startsWith("--"));

for (const spec of names.length ? names : ["int", "branchy", "mem"]) {
  const [name, sc] = spec.split(":");
  const w = WORKLOADS.find((x) => x.name === name);
  if (!w) throw new Error(`cpu-mips: unknown workload ${name}`);
  const scale = sc ? Number(sc) : w.scale.tskvm[1];
  const bytes = new Uint8Array(readFileSync(join(root, "guests", "build", "bench", `${w.guest}-64.bin`)));
  const at = Buffer.from(bytes.buffer).indexOf(Buffer.from("BNCHSCAL", "latin1"));
  if (at < 0) throw new Error(`${w.guest}: no BNCHSCAL marker`);
  new DataView(bytes.buffer).setUint32(at + 8, scale, true);
  const mem = (JSON.parse(readFileSync(join(root, "guests", "build", "bench", `${w.guest}-64.json`), "utf8")) as { mem: number }).mem;
  const c0 = process.cpuUsage();
  const run = runOnTskvm(bytes, mem, 120_000);
  const c = process.cpuUsage(c0);
  const insns = run.lines.at(-1)?.endInsns ?? NaN;
  const sec = (c.user + c.system) / 1e6;
  console.log(`${name} s${scale} jit=${blockJit.enabled ? "on" : "off"} stop=${run.stop} insns=${insns} cpu=${sec.toFixed(2)}s MIPS=${(insns / sec / 1e6).toFixed(1)}`);
}
