// The block compiler's inline forms (src/hw/x86/block_emit.ts) against the handlers: seeded random
// loops built from every form it emits (and neighbours it leaves to handlers) run compiled and
// interpreted from the same state; registers, RIP, RFLAGS, the retired count and the scratch
// memory must match at the end and at every budget stop.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeRig, writeBytes, long64, flat32 } from "./helpers.js";
import type { Rig } from "./helpers.js";
import { blockJit, BlockCache, flagLiveness } from "../../../src/hw/x86/block_jit.js";
import { planInsn, mulhu } from "../../../src/hw/x86/block_emit.js";
import type { Plan } from "../../../src/hw/x86/block_emit.js";
import { Rng as Mulberry } from "../../diff/gen.js";
import { ARITH, CF, ZF, SF, OF } from "../../../src/hw/x86/flags.js";

const CODE = 0x100000, SCRATCH = 0x200000, STACK = 0x300000;
/** 64-bit mode: r14 holds the scratch base, r15 the loop counter; RSP is left alone. */
const FREE64 = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13];
/** 32-bit protected mode (flat, no paging): ESI holds the scratch base, EDI the loop counter. */
const FREE32 = [0, 1, 2, 3, 5];
/** The mode the generator writes code for (each test sets it). */
const gen = { m32: false };
let FREE = FREE64;
/** The register holding the scratch area's base. */
let SB = 14;
function setMode(m32: boolean): void {
  gen.m32 = m32;
  FREE = m32 ? FREE32 : FREE64;
  SB = m32 ? 6 : 14;
}

type Rng = () => number;
/** Uniform [0, 1) from the shared seeded generator. */
function mulberry32(seed: number): Rng { const m = new Mulberry(seed); return () => m.u32() / 4294967296; }
const pick = <T>(r: Rng, a: readonly T[]): T => a[Math.floor(r() * a.length)];
const int32 = (r: Rng): number => (r() * 4294967296) | 0;

function rex(w: number, reg: number, index: number, base: number): number[] {
  if (gen.m32) return []; // 40-4F are INC/DEC there; the 32-bit generator uses registers 0-7 only
  const v = 0x40 | (w << 3) | ((reg >> 3) << 2) | ((index >> 3) << 1) | (base >> 3);
  return v === 0x40 ? [] : [v];
}
const modrmRR = (reg: number, rm: number): number => 0xc0 | ((reg & 7) << 3) | (rm & 7);
const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

/** [base + index*scale + disp32] with a SIB byte (index 4 = none). */
function memSib(reg: number, base: number, index: number, scale: number, disp: number): { rx: number[]; bytes: number[] } {
  return { rx: [reg, index === 4 ? 0 : index, base], bytes: [0x80 | ((reg & 7) << 3) | 4, (scale << 6) | ((index & 7) << 3) | (base & 7), ...le32(disp)] };
}

const scratchDisp = (r: Rng): number => r() < 0.8 ? Math.floor(r() * 255) * 8 : Math.floor(r() * 2040);

/** One random instruction of the forms the compiler emits or must leave to a handler. */
function randomInsn(r: Rng): number[] {
  const w = !gen.m32 && r() < 0.7 ? 1 : 0;
  const a = pick(r, FREE), b = pick(r, FREE);
  switch (Math.floor(r() * 22)) {
    case 0: case 1: { // ALU Ev,Gv / Gv,Ev register forms (ADD..CMP incl. ADC/SBB)
      const op = Math.floor(r() * 8);
      return r() < 0.5 ? [...rex(w, b, 0, a), op * 8 + 1, modrmRR(b, a)] : [...rex(w, a, 0, b), op * 8 + 3, modrmRR(a, b)];
    }
    case 2: { // ALU Ev, imm8 / imm32
      const op = Math.floor(r() * 8);
      return r() < 0.5 ? [...rex(w, 0, 0, a), 0x83, modrmRR(op, a), int32(r) & 0xff] : [...rex(w, 0, 0, a), 0x81, modrmRR(op, a), ...le32(int32(r))];
    }
    case 3: return [...rex(w, 0, 0, 0), 0x05 + 8 * Math.floor(r() * 8), ...le32(int32(r))]; // op eAX, imm32
    case 4: return [...rex(w, b, 0, a), 0x85, modrmRR(b, a)]; // TEST
    case 5: // INC/DEC (FF /0 /1; in 32-bit mode also the one-byte 40-4F forms)
      if (gen.m32 && r() < 0.5) return [(r() < 0.5 ? 0x40 : 0x48) + a];
      return [...rex(w, 0, 0, a), 0xff, modrmRR(r() < 0.5 ? 0 : 1, a)];
    case 6: { // shifts/rotates by imm (RCL/RCR go to the handler)
      const n = r() < 0.2 ? pick(r, [1, 31, 32, 33, 63]) : Math.floor(r() * 64);
      return [...rex(w, 0, 0, a), 0xc1, modrmRR(Math.floor(r() * 8), a), n];
    }
    case 7: { // IMUL r, r, imm8/imm32 and IMUL r, r
      const k = Math.floor(r() * 3);
      if (k === 0) return [...rex(w, a, 0, b), 0x6b, modrmRR(a, b), int32(r) & 0xff];
      if (k === 1) return [...rex(w, a, 0, b), 0x69, modrmRR(a, b), ...le32(r() < 0.5 ? int32(r) : int32(r) >> 12)];
      return [...rex(w, a, 0, b), 0x0f, 0xaf, modrmRR(a, b)];
    }
    case 8: { // LEA with base/index/scale/disp, or RIP-relative
      if (r() < 0.2) return [...rex(w, a, 0, 0), 0x8d, ((a & 7) << 3) | 5, ...le32(int32(r))];
      const idx = pick(r, [...FREE, 4]);
      const m = memSib(a, pick(r, FREE), idx, Math.floor(r() * 4), r() < 0.5 ? int32(r) : int32(r) >> 20);
      return [...rex(w, m.rx[0], m.rx[1], m.rx[2]), 0x8d, ...m.bytes];
    }
    case 9: // MOV r, r / MOV r, imm32 / MOV r64, imm64 / MOV r, imm (C7)
      switch (Math.floor(r() * 4)) {
        case 0: return [...rex(w, b, 0, a), r() < 0.5 ? 0x89 : 0x8b, modrmRR(b, a)];
        case 1: return [...rex(0, 0, 0, a), 0xb8 + (a & 7), ...le32(int32(r))];
        case 2: return gen.m32 ? [0xb8 + (a & 7), ...le32(int32(r))] : [...rex(1, 0, 0, a), 0xb8 + (a & 7), ...le32(int32(r)), ...le32(int32(r))];
        default: return [...rex(w, 0, 0, a), 0xc7, modrmRR(0, a), ...le32(int32(r))];
      }
    case 10: { // MOVZX/MOVSX from byte (incl. AH..BH without REX) and word registers
      const op = pick(r, [0xb6, 0xb7, 0xbe, 0xbf]);
      const src = pick(r, [0, 1, 2, 3, 4, 5, 6, 7]);
      if (w === 0 && a < 8 && r() < 0.5) return [0x0f, op, modrmRR(a, src)];
      return [...rex(w, a, 0, src), 0x0f, op, modrmRR(a, src)];
    }
    case 11: return [...rex(w, a, 0, b), 0x0f, 0x40 + Math.floor(r() * 16), modrmRR(a, b)]; // CMOVcc
    case 12: case 13: { // 32/64-bit memory forms on the scratch area (r14), some unaligned
      // 32-bit mode: some indexed by the loop counter (EDI * 8), so the address moves each pass.
      const m = gen.m32 && r() < 0.4 ? memSib(a, SB, 7, 3, Math.floor(r() * 16) * 4) : memSib(a, SB, 4, 0, scratchDisp(r));
      const opc = pick(r, [0x89, 0x8b, 0x8b, 0x03, 0x0b, 0x13, 0x1b, 0x23, 0x2b, 0x33, 0x3b,
        0x01, 0x09, 0x11, 0x19, 0x21, 0x29, 0x31, 0x39, 0x85, 0x63]);
      return [...rex(w, m.rx[0], 0, m.rx[2]), opc, ...m.bytes];
    }
    case 17: { // memory with immediates: 81/83 (RMW and CMP), C7, C6, CMP m8
      const op = Math.floor(r() * 8);
      switch (Math.floor(r() * 5)) {
        case 0: { const m = memSib(op, SB, 4, 0, scratchDisp(r)); return [...rex(w, 0, 0, SB), 0x83, ...m.bytes, int32(r) & 0xff]; }
        case 1: { const m = memSib(op, SB, 4, 0, scratchDisp(r)); return [...rex(w, 0, 0, SB), 0x81, ...m.bytes, ...le32(int32(r))]; }
        case 2: { const m = memSib(0, SB, 4, 0, scratchDisp(r)); return [...rex(w, 0, 0, SB), 0xc7, ...m.bytes, ...le32(int32(r))]; }
        case 3: { const m = memSib(0, SB, 4, 0, scratchDisp(r)); return [...rex(0, 0, 0, SB), 0xc6, ...m.bytes, int32(r) & 0xff]; }
        default: { const m = memSib(7, SB, 4, 0, scratchDisp(r)); return [...rex(0, 0, 0, SB), 0x80, ...m.bytes, int32(r) & 0xff]; }
      }
    }
    case 18: { // byte and word memory forms: MOV r8<->m8, CMP m8/r8, MOVZX/MOVSX from memory
      const low = r() < 0.5;
      const rb = low ? pick(r, [0, 1, 2, 3, 4, 5, 6, 7]) : a;
      const m = memSib(rb, SB, 4, 0, scratchDisp(r));
      const k = Math.floor(r() * 3);
      if (k === 0) return [...(low ? (m.rx[2] >> 3 ? [0x41] : []) : rex(0, rb, 0, SB)), pick(r, [0x88, 0x8a, 0x38, 0x3a]), ...m.bytes];
      const m2 = memSib(a, SB, 4, 0, scratchDisp(r));
      return [...rex(w, a, 0, SB), 0x0f, pick(r, [0xb6, 0xb7, 0xbe, 0xbf]), ...m2.bytes];
    }
    case 19: { // byte ALU: AL, imm8; r8, imm8; r8, r8 (incl. AH..BH); TEST
      const op = Math.floor(r() * 8);
      switch (Math.floor(r() * 4)) {
        case 0: return [op * 8 + 4, int32(r) & 0xff];
        case 1: return [0xa8, int32(r) & 0xff];
        case 2: return r() < 0.5 ? [0x80, modrmRR(op, a & 7), int32(r) & 0xff] : [...rex(0, 0, 0, a), 0x80, modrmRR(op, a), int32(r) & 0xff];
        default: return r() < 0.5 ? [pick(r, [op * 8, op * 8 + 2, 0x84]), modrmRR(b & 7, a & 7)] : [...rex(0, b, 0, a), pick(r, [op * 8, op * 8 + 2, 0x84]), modrmRR(b, a)];
      }
    }
    case 21: { // grp3 TEST/NOT/NEG (register and memory TEST), D1 shifts, multi-byte NOP
      switch (Math.floor(r() * 6)) {
        case 0: { const op = pick(r, [0, 2, 3]); const b = [...rex(w, 0, 0, a), 0xf7, modrmRR(op, a)]; return op === 0 ? [...b, ...le32(int32(r))] : b; }
        case 1: { const m = memSib(0, SB, 4, 0, scratchDisp(r)); return [...rex(w, 0, 0, SB), 0xf7, ...m.bytes, ...le32(int32(r))]; }
        case 2: return r() < 0.5 ? [0xf6, modrmRR(0, a & 7), int32(r) & 0xff] : [...rex(0, 0, 0, a), 0xf6, modrmRR(0, a), int32(r) & 0xff];
        case 3: { const m = memSib(0, SB, 4, 0, scratchDisp(r)); return [...rex(0, 0, 0, SB), 0xf6, ...m.bytes, int32(r) & 0xff]; }
        case 4: return [...rex(w, 0, 0, a), 0xd1, modrmRR(pick(r, [0, 1, 4, 5, 7]), a)];
        default: return pick(r, [[0x0f, 0x1f, 0x00], [0x0f, 0x1f, 0x44, 0x00, 0x00], [0x66, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0]]);
      }
    }
    case 20: { // stack: PUSH/POP r (balanced or not), and MOVSXD r, r
      switch (Math.floor(r() * 3)) {
        case 0: return [...rex(0, 0, 0, a), 0x50 + (a & 7)];
        case 1: return [...rex(0, 0, 0, a), 0x58 + (a & 7)];
        default: return [...rex(w, a, 0, b), 0x63, modrmRR(a, b)];
      }
    }
    case 14:
      // CLC/STC (handler: flags in fl), or now and then a load through a pointer table indexed by
      // the loop counter (r11 = [r14 + r15*8 + 0x700]; a = [r11]) whose entry for the last pass
      // points at unmapped memory: a #PF in compiled code with no IDT, i.e. a triple fault that
      // freezes RFLAGS as the faulting instruction saw them.
      if (!gen.m32 && r() < 0.25) return [0x4f, 0x8b, 0x9c, 0xfe, ...le32(0x700), 0x48 | ((a >> 3) << 2) | 1, 0x8b, ((a & 7) << 3) | 3];
      return [0xf8 + Math.floor(r() * 2)];
    case 15: return [...rex(w, 0, 0, a), 0xd1, modrmRR(pick(r, [2, 3]), a)]; // RCL/RCR by 1 (handler reads CF)
    default: // SETcc r8 (incl. AH..BH without REX, SPL.. and R8B.. with REX)
      return r() < 0.5 ? [0x0f, 0x90 + Math.floor(r() * 16), modrmRR(0, a & 7)] : [...(gen.m32 ? [] : [0x40 | (a >> 3)]), 0x0f, 0x90 + Math.floor(r() * 16), modrmRR(0, a)];
  }
}

/** A loop of `n` random instructions, some guarded by a forward Jcc, closed by DEC r15 / JNZ; then HLT. */
function randomLoop(r: Rng, n: number): number[] {
  const body: number[] = [];
  for (let i = 0; i < n; i++) {
    const insn = randomInsn(r);
    if (r() < 0.1) {
      // A flag producer right before a Jcc (the fused conditions), with equal operands often.
      const w = r() < 0.7 ? 1 : 0, a = pick(r, FREE), b = r() < 0.3 ? a : pick(r, FREE);
      if (r() < 0.3) body.push(...rex(1, b, 0, a), 0x89, modrmRR(b, a)); // mov a, b: equal values
      const op = pick(r, [0x39, 0x29, 0x85, 0x21, 0x01, 0x09, 0x31]);
      body.push(...rex(w, b, 0, a), op, modrmRR(b, a));
      if (r() < 0.3) body.push(...rex(w, 0, 0, a), 0xff, modrmRR(r() < 0.5 ? 0 : 1, a)); // INC/DEC in between
      body.push(0x70 + Math.floor(r() * 16), insn.length);
    } else if (r() < 0.15) body.push(0x70 + Math.floor(r() * 16), insn.length);
    else if (r() < 0.08) {
      // CALL rel32 to a one-instruction subroutine and back: call L; jmp over; L: insn; ret; over:
      body.push(0xe8, ...le32(2), 0xeb, insn.length + 1, ...insn, 0xc3);
      continue;
    } else if (!gen.m32 && r() < 0.06) {
      // Indirect transfers: lea r11,[rip+X]; then jmp r11 / call r11 (+ subroutine) / jmp [r14+0x7f8]
      switch (Math.floor(r() * 3)) {
        case 0: body.push(0x4c, 0x8d, 0x1d, ...le32(3), 0x41, 0xff, 0xe3); break;
        case 1: body.push(0x4c, 0x8d, 0x1d, ...le32(5), 0x41, 0xff, 0xd3, 0xeb, insn.length + 1, ...insn, 0xc3); continue;
        default: body.push(0x4c, 0x8d, 0x1d, ...le32(14), 0x4d, 0x89, 0x9e, ...le32(0x7f8), 0x41, 0xff, 0xa6, ...le32(0x7f8)); break;
      }
    }
    body.push(...insn);
  }
  // dec r15 (writes its own record) or sub r15, 1 (a deferred record the back edge may have to write)
  if (gen.m32) body.push(...(r() < 0.5 ? [0x4f] : [0x83, 0xef, 0x01])); // dec edi / sub edi, 1
  else if (r() < 0.5) body.push(0x49, 0xff, 0xcf); else body.push(0x49, 0x83, 0xef, 0x01);
  const back = -(body.length + 6);
  body.push(0x0f, 0x85, ...le32(back)); // jnz start
  body.push(0xf4);
  return body;
}

function setup(seed: number, code: number[]): Rig {
  const rig = makeRig(8);
  writeBytes(rig.mem, CODE, code);
  if (gen.m32) {
    flat32(rig.cpu, CODE);
    // Every fourth case: a DS limit inside the scratch area, so some accesses are #GP (limits are
    // checked by the generated code's fast path, mmu.ts linAddr).
    // Every fourth case DS is an expand-down segment whose lowest valid offset lies just above
    // the scratch base: accesses indexed by the falling loop counter (case 12) become #GP on a
    // late pass, in compiled code (the fast path checks limits as mmu.ts linAddr does).
    if (seed % 4 === 1) { rig.cpu.state.segLimit[3] = SCRATCH + 0x40; rig.cpu.state.segAr[3] = 0xc097; rig.cpu.stateChanged(); }
  } else long64(rig.cpu, CODE);
  const r = mulberry32(seed ^ 0x5eed);
  const g = rig.cpu.state.gpr;
  for (const reg of FREE) {
    const v = r();
    g[reg * 2] = int32(r);
    g[reg * 2 + 1] = gen.m32 || v < 0.3 ? 0 : v < 0.5 ? -1 : int32(r);
  }
  g[SB * 2] = SCRATCH; g[SB * 2 + 1] = 0;
  g[8] = STACK; g[9] = 0;
  const counter = gen.m32 ? 7 : 15;
  g[counter * 2] = 1 + Math.floor(r() * 12); g[counter * 2 + 1] = 0;
  for (let a = 0; a < 2048; a += 4) rig.mem.write32(SCRATCH + a, int32(r));
  // The pointer table of the faulting load (randomInsn case 14): valid but for the last pass.
  for (let i = 0; i < 14; i++) { rig.mem.write32(SCRATCH + 0x700 + 8 * i, i === 1 ? 0x40000000 : SCRATCH + 8 * i); rig.mem.write32(SCRATCH + 0x704 + 8 * i, 0); }
  rig.cpu.setRflags(2 | (int32(r) & (ARITH | 0x400)));
  return rig;
}

function withJit<T>(on: boolean, f: () => T): T {
  const saved = { ...blockJit };
  blockJit.enabled = on; blockJit.hot = 1;
  try { return f(); } finally { Object.assign(blockJit, saved); }
}

function snap(rig: Rig): unknown {
  const c = rig.cpu;
  const mem: number[] = [];
  for (let a = 0; a < 2048; a += 4) mem.push(rig.mem.read32(SCRATCH + a));
  for (let a = -4096; a < 4096; a += 4) mem.push(rig.mem.read32(STACK + a));
  return { gpr: [...c.state.gpr], rip: c.state.rip, icount: c.icount, rflags: c.getRflags(), mem, act: c.state.activityState };
}

for (const m32 of [false, true]) {
  const mode = m32 ? "32-bit protected mode" : "64-bit mode";
  test(`block emit, ${mode}: random loops of every emitted form match the interpreter (registers, flags, memory)`, () => {
    setMode(m32);
    randomLoops(m32 ? 500 : 1000, m32 ? 0x32000 : 1);
  });
  test(`block emit, ${mode}: budget stops anywhere in compiled loops leave the interpreter's state`, () => {
    setMode(m32);
    budgetStops(m32 ? 80 : 150, m32 ? 0x33000 : 2000);
  });
}

function randomLoops(count: number, seed0: number): void {
  let compiled = 0;
  for (let seed = seed0; seed < seed0 + count; seed++) {
    const r = mulberry32(seed);
    const code = randomLoop(r, 3 + Math.floor(r() * 14));
    const on = withJit(true, () => { const x = setup(seed, code); x.cpu.run(5000); return x; });
    const off = withJit(false, () => { const x = setup(seed, code); x.cpu.run(5000); return x; });
    compiled += BlockCache.compiledSlots(on.cpu.dcW);
    assert.deepEqual(snap(on), snap(off), `seed ${seed}: ${Buffer.from(code).toString("hex")}`);
  }
  assert.ok(compiled > count, `blocks were compiled (${compiled})`);
}

function budgetStops(count: number, seed0: number): void {
  for (let seed = seed0; seed < seed0 + count; seed++) {
    const r = mulberry32(seed);
    const code = randomLoop(r, 4 + Math.floor(r() * 10));
    const on = withJit(true, () => setup(seed, code));
    const off = withJit(false, () => setup(seed, code));
    for (let step = 0; step < 40 && on.cpu.state.activityState === 0; step++) {
      const n = 1 + Math.floor(r() * 40);
      const a = withJit(true, () => on.cpu.run(n));
      const b = withJit(false, () => off.cpu.run(n));
      assert.equal(a, b, `seed ${seed} step ${step}`);
      assert.deepEqual(snap(on), snap(off), `seed ${seed} step ${step}`);
    }
  }
}

test("block emit: flag liveness skips records only where every path overwrites them first", () => {
  const p = (reads: number, writes: number, fault = false): Plan =>
    ({ reads, writes, fault, br: 0, cc: 0, target: 0, producer: null, emit: () => "" });
  const loop = (reads: number, target: number): Plan => ({ ...p(reads, 0), br: 1, target });
  // add; sub; jnz start: the add's flags are dead (sub overwrites all), the sub's are live (exit).
  assert.deepEqual(flagLiveness([p(0, ARITH), p(0, ARITH), loop(ZF, 0)]), [0, ARITH, ARITH]);
  // A fault in between keeps the earlier record live.
  assert.deepEqual(flagLiveness([p(0, ARITH), p(0, 0, true), p(0, ARITH)]), [ARITH, 0, ARITH]);
  // INC keeps CF: the CF of the instruction before stays live.
  assert.deepEqual(flagLiveness([p(0, ARITH), p(0, ARITH & ~CF), p(0, ARITH)])[0], 0);
  assert.deepEqual(flagLiveness([p(0, ARITH), p(0, ARITH & ~CF)])[0], CF);
  // ROL writes CF/OF only: the others pass through to the exit.
  assert.deepEqual(flagLiveness([p(0, ARITH), p(0, CF | OF)])[0], ARITH & ~(CF | OF));
  // A handler (null plan) reads everything.
  assert.deepEqual(flagLiveness([p(0, ARITH), null, p(0, ARITH)])[0], ARITH);
  // Loop back edge: the start's live-in flows to the branch; SF read at the start keeps it live.
  assert.deepEqual(flagLiveness([p(SF, 0), p(0, ARITH), loop(ZF, 0), p(0, ARITH)]), [0, SF | ZF, SF, ARITH]);
});

test("block emit: planInsn leaves LOCK, 16-bit and unknown forms to their handlers", () => {
  const ins = (w0: number, w1: number) => ({ w0, w1, disp: 0, imm: 0, imm2: 0, wb: 0, d: 0, next: 3, k: 0, m64: true });
  // LOCK bit set
  assert.equal(planInsn(ins((1 << 21) | (3 << 15) | (0x01 << 24) | 0x001, 3)), null);
  // an opcode with no emitter (HLT)
  assert.equal(planInsn(ins((0xf4 << 24) | 0xf4 | (2 << 15), 0)), null);
});

test("block emit: mulhu is the exact high word of a 32x32 unsigned product", () => {
  const r = mulberry32(7);
  for (let i = 0; i < 2000; i++) {
    const a = int32(r), b = int32(r);
    const p = BigInt(a >>> 0) * BigInt(b >>> 0);
    assert.equal(mulhu(a, b), Number(BigInt.asIntN(32, p >> 32n)));
  }
});
