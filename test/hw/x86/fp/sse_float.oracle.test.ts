// Bit-exact comparison of the SSE float32/float64 arithmetic with the host CPU (tools/fp-oracle).
import { test } from "node:test";
import assert from "node:assert/strict";
import { FpEnv, Packed } from "../../../../src/hw/x86/fp/softfloat.js";
import { eflagsCompare } from "../../../../src/hw/x86/fp/f80.js";
import {
  setMxcsr, f32Op, f64Op, f32Compare, f64Compare, f32ToF64, f64ToF32, intToF32, intToF64, f32ToInt, f64ToInt,
  SSE_ADD, SSE_SUB, SSE_MUL, SSE_DIV, SSE_MIN, SSE_MAX, SSE_SQRT, SSE_CMP, SSE_ROUND,
} from "../../../../src/hw/x86/fp/sse_float.js";
import { oracleSkipReason, runOracle, rng, hex, diffLines } from "./oracle.node.js";
import { genF32, genF64 } from "./operands.js";

const skip = oracleSkipReason();
const env = new FpEnv();
const res = new Packed();
const N = Number(process.env.FP_ORACLE_N ?? 1500);

function mxcsrFor(r: () => number): number {
  return 0x1f80 | ((r() % 4) << 13) | (r() % 4 === 0 ? 0x8000 : 0) | (r() % 4 === 0 ? 0x40 : 0);
}
const mx = (m: number) => hex(m | env.flags, 8);

type Case = { input: string; ours: () => string };
function check(name: string, cases: Case[]) {
  const inputs = cases.map((c) => c.input);
  const hw = runOracle(inputs);
  const ours = cases.map((c) => c.ours());
  const bad = diffLines(inputs, hw, ours);
  assert.deepEqual(bad, [], `${name}: mismatches (first shown)\n${bad.join("\n")}`);
}

/** A second single related to the first, for cancellation and ties. */
function near32(r: () => number, a: number): number {
  if (r() % 3 !== 0) return genF32(r);
  return ((a ^ (r() % 2 ? 0x80000000 : 0)) + (r() % 5) - 2 + ((r() % 5) - 2) * 0x800000) >>> 0;
}

const OPS: [string, number][] = [["add", SSE_ADD], ["sub", SSE_SUB], ["mul", SSE_MUL], ["div", SSE_DIV], ["min", SSE_MIN], ["max", SSE_MAX], ["sqrt", SSE_SQRT]];

test("SSE scalar single arithmetic (ADDSS…SQRTSS, CMPSS, ROUNDSS) matches the host CPU", { skip: skip ?? false }, () => {
  const r = rng(0x9100);
  const cases: Case[] = [];
  for (let i = 0; i < N; i++) {
    const a = genF32(r), b = near32(r, a), m = mxcsrFor(r);
    for (const [name, op] of OPS) {
      cases.push({ input: `${name}ss ${hex(m, 4)} ${hex(a, 8)} ${hex(b, 8)}`, ours: () => { setMxcsr(env, m); return `${hex(f32Op(env, op, a, b), 8)} ${mx(m)}`; } });
    }
    const p = r() % 8, q = r() % 16;
    cases.push({ input: `cmpss${p} ${hex(m, 4)} ${hex(a, 8)} ${hex(b, 8)}`, ours: () => { setMxcsr(env, m); return `${hex(f32Op(env, SSE_CMP, a, b, p), 8)} ${mx(m)}`; } });
    cases.push({ input: `roundss${q} ${hex(m, 4)} ${hex(a, 8)} ${hex(b, 8)}`, ours: () => { setMxcsr(env, m); return `${hex(f32Op(env, SSE_ROUND, a, b, q), 8)} ${mx(m)}`; } });
  }
  check("ss", cases);
});

test("SSE scalar double arithmetic (ADDSD…SQRTSD, CMPSD, ROUNDSD) matches the host CPU", { skip: skip ?? false }, () => {
  const r = rng(0x9200);
  const cases: Case[] = [];
  const d = (v: [number, number]) => hex(v[1], 8) + hex(v[0], 8);
  for (let i = 0; i < N; i++) {
    const a = genF64(r), m = mxcsrFor(r);
    const b: [number, number] = r() % 3 ? genF64(r) : [(a[0] + (r() % 5) - 2) >>> 0, (a[1] ^ (r() % 2 ? 0x80000000 : 0)) + ((r() % 5) - 2) * 0x100000 >>> 0];
    const run = (op: number, imm = 0) => () => { setMxcsr(env, m); f64Op(env, op, res, a[0], a[1], b[0], b[1], imm); return `${hex(res.hi, 8)}${hex(res.lo, 8)} ${mx(m)}`; };
    for (const [name, op] of OPS) cases.push({ input: `${name}sd ${hex(m, 4)} ${d(a)} ${d(b)}`, ours: run(op) });
    const p = r() % 8, q = r() % 16;
    cases.push({ input: `cmpsd${p} ${hex(m, 4)} ${d(a)} ${d(b)}`, ours: run(SSE_CMP, p) });
    cases.push({ input: `roundsd${q} ${hex(m, 4)} ${d(a)} ${d(b)}`, ours: run(SSE_ROUND, q) });
  }
  check("sd", cases);
});

test("SSE COMISS/UCOMISS/COMISD/UCOMISD flags match the host CPU", { skip: skip ?? false }, () => {
  const r = rng(0x9300);
  const cases: Case[] = [];
  for (let i = 0; i < N; i++) {
    const a = genF32(r), b = r() % 4 ? near32(r, a) : a, m = mxcsrFor(r);
    const da = genF64(r), db = r() % 4 ? genF64(r) : da;
    for (const quiet of [false, true]) {
      cases.push({ input: `${quiet ? "u" : ""}comiss ${hex(m, 4)} ${hex(a, 8)} ${hex(b, 8)}`, ours: () => { setMxcsr(env, m); return `${hex(eflagsCompare(f32Compare(env, a, b, quiet)), 3)} ${mx(m)}`; } });
      cases.push({
        input: `${quiet ? "u" : ""}comisd ${hex(m, 4)} ${hex(da[1], 8)}${hex(da[0], 8)} ${hex(db[1], 8)}${hex(db[0], 8)}`,
        ours: () => { setMxcsr(env, m); return `${hex(eflagsCompare(f64Compare(env, da[0], da[1], db[0], db[1], quiet)), 3)} ${mx(m)}`; },
      });
    }
  }
  check("comis", cases);
});

test("SSE conversions (CVTSS2SD, CVTSD2SS, CVTSI2SS/SD, CVT[T]SS2SI, CVT[T]SD2SI) match the host CPU", { skip: skip ?? false }, () => {
  const r = rng(0x9400);
  const cases: Case[] = [];
  for (let i = 0; i < N; i++) {
    const m = mxcsrFor(r), a = genF32(r), [dl, dh] = genF64(r);
    const il = r(), ih = r() % 3 ? r() : r() % 2 ? 0 : 0xffffffff;
    cases.push({ input: `cvtss2sd ${hex(m, 4)} ${hex(a, 8)}`, ours: () => { setMxcsr(env, m); f32ToF64(env, res, a); return `${hex(res.hi, 8)}${hex(res.lo, 8)} ${mx(m)}`; } });
    cases.push({ input: `cvtsd2ss ${hex(m, 4)} ${hex(dh, 8)}${hex(dl, 8)}`, ours: () => { setMxcsr(env, m); return `${hex(f64ToF32(env, dl, dh), 8)} ${mx(m)}`; } });
    cases.push({ input: `cvtsi2ss32 ${hex(m, 4)} ${hex(il, 8)}`, ours: () => { setMxcsr(env, m); return `${hex(intToF32(env, il, il >> 31), 8)} ${mx(m)}`; } });
    cases.push({ input: `cvtsi2ss64 ${hex(m, 4)} ${hex(ih, 8)}${hex(il, 8)}`, ours: () => { setMxcsr(env, m); return `${hex(intToF32(env, il, ih), 8)} ${mx(m)}`; } });
    cases.push({ input: `cvtsi2sd32 ${hex(m, 4)} ${hex(il, 8)}`, ours: () => { setMxcsr(env, m); intToF64(env, res, il, il >> 31); return `${hex(res.hi, 8)}${hex(res.lo, 8)} ${mx(m)}`; } });
    cases.push({ input: `cvtsi2sd64 ${hex(m, 4)} ${hex(ih, 8)}${hex(il, 8)}`, ours: () => { setMxcsr(env, m); intToF64(env, res, il, ih); return `${hex(res.hi, 8)}${hex(res.lo, 8)} ${mx(m)}`; } });
    for (const bits of [32, 64]) {
      for (const t of [false, true]) {
        const out = () => (bits === 64 ? hex(res.hi, 8) + hex(res.lo, 8) : hex(res.lo, 8));
        cases.push({ input: `cvt${t ? "t" : ""}ss2si${bits} ${hex(m, 4)} ${hex(a, 8)}`, ours: () => { setMxcsr(env, m); f32ToInt(env, res, a, bits, t); return `${out()} ${mx(m)}`; } });
        cases.push({ input: `cvt${t ? "t" : ""}sd2si${bits} ${hex(m, 4)} ${hex(dh, 8)}${hex(dl, 8)}`, ours: () => { setMxcsr(env, m); f64ToInt(env, res, dl, dh, bits, t); return `${out()} ${mx(m)}`; } });
      }
    }
  }
  check("cvt", cases);
});
