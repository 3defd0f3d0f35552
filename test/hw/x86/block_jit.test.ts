// Compiled blocks (src/hw/x86/block_jit.ts) against the interpreter: the same guest code run with
// the block compiler on (compiling every block start at once) and off must leave identical state,
// including at budget ends, faults in the middle of a block, self-modifying code and decoded-cache
// slots taken over by another frame.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeRig, writeBytes, long64, idtGate64, writeGdt, segDesc } from "./helpers.js";
import type { Rig } from "./helpers.js";
import { blockJit, BlockCache } from "../../../src/hw/x86/block_jit.js";
import type { X86Cpu } from "../../../src/hw/x86/cpu.js";

function withJit<T>(on: boolean, f: () => T): T {
  const saved = { ...blockJit };
  blockJit.enabled = on; blockJit.hot = 1;
  try { return f(); } finally { Object.assign(blockJit, saved); }
}

function snapshot(cpu: X86Cpu): unknown {
  return { gpr: [...cpu.state.gpr], rip: cpu.state.rip, icount: cpu.icount, rflags: cpu.getRflags(), cr2: cpu.state.cr2 };
}

function compiledCount(cpu: X86Cpu): number {
  return BlockCache.compiledSlots(cpu.dcW);
}

/** Rig with `code` at 0x1000 in 64-bit mode; `setup` may place more. */
function rig64(code: number[], setup?: (r: Rig) => void): Rig {
  const r = makeRig(8);
  writeBytes(r.mem, 0x1000, code);
  long64(r.cpu, 0x1000);
  if (setup) setup(r);
  return r;
}

// 1000: add rax, rbx ; xor rax, rcx ; rol rax, 7 ; lea rbx, [rbx+rax*2+1] ; imul rax, rax, 33
//       mov [rdi], rax ; mov rdx, [rdi] ; sub rbx, rcx ; dec rcx ; jnz 1000 ; hlt
const LOOP = [0x48, 0x01, 0xd8, 0x48, 0x31, 0xc8, 0x48, 0xc1, 0xc0, 0x07, 0x48, 0x8d, 0x5c, 0x43, 0x01, 0x48, 0x6b, 0xc0, 0x21,
  0x48, 0x89, 0x07, 0x48, 0x8b, 0x17, 0x48, 0x29, 0xcb, 0x48, 0xff, 0xc9, 0x75, 0xdf, 0xf4];
function loopSetup(r: Rig): void {
  const g = r.cpu.state.gpr;
  g[2] = 500; g[0] = 0x12345; g[6] = 0x7f4a7c15; g[7] = 0x9e3779b9; g[14] = 0x3000;
}

test("block jit: a hot 64-bit loop runs compiled and ends in the interpreter's exact state", () => {
  const on = withJit(true, () => { const r = rig64(LOOP, loopSetup); r.cpu.run(100000); return r; });
  const off = withJit(false, () => { const r = rig64(LOOP, loopSetup); r.cpu.run(100000); return r; });
  assert.ok(compiledCount(on.cpu) > 0, "the loop was compiled");
  assert.equal(compiledCount(off.cpu), 0, "the switch turns compilation off");
  assert.equal(on.cpu.icount, 500 * 10 + 1);
  assert.deepEqual(snapshot(on.cpu), snapshot(off.cpu));
});

test("block jit: budgets ending in the middle of compiled blocks leave the same state at every stop", () => {
  const on = withJit(true, () => rig64(LOOP, loopSetup));
  const off = withJit(false, () => rig64(LOOP, loopSetup));
  for (let k = 1; k < 80 && on.cpu.state.activityState === 0; k++) {
    const n1 = withJit(true, () => on.cpu.run(k % 13 + 1));
    const n2 = withJit(false, () => off.cpu.run(k % 13 + 1));
    assert.equal(n1, n2);
    assert.deepEqual(snapshot(on.cpu), snapshot(off.cpu), `after step ${k}`);
  }
  assert.ok(compiledCount(on.cpu) > 0);
});

// 1000: mov [rdi], rax ; add rdi, 0x100000 ; inc rax ; dec rcx ; jnz 1000 ; hlt
// rdi walks past the identity-mapped 8 MiB: #PF on the store, handler at 0x4000 is HLT.
const PF_LOOP = [0x48, 0x89, 0x07, 0x48, 0x81, 0xc7, 0x00, 0x00, 0x10, 0x00, 0x48, 0xff, 0xc0, 0x48, 0xff, 0xc9, 0x75, 0xee, 0xf4];
function pfSetup(r: Rig): void {
  idtGate64(r.mem, 0x5000, 14, 0x08, 0x4000);
  r.cpu.state.idtrBase = 0x5000; r.cpu.state.idtrLimit = 0xfff;
  writeGdt(r.mem, 0x6000, [[0, 0], segDesc(0, 0xfffff, 0x9b, 0xa), segDesc(0, 0xfffff, 0x93, 0xc)]);
  r.cpu.state.gdtrBase = 0x6000; r.cpu.state.gdtrLimit = 0x17;
  writeBytes(r.mem, 0x4000, [0xf4]);
  r.cpu.state.gpr[2] = 100; r.cpu.state.gpr[14] = 0x3000;
}

test("block jit: a page fault in the middle of a compiled block reports its own RIP and count", () => {
  const on = withJit(true, () => { const r = rig64(PF_LOOP, pfSetup); r.cpu.run(10000); return r; });
  const off = withJit(false, () => { const r = rig64(PF_LOOP, pfSetup); r.cpu.run(10000); return r; });
  assert.ok(compiledCount(on.cpu) > 0);
  assert.deepEqual(snapshot(on.cpu), snapshot(off.cpu));
  // 8 full iterations (5 insns), the faulting store, then the handler's HLT
  assert.equal(on.cpu.icount, 8 * 5 + 1, JSON.stringify({ cr2: on.cpu.state.cr2, rip: on.cpu.state.rip, rdi: on.cpu.state.gpr[14], rcx: on.cpu.state.gpr[2], act: on.cpu.state.activityState }));
  assert.equal(on.cpu.state.cr2, 0x3000 + 8 * 0x100000);
  const rsp = on.cpu.state.gpr[8];
  assert.equal(on.mem.read32(rsp + 8), 0x1000, "the pushed RIP is the store's");
  assert.equal(on.cpu.state.rip, 0x4001);
});

// 1000: mov [0x100a], cl ; nop ; nop ; 1009: mov al, imm8 ; add bl, al ; dec ecx ; jnz 1000 ; hlt
const SMC = [0x88, 0x0c, 0x25, 0x0a, 0x10, 0x00, 0x00, 0x90, 0x90, 0xb0, 0x55, 0x00, 0xc3, 0xff, 0xc9, 0x75, 0xef, 0xf4];

test("block jit: a store into a later instruction of its own compiled block is seen at once", () => {
  const on = withJit(true, () => { const r = rig64(SMC, (x) => { x.cpu.state.gpr[2] = 40; }); r.cpu.run(10000); return r; });
  const off = withJit(false, () => { const r = rig64(SMC, (x) => { x.cpu.state.gpr[2] = 40; }); r.cpu.run(10000); return r; });
  assert.equal(on.cpu.state.gpr[6] & 0xff, (40 * 41 / 2) & 0xff); // bl = sum of the stored cl values
  assert.deepEqual(snapshot(on.cpu), snapshot(off.cpu));
});

// Two loops whose code is 128 KiB apart share decoded-cache slots (the cache is indexed by the
// low 16 bits of the host-physical address); B's instructions sit 4 bytes later, so B replaces
// A's second to last slots while A's first slot stays cached: A's compiled block must not run.
// 01000: mov ecx, 20 ; 1005: add rax, 1 ; add rax, 2 ; add rax, 3 ; dec ecx ; jnz 1005 ; jmp 21004
// 21004: mov ecx, 20 ; 21009: add rax, 0x10 ; add rax, 0x20 ; add rax, 0x30 ; dec ecx ; jnz 21009
// 21019: mov ecx, 20 ; dec edx ; jnz 1005 (straight into A's block while B holds its later slots) ; hlt
const A = [0xb9, 20, 0, 0, 0, 0x48, 0x83, 0xc0, 1, 0x48, 0x83, 0xc0, 2, 0x48, 0x83, 0xc0, 3, 0xff, 0xc9, 0x75, 0xf0, 0xe9, 0xea, 0xff, 0x01, 0x00];
const B = [0xb9, 20, 0, 0, 0, 0x48, 0x83, 0xc0, 0x10, 0x48, 0x83, 0xc0, 0x20, 0x48, 0x83, 0xc0, 0x30, 0xff, 0xc9, 0x75, 0xf0,
  0xb9, 20, 0, 0, 0, 0xff, 0xca, 0x0f, 0x85, 0xdf, 0xff, 0xfd, 0xff, 0xf4];

test("block jit: a block whose later decoded-cache slots were taken by another frame is not used", () => {
  const setup = (r: Rig): void => { writeBytes(r.mem, 0x21004, B); r.cpu.state.gpr[4] = 3; };
  const on = withJit(true, () => { const r = rig64(A, setup); r.cpu.run(100000); return r; });
  const off = withJit(false, () => { const r = rig64(A, setup); r.cpu.run(100000); return r; });
  assert.equal(on.cpu.state.gpr[0], 3 * 20 * (6 + 0x60));
  assert.equal(on.cpu.state.rip, 0x21027);
  assert.deepEqual(snapshot(on.cpu), snapshot(off.cpu));
});

// A block that skips its own later instruction on odd passes while another page rewrites that
// instruction's opcode after the even ones, so the block's first instructions are decoded again
// (odd pass) before the rewritten one is: a compiled block with the old opcode baked in must not run.
// 1000: inc rax ; test cl, 1 ; jnz 100b ; 1008: add rbx, rax (opcode byte 1009 toggles 01 / 29: sub)
// 100b: dec ecx ; jz 1020 ; jmp 2000 ;  1020: hlt
// 2000: cmp ecx, 30 ; ja 2014 (the first passes compile the block with ADD) ; test cl, 1 ; jz 2014
//       mov [0x1009], dl ; xor dl, 0x28 ; 2014: jmp 1000
const PATCHED = [0x48, 0xff, 0xc0, 0xf6, 0xc1, 0x01, 0x75, 0x03, 0x48, 0x01, 0xc3, 0xff, 0xc9, 0x0f, 0x84, 0x0d, 0, 0, 0,
  0xe9, 0xe8, 0x0f, 0, 0, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4];
const PATCHER = [0x83, 0xf9, 0x1e, 0x77, 0x0f, 0xf6, 0xc1, 0x01, 0x74, 0x0a, 0x88, 0x14, 0x25, 0x09, 0x10, 0, 0, 0x80, 0xf2, 0x28,
  0xe9, 0xe7, 0xef, 0xff, 0xff];

test("block jit: an instruction rewritten from another page is not run with its old decoding", () => {
  const setup = (r: Rig): void => { writeBytes(r.mem, 0x2000, PATCHER); r.cpu.state.gpr[2] = 40; r.cpu.state.gpr[4] = 0x29; };
  const on = withJit(true, () => { const r = rig64(PATCHED, setup); r.cpu.run(100000); return r; });
  const off = withJit(false, () => { const r = rig64(PATCHED, setup); r.cpu.run(100000); return r; });
  assert.equal(on.cpu.state.rip, 0x1021);
  assert.deepEqual(snapshot(on.cpu), snapshot(off.cpu));
});
