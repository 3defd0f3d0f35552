/**
 * `npm run bench [-- options]`: runs each bench workload (bench/workloads.ts, guests in
 * guests/bench/) on tskvm in-process, on the real /dev/kvm through bench/peers/kvm-bench.c and on
 * QEMU TCG, one run at a time, and prints a markdown table of rates and of tskvm's rate as a
 * fraction of each peer's, measured in the same invocation.
 *
 *   --short              smaller runs (under a minute) and a check of the ratios against
 *                        bench/baseline.json: a ratio below half its baseline is a regression
 *                        (exit status 1). Ratios only, never absolute times.
 *   --update-baseline    write this run's ratios to bench/baseline.json
 *   --only a,b           workloads by name;  --peers tskvm,kvm,qemu   peers to run
 *   --json FILE          also write the raw results
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runOnTskvm } from "./peers/tskvm.js";
import { kvmUnavailable, runOnKvm } from "./peers/kvm.js";
import { qemuUnavailable, qemuVersion, runOnQemu } from "./peers/qemu.js";
import type { PeerRun } from "./peers/types.js";
import { WORKLOADS } from "./workloads.js";
import type { PeerName, Workload } from "./workloads.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const buildDir = join(root, "bench", "peers", "build");
const baselinePath = join(root, "bench", "baseline.json");
const PEERS: PeerName[] = ["tskvm", "kvm", "qemu"];
/** Wall-clock guard per run. */
const MAX_MS = 120_000;
/** A ratio below baseline * REGRESSION_FACTOR is flagged (generous: the machine is shared). */
const REGRESSION_FACTOR = 0.5;

interface Args { short: boolean; updateBaseline: boolean; only: string[] | null; peers: PeerName[]; json: string | null }

function parseArgs(argv: string[]): Args {
  const a: Args = { short: false, updateBaseline: false, only: null, peers: PEERS, json: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === "--short") a.short = true;
    else if (k === "--update-baseline") a.updateBaseline = true;
    else if (k === "--only") a.only = (argv[++i] ?? "").split(",");
    else if (k === "--peers") a.peers = (argv[++i] ?? "").split(",") as PeerName[];
    else if (k === "--json") a.json = argv[++i] ?? null;
    else throw new Error(`bench: unknown option ${k}`);
  }
  for (const p of a.peers) if (!PEERS.includes(p)) throw new Error(`bench: unknown peer ${p}`);
  return a;
}

interface Manifest { bin: string; mem: number }

function guestManifest(guest: string): Manifest {
  return JSON.parse(readFileSync(join(root, "guests", "build", "bench", `${guest}-64.json`), "utf8")) as Manifest;
}

/** The image with the scale word after the "BNCHSCAL" marker (guests/bench/bench.h) set. */
function scaledImage(guest: string, scale: number): { path: string; bytes: Uint8Array } {
  const bytes = new Uint8Array(readFileSync(join(root, "guests", "build", "bench", `${guest}-64.bin`)));
  const marker = Buffer.from("BNCHSCAL", "latin1");
  const at = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(marker);
  if (at < 0) throw new Error(`${guest}: no BNCHSCAL marker in the image`);
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(at + 8, scale, true);
  mkdirSync(buildDir, { recursive: true });
  const path = join(buildDir, `${guest}-s${scale}.bin`);
  writeFileSync(path, bytes);
  return { path, bytes };
}

interface PhaseResult {
  phase: string;
  seconds: number;
  units: number;
  unit: string;
  /** Guest instructions in the phase: tskvm's retired-instruction counter, else the guest's analytic count. */
  insns: number | null;
  insnsSource: "counter" | "analytic" | null;
}

interface PeerResult {
  peer: PeerName;
  scale: number;
  ok: boolean;
  /** Why the run did not produce the phases. */
  failure: string;
  phases: PhaseResult[];
  firstByteMs: number;
}

function kvPairs(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of text.split(" ").slice(2)) {
    const eq = part.indexOf("=");
    if (eq > 0) m.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return m;
}

function phasesOf(w: Workload, run: PeerRun): { phases: PhaseResult[]; failure: string } {
  const out: PhaseResult[] = [];
  for (const phase of w.phases) {
    const b = run.lines.find((l) => l.text === `@begin ${phase}`);
    const e = run.lines.find((l) => l.text.startsWith(`@end ${phase} `) || l.text === `@end ${phase}`);
    if (!b || !e) {
      const tail = run.lines.slice(-3).map((l) => l.text).join(" | ");
      return { phases: out, failure: `no ${b ? "end" : "begin"} of ${phase}: stop=${run.stop} ${run.detail} ${tail}`.trim() };
    }
    const kv = kvPairs(e.text);
    let insns: number | null = null;
    let insnsSource: PhaseResult["insnsSource"] = null;
    if (b.endInsns !== undefined && e.startInsns !== undefined) {
      insns = e.startInsns - b.endInsns;
      insnsSource = "counter";
    } else if (kv.has("insns")) {
      insns = Number(kv.get("insns"));
      insnsSource = "analytic";
    }
    out.push({
      phase, seconds: (e.startNs - b.endNs) / 1e9, units: Number(kv.get("units") ?? NaN), unit: kv.get("unit") ?? "?",
      insns, insnsSource,
    });
  }
  const okStop = run.stop === "exit-port" || run.stop === "hlt";
  return { phases: out, failure: okStop ? "" : `stop=${run.stop} ${run.detail}` };
}

async function runPeer(w: Workload, peer: PeerName, short: boolean): Promise<PeerResult> {
  const scale = w.scale[peer][short ? 1 : 0];
  const img = scaledImage(w.guest, scale);
  const mem = guestManifest(w.guest).mem;
  let run: PeerRun;
  try {
    if (peer === "tskvm") run = runOnTskvm(img.bytes, mem, MAX_MS);
    else if (peer === "kvm") run = runOnKvm(img.path, mem, MAX_MS);
    else run = await runOnQemu(img.path, mem, MAX_MS);
  } catch (e) {
    return { peer, scale, ok: false, failure: (e as Error).message.split("\n")[0]!, phases: [], firstByteMs: NaN };
  }
  const { phases, failure } = phasesOf(w, run);
  const ok = failure === "" && phases.length === w.phases.length && (w.phases.length > 0 || run.firstByteNs >= 0);
  return { peer, scale, ok, failure, phases, firstByteMs: run.firstByteNs / 1e6 };
}

const fmt = (x: number, digits = 3): string => {
  if (!Number.isFinite(x)) return "-";
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString("en-US");
  return x.toPrecision(digits);
};

/**
 * Phases shorter than this have no rate: QEMU's times come through a pipe, and a phase whose
 * begin and end lines arrive in one read is not measurable.
 */
const MIN_PHASE_S = 0.005;

function rateOf(p: PhaseResult): number { return p.seconds >= MIN_PHASE_S ? p.units / p.seconds : NaN; }

/** A short name for why a run failed (the full text goes under the table). */
function failureNote(r: PeerResult): string {
  const m = /(FAIL_ENTRY|INTERNAL_ERROR|SHUTDOWN|timeout|no usable KVM)/.exec(r.failure);
  return m ? m[1]! : "see below";
}

/** Machine-readable ratios: key "workload/phase/peer" -> tskvm rate / peer rate (boot: peer time / tskvm time). */
function ratios(results: Map<string, PeerResult[]>): Record<string, number> {
  const r: Record<string, number> = {};
  for (const [name, rs] of results) {
    const t = rs.find((x) => x.peer === "tskvm");
    if (!t) continue;
    for (const p of rs) {
      if (p.peer === "tskvm") continue;
      if (t.phases.length === 0 && t.ok && p.ok) r[`${name}/first-byte/${p.peer}`] = p.firstByteMs / t.firstByteMs;
      for (const ph of t.phases) {
        const q = p.phases.find((x) => x.phase === ph.phase);
        const v = q ? rateOf(ph) / rateOf(q) : NaN;
        if (Number.isFinite(v)) r[`${name}/${ph.phase}/${p.peer}`] = v;
      }
    }
  }
  return r;
}

function table(results: Map<string, PeerResult[]>, peers: PeerName[]): string {
  const rows: string[] = [];
  const others = peers.filter((p) => p !== "tskvm");
  rows.push(`| workload | ring | phase | unit | ${peers.map((p) => `${p} units/s`).join(" | ")} | ${peers.map((p) => `${p} MIPS`).join(" | ")} | ${others.map((p) => `tskvm/${p}`).join(" | ")} |`);
  rows.push(`|${"---|".repeat(4 + peers.length * 2 + others.length)}`);
  for (const w of WORKLOADS) {
    const rs = results.get(w.name);
    if (!rs) continue;
    const by = (p: PeerName): PeerResult | undefined => rs.find((x) => x.peer === p);
    const cell = (p: PeerName, f: (r: PeerResult) => string, phase?: string): string => {
      const r = by(p);
      if (!r) return "-";
      if (phase !== undefined && r.phases.some((x) => x.phase === phase)) return f(r);
      if (!r.ok) return `failed (${failureNote(r)})`;
      return f(r);
    };
    if (w.phases.length === 0) {
      const t = by("tskvm");
      rows.push(`| ${w.name} | ${w.ring} | first serial byte | ms | ${peers.map((p) => cell(p, (r) => `${fmt(r.firstByteMs)} ms`)).join(" | ")} | ${peers.map(() => "-").join(" | ")} | ${others.map((p) => {
        const r = by(p);
        return t?.ok && r?.ok ? fmt(r.firstByteMs / t.firstByteMs) : "-";
      }).join(" | ")} |`);
      continue;
    }
    for (const phase of w.phases) {
      const ph = (p: PeerName): PhaseResult | undefined => by(p)?.phases.find((x) => x.phase === phase);
      const unit = peers.map((p) => ph(p)?.unit).find((u) => u !== undefined) ?? "?";
      rows.push(`| ${w.name} | ${w.ring} | ${phase} | ${unit} | ${peers.map((p) => cell(p, () => {
        const q = ph(p);
        return q ? (Number.isNaN(rateOf(q)) ? `(< ${MIN_PHASE_S * 1000} ms)` : fmt(rateOf(q))) : "-";
      }, phase)).join(" | ")} | ${peers.map((p) => {
        const q = ph(p);
        return q && q.insns !== null && q.seconds >= MIN_PHASE_S ? `${fmt(q.insns / q.seconds / 1e6)}${q.insnsSource === "analytic" ? "" : " (ctr)"}` : "-";
      }).join(" | ")} | ${others.map((p) => {
        const t = ph("tskvm");
        const q = ph(p);
        return t && q ? fmt(rateOf(t) / rateOf(q)) : "-";
      }).join(" | ")} |`);
    }
  }
  return rows.join("\n");
}

/** Rate at the larger size over the rate at the smaller one, per peer, for the two-size workloads. */
function growth(results: Map<string, PeerResult[]>): string {
  const pairs: [string, string, string][] = [["exits", "pio-1x", "pio-4x"], ["exits", "mmio-1x", "mmio-4x"], ["pagefault", "pf-8M", "pf-32M"]];
  const lines: string[] = [];
  for (const [w, a, b] of pairs) {
    for (const r of results.get(w) ?? []) {
      const pa = r.phases.find((x) => x.phase === a);
      const pb = r.phases.find((x) => x.phase === b);
      if (pa && pb && Number.isFinite(rateOf(pa)) && Number.isFinite(rateOf(pb))) lines.push(`- ${r.peer} ${b} vs ${a}: rate x${fmt(rateOf(pb) / rateOf(pa))}, time x${fmt(pb.seconds / pa.seconds)} for x${fmt(pb.units / pa.units)} the work`);
    }
  }
  return lines.join("\n");
}

function buildGuests(): void {
  const r = spawnSync(process.execPath, [join(root, "scripts", "build-guests.mjs"), "bench/"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`guest build failed:\n${r.stdout}${r.stderr}`);
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  buildGuests();
  const why: Partial<Record<PeerName, string>> = {};
  if (args.peers.includes("kvm")) why.kvm = kvmUnavailable();
  if (args.peers.includes("qemu")) why.qemu = qemuUnavailable();
  const peers = args.peers.filter((p) => !why[p]);
  for (const p of args.peers) if (why[p]) console.log(`skipping ${p}: ${why[p]}`);

  const results = new Map<string, PeerResult[]>();
  for (const w of WORKLOADS) {
    if (args.only && !args.only.includes(w.name)) continue;
    const rs: PeerResult[] = [];
    for (const p of peers) {
      const r = await runPeer(w, p, args.short);
      process.stderr.write(`${w.name} on ${p} (scale ${r.scale}): ${r.ok ? "ok" : `FAILED ${r.failure}`}\n`);
      rs.push(r);
    }
    results.set(w.name, rs);
  }

  console.log(`\n${new Date().toISOString()}  node ${process.version}  QEMU: ${peers.includes("qemu") ? qemuVersion() : "-"}  mode: ${args.short ? "short" : "full"}\n`);
  console.log(table(results, peers));
  console.log(`\nGrowth with size:\n${growth(results)}`);
  const failures = [...results.values()].flat().filter((r) => !r.ok);
  if (failures.length > 0) {
    console.log("\nFailed runs (phases measured before the failure are in the table):");
    for (const [name, rs] of results) for (const r of rs) if (!r.ok) console.log(`- ${name} on ${r.peer}: ${r.failure}`);
  }
  const now = ratios(results);
  if (args.json) writeFileSync(args.json, JSON.stringify({ date: new Date().toISOString(), short: args.short, results: Object.fromEntries(results), ratios: now }, null, 1));
  if (args.updateBaseline) {
    writeFileSync(baselinePath, JSON.stringify({ note: "tskvm rate / peer rate per workload/phase/peer (boot: peer time / tskvm time); written by npm run bench -- --update-baseline", date: new Date().toISOString().slice(0, 10), ratios: now }, null, 1) + "\n");
    console.log(`\nwrote ${baselinePath}`);
  }
  if (args.short) {
    if (!existsSync(baselinePath)) {
      console.log("\nno bench/baseline.json: nothing to compare against");
      return 0;
    }
    const base = (JSON.parse(readFileSync(baselinePath, "utf8")) as { ratios: Record<string, number> }).ratios;
    const bad: string[] = [];
    for (const [k, b] of Object.entries(base)) {
      const v = now[k];
      if (v === undefined) continue;
      if (v < b * REGRESSION_FACTOR) bad.push(`${k}: ${fmt(v)} vs baseline ${fmt(b)}`);
    }
    const lost = Object.keys(base).filter((k) => now[k] === undefined && peers.includes(k.split("/")[2] as PeerName));
    console.log(`\nAgainst bench/baseline.json (${Object.keys(base).length} ratios, flagged below x${REGRESSION_FACTOR}):`);
    for (const l of bad) console.log(`  REGRESSION ${l}`);
    for (const k of lost) console.log(`  MISSING ${k} (the run failed or was skipped)`);
    if (bad.length === 0 && lost.length === 0) console.log("  no regressions");
    return bad.length > 0 || lost.length > 0 ? 1 : 0;
  }
  return 0;
}

process.exitCode = await main();
