import { test } from "node:test";
import assert from "node:assert/strict";
import type { X86Cpu } from "../../../src/hw/x86/cpu.js";
import { sseRun, vectorTaken, DATA, xmmWords, setXmm, getXf } from "./sse_rig.js";
import { getR, setR } from "./helpers.js";

function setMm(c: X86Cpu, i: number, v: bigint): void {
  const r = c.state.fpu.regs;
  r[i * 3] = Number(v & 0xffffffffn); r[i * 3 + 1] = Number((v >> 32n) & 0xffffffffn);
}
function getMm(c: X86Cpu, i: number): bigint {
  const r = c.state.fpu.regs;
  return (BigInt(r[i * 3 + 1]!) << 32n) | BigInt(r[i * 3]!);
}

/** Run `code` with MM registers preset; the x87 state starts at TOP=5 with all registers empty. */
function mmx(code: number[], mm: [number, bigint][], setup?: (c: X86Cpu) => void): X86Cpu {
  return sseRun(code, (c) => {
    c.state.fpu.top = 5; c.state.fpu.tag = 0xffff;
    for (const [i, v] of mm) setMm(c, i, v);
    c.state.fpu.regs[1 * 3 + 2] = 0x1234;
    if (setup) setup(c);
  }).cpu;
}

test("PADDW mm: wrapping lanes; TOP=0, all tags valid, exponent of the written register all ones", () => {
  const c = mmx([0x0f, 0xfd, 0xc1], [[0, 0x0001000200037fffn], [1, 0x0001000100010001n]]);
  assert.equal(vectorTaken(c), -1);
  assert.equal(getMm(c, 0), 0x0002000300048000n);
  assert.equal(c.state.fpu.top, 0);
  assert.equal(c.state.fpu.tag, 0);
  assert.equal(c.state.fpu.regs[2], 0xffff);
  assert.equal(c.state.fpu.regs[5], 0x1234, "a register only read keeps its exponent");
});

test("EMMS tags every register empty", () => {
  const c = mmx([0x0f, 0xfd, 0xc1, 0x0f, 0x77], [[0, 1n], [1, 2n]]);
  assert.equal(getMm(c, 0), 3n);
  assert.equal(c.state.fpu.tag, 0xffff);
});

test("MMX packs, high unpacks and horizontal adds take their halves from the two 64-bit operands", () => {
  let c = mmx([0x0f, 0x63, 0xd3], [[2, 0xff3800c8ffff0001n], [3, 0x0000000580007fffn]]); // packsswb mm2, mm3
  assert.equal(getMm(c, 2), 0x0005807f807fff01n);
  c = mmx([0x0f, 0x68, 0xe5], [[4, 0x0706050403020100n], [5, 0x1716151413121110n]]); // punpckhbw mm4, mm5
  assert.equal(getMm(c, 4), 0x1707160615051404n);
  c = mmx([0x0f, 0x38, 0x01, 0xd3], [[2, 0x0004000300020001n], [3, 0x00017fff0014000an]]); // phaddw mm2, mm3
  assert.equal(getMm(c, 2), 0x8000001e00070003n);
});

test("PSHUFB mm indexes 8 bytes; PALIGNR mm shifts the 16-byte dst:src; PSHUFW; PSRLQ imm", () => {
  let c = mmx([0x0f, 0x38, 0x00, 0xf7], [[6, 0x0706050403020100n], [7, 0x870201000903800fn]]);
  assert.equal(getMm(c, 6), 0x0002010001030007n);
  c = mmx([0x0f, 0x3a, 0x0f, 0xc1, 0x03], [[0, 0x0706050403020100n], [1, 0x1716151413121110n]]);
  assert.equal(getMm(c, 0), 0x0201001716151413n);
  c = mmx([0x0f, 0x70, 0xf7, 0x1b], [[7, 0x4444333322221111n]]);
  assert.equal(getMm(c, 6), 0x1111222233334444n);
  c = mmx([0x0f, 0x73, 0xd5, 0x0c], [[5, 0x123456789abcdef0n]]);
  assert.equal(getMm(c, 5), 0x000123456789abcdn);
});

test("PMOVMSKB/PEXTRW/PINSRW with MM registers, MOVQ r64/m64, MOVQ2DQ/MOVDQ2Q", () => {
  const c = mmx([
    0x0f, 0xd7, 0xc4,             // pmovmskb eax, mm4
    0x0f, 0xc5, 0xd1, 0x02,       // pextrw edx, mm1, 2
    0x0f, 0xc4, 0xc8, 0x03,       // pinsrw mm1, eax, 3
    0x48, 0x0f, 0x7e, 0xd1,       // movq rcx, mm2
    0x0f, 0x6f, 0x1e,             // movq mm3, [rsi]
    0xf3, 0x0f, 0xd6, 0xc8,       // movq2dq xmm1, mm0
    0xf2, 0x0f, 0xd6, 0xf9,       // movdq2q mm7, xmm1
  ], [[4, 0x8000ff017f800081n], [1, 0x1111222233334444n], [2, 0xfedcba9876543210n], [0, 0x0102030405060708n]], (cpu) => {
    cpu.physmem.write32(DATA, 0xdeadbeef); cpu.physmem.write32(DATA + 4, 0x01234567);
    setXmm(cpu, 1, [9, 9, 9, 9]);
  });
  assert.equal(vectorTaken(c), -1);
  assert.equal(getR(c, 0), 0xa5n);
  assert.equal(getR(c, 2), 0x2222n);
  assert.equal(getMm(c, 1), 0x00a5222233334444n);
  assert.equal(getR(c, 1), 0xfedcba9876543210n);
  assert.equal(getMm(c, 3), 0x01234567deadbeefn);
  assert.deepEqual(xmmWords(c, 1), [0x05060708, 0x01020304, 0, 0]);
  assert.equal(getMm(c, 7), 0x0102030405060708n);
});

test("CVTPI2PS xmm, mm keeps the upper lanes; CVTTPS2PI mm, xmm truncates", () => {
  const c = mmx([0x0f, 0x2a, 0xc1, 0x0f, 0x2c, 0xd0], [[1, (BigInt.asUintN(32, -2n) << 32n) | 3n]], (cpu) => {
    setXmm(cpu, 0, [0, 0, 7, 8]);
  });
  assert.equal(getXf(c, 0, 0), 3);
  assert.equal(getXf(c, 0, 1), -2);
  assert.deepEqual(xmmWords(c, 0).slice(2), [7, 8]);
  assert.equal(getMm(c, 2), (BigInt.asUintN(32, -2n) << 32n) | 3n);
});

test("MOVD mm, r32 zero-extends; MOVQ mm, r64 (REX.W)", () => {
  const c = mmx([0x0f, 0x6e, 0xc0, 0x48, 0x0f, 0x6e, 0xc9], [[0, -1n & 0xffffffffffffffffn]], (cpu) => {
    setR(cpu, 0, 0xffffffff12345678n); setR(cpu, 1, 0x1122334455667788n);
  });
  assert.equal(getMm(c, 0), 0x12345678n);
  assert.equal(getMm(c, 1), 0x1122334455667788n);
});
