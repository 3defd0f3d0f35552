// Bit-exact comparison of the x87 80-bit arithmetic with the host CPU (tools/fp-oracle).
import { test } from "node:test";
import assert from "node:assert/strict";
import { FpEnv, Packed } from "../../../../src/hw/x86/fp/softfloat.js";
import {
  f80Add, f80Sub, f80Mul, f80Div, f80Sqrt, f80RoundInt, f80Scale, f80Xtract, f80Prem, premStatus, f80Compare,
  x87CompareCodes, eflagsCompare, f80ToInt, intToF80, f32ToF80, f64ToF80, f80ToF32, f80ToF64, bcdToF80, f80ToBcd,
  setX87Control, x87ResultDelivered, f80Examine, f80Test,
} from "../../../../src/hw/x86/fp/f80.js";
import { f80LoadConst } from "../../../../src/hw/x86/fp/f80_trans.js";
import { oracleSkipReason, runOracle, rng, hex, diffLines } from "./oracle.node.js";
import { genF80, genF80Near, genF32, genF64, type F80 } from "./operands.js";

const skip = oracleSkipReason();
const env = new FpEnv();
const res = new Packed();
const res2 = new Packed();

const f80s = (v: F80) => `${hex(v[0], 4)} ${hex(v[1], 8)}${hex(v[2], 8)}`;
const pk = (p: Packed) => `${hex(p.se, 4)} ${hex(p.hi, 8)}${hex(p.lo, 8)}`;
/** Status word from the env: flags, and C1 = round-up when inexact. */
const sw = () => hex(env.flags | ((env.flags & 0x20) && env.roundedUp ? 0x200 : 0), 4);

function cwFor(r: () => number): number {
  const pc = [0, 2, 3, 3][r() % 4]!;
  return 0x7f | (pc << 8) | ((r() % 4) << 10);
}

/** Replace the last token (status word) by itself masked. */
function maskLast(mask: number) {
  return (line: string) => {
    const t = line.split(" ");
    t[t.length - 1] = hex(parseInt(t[t.length - 1]!, 16) & mask, 4);
    return t.join(" ");
  };
}

type Case = { input: string; ours: () => string };

function check(name: string, cases: Case[], mask = 0x023f) {
  const inputs = cases.map((c) => c.input);
  const hw = runOracle(inputs);
  const ours = cases.map((c) => c.ours());
  const bad = diffLines(inputs, hw, ours, 15, maskLast(mask));
  assert.deepEqual(bad, [], `${name}: ${bad.length} mismatches (first shown)\n${bad.join("\n")}`);
}

const N = Number(process.env.FP_ORACLE_N ?? 1500);

for (const op of ["fadd", "fsub", "fmul", "fdiv"] as const) {
  test(`x87 ${op} matches the host CPU bit for bit`, { skip: skip ?? false }, () => {
    const r = rng(0x1000 + op.length * 77 + op.charCodeAt(1));
    const fn = { fadd: f80Add, fsub: f80Sub, fmul: f80Mul, fdiv: f80Div }[op];
    const cases: Case[] = [];
    for (let i = 0; i < N; i++) {
      const a = genF80(r), b = genF80Near(r, a), cw = cwFor(r);
      cases.push({
        input: `${op} ${hex(cw, 4)} ${f80s(a)} ${f80s(b)}`,
        ours: () => {
          setX87Control(env, cw);
          fn(env, res, a[0], a[1], a[2], b[0], b[1], b[2]);
          return `${pk(res)} ${sw()}`;
        },
      });
    }
    check(op, cases);
  });
}

for (const op of ["fsqrt", "frndint"] as const) {
  test(`x87 ${op} matches the host CPU`, { skip: skip ?? false }, () => {
    const r = rng(0x2000 + op.length);
    const fn = op === "fsqrt" ? f80Sqrt : f80RoundInt;
    const cases: Case[] = [];
    for (let i = 0; i < N; i++) {
      const a = genF80(r), cw = cwFor(r);
      cases.push({
        input: `${op} ${hex(cw, 4)} ${f80s(a)}`,
        ours: () => {
          setX87Control(env, cw);
          fn(env, res, a[0], a[1], a[2]);
          return `${pk(res)} ${sw()}`;
        },
      });
    }
    check(op, cases);
  });
}

test("x87 fscale and fxtract match the host CPU", { skip: skip ?? false }, () => {
  const r = rng(0x3000);
  const cases: Case[] = [];
  for (let i = 0; i < N; i++) {
    const a = genF80(r), cw = cwFor(r);
    const b: F80 = r() % 2 ? genF80(r) : [((r() & 1) << 15) | (16383 + (r() % 16)), (r() | 0x80000000) >>> 0, r()];
    cases.push({
      input: `fscale ${hex(cw, 4)} ${f80s(a)} ${f80s(b)}`,
      ours: () => {
        setX87Control(env, cw);
        f80Scale(env, res, a[0], a[1], a[2], b[0], b[1], b[2]);
        return `${pk(res)} ${sw()}`;
      },
    });
    cases.push({
      input: `fxtract ${hex(cw, 4)} ${f80s(a)}`,
      ours: () => {
        setX87Control(env, cw);
        f80Xtract(env, res, res2, a[0], a[1], a[2]);
        return `${pk(res)} ${pk(res2)} ${sw()}`;
      },
    });
  }
  check("fscale/fxtract", cases);
});

for (const op of ["fprem", "fprem1"] as const) {
  test(`x87 ${op} matches the host CPU (remainder and C0 C1 C2 C3)`, { skip: skip ?? false }, () => {
    const r = rng(0x4000 + op.length);
    const cases: Case[] = [];
    for (let i = 0; i < N; i++) {
      const a = genF80(r), cw = cwFor(r);
      const b = r() % 2 ? genF80Near(r, a) : genF80(r);
      cases.push({
        input: `${op} ${hex(cw, 4)} ${f80s(a)} ${f80s(b)}`,
        ours: () => {
          setX87Control(env, cw);
          f80Prem(env, res, a[0], a[1], a[2], b[0], b[1], b[2], op === "fprem1");
          const q = premStatus.q;
          const cc = premStatus.incomplete ? 0x400 : ((q & 4) << 6) | ((q & 2) << 13) | ((q & 1) << 9);
          return `${pk(res)} ${hex(env.flags | cc, 4)}`;
        },
      });
    }
    check(op, cases, 0x473f);
  });
}

for (const op of ["fcom", "fucom", "fcomi", "fucomi"] as const) {
  test(`x87 ${op} matches the host CPU`, { skip: skip ?? false }, () => {
    const r = rng(0x5000 + op.length);
    const cases: Case[] = [];
    for (let i = 0; i < N; i++) {
      const a = genF80(r), b = r() % 4 === 0 ? a : genF80Near(r, a), cw = cwFor(r);
      cases.push({
        input: `${op} ${hex(cw, 4)} ${f80s(a)} ${f80s(b)}`,
        ours: () => {
          setX87Control(env, cw);
          const c = f80Compare(env, a[0], a[1], a[2], b[0], b[1], b[2], op.startsWith("fu"));
          if (op.endsWith("i")) return `${hex(eflagsCompare(c), 3)} ${hex(env.flags, 4)}`;
          return hex(env.flags | x87CompareCodes(c), 4);
        },
      });
    }
    check(op, cases, 0x473f);
  });
}

test("x87 integer stores (FIST, FISTTP) and loads (FILD) match the host CPU", { skip: skip ?? false }, () => {
  const r = rng(0x6000);
  const cases: Case[] = [];
  for (let i = 0; i < N; i++) {
    const cw = cwFor(r);
    let a = genF80(r);
    if (r() % 2) a = [((r() & 1) << 15) | (16383 + (r() % 66)), (r() | 0x80000000) >>> 0, r() % 3 ? r() : 0];
    for (const bits of [16, 32, 64]) {
      for (const tt of [false, true]) {
        const op = `${tt ? "fisttp" : "fist"}${bits}`;
        cases.push({
          input: `${op} ${hex(cw, 4)} ${f80s(a)}`,
          ours: () => {
            setX87Control(env, cw);
            f80ToInt(env, res, a[0], a[1], a[2], bits, tt);
            const v = bits === 64 ? hex(res.hi, 8) + hex(res.lo, 8) : hex(res.lo, bits / 4);
            return `${v} ${sw()}`;
          },
        });
      }
    }
    const lo = r(), hi = r() % 3 ? r() : r() % 2 ? 0 : 0xffffffff;
    cases.push({ input: `fild64 ${hex(cw, 4)} ${hex(hi, 8)}${hex(lo, 8)}`, ours: () => { intToF80(res, lo, hi); return `${pk(res)} 0000`; } });
    cases.push({ input: `fild32 ${hex(cw, 4)} ${hex(lo, 8)}`, ours: () => { intToF80(res, lo, lo >> 31); return `${pk(res)} 0000`; } });
    const w = (lo << 16) >> 16;
    cases.push({ input: `fild16 ${hex(cw, 4)} ${hex(w, 4)}`, ours: () => { intToF80(res, w, w >> 31); return `${pk(res)} 0000`; } });
  }
  check("fist/fild", cases);
});

test("x87 float loads and stores (FLD/FST m32/m64) match the host CPU", { skip: skip ?? false }, () => {
  const r = rng(0x7000);
  const cases: Case[] = [];
  for (let i = 0; i < N; i++) {
    const cw = cwFor(r);
    const a = genF80(r), s = genF32(r), [dl, dh] = genF64(r);
    cases.push({ input: `fst32 ${hex(cw, 4)} ${f80s(a)}`, ours: () => { setX87Control(env, cw); f80ToF32(env, res, a[0], a[1], a[2]); return `${hex(res.lo, 8)} ${sw()}`; } });
    cases.push({ input: `fst64 ${hex(cw, 4)} ${f80s(a)}`, ours: () => { setX87Control(env, cw); f80ToF64(env, res, a[0], a[1], a[2]); return `${hex(res.hi, 8)}${hex(res.lo, 8)} ${sw()}`; } });
    cases.push({ input: `fld32 ${hex(cw, 4)} ${hex(s, 8)}`, ours: () => { setX87Control(env, cw); f32ToF80(env, res, s); return `${pk(res)} ${sw()}`; } });
    cases.push({ input: `fld64 ${hex(cw, 4)} ${hex(dh, 8)}${hex(dl, 8)}`, ours: () => { setX87Control(env, cw); f64ToF80(env, res, dl, dh); return `${pk(res)} ${sw()}`; } });
  }
  check("fld/fst", cases);
});

test("x87 packed BCD (FBLD/FBSTP) matches the host CPU", { skip: skip ?? false }, () => {
  const r = rng(0x8000);
  const cases: Case[] = [];
  const digits = (n: number) => { let v = 0; for (let i = 0; i < n; i++) v = (v * 16 + (r() % 10)) >>> 0; return v; };
  for (let i = 0; i < N; i++) {
    const cw = cwFor(r);
    const top = (r() & 0x8000) | digits(2), mid = digits(8), lo = digits(8);
    cases.push({ input: `fbld ${hex(cw, 4)} ${hex(top, 4)} ${hex(mid, 8)}${hex(lo, 8)}`, ours: () => { bcdToF80(res, lo, mid, top); return `${pk(res)} 0000`; } });
    let a = genF80(r);
    if (r() % 2) a = [((r() & 1) << 15) | (16383 + (r() % 62)), (r() | 0x80000000) >>> 0, r()];
    cases.push({
      input: `fbstp ${hex(cw, 4)} ${f80s(a)}`,
      ours: () => { setX87Control(env, cw); f80ToBcd(env, res, a[0], a[1], a[2]); return `${hex(res.se, 4)} ${hex(res.hi, 8)}${hex(res.lo, 8)} ${sw()}`; },
    });
  }
  check("fbld/fbstp", cases);
});

test("x87 unmasked exceptions: no store on IE/DE/ZE, bias-adjusted results on OE/UE, ES and B set", { skip: skip ?? false }, () => {
  const r = rng(0x9000);
  const fns = { ufadd: f80Add, ufsub: f80Sub, ufmul: f80Mul, ufdiv: f80Div, ufscale: f80Scale };
  const cases: Case[] = [];
  for (let i = 0; i < N; i++) {
    const a = genF80(r), b = genF80Near(r, a);
    const cw = 0x40 | (r() & 0x3f) | ([0, 2, 3][r() % 3]! << 8) | ((r() % 4) << 10);
    const names = Object.keys(fns) as (keyof typeof fns)[];
    const op = r() % 6 === 0 ? "ufsqrt" : names[r() % names.length]!;
    cases.push({
      input: `${op} ${hex(cw, 4)} ${f80s(a)} ${f80s(b)}`,
      ours: () => {
        setX87Control(env, cw);
        if (op === "ufsqrt") f80Sqrt(env, res, a[0], a[1], a[2]);
        else fns[op](env, res, a[0], a[1], a[2], b[0], b[1], b[2]);
        const st0 = x87ResultDelivered(env) ? pk(res) : f80s(a);
        const unmasked = (env.flags & ~env.masks & 0x3f) !== 0;
        return `${st0} ${hex(env.flags | ((env.flags & 0x20) && env.roundedUp ? 0x200 : 0) | (unmasked ? 0x8080 : 0), 4)}`;
      },
    });
  }
  check("unmasked", cases, 0x82bf);
});

test("x87 FLD constants (all rounding modes), FXAM and FTST match the host CPU", { skip: skip ?? false }, () => {
  const cases: Case[] = [];
  const names = ["fld1", "fldl2t", "fldl2e", "fldpi", "fldlg2", "fldln2", "fldz"];
  for (let rc = 0; rc < 4; rc++) {
    const cw = 0x037f | (rc << 10);
    names.forEach((n, k) => cases.push({ input: `${n} ${hex(cw, 4)}`, ours: () => { f80LoadConst(res, k, rc); return `${pk(res)} 0000`; } }));
  }
  cases.push({ input: "fxamempty 037f", ours: () => hex(f80Examine(0, 0, 0, true) & ~0x200, 4) });
  const r = rng(0xa100);
  for (let i = 0; i < 400; i++) {
    const a = genF80(r);
    cases.push({ input: `fxam 037f ${f80s(a)}`, ours: () => `${f80s(a)} ${hex(f80Examine(a[0], a[1], a[2], false), 4)}` });
    cases.push({ input: `ftst 037f ${f80s(a)}`, ours: () => { setX87Control(env, 0x037f); const c = f80Test(env, a[0], a[1], a[2]); return `${f80s(a)} ${hex(env.flags | x87CompareCodes(c), 4)}`; } });
  }
  check("constants/fxam/ftst", cases, 0x473f);
});
