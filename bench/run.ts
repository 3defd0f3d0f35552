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
import { compareBaseline, gatedRatios, growth, phasesOf, ratios, table } from "./report.js";
import type { PeerResult } from "./report.js";

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

async function runPeer(w: Workload, peer: PeerName, short: boolean): Promise<PeerResult> {
  const scale = w.scale[peer][short ? 1 : 0];
  const img = scaledImage(w.guest, scale);
  const mem = guestManifest(w.guest).mem;
  let run: PeerRun;
  try {
    if (w.warmup) {
      if (peer === "tskvm") runOnTskvm(img.bytes, mem, MAX_MS);
      else if (peer === "kvm") runOnKvm(img.path, mem, MAX_MS);
      else await runOnQemu(img.path, mem, MAX_MS);
    }
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
    writeFileSync(baselinePath, JSON.stringify({ note: "tskvm rate / peer rate per workload/phase/peer (boot: peer time / tskvm time), the gated ones (bench/workloads.ts gatePeers); written by npm run bench -- --update-baseline", date: new Date().toISOString().slice(0, 10), ratios: gatedRatios(now) }, null, 1) + "\n");
    console.log(`\nwrote ${baselinePath}`);
  }
  if (args.short) {
    if (!existsSync(baselinePath)) {
      console.log("\nno bench/baseline.json: nothing to compare against");
      return 0;
    }
    const base = (JSON.parse(readFileSync(baselinePath, "utf8")) as { ratios: Record<string, number> }).ratios;
    const { regressions: bad, missing: lost } = compareBaseline(base, now, REGRESSION_FACTOR, peers);
    console.log(`\nAgainst bench/baseline.json (${Object.keys(base).length} ratios, flagged below x${REGRESSION_FACTOR}):`);
    for (const l of bad) console.log(`  REGRESSION ${l}`);
    for (const k of lost) console.log(`  MISSING ${k} (the run failed or was skipped)`);
    if (bad.length === 0 && lost.length === 0) console.log("  no regressions");
    return bad.length > 0 || lost.length > 0 ? 1 : 0;
  }
  return 0;
}

process.exitCode = await main();
