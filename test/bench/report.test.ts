import { test } from "node:test";
import assert from "node:assert/strict";
import { compareBaseline, kvPairs, MIN_PHASE_S, phasesOf, rateOf, ratios, table } from "../../bench/report.js";
import type { PeerResult } from "../../bench/report.js";
import type { PeerRun, SerialLine } from "../../bench/peers/types.js";
import { WORKLOADS } from "../../bench/workloads.js";

const ms = 1e6;
const intW = WORKLOADS.find((w) => w.name === "int")!;

function run(lines: SerialLine[], stop = "exit-port"): PeerRun {
  return { lines, firstByteNs: lines[0]?.startNs ?? -1, stop, detail: "", exits: 0, io: 0, mmio: 0, hasInsns: false };
}

test("kvPairs reads the k=v fields after '@end <phase>'", () => {
  const kv = kvPairs("@end int insns=800 units=100 unit=iter check=7");
  assert.equal(kv.get("insns"), "800");
  assert.equal(kv.get("unit"), "iter");
  assert.equal(kv.has("int"), false);
});

test("a phase runs from the newline of @begin to the first byte of @end", () => {
  const r = phasesOf(intW, run([
    { startNs: 1 * ms, endNs: 2 * ms, text: "@begin int" },
    { startNs: 502 * ms, endNs: 510 * ms, text: "@end int insns=8000 units=1000 unit=iter check=1" },
  ]));
  assert.equal(r.failure, "");
  assert.equal(r.phases.length, 1);
  const p = r.phases[0]!;
  assert.equal(p.seconds, 0.5);
  assert.equal(p.units, 1000);
  assert.equal(p.insns, 8000);
  assert.equal(p.insnsSource, "analytic");
  assert.equal(rateOf(p), 2000);
});

test("tskvm's counter wins over the analytic count, measured between the same two moments", () => {
  const r = phasesOf(intW, run([
    { startNs: 0, endNs: 1 * ms, text: "@begin int", startInsns: 10, endInsns: 50 },
    { startNs: 101 * ms, endNs: 102 * ms, text: "@end int insns=8000 units=1000 unit=iter", startInsns: 8066, endInsns: 8100 },
  ]));
  assert.equal(r.phases[0]!.insns, 8016);
  assert.equal(r.phases[0]!.insnsSource, "counter");
});

test("a missing @end is a failure that names the phase and the stop", () => {
  const r = phasesOf(intW, { ...run([{ startNs: 0, endNs: 1, text: "@begin int" }], "unhandled"), detail: "FAIL_ENTRY" });
  assert.equal(r.phases.length, 0);
  assert.match(r.failure, /no end of int: stop=unhandled FAIL_ENTRY/);
});

test("phases too short to time have no rate and no ratio", () => {
  const short = { phase: "int", seconds: MIN_PHASE_S / 2, units: 10, unit: "iter", insns: null, insnsSource: null } as const;
  assert.ok(Number.isNaN(rateOf(short)));
  const t: PeerResult = { peer: "tskvm", scale: 1, ok: true, failure: "", phases: [{ ...short, seconds: 1 }], firstByteMs: 1 };
  const q: PeerResult = { peer: "qemu", scale: 1, ok: true, failure: "", phases: [short], firstByteMs: 1 };
  assert.deepEqual(ratios(new Map([["int", [t, q]]])), {});
  assert.match(table(new Map([["int", [t, q]]]), ["tskvm", "qemu"]), /\(< 5 ms\)/);
});

test("ratios are tskvm's rate over the peer's; failed tskvm phases leave no ratio", () => {
  const ph = (seconds: number) => ({ phase: "int", seconds, units: 100, unit: "iter", insns: null, insnsSource: null });
  const t: PeerResult = { peer: "tskvm", scale: 1, ok: true, failure: "", phases: [ph(10)], firstByteMs: 100 };
  const k: PeerResult = { peer: "kvm", scale: 1, ok: true, failure: "", phases: [ph(0.1)], firstByteMs: 5 };
  assert.deepEqual(ratios(new Map([["int", [t, k]]])), { "int/int/kvm": 0.01 });
  const failed: PeerResult = { ...t, ok: false, failure: "stop=unhandled", phases: [] };
  assert.deepEqual(ratios(new Map([["int", [failed, k]]])), {});
  const boot: PeerResult = { ...t, phases: [] };
  assert.deepEqual(ratios(new Map([["boot", [boot, { ...k, phases: [] }]]])), { "boot/first-byte/kvm": 0.05 });
});

test("the baseline check flags ratios below the factor and ratios that went missing", () => {
  const base = { "int/int/kvm": 0.01, "int/int/qemu": 0.02, "fp/fp/kvm": 0.5 };
  const r = compareBaseline(base, { "int/int/kvm": 0.004, "int/int/qemu": 0.015 }, 0.5, ["tskvm", "kvm", "qemu"]);
  assert.deepEqual(r.regressions.map((x) => x.split(":")[0]), ["int/int/kvm"]);
  assert.deepEqual(r.missing, ["fp/fp/kvm"]);
  // peers left out of the run are not "missing"
  assert.deepEqual(compareBaseline(base, {}, 0.5, ["tskvm", "qemu"]).missing, ["int/int/qemu"]);
});

test("exit ratios against QEMU are shown but do not gate the regression check", () => {
  const base = { "exits/pio-1x/qemu": 0.001, "exits/pio-1x/kvm": 0.3 };
  const r = compareBaseline(base, { "exits/pio-1x/qemu": 0.0001, "exits/pio-1x/kvm": 0.1 }, 0.5, ["tskvm", "kvm", "qemu"]);
  assert.deepEqual(r.regressions.map((x) => x.split(":")[0]), ["exits/pio-1x/kvm"]);
});
