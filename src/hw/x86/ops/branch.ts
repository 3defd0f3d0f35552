/**
 * Near control transfers: Jcc, JMP, CALL, RET, LOOP/LOOPcc, JCXZ/JECXZ/JRCXZ (SDM Vol. 2).
 * Far transfers live in segment.ts, INT/IRET in interrupt.ts.
 */
import type { X86Cpu } from "../cpu.js";
import { cond, getZF } from "../flags.js";
import { GP_VECTOR } from "../fault.js";
import { rdE, push, pop, osBytes } from "./operand.js";

/** Load RIP with a near-branch target of operand size osz: truncation, then the CS limit or canonical check (#GP(0)). */
export function branchTo(c: X86Cpu, target: number, osz: number): void {
  if (c.m64) {
    if (osz !== 3) target = osz === 2 ? target >>> 0 : target & 0xffff;
    if (target < -c.canon || target >= c.canon) c.raise(GP_VECTOR, 0);
    c.state.rip = target;
    c.breakLoop = 1;
    return;
  }
  target = osz === 1 ? target & 0xffff : target >>> 0;
  if (target > c.segHi[1]) c.raise(GP_VECTOR, 0);
  c.state.rip = target;
  // A taken branch ends a block: the run loop offers an interrupt window check (hooks.ts instructionBoundary).
  c.breakLoop = 1;
}

/** 70-7F / 0F 80-8F: Jcc rel8/rel16/32 */
export function jcc(c: X86Cpu): void {
  if (cond(c, c.opb & 15)) branchTo(c, c.state.rip + c.imm, c.osz);
}
/** EB / E9: JMP rel */
export function jmpRel(c: X86Cpu): void {
  branchTo(c, c.state.rip + c.imm, c.osz);
}
/** E8: CALL rel */
export function callRel(c: X86Cpu): void {
  const osz = c.osz;
  const ret = c.state.rip;
  const target = ret + c.imm;
  // Check the target before pushing so a bad target faults with the stack untouched.
  const t = c.m64 ? target : osz === 1 ? target & 0xffff : target >>> 0;
  if (c.m64 ? t < -c.canon || t >= c.canon : t > c.segHi[1]) c.raise(GP_VECTOR, 0);
  push(c, osBytes(osz), ret | 0, Math.floor(ret / 4294967296) | 0);
  branchTo(c, t, osz);
}
/** FF /2: CALL Ev */
export function callEv(c: X86Cpu): void {
  const osz = c.osz;
  let t = rdE(c, osz);
  t = osz === 3 ? c.rhi * 4294967296 + (t >>> 0) : osz === 2 ? t >>> 0 : t;
  if (c.m64 ? t < -c.canon || t >= c.canon : t > c.segHi[1]) c.raise(GP_VECTOR, 0);
  const ret = c.state.rip;
  push(c, osBytes(osz), ret | 0, Math.floor(ret / 4294967296) | 0);
  branchTo(c, t, osz);
}
/** FF /4: JMP Ev */
export function jmpEv(c: X86Cpu): void {
  const osz = c.osz;
  const t = rdE(c, osz);
  branchTo(c, osz === 3 ? c.rhi * 4294967296 + (t >>> 0) : osz === 2 ? t >>> 0 : t, osz);
}
/** C3 / C2 iw: RET near [imm16] */
export function retNear(c: X86Cpu): void {
  const osz = c.osz;
  const n = osBytes(osz);
  // Read the return address first; RSP changes only if the target is valid.
  const sp0 = c.regAddr(4, c.ssz);
  let t = pop(c, n);
  t = osz === 3 ? c.rhi * 4294967296 + (t >>> 0) : osz === 2 ? t >>> 0 : t & 0xffff;
  if (c.m64 ? t < -c.canon || t >= c.canon : t > c.segHi[1]) { c.setRegAddr(4, c.ssz, sp0); c.raise(GP_VECTOR, 0); }
  c.state.rip = t;
  if (c.opb === 0xc2) {
    const sp = c.regAddr(4, c.ssz) + (c.imm & 0xffff);
    c.setRegAddr(4, c.ssz, c.ssz === 1 ? sp & 0xffff : c.ssz === 2 ? sp >>> 0 : sp);
  }
  c.breakLoop = 1;
}
/** E0/E1/E2: LOOPNE/LOOPE/LOOP rel8; E3: JCXZ */
export function loop(c: X86Cpu): void {
  const asz = c.asz;
  const g = c.state.gpr;
  let zero: boolean;
  if (c.opb === 0xe3) zero = c.regAddr(1, asz) === 0;
  else {
    if (asz === 3) { const lo = g[2]; g[2] = lo - 1; if (lo === 0) g[3] = g[3] - 1; zero = (g[2] | g[3]) === 0; }
    else if (asz === 2) { g[2] = g[2] - 1; g[3] = 0; zero = g[2] === 0; }
    else { const v = (g[2] - 1) & 0xffff; g[2] = (g[2] & ~0xffff) | v; zero = v === 0; }
  }
  let take: boolean;
  switch (c.opb) {
    case 0xe0: take = !zero && getZF(c) === 0; break;
    case 0xe1: take = !zero && getZF(c) === 1; break;
    case 0xe2: take = !zero; break;
    default: take = zero; break;
  }
  if (take) branchTo(c, c.state.rip + c.imm, c.osz);
}
