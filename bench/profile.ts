/**
 * `node --import tsx bench/profile.ts [workload ...]` (default: int branchy): runs each workload
 * on tskvm in a child `node --cpu-prof` and prints the functions with the most self time
 * (V8 sampling profile; samples' time deltas summed per function). Profiles are written to
 * bench/peers/build/prof/ (git-ignored).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runOnTskvm } from "./peers/tskvm.js";
import { WORKLOADS } from "./workloads.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const TOP = 15;

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

/**
 * Self time per function (ms), largest first, over the samples whose leaf is tskvm's own code
 * (src/, bench/): module loading, idle and GC are left out, and percentages are of that total.
 * Line numbers are dropped: tsx hands V8 transformed code, so they do not match the sources.
 */
export function selfTimes(p: CpuProfile): { name: string; ms: number; pct: number }[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const acc = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]!)!;
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    const f = n.callFrame;
    if (!f.url.startsWith("file://")) continue;
    const file = relative(root, fileURLToPath(f.url));
    if (!file.startsWith("src/") && !file.startsWith("bench/")) continue;
    total += dt;
    const key = `${f.functionName || "(anonymous)"} (${file})`;
    acc.set(key, (acc.get(key) ?? 0) + dt);
  }
  return [...acc].map(([name, ms]) => ({ name, ms, pct: (100 * ms) / total })).sort((a, b) => b.ms - a.ms);
}

function child(name: string): void {
  const w = WORKLOADS.find((x) => x.name === name);
  if (!w) throw new Error(`no workload ${name}`);
  const bin = join(root, "bench", "peers", "build", `${w.guest}-s${w.scale.tskvm[0]}.bin`);
  const mem = (JSON.parse(readFileSync(join(root, "guests", "build", "bench", `${w.guest}-64.json`), "utf8")) as { mem: number }).mem;
  const r = runOnTskvm(new Uint8Array(readFileSync(bin)), mem, 120_000);
  if (r.stop !== "exit-port") console.log(`${name}: the guest stopped early (stop=${r.stop} ${r.detail}); profiled up to there`);
}

function main(): void {
  const argv = process.argv.slice(2);
  if (argv[0] === "--child") return child(argv[1]!);
  // the scaled images (full-run scale) come from a bench run of tskvm alone
  const names = argv.length ? argv : ["int", "branchy"];
  const build = spawnSync(process.execPath, ["--import", "tsx", join(root, "bench", "run.ts"), "--peers", "tskvm", "--only", names.join(",")], { encoding: "utf8" });
  if (build.status !== 0 && build.status !== 1) throw new Error(`bench run failed: ${build.stderr}`);
  for (const name of names) {
    const dir = join(root, "bench", "peers", "build", "prof", name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const r = spawnSync(process.execPath, ["--cpu-prof", "--cpu-prof-dir", dir, "--import", "tsx", fileURLToPath(import.meta.url), "--child", name], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`profile of ${name} failed: ${r.stderr}`);
    const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))!;
    const rows = selfTimes(JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile);
    const total = rows.reduce((a, x) => a + x.ms, 0);
    if (r.stdout.trim()) console.log(r.stdout.trim());
    console.log(`\n${name}: top ${TOP} by self time, of ${total.toFixed(0)} ms in tskvm code (${relative(root, join(dir, file))})\n`);
    console.log("| self ms | % | function |\n|---|---|---|");
    for (const x of rows.slice(0, TOP)) console.log(`| ${x.ms.toFixed(0)} | ${x.pct.toFixed(1)} | \`${x.name}\` |`);
  }
}

main();
