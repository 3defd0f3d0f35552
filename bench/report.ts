/**
 * The bench's arithmetic, kept apart from its I/O (bench/run.ts) so it can be tested: phases
 * out of a peer's serial lines, rates, tskvm/peer ratios, the markdown table, growth with size
 * and the comparison with bench/baseline.json.
 */
import type { PeerRun } from "./peers/types.js";
import { WORKLOADS } from "./workloads.js";
import type { PeerName, Workload } from "./workloads.js";

export interface PhaseResult {
  phase: string;
  seconds: number;
  units: number;
  unit: string;
  /** Guest instructions in the phase: tskvm's retired-instruction counter, else the guest's analytic count. */
  insns: number | null;
  insnsSource: "counter" | "analytic" | null;
}

export interface PeerResult {
  peer: PeerName;
  scale: number;
  ok: boolean;
  /** Why the run did not produce the phases. */
  failure: string;
  phases: PhaseResult[];
  firstByteMs: number;
}

export function kvPairs(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of text.split(" ").slice(2)) {
    const eq = part.indexOf("=");
    if (eq > 0) m.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return m;
}

export function phasesOf(w: Workload, run: PeerRun): { phases: PhaseResult[]; failure: string } {
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

export const fmt = (x: number, digits = 3): string => {
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
export const MIN_PHASE_S = 0.005;

export function rateOf(p: PhaseResult): number { return p.seconds >= MIN_PHASE_S ? p.units / p.seconds : NaN; }

/** A short name for why a run failed (the full text goes under the table). */
export function failureNote(r: PeerResult): string {
  const m = /(FAIL_ENTRY|INTERNAL_ERROR|SHUTDOWN|timeout|no usable KVM)/.exec(r.failure);
  return m ? m[1]! : "see below";
}

/** Machine-readable ratios: key "workload/phase/peer" -> tskvm rate / peer rate (boot: peer time / tskvm time). */
export function ratios(results: Map<string, PeerResult[]>): Record<string, number> {
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

export function table(results: Map<string, PeerResult[]>, peers: PeerName[]): string {
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
export function growth(results: Map<string, PeerResult[]>): string {
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


/** The ratios the regression check uses (Workload.gatePeers). */
export function gatedRatios(all: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(all)) {
    const [name, , peer] = k.split("/");
    const w = WORKLOADS.find((x) => x.name === name);
    if (!w?.gatePeers || w.gatePeers.includes(peer as PeerName)) out[k] = v;
  }
  return out;
}

/** Ratios of `now` below `factor` times their baseline, and baseline ratios of the run's peers that `now` lacks. */
export function compareBaseline(
  base: Record<string, number>, now: Record<string, number>, factor: number, peers: readonly PeerName[],
): { regressions: string[]; missing: string[] } {
  const regressions: string[] = [];
  base = gatedRatios(base);
  for (const [k, b] of Object.entries(base)) {
    const v = now[k];
    if (v !== undefined && v < b * factor) regressions.push(`${k}: ${fmt(v)} vs baseline ${fmt(b)}`);
  }
  const missing = Object.keys(base).filter((k) => now[k] === undefined && peers.includes(k.split("/")[2] as PeerName));
  return { regressions, missing };
}
