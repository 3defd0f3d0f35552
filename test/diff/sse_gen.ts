/**
 * Random MMX-free SSE..SSE4.2 cases for the differential test (test/diff/sse.test.ts): every
 * block loads XMM0-7 from a data area of edge-case lanes (±0, denormals, ±inf, QNaN, SNaN,
 * extremes, near-ties, small integers), sets a random MXCSR (rounding mode, FTZ, DAZ, sticky
 * flags; exceptions masked) and random arithmetic flags, runs one SSE instruction at CPL 3 and
 * dumps the state through two MMIO-write exits: XMM0-3 in R8-R15 with MXCSR in RAX and RFLAGS in
 * RBX, then XMM4-7 in R8-R15 (MM0-7 for the MMX forms, whose blocks also load MM0-7 and end with
 * EMMS). RCX/RDX/RSI/RDI carry the instruction's GPR inputs and outputs.
 */
import { Rng, LAYOUT } from "./gen.js";
import type { InitState, Regs } from "./harness.js";

export interface SseCase { source: string; init: InitState; approx: boolean[] }

const F32_SPECIAL = [0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x00800000, 0x7f7fffff, 0xff7fffff, 0x7f800000,
  0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0xff812345, 0x3f800000, 0xbf800000, 0x3f800001, 0x4b000001,
  0x3effffff, 0x4f000000, 0xcf000000, 0x5f000000, 0x3f000000, 0x40490fdb];
const F64_SPECIAL: [number, number][] = [[0, 0], [0, 0x80000000], [1, 0], [0xffffffff, 0x800fffff], [0, 0x00100000],
  [0xffffffff, 0x7fefffff], [0, 0x7ff00000], [0, 0xfff00000], [0, 0x7ff80000], [1, 0xfff80000], [1, 0x7ff00000],
  [0x1234, 0xfff40000], [0, 0x3ff00000], [0, 0xbff00000], [1, 0x3ff00000], [0, 0x43300000], [0xffffffff, 0x3fdfffff],
  [0, 0x41e00000], [0, 0xc1e00000], [0, 0x43e00000], [0x20000000, 0x36a00000], [0x54442d18, 0x400921fb]];

/** Random lane words for one 16-byte value of kind f32 / f64 / int. */
function lanes(r: Rng, kind: number): number[] {
  const w: number[] = [];
  if (kind === 0) {
    for (let i = 0; i < 4; i++) {
      const k = r.int(4);
      w.push(k === 0 ? r.u32() : k === 1 ? ((r.int(64) + 100) << 23) | (r.u32() & 0x7fffff) | (r.int(2) << 31) : r.pick(F32_SPECIAL));
    }
  } else if (kind === 1) {
    for (let i = 0; i < 2; i++) {
      const k = r.int(4);
      if (k === 0) w.push(r.u32(), r.u32());
      else if (k === 1) w.push(r.u32(), ((r.int(128) + 960) << 20) | (r.u32() & 0xfffff) | (r.int(2) << 31));
      else w.push(...r.pick(F64_SPECIAL));
    }
  } else {
    for (let i = 0; i < 4; i++) {
      const k = r.int(5);
      w.push(k === 0 ? r.pick([0, 0xffffffff, 0x80000000, 0x7fffffff, 0x00008000, 0x80008000, 0x7f7f7f7f, 0x00ff00ff])
        : k === 1 ? r.int(64) | (r.int(64) << 8) | (r.int(4) << 16) : k === 2 ? r.u32() & 0x7f7f7f7f : r.u32());
    }
  }
  return w.map((v) => v >>> 0);
}

/** imm8 for a template: CMPxx predicates 0-7 and ROUNDxx controls 0-15 in the legacy encoding, PCMPxSTRx bit 7 reserved. */
function immFor(tpl: string, r: Rng): number {
  if (tpl.startsWith("cmp")) return r.int(8);
  if (tpl.startsWith("round")) return r.int(16);
  if (tpl.startsWith("pcmp")) return r.int(128);
  return r.int(256);
}

// [template, lane kind of the inputs, approximate]. x/y: XMM dst/src, m: aligned m128, q: m64,
// d: m32, I: imm8, R/E: 64/32-bit GPR (rcx as output, rdx as input).
type T = [string, number, boolean?, boolean?];
const F32: T[] = ["addps x, y", "subps x, y", "mulps x, y", "divps x, m", "minps x, y", "maxps x, y", "sqrtps x, y", "cmpps x, y, I",
  "andnps x, y", "xorps x, m", "unpcklps x, y", "unpckhps x, m", "shufps x, y, I", "haddps x, y", "hsubps x, m", "addsubps x, y",
  "roundps x, y, I", "dpps x, y, I", "blendps x, y, I", "insertps x, y, I", "insertps x, d, I", "movmskps ecx, y", "movsldup x, y", "movshdup x, m",
  "cvtps2pd x, y", "cvtps2pd x, q", "cvtps2dq x, y", "cvttps2dq x, m", "addss x, y", "subss x, d", "mulss x, y", "divss x, y", "minss x, y",
  "maxss x, d", "sqrtss x, y", "cmpss x, y, I", "comiss x, y", "ucomiss x, d", "roundss x, y, I", "cvtss2sd x, y", "cvtss2si rcx, y",
  "cvttss2si ecx, y", "cvtss2si ecx, d", "movss x, y", "movss x, d", "extractps ecx, y, I", "blendvps x, y, xmm0", "movhlps x, y", "movlhps x, y",
  "rcpps x, y", "rsqrtps x, m", "rcpss x, y", "rsqrtss x, d"].map((s) => [s, 0, /rcp|rsqrt/.test(s)] as T);
const F64: T[] = ["addpd x, y", "subpd x, m", "mulpd x, y", "divpd x, y", "minpd x, m", "maxpd x, y", "sqrtpd x, y", "cmppd x, y, I",
  "andpd x, y", "orpd x, y", "unpcklpd x, y", "unpckhpd x, y", "shufpd x, m, I", "haddpd x, y", "hsubpd x, y", "addsubpd x, m",
  "roundpd x, y, I", "dppd x, y, I", "blendpd x, y, I", "movmskpd ecx, y", "movddup x, y", "movddup x, q", "cvtpd2ps x, y", "cvtpd2dq x, m",
  "cvttpd2dq x, y", "addsd x, y", "subsd x, q", "mulsd x, y", "divsd x, q", "minsd x, y", "maxsd x, y", "sqrtsd x, q", "cmpsd x, y, I",
  "comisd x, q", "ucomisd x, y", "roundsd x, q, I", "cvtsd2ss x, y", "cvtsd2si rcx, y", "cvttsd2si ecx, q", "cvtsd2si ecx, y",
  "movsd x, q", "movsd x, y", "blendvpd x, y, xmm0", "movlpd x, q", "movhpd x, q"].map((s) => [s, 1] as T);
const INT: T[] = ["cvtdq2ps x, y", "cvtdq2pd x, y", "cvtsi2ss x, rdx", "cvtsi2sd x, edx", "cvtsi2sd x, rdx", "cvtsi2ss x, edx",
  "paddb x, y", "paddw x, m", "paddd x, y", "paddq x, y", "psubb x, y", "psubq x, m", "paddsb x, y", "paddusw x, y", "psubsw x, y", "psubusb x, y",
  "pmullw x, y", "pmulhw x, m", "pmulhuw x, y", "pmuludq x, y", "pmaddwd x, y", "pavgb x, y", "pavgw x, y", "psadbw x, y", "pminub x, y",
  "pmaxsw x, y", "pcmpeqb x, y", "pcmpgtw x, y", "pcmpgtd x, m", "pand x, y", "pandn x, y", "por x, y", "pxor x, y", "packsswb x, y",
  "packuswb x, y", "packssdw x, m", "punpcklbw x, y", "punpckhwd x, y", "punpckldq x, y", "punpckhqdq x, y", "punpcklqdq x, m",
  "pshufd x, y, I", "pshufhw x, m, I", "pshuflw x, y, I", "psllw x, y", "psrld x, y", "psraw x, y", "psrlq x, m", "psllq x, I5",
  "psrlw x, I5", "psrad x, I5", "pslld x, I5", "psrldq x, I5", "pslldq x, I5", "pmovmskb ecx, y", "pextrw ecx, y, I", "pinsrw x, edx, I",
  "pshufb x, y", "phaddw x, y", "phaddd x, m", "phaddsw x, y", "phsubw x, y", "phsubsw x, y", "pmaddubsw x, y", "psignb x, y",
  "psignw x, y", "psignd x, y", "pmulhrsw x, y", "pabsb x, y", "pabsw x, m", "pabsd x, y", "palignr x, y, I5", "pblendvb x, y, xmm0",
  "ptest x, y", "pmovsxbw x, y", "pmovsxbd x, y", "pmovsxbq x, y", "pmovsxwd x, q", "pmovsxwq x, y", "pmovsxdq x, y", "pmovzxbw x, y",
  "pmovzxbd x, d", "pmovzxbq x, y", "pmovzxwd x, y", "pmovzxwq x, y", "pmovzxdq x, q", "pmuldq x, y", "pcmpeqq x, y", "packusdw x, y",
  "pcmpgtq x, y", "pminsb x, y", "pminsd x, m", "pminuw x, y", "pminud x, y", "pmaxsb x, y", "pmaxsd x, y", "pmaxuw x, y", "pmaxud x, y",
  "pmulld x, y", "phminposuw x, y", "pblendw x, y, I", "mpsadbw x, y, I", "pextrb ecx, y, I", "pextrd ecx, y, I", "pextrq rcx, y, I",
  "pinsrb x, edx, I", "pinsrd x, edx, I", "pinsrq x, rdx, I", "pcmpestri x, y, I", "pcmpestrm x, m, I", "pcmpistri x, y, I",
  "pcmpistrm x, y, I", "movq x, y", "movq x, q", "movd x, edx", "movq x, rdx", "movq rcx, y", "movd ecx, y", "movdqa x, y", "movdqu x, m",
  "lddqu x, m"].map((s) => [s, 2] as T);
// MMX forms: M/N are MM registers, q an m64 operand (inputs of kind 3 = integer lanes).
const MMX: T[] = ["paddb M, N", "paddw M, q", "paddd M, N", "paddq M, N", "psubsw M, N", "psubusb M, N", "pmullw M, N", "pmulhw M, N",
  "pmulhuw M, N", "pmuludq M, N", "pmaddwd M, q", "pavgb M, N", "psadbw M, N", "pminub M, N", "pmaxsw M, N", "pcmpeqw M, N",
  "pcmpgtb M, N", "pand M, N", "pandn M, q", "por M, N", "pxor M, N", "packsswb M, N", "packuswb M, q", "packssdw M, N",
  "punpcklbw M, N", "punpckhbw M, N", "punpckhwd M, q", "punpckhdq M, N", "punpckldq M, N", "pshufw M, N, I", "psllw M, N",
  "psrlq M, q", "psrad M, N", "psllq M, I5", "psrlw M, I5", "psraw M, I5", "pmovmskb ecx, N", "pextrw ecx, N, I", "pinsrw M, edx, I",
  "pshufb M, N", "pshufb M, q", "phaddw M, N", "phaddd M, N", "phsubsw M, q", "pmaddubsw M, N", "psignb M, N", "psignd M, N",
  "pmulhrsw M, N", "pabsw M, N", "palignr M, N, I5", "palignr M, q, I5", "movq M, N", "movq M, q", "movd M, edx", "movq M, rdx",
  "movq rcx, N", "movd ecx, N", "movq2dq x, N", "movdq2q M, y", "cvtpi2ps x, N", "cvtpi2pd x, q", "cvtps2pi M, y", "cvttpd2pi M, y",
  "cvtpd2pi M, m"].map((s) => [s, /cvt/.test(s) ? 0 : 2] as T).map((t) => [t[0], t[1], false, true] as T);
// Stores into the block's spare 16 bytes (S m128, Q m64, D m32, W m16, B m8; the memory is
// compared through the runner's hash of the data area at every exit).
const STORE: T[] = ["movups S, x", "movaps S, x", "movdqa S, x", "movdqu S, x", "movntdq S, x", "movntps S, x", "movntpd S, x",
  "movlps Q, x", "movhps Q, x", "movlpd Q, x", "movhpd Q, x", "movq Q, x", "movsd Q, x", "movss D, x", "movd D, x",
  "pextrb B, x, I", "pextrw W, x, I", "pextrd D, x, I", "pextrq Q, x, I", "extractps D, x, I", "movnti D, ecx", "movnti Q, rcx",
  "maskmovdqu x, y"].map((s) => [s, 2] as T);
const MMX_STORE: T[] = ["movq Q, M", "movntq Q, M", "movd D, M", "maskmovq M, N"].map((s) => [s, 2, false, true] as T);
const ALL = [...F32, ...F64, ...INT, ...MMX, ...STORE, ...MMX_STORE];

/** A case of `blocks` instructions from `seed`. */
export function generateSseCase(seed: number, blocks: number): SseCase {
  const r = new Rng(seed);
  const L = LAYOUT;
  const lines: string[] = [".intel_syntax noprefix"];
  const approx: boolean[] = [];
  const data: number[] = [];
  for (let b = 0; b < blocks; b++) {
    const [tpl, kind, apx, mmx] = r.pick(ALL);
    // Inputs: 8 registers + one memory operand, 16 bytes each, at data + b * 160.
    const base = b * 160;
    for (let i = 0; i < 9; i++) data.push(...lanes(r, r.int(6) === 0 ? 2 : kind));
    // Half the blocks run with round-to-nearest and PE already set (the host-arithmetic fast path).
    const mx = r.int(2) ? (r.u32() & 0x801f) | 0x1fa0 | (r.int(3) === 0 ? 0x40 : 0) : (r.u32() & 0xe03f) | 0x1f80 | (r.int(3) === 0 ? 0x40 : 0);
    lines.push(`# block ${b}: ${tpl}`);
    lines.push(`mov dword ptr [rbp + 0x1800], ${mx}`, "ldmxcsr [rbp + 0x1800]");
    for (let i = 0; i < 8; i++) lines.push(`movdqa xmm${i}, [rbp + ${base + i * 16}]`);
    if (mmx) for (let i = 0; i < 8; i++) lines.push(`movq mm${i}, [rbp + ${base + i * 16 + 8}]`);
    const pcmp = /pcmpe/.test(tpl);
    lines.push(`mov rdx, ${pcmp ? r.range(-20, 20) : `0x${r.u64().toString(16)}`}`, `mov eax, ${pcmp ? r.range(-20, 20) : r.u32()}`,
      `mov rcx, 0x${r.u64().toString(16)}`, `push ${(r.u32() & 0x8d5) | 0x202}`, "popfq");
    const x = r.int(8), y = r.int(8);
    const insn = tpl.replace(/\bx\b/, `xmm${x}`).replace(/\by\b/, `xmm${y}`).replace(/\bM\b/, `mm${x}`).replace(/\bN\b/, `mm${y}`)
      .replace(/\bm\b/, `xmmword ptr [rbp + ${base + 128}]`).replace(/\bq\b/, `qword ptr [rbp + ${base + 128}]`)
      .replace(/\bd\b/, `dword ptr [rbp + ${base + 132}]`).replace(/\bS\b/, `xmmword ptr [rbp + ${base + 144}]`)
      .replace(/\bQ\b/, `qword ptr [rbp + ${base + 144 + 8 * r.int(2)}]`).replace(/\bD\b/, `dword ptr [rbp + ${base + 144 + 4 * r.int(4)}]`)
      .replace(/\bW\b/, `word ptr [rbp + ${base + 145 + r.int(14)}]`).replace(/\bB\b/, `byte ptr [rbp + ${base + 144 + r.int(16)}]`).replace(/\bI5\b/, String(r.int(80))).replace(/\bI\b/, String(immFor(tpl, r)));
    // MASKMOVDQU/MASKMOVQ store to DS:RDI.
    if (tpl.startsWith("maskmov")) lines.push(`lea rdi, [rbp + ${base + 144 + (tpl.endsWith("y") ? 0 : 8 * r.int(2))}]`);
    lines.push(insn);
    approx.push(apx === true);
    lines.push("pushfq", "pop rbx", "stmxcsr [rbp + 0x1800]", "mov eax, [rbp + 0x1800]");
    const dump = (from: number): void => {
      for (let i = 0; i < 4; i++) lines.push(`movq r${8 + 2 * i}, xmm${from + i}`, `pextrq r${9 + 2 * i}, xmm${from + i}, 1`);
    };
    dump(0);
    lines.push(`mov dword ptr [${L.exitMmio}], ${2 * b}`);
    if (mmx) for (let i = 0; i < 8; i++) lines.push(`movq r${8 + i}, mm${i}`);
    else dump(4);
    lines.push(`mov dword ptr [${L.exitMmio}], ${2 * b + 1}`);
    if (mmx) lines.push("emms");
  }
  lines.push(`mov dword ptr [${L.stopMmio}], 0`);
  const source = [
    `# tskvm SSE differential case, seed ${seed} (test/diff/sse_gen.ts)`, "\t.text", "\t.code64",
    `pml4:\t.quad ${L.pdpt} + 7`, "\t.fill 511, 8, 0",
    `pdpt:\t.quad ${L.pd} + 7`, "\t.fill 511, 8, 0",
    "pd:", "\t.set i, 0", "\t.rept 512", "\t.quad (i << 21) | 0x87", "\t.set i, i + 1", "\t.endr",
    "code:", ...lines.map((l) => `\t${l}`), "\t.att_syntax prefix",
    `\t.fill ${L.data} - ${L.image} - (. - pml4), 1, 0xcc`,
    `data:\t.long ${data.map((v) => `0x${v.toString(16)}`).join(", ")}`,
    "",
  ].join("\n");
  const regs: Partial<Regs> = { rbp: BigInt(L.data), rsp: BigInt(L.stackTop), rflags: 0x202n };
  const dataEnd = L.data + data.length * 4;
  if (dataEnd > L.stack) throw new Error(`sse_gen: ${blocks} blocks overflow the data area`);
  return {
    source, approx,
    init: {
      mode: "long64", cpl: 3, cr3: BigInt(L.pml4), cr4: 0x20n | (1n << 9n) | (1n << 10n),
      gpa: L.image, mem: L.mem, entry: L.code, regs, exitMmio: L.stopMmio, maxExits: 2 * blocks + 8,
      hash: [L.data, blocks * 160],
    },
  };
}
