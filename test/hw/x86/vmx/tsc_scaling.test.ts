import { test } from "node:test";
import assert from "node:assert/strict";
import { tscMultiplierFor, tscScale } from "../../../../src/hw/x86/vmx/tsc_scaling.js";

const ref = (t: bigint, m: bigint): bigint => (t * m) >> 48n;

test("tscScale: (tsc * multiplier) >> 48 exactly, against a BigInt reference", () => {
  let seed = 12345;
  const rnd = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed;
  };
  const cases: [number, number, number][] = [
    [0, 0, 0x10000], [1, 0, 0x10000], [2 ** 53 - 1, 0, 0x10000], [123456789012, 0, 0x8000], [2 ** 40 + 17, 0xffffffff, 0x1ffff],
  ];
  for (let i = 0; i < 2000; i++) cases.push([(rnd() % 2 ** 21) * 2 ** 32 + rnd(), rnd(), rnd() % 0x40000]);
  for (const [t, lo, hi] of cases) {
    const m = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
    const want = ref(BigInt(t), m);
    if (want >= 2n ** 53n) continue;
    assert.equal(tscScale(t, lo | 0, hi | 0), Number(want), `t=${t} m=0x${m.toString(16)}`);
  }
});

test("tscMultiplierFor: floor(guest * 2^48 / host)", () => {
  const out = new Int32Array(2);
  for (const [g, h] of [[2_000_000, 2_000_000], [1_000_000, 2_000_000], [3_000_000, 2_000_000], [2_494_140, 2_000_000], [7, 3]]) {
    tscMultiplierFor(g, h, out);
    const m = (BigInt(out[1] >>> 0) << 32n) | BigInt(out[0] >>> 0);
    assert.equal(m, (BigInt(g) << 48n) / BigInt(h), `${g}/${h}`);
  }
});
