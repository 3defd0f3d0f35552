// Bit-exact comparison of the SSE integer/shuffle operations with the host CPU: the oracle runs
// each real instruction (dst xmm1, src xmm2, implicit mask xmm0) on random registers.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as S from "../../../../src/hw/x86/fp/simd_int.js";
import { oracleSkipReason, runOracle, rng, hex } from "./oracle.node.js";

const skip = oracleSkipReason();
const N = Number(process.env.FP_ORACLE_N ?? 1500);
const xmm = new Int32Array(12);
const R = new S.SimdRegs(xmm);

type Model = (imm: number, eax: number, edx: number) => { ecx?: number; flags?: number };
type Op = { name: string; enc: string; imm?: boolean; model: Model };

const bin = (name: string, enc: string, f: (d: number, s: number) => void): Op => ({ name, enc: `660f${enc}ca`, model: () => { f(1, 2); return {}; } });
const bin38 = (name: string, enc: string, f: (d: number, s: number) => void): Op => ({ name, enc: `660f38${enc}ca`, model: () => { f(1, 2); return {}; } });
const imm3a = (name: string, enc: string, f: (d: number, s: number, imm: number) => void): Op => ({ name, enc: `660f3a${enc}ca`, imm: true, model: (imm) => { f(1, 2, imm); return {}; } });

const ops: Op[] = [];
[["fc", 1], ["fd", 2], ["fe", 4], ["d4", 8]].forEach(([e, w]) => ops.push(bin(`padd${w}`, e as string, (d, s) => S.padd(R, d, s, w as number, false))));
[["f8", 1], ["f9", 2], ["fa", 4], ["fb", 8]].forEach(([e, w]) => ops.push(bin(`psub${w}`, e as string, (d, s) => S.padd(R, d, s, w as number, true))));
([["ec", 1, false, false], ["ed", 2, false, false], ["dc", 1, false, true], ["dd", 2, false, true], ["e8", 1, true, false], ["e9", 2, true, false], ["d8", 1, true, true], ["d9", 2, true, true]] as const)
  .forEach(([e, w, sub, u]) => ops.push(bin(`padds${e}`, e, (d, s) => S.paddSat(R, d, s, w, sub, u))));
ops.push(bin("pmullw", "d5", (d, s) => S.pmulw(R, d, s, false, false)));
ops.push(bin("pmulhw", "e5", (d, s) => S.pmulw(R, d, s, true, false)));
ops.push(bin("pmulhuw", "e4", (d, s) => S.pmulw(R, d, s, true, true)));
ops.push(bin("pmuludq", "f4", (d, s) => S.pmuldq(R, d, s, false)));
ops.push(bin("pmaddwd", "f5", (d, s) => S.pmaddwd(R, d, s)));
ops.push(bin("pavgb", "e0", (d, s) => S.pavg(R, d, s, 1)));
ops.push(bin("pavgw", "e3", (d, s) => S.pavg(R, d, s, 2)));
ops.push(bin("psadbw", "f6", (d, s) => S.psadbw(R, d, s)));
ops.push(bin("pminub", "da", (d, s) => S.pminmax(R, d, s, 1, false, false)));
ops.push(bin("pmaxub", "de", (d, s) => S.pminmax(R, d, s, 1, false, true)));
ops.push(bin("pminsw", "ea", (d, s) => S.pminmax(R, d, s, 2, true, false)));
ops.push(bin("pmaxsw", "ee", (d, s) => S.pminmax(R, d, s, 2, true, true)));
([["74", 1, false], ["75", 2, false], ["76", 4, false], ["64", 1, true], ["65", 2, true], ["66", 4, true]] as const).forEach(([e, w, gt]) => ops.push(bin(`pcmp${e}`, e, (d, s) => S.pcmp(R, d, s, w, gt))));
([["db", S.LOGIC_AND], ["df", S.LOGIC_ANDN], ["eb", S.LOGIC_OR], ["ef", S.LOGIC_XOR]] as const).forEach(([e, k]) => ops.push(bin(`logic${e}`, e, (d, s) => S.plogic(R, d, s, k))));
([["f1", 2, S.SHIFT_LL], ["f2", 4, S.SHIFT_LL], ["f3", 8, S.SHIFT_LL], ["d1", 2, S.SHIFT_RL], ["d2", 4, S.SHIFT_RL], ["d3", 8, S.SHIFT_RL], ["e1", 2, S.SHIFT_RA], ["e2", 4, S.SHIFT_RA]] as const)
  .forEach(([e, w, k]) => ops.push(bin(`shift${e}`, e, (d, s) => S.pshift(R, d, w, k, S.shiftCountFromReg(R, s)))));
// Immediate shifts on xmm1: 66 0F 71/72/73 /n ib.
([["71f1", 2, S.SHIFT_LL], ["71d1", 2, S.SHIFT_RL], ["71e1", 2, S.SHIFT_RA], ["72f1", 4, S.SHIFT_LL], ["72d1", 4, S.SHIFT_RL], ["72e1", 4, S.SHIFT_RA], ["73f1", 8, S.SHIFT_LL], ["73d1", 8, S.SHIFT_RL]] as const)
  .forEach(([e, w, k]) => ops.push({ name: `shiftimm${e}`, enc: `660f${e}`, imm: true, model: (imm) => { S.pshift(R, 1, w, k, imm); return {}; } }));
ops.push({ name: "pslldq", enc: "660f73f9", imm: true, model: (imm) => { S.pshiftBytes(R, 1, imm, true); return {}; } });
ops.push({ name: "psrldq", enc: "660f73d9", imm: true, model: (imm) => { S.pshiftBytes(R, 1, imm, false); return {}; } });
([["63", 2, false], ["67", 2, true], ["6b", 4, false]] as const).forEach(([e, w, u]) => ops.push(bin(`pack${e}`, e, (d, s) => S.pack(R, d, s, w, u))));
ops.push(bin38("packusdw", "2b", (d, s) => S.pack(R, d, s, 4, true)));
([["60", 1, false], ["61", 2, false], ["62", 4, false], ["6c", 8, false], ["68", 1, true], ["69", 2, true], ["6a", 4, true], ["6d", 8, true]] as const)
  .forEach(([e, w, h]) => ops.push(bin(`punpck${e}`, e, (d, s) => S.punpck(R, d, s, w, h))));
ops.push({ name: "pshufd", enc: "660f70ca", imm: true, model: (imm) => { S.pshufd(R, 1, 2, imm); return {}; } });
ops.push({ name: "pshufhw", enc: "f30f70ca", imm: true, model: (imm) => { S.pshufw(R, 1, 2, imm, true); return {}; } });
ops.push({ name: "pshuflw", enc: "f20f70ca", imm: true, model: (imm) => { S.pshufw(R, 1, 2, imm, false); return {}; } });
ops.push(bin38("pshufb", "00", (d, s) => S.pshufb(R, d, s)));
([["01", 2, false, false], ["02", 4, false, false], ["03", 2, false, true], ["05", 2, true, false], ["06", 4, true, false], ["07", 2, true, true]] as const)
  .forEach(([e, w, sub, sat]) => ops.push(bin38(`ph${e}`, e, (d, s) => S.phaddsub(R, d, s, w, sub, sat))));
ops.push(bin38("pmaddubsw", "04", (d, s) => S.pmaddubsw(R, d, s)));
([["08", 1], ["09", 2], ["0a", 4]] as const).forEach(([e, w]) => ops.push(bin38(`psign${w}`, e, (d, s) => S.psign(R, d, s, w))));
ops.push(bin38("pmulhrsw", "0b", (d, s) => S.pmulhrsw(R, d, s)));
([["1c", 1], ["1d", 2], ["1e", 4]] as const).forEach(([e, w]) => ops.push(bin38(`pabs${w}`, e, (d, s) => S.pabs(R, d, s, w))));
ops.push(imm3a("palignr", "0f", (d, s, imm) => S.palignr(R, d, s, imm)));
([["10", 1], ["14", 4], ["15", 8]] as const).forEach(([e, w]) => ops.push(bin38(`blendv${w}`, e, (d, s) => S.blendv(R, d, s, 0, w))));
ops.push({ name: "ptest", enc: "660f3817ca", model: () => ({ flags: S.ptest(R, 1, 2) }) });
([["20", 1, 2], ["21", 1, 4], ["22", 1, 8], ["23", 2, 4], ["24", 2, 8], ["25", 4, 8]] as const).forEach(([e, f, t]) => {
  ops.push(bin38(`pmovsx${e}`, e, (d, s) => S.pmovx(R, d, s, f, t, true)));
  ops.push(bin38(`pmovzx${e}`, (parseInt(e, 16) + 0x10).toString(16), (d, s) => S.pmovx(R, d, s, f, t, false)));
});
ops.push(bin38("pmuldq", "28", (d, s) => S.pmuldq(R, d, s, true)));
ops.push(bin38("pcmpeqq", "29", (d, s) => S.pcmp(R, d, s, 8, false)));
ops.push(bin38("pcmpgtq", "37", (d, s) => S.pcmp(R, d, s, 8, true)));
([["38", 1, true, false], ["39", 4, true, false], ["3a", 2, false, false], ["3b", 4, false, false], ["3c", 1, true, true], ["3d", 4, true, true], ["3e", 2, false, true], ["3f", 4, false, true]] as const)
  .forEach(([e, w, sg, mx]) => ops.push(bin38(`pminmax${e}`, e, (d, s) => S.pminmax(R, d, s, w, sg, mx))));
ops.push(bin38("pmulld", "40", (d, s) => S.pmulld(R, d, s)));
ops.push(bin38("phminposuw", "41", (d, s) => S.phminposuw(R, d, s)));
ops.push(imm3a("blendps", "0c", (d, s, imm) => S.blendImm(R, d, s, imm, 4)));
ops.push(imm3a("blendpd", "0d", (d, s, imm) => S.blendImm(R, d, s, imm, 8)));
ops.push(imm3a("pblendw", "0e", (d, s, imm) => S.pblendw(R, d, s, imm)));
ops.push(imm3a("mpsadbw", "42", (d, s, imm) => S.mpsadbw(R, d, s, imm)));
ops.push({ name: "pcmpestrm", enc: "660f3a60ca", imm: true, model: (imm, eax, edx) => ({ flags: S.pcmpstr(R, 1, 2, imm, true, eax, edx, true) }) });
ops.push({ name: "pcmpestri", enc: "660f3a61ca", imm: true, model: (imm, eax, edx) => { const flags = S.pcmpstr(R, 1, 2, imm, true, eax, edx, false); return { flags, ecx: S.strResult.ecx }; } });
ops.push({ name: "pcmpistrm", enc: "660f3a62ca", imm: true, model: (imm) => ({ flags: S.pcmpstr(R, 1, 2, imm, false, 0, 0, true) }) });
ops.push({ name: "pcmpistri", enc: "660f3a63ca", imm: true, model: (imm) => { const flags = S.pcmpstr(R, 1, 2, imm, false, 0, 0, false); return { flags, ecx: S.strResult.ecx }; } });
ops.push({ name: "pinsrb", enc: "660f3a20c8", imm: true, model: (imm, eax) => { S.pinsr(R, 1, eax, imm, 1); return {}; } });
ops.push({ name: "pinsrw", enc: "660fc4c8", imm: true, model: (imm, eax) => { S.pinsr(R, 1, eax, imm, 2); return {}; } });
ops.push({ name: "pinsrd", enc: "660f3a22c8", imm: true, model: (imm, eax) => { S.pinsr(R, 1, eax, imm, 4); return {}; } });
ops.push({ name: "pextrb", enc: "660f3a14d1", imm: true, model: (imm) => ({ ecx: S.pextr(R, 2, imm, 1) }) });
ops.push({ name: "pextrw", enc: "660fc5ca", imm: true, model: (imm) => ({ ecx: S.pextr(R, 2, imm, 2) }) });
ops.push({ name: "pextrd", enc: "660f3a16d1", imm: true, model: (imm) => ({ ecx: S.pextr(R, 2, imm, 4) }) });
ops.push({ name: "pmovmskb", enc: "660fd7ca", model: () => ({ ecx: S.pmovmskb(R, 2) }) });

function regHex(n: number): string {
  return hex(xmm[n * 4 + 3]!, 8) + hex(xmm[n * 4 + 2]!, 8) + hex(xmm[n * 4 + 1]!, 8) + hex(xmm[n * 4]!, 8);
}

function genReg(r: () => number, out: number[], stringy: boolean): void {
  const kind = r() % 6;
  for (let i = 0; i < 4; i++) {
    let w = r();
    if (stringy || kind === 5) {
      // Small alphabet with some NULs so that string matches and terminators occur.
      w = 0;
      for (let b = 0; b < 4; b++) w |= (r() % 9 === 0 ? 0 : 0x41 + (r() % 4)) << (b * 8);
      if (r() % 2) w = (w & 0xff00ff) | ((r() % 3) << 8);
    } else if (kind === 1) w = [0, 0xffffffff, 0x80000000, 0x7fffffff, 0x80808080, 0x7f7f7f7f, 0x00ff00ff, 0x80007fff][r() % 8]!;
    else if (kind === 2) w = r() % 64; // small shift counts / indices
    else if (kind === 3) w = (r() & 0x80808080) | (r() & 0x0f0f0f0f);
    out.push(w >>> 0);
  }
}

test("SSE integer, shuffle and string operations match the host CPU", { skip: skip ?? false }, () => {
  const r = rng(0xa000);
  const inputs: string[] = [], models: (() => string)[] = [];
  const per = Math.max(8, Math.floor(N / 40));
  for (const op of ops) {
    for (let i = 0; i < per; i++) {
      const regs: number[] = [];
      const stringy = op.name.startsWith("pcmp") && op.name.includes("str") && r() % 4 !== 0;
      for (let k = 0; k < 3; k++) genReg(r, regs, stringy);
      const imm = r() % 4 === 0 ? [0, 1, 4, 8, 15, 16, 17, 31, 32, 63, 64, 255][r() % 12]! : r() & 0xff;
      const eax = r() % 3 === 0 ? r() : (r() % 40) - 20, edx = r() % 3 === 0 ? r() : (r() % 40) - 20;
      const enc = op.enc + (op.imm ? hex(imm, 2) : "");
      const pre = (i32: number[]) => { for (let k = 0; k < 12; k++) xmm[k] = i32[k]!; };
      pre(regs);
      inputs.push(`exec 1f80 ${enc} ${regHex(0)} ${regHex(1)} ${regHex(2)} ${hex(eax, 8)} ${hex(edx, 8)}`);
      models.push(() => {
        pre(regs);
        const o = op.model(imm, eax | 0, edx | 0);
        return `${regHex(0)} ${regHex(1)} ${regHex(2)} ${hex(o.ecx ?? 0, 8)} ${hex(o.flags ?? 0, 3)} 00001f80`;
      });
    }
  }
  const hw = runOracle(inputs);
  const bad: string[] = [];
  for (let i = 0; i < inputs.length && bad.length < 15; i++) {
    const ours = models[i]!();
    if (ours !== hw[i]) bad.push(`${inputs[i]}\n   hw   ${hw[i]}\n   ours ${ours}`);
  }
  assert.deepEqual(bad, [], bad.join("\n"));
});
