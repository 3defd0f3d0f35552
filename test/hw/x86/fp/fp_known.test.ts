// Known-answer and self-checking tests of the FP library that need no host oracle: they run on
// any machine. SSE round-to-nearest results are cross-checked against JS doubles (IEEE binary64
// round-to-nearest-even; float32 via Math.fround, exact for +-*/ and sqrt since 53 >= 2*24+2).
import { test } from "node:test";
import assert from "node:assert/strict";
import { FpEnv, Packed, FP_IE, FP_ZE, FP_OE, FP_UE, FP_PE, FP_DE } from "../../../../src/hw/x86/fp/softfloat.js";
import {
  setX87Control, x87ResultDelivered, f80Add, f80Mul, f80Div, f80Sqrt, f80Sub, f80ToInt, intToF80, bcdToF80, f80ToBcd,
  f80Prem, premStatus, f80Compare, CMP_UNORDERED, CMP_LT,
} from "../../../../src/hw/x86/fp/f80.js";
import { f80Sin, f80Cos, f80Atan, f80Yl2x, f80F2xm1 } from "../../../../src/hw/x86/fp/f80_trans.js";
import {
  setMxcsr, f32Op, f64Op, f32ToInt, packedF32Op, sseResultDelivered, SSE_ADD, SSE_SUB, SSE_MUL, SSE_DIV, SSE_SQRT, SSE_MIN, SSE_MAX,
} from "../../../../src/hw/x86/fp/sse_float.js";
import * as S from "../../../../src/hw/x86/fp/simd_int.js";
import { rng } from "./oracle.node.js";

const env = new FpEnv();
const res = new Packed();
const f80 = (p: Packed) => [p.se, p.hi >>> 0, p.lo >>> 0];
const ONE = [0x3fff, 0x80000000, 0] as const;
const THREE = [0x4000, 0xc0000000, 0] as const;

test("x87 division honours precision control: 1/3 at 64, 53 and 24 bits", () => {
  setX87Control(env, 0x037f);
  f80Div(env, res, ...ONE, ...THREE);
  assert.deepEqual(f80(res), [0x3ffd, 0xaaaaaaaa, 0xaaaaaaab]);
  assert.equal(env.flags, FP_PE);
  assert.equal(env.roundedUp, true);
  setX87Control(env, 0x027f);
  f80Div(env, res, ...ONE, ...THREE);
  assert.deepEqual(f80(res), [0x3ffd, 0xaaaaaaaa, 0xaaaaa800]);
  setX87Control(env, 0x007f);
  f80Div(env, res, ...ONE, ...THREE);
  assert.deepEqual(f80(res), [0x3ffd, 0xaaaaab00, 0]);
  setX87Control(env, 0x0f7f); // PC 64, round toward zero
  f80Div(env, res, ...ONE, ...THREE);
  assert.deepEqual(f80(res), [0x3ffd, 0xaaaaaaaa, 0xaaaaaaaa]);
  assert.equal(env.roundedUp, false);
});

test("x87 invalid operations, zero divide, NaN propagation and unmasked responses", () => {
  setX87Control(env, 0x037f);
  f80Sub(env, res, 0x7fff, 0x80000000, 0, 0x7fff, 0x80000000, 0);
  assert.deepEqual(f80(res), [0xffff, 0xc0000000, 0]);
  assert.equal(env.flags, FP_IE);
  setX87Control(env, 0x037f);
  f80Div(env, res, ...ONE, 0, 0, 0);
  assert.deepEqual([...f80(res), env.flags], [0x7fff, 0x80000000, 0, FP_ZE]);
  setX87Control(env, 0x037f);
  f80Sqrt(env, res, 0xbfff, 0x80000000, 0);
  assert.deepEqual([...f80(res), env.flags], [0xffff, 0xc0000000, 0, FP_IE]);
  // SNaN + QNaN: the QNaN; SNaN alone: quieted.
  setX87Control(env, 0x037f);
  f80Add(env, res, 0x7fff, 0x80000001, 0, 0xffff, 0xc0000000, 5);
  assert.deepEqual([...f80(res), env.flags], [0xffff, 0xc0000000, 5, FP_IE]);
  setX87Control(env, 0x037f);
  f80Add(env, res, 0x7fff, 0x80000001, 0, ...ONE);
  assert.deepEqual(f80(res), [0x7fff, 0xc0000001, 0]);
  // Unnormal operand: unsupported, IE.
  setX87Control(env, 0x037f);
  f80Mul(env, res, 0x3fff, 0x40000000, 0, ...ONE);
  assert.deepEqual([...f80(res), env.flags], [0xffff, 0xc0000000, 0, FP_IE]);
  // Unmasked overflow: bias-adjusted result, OE only (exact).
  setX87Control(env, 0x0377);
  f80Mul(env, res, 0x7ffe, 0x80000000, 0, 0x7ffe, 0x80000000, 0);
  assert.deepEqual([...f80(res), env.flags], [0x5ffd, 0x80000000, 0, FP_OE]);
  assert.equal(x87ResultDelivered(env), true);
  // Unmasked underflow: scaled up by 2^24576.
  setX87Control(env, 0x036f);
  f80Mul(env, res, 0x0001, 0x80000000, 0, 0x0001, 0x80000000, 0);
  assert.deepEqual([...f80(res), env.flags], [0x2003, 0x80000000, 0, FP_UE]);
  // Unmasked zero divide: nothing delivered.
  setX87Control(env, 0x037b);
  f80Div(env, res, ...ONE, 0, 0, 0);
  assert.equal(x87ResultDelivered(env), false);
  // Masked underflow to a denormal: UE and PE.
  setX87Control(env, 0x037f);
  f80Mul(env, res, 0x0001, 0xc0000000, 1, 0x3ffe, 0x80000000, 0);
  assert.deepEqual([res.se, env.flags & (FP_UE | FP_PE)], [0, FP_UE | FP_PE]);
  setX87Control(env, 0x037f);
  assert.equal(f80Compare(env, 0x7fff, 0xc0000000, 0, ...ONE, true), CMP_UNORDERED);
  assert.equal(env.flags, 0);
  assert.equal(f80Compare(env, 0x7fff, 0xc0000000, 0, ...ONE, false), CMP_UNORDERED);
  assert.equal(env.flags, FP_IE);
  setX87Control(env, 0x037f);
  assert.equal(f80Compare(env, 0x0000, 0x00000001, 0, ...ONE, true), CMP_LT);
  assert.equal(env.flags, FP_DE);
});

test("x87 integer and BCD conversions: rounding modes, indefinite, round trip", () => {
  const twoHalf = [0x4000, 0xa0000000, 0] as const;
  for (const [cw, want] of [[0x037f, 2], [0x077f, 2], [0x0b7f, 3], [0x0f7f, 2]] as const) {
    setX87Control(env, cw);
    f80ToInt(env, res, ...twoHalf, 32, false);
    assert.equal(res.lo, want);
    assert.equal(env.flags, FP_PE);
  }
  setX87Control(env, 0x037f);
  f80ToInt(env, res, 0x401f, 0x80000000, 0, 32, false); // 2^32
  assert.deepEqual([res.lo, env.flags], [0x80000000, FP_IE]);
  setX87Control(env, 0x037f);
  f80ToInt(env, res, 0xc01e, 0x80000000, 0, 32, true); // -2^31 fits
  assert.deepEqual([res.lo, env.flags], [0x80000000, 0]);
  intToF80(res, 0xffffffff, 0xffffffff);
  assert.deepEqual(f80(res), [0xbfff, 0x80000000, 0]);
  // 123456789012345678 as BCD and back.
  bcdToF80(res, 0x12345678, 0x56789012, 0x8034);
  const v = f80(res);
  setX87Control(env, 0x037f);
  f80ToBcd(env, res, v[0]!, v[1]!, v[2]!);
  assert.deepEqual([res.lo, res.hi, res.se], [0x12345678, 0x56789012, 0x8034]);
});

test("FPREM and FPREM1 remainders and quotient bits", () => {
  // 7 rem 2 = 1 (q = 3); 7 rem1 2 = -1 (q = 4).
  setX87Control(env, 0x037f);
  f80Prem(env, res, 0x4001, 0xe0000000, 0, 0x4000, 0x80000000, 0, false);
  assert.deepEqual([...f80(res), premStatus.q, premStatus.incomplete], [0x3fff, 0x80000000, 0, 3, false]);
  f80Prem(env, res, 0x4001, 0xe0000000, 0, 0x4000, 0x80000000, 0, true);
  assert.deepEqual([...f80(res), premStatus.q], [0xbfff, 0x80000000, 0, 4]);
  // Exponent difference >= 64: partial reduction, C2 = 1.
  f80Prem(env, res, 0x4100, 0xc0000000, 1, 0x3fff, 0xc0000000, 0, false);
  assert.equal(premStatus.incomplete, true);
});

test("x87 transcendentals: exact special values and known results", () => {
  setX87Control(env, 0x037f);
  f80Sin(env, res, 0x8000, 0, 0);
  assert.deepEqual(f80(res), [0x8000, 0, 0]);
  f80Cos(env, res, 0, 0, 0);
  assert.deepEqual(f80(res), [0x3fff, 0x80000000, 0]);
  // atan2(1, 1) = pi/4 rounded to nearest: C90FDAA2 2168C235 (pi's next bits are C4C6…).
  f80Atan(env, res, ...ONE, ...ONE);
  assert.deepEqual(f80(res), [0x3ffe, 0xc90fdaa2, 0x2168c235]);
  // 1 * log2(8) = 3 exactly, yet PE as on Intel hardware (C1 = 0: not rounded up).
  setX87Control(env, 0x037f);
  f80Yl2x(env, res, ...ONE, 0x4002, 0x80000000, 0);
  assert.deepEqual([...f80(res), env.flags, env.roundedUp], [...THREE, 0x20, false]);
  // 2^1 - 1 = 1.
  f80F2xm1(env, res, ...ONE);
  assert.deepEqual(f80(res), [...ONE]);
});

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
const f64 = new Float64Array(1), u64 = new Uint32Array(f64.buffer);
const bitsOf32 = (x: number) => ((f32[0] = x), u32[0]!);
const valOf32 = (b: number) => ((u32[0] = b), f32[0]!);

test("SSE round-to-nearest results equal JS double/Math.fround arithmetic bit for bit", () => {
  const r = rng(0xd00d);
  const rnd32 = () => {
    const e = 80 + (r() % 100);
    return ((r() & 0x80000000) | (e << 23) | (r() & 0x7fffff)) >>> 0;
  };
  const ops: [number, (a: number, b: number) => number][] = [
    [SSE_ADD, (a, b) => a + b], [SSE_SUB, (a, b) => a - b], [SSE_MUL, (a, b) => a * b], [SSE_DIV, (a, b) => a / b], [SSE_SQRT, (_a, b) => Math.sqrt(b)],
  ];
  for (let i = 0; i < 3000; i++) {
    const a = rnd32(), b = r() % 4 === 0 ? (rnd32() & 0x7fffffff) >>> 0 : rnd32();
    for (const [op, fn] of ops) {
      setMxcsr(env, 0x1f80);
      const got = f32Op(env, op, a, b);
      const want = Math.fround(fn(valOf32(a), valOf32(b)));
      if (Number.isNaN(want)) assert.equal(got, 0xffc00000);
      else assert.equal(got, bitsOf32(want), `op ${op} ${a.toString(16)} ${b.toString(16)}`);
    }
    // float64 from two random doubles of moderate exponent.
    const ah = ((r() & 0x80000000) | ((900 + (r() % 200)) << 20) | (r() & 0xfffff)) >>> 0, al = r();
    const bh = ((r() & 0x80000000) | ((900 + (r() % 200)) << 20) | (r() & 0xfffff)) >>> 0, bl = r();
    u64[0] = al; u64[1] = ah; const x = f64[0]!;
    u64[0] = bl; u64[1] = bh; const y = f64[0]!;
    for (const [op, fn] of ops) {
      if (op === SSE_SQRT && y < 0) continue;
      setMxcsr(env, 0x1f80);
      f64Op(env, op, res, al, ah, bl, bh);
      f64[0] = fn(x, y);
      assert.deepEqual([res.lo, res.hi], [u64[0], u64[1]], `op ${op}`);
    }
  }
});

test("SSE MXCSR behaviours: FTZ, DAZ, MIN/MAX quirks, integer indefinite, unmasked no-store", () => {
  // FTZ: a masked underflow gives a signed zero with UE and PE.
  setMxcsr(env, 0x1f80 | 0x8000);
  assert.equal(f32Op(env, SSE_MUL, 0x80800000, 0x3f000000), 0x80000000);
  assert.equal(env.flags, FP_UE | FP_PE);
  // Without FTZ: the denormal, UE not raised since exact.
  setMxcsr(env, 0x1f80);
  assert.equal(f32Op(env, SSE_MUL, 0x80800000, 0x3f000000), 0x80400000);
  assert.equal(env.flags, 0);
  // DAZ: denormal operand reads as zero, no DE; without DAZ, DE.
  setMxcsr(env, 0x1f80 | 0x40);
  assert.equal(f32Op(env, SSE_ADD, 0x00000001, 0x80000000), 0);
  assert.equal(env.flags, 0);
  setMxcsr(env, 0x1f80);
  assert.equal(f32Op(env, SSE_ADD, 0x00000001, 0x80000000), 1);
  assert.equal(env.flags, FP_DE);
  // MIN/MAX: equal zeros and NaNs give the second operand (a QNaN raises IE).
  setMxcsr(env, 0x1f80);
  assert.equal(f32Op(env, SSE_MIN, 0x00000000, 0x80000000), 0x80000000);
  assert.equal(f32Op(env, SSE_MAX, 0x80000000, 0x00000000), 0x00000000);
  assert.equal(f32Op(env, SSE_MAX, 0x7fc00000, 0x3f800000), 0x3f800000);
  assert.equal(env.flags, FP_IE);
  setMxcsr(env, 0x1f80);
  f32ToInt(env, res, 0x4f000000, 32, true); // 2^31
  assert.deepEqual([res.lo, env.flags], [0x80000000, FP_IE]);
  // Packed divide with an unmasked zero-divide: destination untouched.
  const xmm = new Int32Array(8);
  xmm.set([bitsOf32(1), bitsOf32(2), bitsOf32(3), bitsOf32(4)], 0);
  xmm.set([bitsOf32(1), bitsOf32(1), 0, bitsOf32(2)], 4);
  setMxcsr(env, 0x1f80 & ~0x200);
  assert.equal(packedF32Op(env, SSE_DIV, xmm, 0, 1), false);
  assert.equal(sseResultDelivered(env), false);
  assert.equal(xmm[2], bitsOf32(3));
  setMxcsr(env, 0x1f80);
  assert.equal(packedF32Op(env, SSE_DIV, xmm, 0, 1), true);
  assert.deepEqual(Array.from(xmm.subarray(0, 4)), [bitsOf32(1), bitsOf32(2), 0x7f800000, bitsOf32(2)]);
});

test("SIMD integer: saturation, PSHUFB zeroing, PCMPISTRI substring search, PTEST flags", () => {
  const xmm = new Int32Array(12);
  const r = new S.SimdRegs(xmm);
  r.u8.fill(200, 16, 32);
  r.u8.fill(100, 32, 48);
  S.paddSat(r, 1, 2, 1, false, true);
  assert.equal(r.u8[16], 255);
  S.paddSat(r, 1, 2, 1, true, false); // signed: -1 - 100 = -101
  assert.equal(r.i8[16], -101);
  // PSHUFB: index with bit 7 set gives zero.
  for (let i = 0; i < 16; i++) r.u8[16 + i] = i * 3;
  for (let i = 0; i < 16; i++) r.u8[32 + i] = i % 2 ? 0x80 : 15 - i;
  S.pshufb(r, 1, 2);
  assert.deepEqual(Array.from(r.u8.subarray(16, 20)), [45, 0, 39, 0]);
  // Find "abc" in "xxabcxx": equal ordered (imm 0x0c), index 2.
  const put = (reg: number, s: string) => { r.u8.fill(0, reg * 16, reg * 16 + 16); for (let i = 0; i < s.length; i++) r.u8[reg * 16 + i] = s.charCodeAt(i); };
  put(1, "abc");
  put(2, "xxabcxx");
  const flags = S.pcmpstr(r, 1, 2, 0x0c, false, 0, 0, false);
  assert.equal(S.strResult.ecx, 2);
  assert.equal(flags, S.EFL_CF | S.EFL_ZF | S.EFL_SF);
  xmm.fill(0);
  xmm[4] = 1;
  xmm[8] = 2;
  assert.equal(S.ptest(r, 1, 2), S.EFL_ZF);
});
