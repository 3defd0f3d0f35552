// Packed SSE float instructions executed on the host CPU (oracle "exec") against the library:
// all lanes, the MXCSR flags, every rounding mode with FTZ/DAZ.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FpEnv, Packed } from "../../../../src/hw/x86/fp/softfloat.js";
import { eflagsCompare } from "../../../../src/hw/x86/fp/f80.js";
import {
  setMxcsr, sseResultDelivered, sseFinish, f32Op, f64Op, f32Compare, f32ToF64, f64ToF32, f32ToInt, intToF32, packedF32Op, packedF64Op, SSE_ADD, SSE_SUB, SSE_MUL, SSE_DIV, SSE_MIN, SSE_MAX, SSE_SQRT, SSE_CMP, SSE_ROUND,
} from "../../../../src/hw/x86/fp/sse_float.js";
import * as P from "../../../../src/hw/x86/fp/sse_packed.js";
import { oracleSkipReason, runOracle, rng, hex } from "./oracle.node.js";
import { genF32, genF64 } from "./operands.js";

const skip = oracleSkipReason();
const N = Number(process.env.FP_ORACLE_N ?? 1500);
const env = new FpEnv();
const xmm = new Int32Array(12);

type Out = { ecx?: number; flags?: number } | boolean | void;
type Op = { name: string; enc: string; imm?: boolean; dbl: boolean; run: (imm: number, eax: number) => Out };
const ops: Op[] = [];
const lane = (name: string, enc: string, op: number, dbl: boolean, imm = false): Op => ({
  name, enc, imm, dbl, run: (i) => { if (dbl) packedF64Op(env, op, xmm, 1, 2, i); else packedF32Op(env, op, xmm, 1, 2, i); },
});
([["add", "58", SSE_ADD], ["mul", "59", SSE_MUL], ["sub", "5c", SSE_SUB], ["min", "5d", SSE_MIN], ["div", "5e", SSE_DIV], ["max", "5f", SSE_MAX], ["sqrt", "51", SSE_SQRT]] as const).forEach(([n, e, op]) => {
  ops.push(lane(`${n}ps`, `0f${e}ca`, op, false));
  ops.push(lane(`${n}pd`, `660f${e}ca`, op, true));
});
ops.push({ ...lane("cmpps", "0fc2ca", SSE_CMP, false, true) });
ops.push({ ...lane("cmppd", "660fc2ca", SSE_CMP, true, true) });
ops.push({ ...lane("roundps", "660f3a08ca", SSE_ROUND, false, true) });
ops.push({ ...lane("roundpd", "660f3a09ca", SSE_ROUND, true, true) });
ops.push({ name: "cvtdq2ps", enc: "0f5bca", dbl: false, run: () => P.cvtdq2ps(env, xmm, 1, 2) });
ops.push({ name: "cvtps2dq", enc: "660f5bca", dbl: false, run: () => P.cvtps2dq(env, xmm, 1, 2, false) });
ops.push({ name: "cvttps2dq", enc: "f30f5bca", dbl: false, run: () => P.cvtps2dq(env, xmm, 1, 2, true) });
ops.push({ name: "cvtdq2pd", enc: "f30fe6ca", dbl: false, run: () => P.cvtdq2pd(env, xmm, 1, 2) });
ops.push({ name: "cvtpd2dq", enc: "f20fe6ca", dbl: true, run: () => P.cvtpd2dq(env, xmm, 1, 2, false) });
ops.push({ name: "cvttpd2dq", enc: "660fe6ca", dbl: true, run: () => P.cvtpd2dq(env, xmm, 1, 2, true) });
ops.push({ name: "cvtps2pd", enc: "0f5aca", dbl: false, run: () => P.cvtps2pd(env, xmm, 1, 2) });
ops.push({ name: "cvtpd2ps", enc: "660f5aca", dbl: true, run: () => P.cvtpd2ps(env, xmm, 1, 2) });
ops.push({ name: "haddps", enc: "f20f7cca", dbl: false, run: () => P.hopps(env, xmm, 1, 2, false) });
ops.push({ name: "hsubps", enc: "f20f7dca", dbl: false, run: () => P.hopps(env, xmm, 1, 2, true) });
ops.push({ name: "haddpd", enc: "660f7cca", dbl: true, run: () => P.hoppd(env, xmm, 1, 2, false) });
ops.push({ name: "hsubpd", enc: "660f7dca", dbl: true, run: () => P.hoppd(env, xmm, 1, 2, true) });
ops.push({ name: "addsubps", enc: "f20fd0ca", dbl: false, run: () => P.addsubps(env, xmm, 1, 2) });
ops.push({ name: "addsubpd", enc: "660fd0ca", dbl: true, run: () => P.addsubpd(env, xmm, 1, 2) });
ops.push({ name: "dpps", enc: "660f3a40ca", imm: true, dbl: false, run: (i) => P.dpps(env, xmm, 1, 2, i) });
ops.push({ name: "dppd", enc: "660f3a41ca", imm: true, dbl: true, run: (i) => P.dppd(env, xmm, 1, 2, i) });

// Scalar forms: lane 0 only, upper lanes preserved; results written only when delivered.
const sp = new Packed();
ops.push({ name: "addss", enc: "f30f58ca", dbl: false, run: () => { const v = f32Op(env, SSE_ADD, xmm[4]!, xmm[8]!); if (sseFinish(env)) xmm[4] = v; } });
ops.push({ name: "divss", enc: "f30f5eca", dbl: false, run: () => { const v = f32Op(env, SSE_DIV, xmm[4]!, xmm[8]!); if (sseFinish(env)) xmm[4] = v; } });
ops.push({ name: "sqrtss", enc: "f30f51ca", dbl: false, run: () => { const v = f32Op(env, SSE_SQRT, xmm[4]!, xmm[8]!); if (sseFinish(env)) xmm[4] = v; } });
ops.push({ name: "mulsd", enc: "f20f59ca", dbl: true, run: () => { f64Op(env, SSE_MUL, sp, xmm[4]!, xmm[5]!, xmm[8]!, xmm[9]!); if (sseFinish(env)) { xmm[4] = sp.lo; xmm[5] = sp.hi; } } });
ops.push({ name: "cvtss2sd", enc: "f30f5aca", dbl: false, run: () => { f32ToF64(env, sp, xmm[8]!); if (sseFinish(env)) { xmm[4] = sp.lo; xmm[5] = sp.hi; } } });
ops.push({ name: "cvtsd2ss", enc: "f20f5aca", dbl: true, run: () => { const v = f64ToF32(env, xmm[8]!, xmm[9]!); if (sseFinish(env)) xmm[4] = v; } });
ops.push({ name: "comiss", enc: "0f2fca", dbl: false, run: () => { const c = f32Compare(env, xmm[4]!, xmm[8]!, false); return { flags: sseFinish(env) ? eflagsCompare(c) : 0 }; } });
ops.push({ name: "ucomiss", enc: "0f2eca", dbl: false, run: () => { const c = f32Compare(env, xmm[4]!, xmm[8]!, true); return { flags: sseFinish(env) ? eflagsCompare(c) : 0 }; } });
ops.push({ name: "cvtss2si", enc: "f30f2dca", dbl: false, run: () => { f32ToInt(env, sp, xmm[8]!, 32, false); return { ecx: sseFinish(env) ? sp.lo : 0 }; } });
ops.push({ name: "cvttss2si", enc: "f30f2cca", dbl: false, run: () => { f32ToInt(env, sp, xmm[8]!, 32, true); return { ecx: sseFinish(env) ? sp.lo : 0 }; } });
ops.push({ name: "cvtsi2ss", enc: "f30f2ac8", dbl: false, run: (_i, eax) => { const v = intToF32(env, eax, eax >> 31); if (sseFinish(env)) xmm[4] = v; } });

const regHex = (n: number) => hex(xmm[n * 4 + 3]!, 8) + hex(xmm[n * 4 + 2]!, 8) + hex(xmm[n * 4 + 1]!, 8) + hex(xmm[n * 4]!, 8);

function runAll(seed: number, unmasked: boolean) {
  const r = rng(seed);
  const inputs: string[] = [], models: (() => string)[] = [];
  const per = Math.max(10, Math.floor(N / 15));
  for (const op of ops) {
    for (let i = 0; i < per; i++) {
      const regs: number[] = [];
      for (let k = 0; k < 3; k++) {
        if (op.dbl) for (let j = 0; j < 2; j++) regs.push(...genF64(r));
        else if (op.name.startsWith("cvtdq")) for (let j = 0; j < 4; j++) regs.push(r() % 2 ? r() : (r() % 200) - 100);
        else for (let j = 0; j < 4; j++) regs.push(genF32(r));
      }
      let mx = 0x1f80 | ((r() % 4) << 13) | (r() % 4 === 0 ? 0x8000 : 0) | (r() % 4 === 0 ? 0x40 : 0);
      if (unmasked) mx &= ~((r() & 0x3f) << 7);
      const imm = op.name.startsWith("cmp") ? r() % 8 : op.name.startsWith("round") ? r() % 16 : r() & 0xff;
      const load = () => { for (let k = 0; k < 12; k++) xmm[k] = regs[k]!; };
      load();
      const eax = r() % 2 ? r() : (r() % 2000) - 1000;
      inputs.push(`exec ${hex(mx, 4)} ${op.enc}${op.imm ? hex(imm, 2) : ""} ${regHex(0)} ${regHex(1)} ${regHex(2)} ${hex(eax, 8)} 0`);
      models.push(() => {
        load();
        setMxcsr(env, mx);
        const ran = op.run(imm, eax | 0);
        const o = typeof ran === "object" ? ran : {};
        return `${regHex(0)} ${regHex(1)} ${regHex(2)} ${hex(o.ecx ?? 0, 8)} ${hex(o.flags ?? 0, 3)} ${hex(mx | env.flags, 8)}${sseResultDelivered(env) ? "" : " T"}`;
      });
    }
  }
  const hw = runOracle(inputs);
  const bad: string[] = [];
  for (let i = 0; i < inputs.length && bad.length < 12; i++) {
    const ours = models[i]!();
    if (ours !== hw[i]) bad.push(`${inputs[i]}\n   hw   ${hw[i]}\n   ours ${ours}`);
  }
  assert.deepEqual(bad, [], bad.join("\n"));
}

test("packed SSE float ops, conversions, horizontal ops and DPPS/DPPD match the host CPU", { skip: skip ?? false }, () => runAll(0xe000, false));

test("unmasked SIMD exceptions: #XM taken, destination untouched, MXCSR flags as on the host", { skip: skip ?? false }, () => runAll(0xe100, true));
