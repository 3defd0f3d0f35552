import { test } from "node:test";
import assert from "node:assert/strict";
import { formatFtraceLine, type TraceEvent } from "../../src/virt/kvm/trace.js";
import { analyzeTrace, formatReport } from "../../src/cli/report.js";

const ev = (name: string, tsNs: number, fields: TraceEvent["fields"], vcpuId = 0): TraceEvent => ({ name, tsNs, fields, pid: 1000, comm: "tskvm", cpu: 0, vcpuId });

test("report pairs kvm_exit with the next kvm_entry per vCPU and summarises by reason", () => {
  const exit = (ts: number, reason: number, vcpu = 0) => ev("kvm_exit", ts, { vcpu_id: vcpu, exit_reason: reason, guest_rip: 0x1000, info1: 0, info2: 0, intr_info: 0, error_code: 0, isa: 1 }, vcpu);
  const entry = (ts: number, vcpu = 0) => ev("kvm_entry", ts, { vcpu_id: vcpu, rip: 0x1000 }, vcpu);
  const lines = [
    entry(1_000_000), exit(2_000_000, 30), entry(2_010_000), // IO 10us
    exit(3_000_000, 30, 1), exit(3_000_500, 12), entry(3_004_500), entry(3_030_000, 1), // HLT 4us on vcpu0, IO 30us on vcpu1
    exit(4_000_000, 48), // unmatched
  ].map(formatFtraceLine);
  const text = ["# tracer: nop", ...lines, "garbage line"].join("\n");
  const r = analyzeTrace(text);
  assert.equal(r.vcpus, 2);
  assert.equal(r.unmatched, 1);
  assert.deepEqual(r.stats.map((s) => [s.reason, s.samples, s.minNs, s.maxNs, s.totalNs]), [
    ["IO_INSTRUCTION", 2, 10_000, 30_000, 40_000],
    ["HLT", 1, 4_000, 4_000, 4_000],
  ]);
  const out = formatReport(r);
  assert.match(out, /IO_INSTRUCTION\s+2\s+66\.67%\s+90\.91%\s+10\.00us\s+30\.00us\s+20\.00us/);
  assert.match(out, /Total Samples:3, Total events handled time:44\.00us\./);
  assert.match(out, /1 kvm_exit events had no following kvm_entry/);
});
