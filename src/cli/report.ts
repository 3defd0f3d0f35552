// `tskvm report FILE`: a 'perf kvm stat report'-like summary of a --trace file: per exit
// reason, how many exits, their share of samples and of handling time (kvm_exit to the next
// kvm_entry on the same vCPU), and min/max/avg handling time.

export interface ExitStat {
  reason: string;
  samples: number;
  totalNs: number;
  minNs: number;
  maxNs: number;
}

const LINE = /^\s*(\S.*?)\s+\[(\d+)\]\s+\S+\s+(\d+)\.(\d{6}):\s+(kvm_exit|kvm_entry):\s+vcpu (\d+),? (.*)$/;

/** Pair each kvm_exit with the following kvm_entry of the same vCPU. */
export function analyzeTrace(text: string): { stats: ExitStat[]; vcpus: number; unmatched: number } {
  const open = new Map<number, { reason: string; ns: number }>();
  const byReason = new Map<string, ExitStat>();
  const vcpus = new Set<number>();
  let unmatched = 0;
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const ns = Number(m[3]) * 1e9 + Number(m[4]) * 1e3;
    const vcpu = Number(m[6]);
    vcpus.add(vcpu);
    if (m[5] === "kvm_exit") {
      const r = /reason (\S+)/.exec(m[7]!);
      if (open.has(vcpu)) unmatched++;
      open.set(vcpu, { reason: r ? r[1]! : "UNKNOWN", ns });
    } else {
      const o = open.get(vcpu);
      if (!o) continue;
      open.delete(vcpu);
      const d = Math.max(0, ns - o.ns);
      let s = byReason.get(o.reason);
      if (!s) byReason.set(o.reason, (s = { reason: o.reason, samples: 0, totalNs: 0, minNs: Infinity, maxNs: 0 }));
      s.samples++;
      s.totalNs += d;
      s.minNs = Math.min(s.minNs, d);
      s.maxNs = Math.max(s.maxNs, d);
    }
  }
  unmatched += open.size;
  const stats = [...byReason.values()].sort((a, b) => b.samples - a.samples || a.reason.localeCompare(b.reason));
  return { stats, vcpus: vcpus.size, unmatched };
}

export function formatReport(r: ReturnType<typeof analyzeTrace>): string {
  const total = r.stats.reduce((n, s) => n + s.samples, 0);
  const time = r.stats.reduce((n, s) => n + s.totalNs, 0);
  const us = (ns: number) => `${(ns / 1000).toFixed(2)}us`;
  const pct = (a: number, b: number) => `${b ? ((100 * a) / b).toFixed(2) : "0.00"}%`;
  const lines = [
    "",
    `Analyze events for all VMs, all VCPUs (${r.vcpus} seen):`,
    "",
    `${"VM-EXIT".padStart(20)} ${"Samples".padStart(10)} ${"Samples%".padStart(9)} ${"Time%".padStart(9)} ${"Min Time".padStart(12)} ${"Max Time".padStart(12)} ${"Avg time".padStart(12)}`,
    "",
  ];
  for (const s of r.stats) {
    lines.push(`${s.reason.padStart(20)} ${String(s.samples).padStart(10)} ${pct(s.samples, total).padStart(9)} ${pct(s.totalNs, time).padStart(9)} ${us(s.minNs).padStart(12)} ${us(s.maxNs).padStart(12)} ${us(s.totalNs / s.samples).padStart(12)}`);
  }
  lines.push("", `Total Samples:${total}, Total events handled time:${us(time)}.`);
  if (r.unmatched) lines.push(`(${r.unmatched} kvm_exit events had no following kvm_entry and are not counted)`);
  return lines.join("\n");
}
