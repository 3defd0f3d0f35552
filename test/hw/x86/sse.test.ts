import { test } from "node:test";
import assert from "node:assert/strict";
import { sseRun, vectorTaken, DATA, setXd, getXd, setXf, getXf, xmmWords, setXmm } from "./sse_rig.js";
import { setR, getR, run32 } from "./helpers.js";

const F64 = new Float64Array(1);
const W = new Int32Array(F64.buffer);
function putF64(cpu: { physmem: { write32(a: number, v: number): void } }, addr: number, v: number): void {
  F64[0] = v;
  cpu.physmem.write32(addr, W[0]!); cpu.physmem.write32(addr + 4, W[1]!);
}

test("ADDSD/MULSD/DIVSD: scalar double arithmetic, register and memory sources, upper lane kept", () => {
  const { cpu } = sseRun([
    0xf2, 0x0f, 0x58, 0x06, // addsd xmm0, [rsi]
    0xf2, 0x0f, 0x59, 0xc1, // mulsd xmm0, xmm1
    0xf2, 0x0f, 0x5e, 0xc2, // divsd xmm0, xmm2
  ], (c) => {
    putF64(c, DATA, 2.5);
    setXd(c, 0, 0, 1.5); setXd(c, 0, 1, 42);
    setXd(c, 1, 0, 3); setXd(c, 2, 0, 4);
  });
  assert.equal(vectorTaken(cpu), -1);
  assert.equal(getXd(cpu, 0, 0), 3);
  assert.equal(getXd(cpu, 0, 1), 42);
  assert.equal(cpu.state.mxcsr, 0x1f80, "exact results raise nothing");
});

test("ADDPS/SQRTPS/MINPS/MAXPS packed single", () => {
  const { cpu } = sseRun([
    0x0f, 0x58, 0xc1, // addps xmm0, xmm1
    0x0f, 0x51, 0xd0, // sqrtps xmm2, xmm0
    0x0f, 0x5d, 0xd9, // minps xmm3, xmm1
  ], (c) => {
    [1, 2, 3, 4].forEach((v, i) => setXf(c, 0, i, v));
    [3, 7, 13, 21].forEach((v, i) => setXf(c, 1, i, v));
    [0, -0, 100, NaN].forEach((v, i) => setXf(c, 3, i, v));
  });
  assert.deepEqual([0, 1, 2, 3].map((i) => getXf(cpu, 0, i)), [4, 9, 16, 25]);
  assert.deepEqual([0, 1, 2, 3].map((i) => getXf(cpu, 2, i)), [2, 3, 4, 5]);
  // MINPS: -0 vs 7 -> -0, 100 vs 13 -> 13, NaN in the first operand returns the second (and raises IE)
  assert.deepEqual([0, 1, 2, 3].map((i) => getXf(cpu, 3, i)), [0, -0, 13, 21]);
  assert.equal(cpu.state.mxcsr & 0x3f, 0x01, "IE from the NaN operand of MINPS");
});

test("alignment: MOVAPS m128 misaligned is #GP(0), MOVUPS/MOVDQU are not", () => {
  let r = sseRun([0x0f, 0x28, 0x4e, 0x08], () => undefined); // movaps xmm1, [rsi+8]
  assert.equal(vectorTaken(r.cpu), 13);
  r = sseRun([0x0f, 0x10, 0x4e, 0x08, 0xf3, 0x0f, 0x6f, 0x46, 0x01], (c) => { // movups xmm1,[rsi+8]; movdqu xmm0,[rsi+1]
    for (let i = 0; i < 32; i++) c.physmem.write8(DATA + i, i);
  });
  assert.equal(vectorTaken(r.cpu), -1);
  assert.deepEqual(xmmWords(r.cpu, 1), [0x0b0a0908, 0x0f0e0d0c, 0x13121110, 0x17161514]);
  assert.deepEqual(xmmWords(r.cpu, 0), [0x04030201, 0x08070605, 0x0c0b0a09, 0x100f0e0d]);
  // ADDPS m128 misaligned: #GP; ADDSS m32 misaligned: fine
  r = sseRun([0x0f, 0x58, 0x46, 0x04], () => undefined);
  assert.equal(vectorTaken(r.cpu), 13);
  r = sseRun([0xf3, 0x0f, 0x58, 0x46, 0x04], () => undefined);
  assert.equal(vectorTaken(r.cpu), -1);
});

test("availability: CR4.OSFXSR=0 or CR0.EM=1 is #UD, CR0.TS=1 is #NM; MMX ignores OSFXSR", () => {
  const addps = [0x0f, 0x58, 0xc1];
  assert.equal(vectorTaken(sseRun(addps, (c) => { c.state.cr4 &= ~(1 << 9); c.stateChanged(); }).cpu), 6);
  assert.equal(vectorTaken(sseRun(addps, (c) => { c.state.cr0 |= 4; c.stateChanged(); }).cpu), 6);
  assert.equal(vectorTaken(sseRun(addps, (c) => { c.state.cr0 |= 8; c.stateChanged(); }).cpu), 7);
  assert.equal(vectorTaken(sseRun(addps, (c) => { c.state.cr0 |= 0xc; c.stateChanged(); }).cpu), 6, "#UD before #NM");
  const paddw = [0x0f, 0xfd, 0xc1];
  assert.equal(vectorTaken(sseRun(paddw, (c) => { c.state.cr4 &= ~(1 << 9); c.stateChanged(); }).cpu), -1);
  assert.equal(vectorTaken(sseRun(paddw, (c) => { c.state.cr0 |= 8; c.stateChanged(); }).cpu), 7);
  assert.equal(vectorTaken(sseRun(paddw, (c) => { c.state.fpu.sw |= 0x80; c.state.cr0 |= 0x20; c.stateChanged(); }).cpu), 16,
    "pending x87 exception with CR0.NE: #MF");
  const ferr = sseRun(paddw, (c) => { c.state.fpu.sw |= 0x80; }).cpu;
  assert.equal(vectorTaken(ferr), -1, "CR0.NE=0: the FERR# path, no #MF");
  assert.equal(ferr.state.fpuFerr, 1);
  assert.equal(vectorTaken(sseRun([0xf0, 0x0f, 0x58, 0x06]).cpu), 6, "LOCK: #UD");
  assert.equal(vectorTaken(sseRun([0xc5, 0xf8, 0x58, 0xc1]).cpu), 6, "VEX: #UD");
});

test("SIMD FP exceptions: unmasked ZE is #XM (or #UD without OSXMMEXCPT), destination kept, flag sticky", () => {
  const divss = [0xf3, 0x0f, 0x5e, 0xc1];
  const setup = (c: import("../../../src/hw/x86/cpu.js").X86Cpu): void => {
    setXf(c, 0, 0, 1); setXf(c, 1, 0, 0);
    c.state.mxcsr = 0x1f80 & ~0x200; // ZM clear
  };
  let { cpu } = sseRun(divss, setup);
  assert.equal(vectorTaken(cpu), 19);
  assert.equal(getXf(cpu, 0, 0), 1);
  assert.equal(cpu.state.mxcsr & 0x3f, 0x04);
  ({ cpu } = sseRun(divss, (c) => { setup(c); c.state.cr4 &= ~(1 << 10); c.stateChanged(); }));
  assert.equal(vectorTaken(cpu), 6);
  ({ cpu } = sseRun(divss, (c) => { setXf(c, 0, 0, 1); setXf(c, 1, 0, 0); }));
  assert.equal(vectorTaken(cpu), -1);
  assert.equal(getXf(cpu, 0, 0), Infinity);
  assert.equal(cpu.state.mxcsr, 0x1f84);
});

test("COMISD/UCOMISS set ZF PF CF and clear OF SF AF", () => {
  const run = (a: number, b: number, code: number[]): number => {
    const { cpu } = sseRun(code, (c) => { setXd(c, 0, 0, a); setXd(c, 1, 0, b); setXf(c, 2, 0, a); setXf(c, 3, 0, b); c.setRflags(0x8d5); });
    return cpu.getRflags() & 0x8d5;
  };
  const comisd = [0x66, 0x0f, 0x2f, 0xc1], ucomiss = [0x0f, 0x2e, 0xd3];
  assert.equal(run(1, 2, comisd), 0x01);
  assert.equal(run(2, 1, comisd), 0x00);
  assert.equal(run(2, 2, comisd), 0x40);
  assert.equal(run(NaN, 2, ucomiss), 0x45);
  assert.equal(run(-0, 0, ucomiss), 0x40);
});

test("CVTSI2SD/CVTTSD2SI/CVTSD2SI 64-bit, indefinite on overflow", () => {
  const { cpu } = sseRun([
    0xf2, 0x48, 0x0f, 0x2a, 0xd0, // cvtsi2sd xmm2, rax
    0xf2, 0x48, 0x0f, 0x2c, 0xca, // cvttsd2si rcx, xmm2
    0xf2, 0x0f, 0x2d, 0xdb,       // cvtsd2si ebx, xmm3
    0xf2, 0x0f, 0x2c, 0xd4,       // cvttsd2si edx, xmm4
  ], (c) => { setR(c, 0, -123456789012n); setXd(c, 3, 0, 2.5); setXd(c, 4, 0, 3e10); });
  assert.equal(getXd(cpu, 2, 0), -123456789012);
  assert.equal(getR(cpu, 1), BigInt.asUintN(64, -123456789012n));
  assert.equal(getR(cpu, 3), 2n, "round to nearest even");
  assert.equal(getR(cpu, 2), 0x80000000n);
  assert.equal(cpu.state.mxcsr & 0x3f, 0x21, "PE from 2.5, IE from the overflow");
});

test("MOVD/MOVQ between GPRs and XMM, PEXTRQ/PINSRQ, PMOVZXBW m64", () => {
  const { cpu } = sseRun([
    0x66, 0x0f, 0x6e, 0xc0,             // movd xmm0, eax
    0x66, 0x48, 0x0f, 0x3a, 0x22, 0xc1, 0x01, // pinsrq xmm0, rcx, 1
    0x66, 0x48, 0x0f, 0x3a, 0x16, 0xc2, 0x01, // pextrq rdx, xmm0, 1
    0x66, 0x0f, 0x38, 0x30, 0x1e,       // pmovzxbw xmm3, [rsi]
    0x66, 0x48, 0x0f, 0x7e, 0xdf,       // movq rdi, xmm3
  ], (c) => {
    setXmm(c, 0, [1, 2, 3, 4]);
    setR(c, 0, 0x11223344aabbccddn); setR(c, 1, 0x0102030405060708n);
    for (let i = 0; i < 8; i++) c.physmem.write8(DATA + i, 0xf0 + i);
  });
  assert.deepEqual(xmmWords(cpu, 0), [0xaabbccdd, 0, 0x05060708, 0x01020304]);
  assert.equal(getR(cpu, 2), 0x0102030405060708n);
  assert.deepEqual(xmmWords(cpu, 3), [0x00f100f0, 0x00f300f2, 0x00f500f4, 0x00f700f6]);
  assert.equal(getR(cpu, 7), 0x00f300f200f100f0n);
});

test("PSHUFB, PADDB wrap, PCMPISTRI equal-ordered substring search", () => {
  const str = (s: string): number[] => {
    const b = [...s].map((ch) => ch.charCodeAt(0));
    while (b.length < 16) b.push(0);
    return [0, 4, 8, 12].map((i) => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24));
  };
  const { cpu } = sseRun([
    0x66, 0x0f, 0x38, 0x00, 0xc1, // pshufb xmm0, xmm1
    0x66, 0x0f, 0xfc, 0xd3,       // paddb xmm2, xmm3
    0x66, 0x0f, 0x3a, 0x63, 0xe5, 0x0c, // pcmpistri xmm4, xmm5, 0x0c
  ], (c) => {
    setXmm(c, 0, [0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c]);
    setXmm(c, 1, [0x0c0d0e0f, 0x80808080, 0x00000000, 0x01010101]);
    setXmm(c, 2, [0xffffffff, 0x7f7f7f7f, 0, 0]);
    setXmm(c, 3, [0x01010101, 0x01010101, 0, 0]);
    setXmm(c, 4, str("lo w"));
    setXmm(c, 5, str("hello world"));
  });
  assert.deepEqual(xmmWords(cpu, 0), [0x0c0d0e0f, 0, 0, 0x01010101]);
  assert.deepEqual(xmmWords(cpu, 2), [0, 0x80808080, 0, 0]);
  assert.equal(cpu.state.gpr[2], 3, "\"lo w\" starts at index 3 of \"hello world\"");
  assert.equal(cpu.getRflags() & 0x8d5, 0x01 | 0x40 | 0x80, "CF (match), ZF (src2 shorter than 16), SF (src1 shorter)");
});

test("RCPSS/RSQRTPS within 1.5*2^-12 and their special operands", () => {
  const { cpu } = sseRun([
    0xf3, 0x0f, 0x53, 0xc1, // rcpss xmm0, xmm1
    0x0f, 0x52, 0xd3,       // rsqrtps xmm2, xmm3
  ], (c) => {
    setXf(c, 1, 0, 3);
    [4, 0, -1, Infinity].forEach((v, i) => setXf(c, 3, i, v));
  });
  assert.ok(Math.abs(getXf(cpu, 0, 0) * 3 - 1) <= 1.5 / 4096);
  assert.ok(Math.abs(getXf(cpu, 2, 0) - 0.5) <= 0.5 * 1.5 / 4096);
  assert.equal(getXf(cpu, 2, 1), Infinity);
  assert.equal(xmmWords(cpu, 2)[2], 0xffc00000);
  assert.equal(getXf(cpu, 2, 3), 0);
  assert.equal(cpu.state.mxcsr, 0x1f80, "no flags");
});

test("MOVSS/MOVSD memory loads zero the upper lanes, register forms merge; MOVHLPS/MOVLHPS/MOVDDUP", () => {
  const { cpu } = sseRun([
    0xf3, 0x0f, 0x10, 0x06, // movss xmm0, [rsi]
    0xf2, 0x0f, 0x10, 0xca, // movsd xmm1, xmm2
    0x0f, 0x12, 0xdc,       // movhlps xmm3, xmm4
    0x0f, 0x16, 0xec,       // movlhps xmm5, xmm4
    0xf2, 0x0f, 0x12, 0xf4, // movddup xmm6, xmm4
  ], (c) => {
    c.physmem.write32(DATA, 0x3f800000);
    setXmm(c, 0, [9, 9, 9, 9]); setXmm(c, 1, [1, 1, 1, 1]); setXmm(c, 2, [2, 3, 4, 5]);
    setXmm(c, 3, [7, 7, 7, 7]); setXmm(c, 4, [10, 11, 12, 13]); setXmm(c, 5, [8, 8, 8, 8]);
  });
  assert.deepEqual(xmmWords(cpu, 0), [0x3f800000, 0, 0, 0]);
  assert.deepEqual(xmmWords(cpu, 1), [2, 3, 1, 1]);
  assert.deepEqual(xmmWords(cpu, 3), [12, 13, 7, 7]);
  assert.deepEqual(xmmWords(cpu, 5), [8, 8, 10, 11]);
  assert.deepEqual(xmmWords(cpu, 6), [10, 11, 10, 11]);
});

test("16-byte store across a page boundary into a read-only page writes nothing", () => {
  // movups [rsi+0xff8], xmm0 with the second page read-only (4 KiB PTEs for the 2 MiB region)
  const { cpu, mem } = sseRun([0x0f, 0x11, 0x86, 0xf8, 0x0f, 0x00, 0x00], (c) => {
    const m = c.physmem;
    const pd = 0x12000, pt = 0x13000;
    for (let i = 0; i < 512; i++) { m.write32(pt + i * 8, (i << 12) | (i === 6 ? 0x5 : 0x7)); m.write32(pt + i * 8 + 4, 0); }
    m.write32(pd, pt | 7); m.write32(pd + 4, 0);
    setXmm(c, 0, [-1, -1, -1, -1]);
    c.state.cr0 |= 1 << 16; // WP: read-only applies at CPL 0
    c.stateChanged();
  });
  assert.equal(vectorTaken(cpu), 14);
  assert.equal(mem.read32(DATA + 0xff8), 0, "nothing written to the first page");
});

test("16-byte loads and stores: 4-byte-aligned, unaligned and page-crossing forms agree", () => {
  const { cpu, mem } = sseRun([
    0xf3, 0x0f, 0x6f, 0x86, 0xfb, 0x0f, 0x00, 0x00, // movdqu xmm0, [rsi+0xffb]  (crosses into the next page)
    0xf3, 0x0f, 0x7f, 0x46, 0x23,                   // movdqu [rsi+0x23], xmm0
    0x0f, 0x11, 0x46, 0x44,                         // movups [rsi+0x44], xmm0
    0xf3, 0x0f, 0x6f, 0x4e, 0x23,                   // movdqu xmm1, [rsi+0x23]
    0x0f, 0x10, 0x56, 0x44,                         // movups xmm2, [rsi+0x44]
  ], (c) => { for (let i = 0; i < 32; i++) c.physmem.write8(DATA + 0xffb + i, 0x40 + i); });
  const want = [0x43424140, 0x47464544, 0x4b4a4948, 0x4f4e4d4c];
  assert.deepEqual(xmmWords(cpu, 0), want);
  assert.deepEqual(xmmWords(cpu, 1), want);
  assert.deepEqual(xmmWords(cpu, 2), want);
  assert.equal(mem.read8(DATA + 0x23), 0x40);
  assert.equal(mem.read8(DATA + 0x32), 0x4f);
  assert.equal(mem.read8(DATA + 0x33), 0);
  assert.equal(mem.read32(DATA + 0x44), 0x43424140);
});

test("unmasked exceptions: packed destination untouched, COMISS leaves EFLAGS, CVTTSD2SI leaves the GPR", () => {
  // addps xmm0, xmm1 with lane 1 overflowing and OE unmasked
  let { cpu } = sseRun([0x0f, 0x58, 0xc1], (c) => {
    setXmm(c, 0, [0x3f800000, 0x7f7fffff, 0x40000000, 0]);
    setXmm(c, 1, [0x3f800000, 0x7f7fffff, 0x40000000, 0]);
    c.state.mxcsr = 0x1f80 & ~0x400; // OM clear
  });
  assert.equal(vectorTaken(cpu), 19);
  assert.deepEqual(xmmWords(cpu, 0), [0x3f800000, 0x7f7fffff, 0x40000000, 0]);
  assert.equal(cpu.state.mxcsr & 0x3f, 0x08, "OE only: 2 * FLT_MAX is exact with an unbounded exponent, so no PE");
  // comiss xmm0, xmm1 with a QNaN (COMISS signals on QNaN) and IM clear
  ({ cpu } = sseRun([0x0f, 0x2f, 0xc1], (c) => {
    setXmm(c, 0, [0x7fc00000, 0, 0, 0]); setXmm(c, 1, [0, 0, 0, 0]);
    c.state.mxcsr = 0x1f80 & ~0x80; c.setRflags(0x2 | 0x800);
  }));
  assert.equal(vectorTaken(cpu), 19);
  assert.equal(cpu.state.mxcsr & 0x3f, 0x01);
  // cvttsd2si rcx, xmm2 of NaN with IM clear: RCX unchanged
  ({ cpu } = sseRun([0xf2, 0x48, 0x0f, 0x2c, 0xca], (c) => {
    setR(c, 1, 0x1234n); setXmm(c, 2, [0, 0x7ff80000, 0, 0]);
    c.state.mxcsr = 0x1f80 & ~0x80;
  }));
  assert.equal(vectorTaken(cpu), 19);
  assert.equal(getR(cpu, 1), 0x1234n);
});

test("SSE in 32-bit protected mode: memory operands and MOVD", () => {
  const { cpu } = run32([
    0x0f, 0x28, 0x06,       // movaps xmm0, [esi]
    0x0f, 0x58, 0x46, 0x10, // addps xmm0, [esi+16]
    0x66, 0x0f, 0x7e, 0xc0, // movd eax, xmm0
  ], (c) => {
    c.state.cr4 |= (1 << 9) | (1 << 10); c.stateChanged();
    c.state.gpr[12] = 0x6000;
    for (let i = 0; i < 8; i++) c.physmem.write32(0x6000 + 4 * i, 0x3f800000);
  });
  assert.equal(cpu.state.gpr[0]! >>> 0, 0x40000000);
});
