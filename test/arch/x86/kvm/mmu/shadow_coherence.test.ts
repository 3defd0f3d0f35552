/**
 * Randomized coherence check of shadow paging: a guest program made of random loads, stores, PTE
 * rewrites (each followed by INVLPG or a CR3 load, as SDM 4.10.4 requires for a deterministic
 * result), rewrites of a page table not in use, PDE switches between two page tables (followed
 * by a CR3 load) and plain CR3 reloads. Every load's value must be what a model of the page tables and memory
 * gives, with ept=1 and ept=0 alike, and the A/D bits left in the guest's tables must be the same.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../../src/uapi/kvm.js";
import { Rng } from "../../../../diff/gen.js";
import { HLT, LA, buildTables, invlpg, load, movEax, setCr3, shadowGuest, store, u32, type Mode } from "./shadow_guest.js";

const PROG = 0x30000;
const RES = 0x38000;
const FRAMES = 8;
const PT_A = 0x6000;
const PT_B = 0xd000;
const ROOT2 = 0xa000;
const frameAddr = (j: number): number => 0x20000 + j * 0x1000;

interface Program {
  code: number[];
  expect: number[];
}

function genProgram(mode: Mode, seed: number, n: number): Program {
  const rng = new Rng(seed);
  const sz = mode === "32" ? 4 : 8;
  const pde = mode === "32" ? 0x4000 + 0x100 * 4 : 0x8000;
  const pts = [PT_A, PT_B];
  // Model: which frame each entry of each PT maps, the PT in use, the first dword of each frame.
  const ptes = [[0, 1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1, 0]];
  const mem = Array.from({ length: FRAMES }, (_, j) => j + 1);
  let cur = 0;
  // 64-bit and PAE: a second root (ROOT2) sharing the page directory of LA, so CR3 switches
  // exercise cached roots without changing what LA maps.
  let root = 0x4000;
  const code: number[] = [];
  const expect: number[] = [];
  for (let i = 0; i < n; i++) {
    const op = rng.int(mode === "32" ? 11 : 12);
    const k = rng.int(FRAMES);
    const j = rng.int(FRAMES);
    if (op <= 2) {
      code.push(...load(LA + k * 0x1000), ...store(RES + expect.length * 4));
      expect.push(mem[ptes[cur][k]]);
    } else if (op <= 4) {
      const v = rng.u32() & 0x7fffffff;
      code.push(...movEax(v), ...store(LA + k * 0x1000));
      mem[ptes[cur][k]] = v;
    } else if (op <= 6) {
      code.push(...movEax(frameAddr(j) | 3), ...store(pts[cur] + k * sz), ...invlpg(LA + k * 0x1000));
      ptes[cur][k] = j;
    } else if (op === 7) {
      code.push(...movEax(frameAddr(j) | 3), ...store(pts[1 - cur] + k * sz));
      ptes[1 - cur][k] = j;
    } else if (op === 8) {
      cur = 1 - cur;
      code.push(...movEax(pts[cur] | 7), ...store(pde), ...setCr3(root));
    } else if (op === 9) {
      code.push(...setCr3(root));
    } else if (op === 11) {
      root = root === 0x4000 ? ROOT2 : 0x4000;
      code.push(...setCr3(root));
    } else {
      // A PTE rewrite made effective by a CR3 load instead of INVLPG.
      code.push(...movEax(frameAddr(j) | 3), ...store(pts[cur] + k * sz), ...setCr3(root));
      ptes[cur][k] = j;
    }
  }
  code.push(HLT);
  return { code, expect };
}

function runProgram(mode: Mode, ept: boolean, p: Program): { results: number[]; tables: number[] } {
  const g = shadowGuest(mode, { cr3: 0x4000, ept });
  buildTables(g, mode);
  if (mode === "64") {
    g.pte(ROOT2, 0xb007);
    g.pte(0xb000, 0x7003);
    g.pte(0xb008, 0x8007);
  } else if (mode === "pae") {
    g.pte(ROOT2, 0x7001);
    g.pte(ROOT2 + 8, 0x8001);
  }
  for (let k = 0; k < FRAMES; k++) {
    g.pte(PT_A + k * (mode === "32" ? 4 : 8), frameAddr(k) | 3);
    g.pte(PT_B + k * (mode === "32" ? 4 : 8), frameAddr(FRAMES - 1 - k) | 3);
  }
  for (let j = 0; j < FRAMES; j++) g.poke(frameAddr(j), u32(j + 1));
  g.poke(PROG, p.code);
  g.vcpu.setRegs({ ...g.vcpu.getRegs(), rip: BigInt(PROG) });
  assert.equal(g.run(), K.KVM_EXIT_HLT, `ept=${ept}: the program ran to its HLT (rip 0x${g.vcpu.getRegs().rip.toString(16)})`);
  const results = p.expect.map((_, i) => g.peek32(RES + i * 4));
  const tables: number[] = [];
  for (let k = 0; k < FRAMES * (mode === "32" ? 1 : 2); k++) tables.push(g.peek32(PT_A + k * 4), g.peek32(PT_B + k * 4));
  return { results, tables };
}

for (const mode of ["32", "pae", "64"] as const) {
  test(`${mode}: random page-table edits, loads and stores give the model's values with ept=1 and ept=0, and the same A/D bits`, () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const p = genProgram(mode, seed * 7919 + mode.length, 250);
      const hw = runProgram(mode, true, p);
      const sh = runProgram(mode, false, p);
      assert.deepEqual(hw.results, p.expect, `ept=1 seed ${seed}`);
      assert.deepEqual(sh.results, p.expect, `ept=0 seed ${seed}`);
      assert.deepEqual(sh.tables, hw.tables, `guest page tables (A/D) seed ${seed}`);
    }
  });
}
