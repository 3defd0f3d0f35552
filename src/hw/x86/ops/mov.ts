/**
 * Data movement: MOV, MOVZX/MOVSX/MOVSXD, LEA, XCHG, CMOVcc, SETcc, CBW/CWD family, BSWAP,
 * XLAT, LAHF/SAHF, CMPXCHG/CMPXCHG8B/16B, XADD, MOVBE (SDM Vol. 2).
 */
import type { X86Cpu } from "../cpu.js";
import { cond, flagsSync, ZF, CF, PF, AF, SF } from "../flags.js";
import { linAddr, rdL, rdLW, wrL, rdS, rd32, rd64, wr32, wr64 } from "../mmu.js";
import { ea, eaLin, rdE, wrE, rdERmw, wrERmw, rdG, wrG } from "./operand.js";
import { alu, alu64, ALU_SUB, ALU_ADD } from "./alu.js";
import { GP_VECTOR, UD_VECTOR } from "../fault.js";

/** 88: MOV Eb, Gb */
export function movEbGb(c: X86Cpu): void { wrE(c, 0, rdG(c, 0), 0); }
/** 89: MOV Ev, Gv */
export function movEvGv(c: X86Cpu): void { const sz = c.osz; const v = rdG(c, sz); wrE(c, sz, v, c.rhi); }
/** 8A: MOV Gb, Eb */
export function movGbEb(c: X86Cpu): void { wrG(c, 0, rdE(c, 0), 0); }
/** 8B: MOV Gv, Ev */
export function movGvEv(c: X86Cpu): void { const sz = c.osz; const v = rdE(c, sz); wrG(c, sz, v, c.rhi); }
/** C6 /0: MOV Eb, Ib */
export function movEbIb(c: X86Cpu): void {
  if ((c.reg & 7) !== 0) c.unimplemented(0xc6);
  wrE(c, 0, c.imm, 0);
}
/** C7 /0: MOV Ev, Iz */
export function movEvIz(c: X86Cpu): void {
  if ((c.reg & 7) !== 0) c.unimplemented(0xc7);
  wrE(c, c.osz, c.imm, c.imm >> 31);
}
/** B0-B7: MOV r8, Ib */
export function movRbIb(c: X86Cpu): void {
  c.setReg(0, (c.opb & 7) | c.rexB(), c.imm, 0);
}
/** B8-BF: MOV r, Iv (imm64 with REX.W) */
export function movRvIv(c: X86Cpu): void {
  c.setReg(c.osz, (c.opb & 7) | c.rexB(), c.imm, c.imm2);
}
/** A0-A3: MOV AL/eAX <-> moffs */
export function movMoffs(c: X86Cpu): void {
  const sz = c.opb & 1 ? c.osz : 0;
  let off: number;
  const asz = c.asz;
  if (asz === 3) off = c.imm2 * 4294967296 + (c.disp >>> 0);
  else if (asz === 2) off = c.disp >>> 0;
  else off = c.disp & 0xffff;
  const la = linAddr(c, c.seg, off, 1 << sz, c.opb & 2 ? 2 : 1);
  if (c.opb & 2) { const v = c.getReg(sz, 0); wrL(c, sz, la, v, c.rhi); }
  else { const v = rdL(c, sz, la); c.setReg(sz, 0, v, c.rhi); }
}
/** 8D: LEA Gv, M */
export function lea(c: X86Cpu): void {
  if (c.mod === 3) c.raise(UD_VECTOR, -1);
  const sz = c.osz;
  if (c.asz === 3) { lea64(c, sz); return; }
  const a = ea(c);
  if (sz === 3) wrG(c, 3, a | 0, 0);
  else wrG(c, sz, a | 0, 0);
}

/**
 * LEA with a 64-bit address size, in exact lo/hi arithmetic: ea() works in doubles, which is
 * exact for every canonical address but not for the arbitrary 64-bit sums LEA is used to
 * compute; a 32- or 16-bit destination takes the low bits of the exact sum.
 */
function lea64(c: X86Cpu, sz: number): void {
  const g = c.state.gpr;
  const base = c.base, index = c.index, scale = c.scale;
  let lo = c.disp, hi = c.disp >> 31;
  let xl = 0, xh = 0;
  if (base < 16) { xl = g[base << 1]; xh = g[(base << 1) | 1]; }
  else if (base === 16) { const r = c.state.rip; xl = r | 0; xh = Math.floor(r / 4294967296) | 0; }
  let t = (lo >>> 0) + (xl >>> 0);
  lo = t | 0; hi = (hi + xh + (t > 0xffffffff ? 1 : 0)) | 0;
  if (index < 16) {
    let il = g[index << 1], ih = g[(index << 1) | 1];
    if (scale) { ih = (ih << scale) | (il >>> (32 - scale)); il <<= scale; }
    t = (lo >>> 0) + (il >>> 0);
    lo = t | 0; hi = (hi + ih + (t > 0xffffffff ? 1 : 0)) | 0;
  }
  wrG(c, sz, lo, sz === 3 ? hi : 0);
}
/** 86/87: XCHG E, G (implicitly locked) */
export function xchgEG(c: X86Cpu): void {
  const sz = c.opb & 1 ? c.osz : 0;
  const e = rdERmw(c, sz), eh = c.rhi;
  const g = rdG(c, sz), gh = c.rhi;
  wrERmw(c, sz, g, gh);
  wrG(c, sz, e, eh);
}
/** 90-97: XCHG rAX, r (90 without REX.B is NOP; F3 90 is PAUSE, handled in system.ts) */
export function xchgAX(c: X86Cpu): void {
  const r = (c.opb & 7) | c.rexB();
  if (r === 0) return;
  const sz = c.osz;
  const a = c.getReg(sz, 0), ah = c.rhi;
  const b = c.getReg(sz, r), bh = c.rhi;
  c.setReg(sz, 0, b, bh);
  c.setReg(sz, r, a, ah);
}
/** 0F B6/B7: MOVZX; 0F BE/BF: MOVSX */
export function movzxsx(c: X86Cpu): void {
  const word = c.opb & 1;
  let v = rdE(c, word);
  const signed = c.opb & 8;
  if (signed) v = word ? (v << 16) >> 16 : (v << 24) >> 24;
  wrG(c, c.osz, v, v >> 31);
}
/** 63 in 64-bit mode: MOVSXD Gv, Ed */
export function movsxd(c: X86Cpu): void {
  const v = rdE(c, 2);
  const sz = c.osz;
  if (sz === 3) wrG(c, 3, v, v >> 31);
  else wrG(c, sz, v, 0);
}
/** 98: CBW/CWDE/CDQE */
export function cbw(c: X86Cpu): void {
  const sz = c.osz;
  if (sz === 1) { const v = (c.getReg(0, 0) << 24) >> 24; c.setReg(1, 0, v, 0); }
  else if (sz === 2) { const v = (c.getReg(1, 0) << 16) >> 16; c.setReg(2, 0, v, 0); }
  else { const v = c.getReg(2, 0); c.setReg(3, 0, v, v >> 31); }
}
/** 99: CWD/CDQ/CQO */
export function cwd(c: X86Cpu): void {
  const sz = c.osz;
  if (sz === 1) c.setReg(1, 2, (c.getReg(1, 0) << 16) >> 31, 0);
  else if (sz === 2) c.setReg(2, 2, c.getReg(2, 0) >> 31, 0);
  else { c.getReg(3, 0); const s = c.rhi >> 31; c.setReg(3, 2, s, s); }
}
/** 0F 40-4F: CMOVcc Gv, Ev (the source is read, and a 32-bit destination zero-extended, even if false) */
export function cmov(c: X86Cpu): void {
  const sz = c.osz;
  const v = rdE(c, sz), vh = c.rhi;
  if (cond(c, c.opb & 15)) wrG(c, sz, v, vh);
  else if (sz === 2) { const r = c.reg; c.setReg(2, r, c.getReg(2, r), 0); }
}
/** 0F 90-9F: SETcc Eb */
export function setcc(c: X86Cpu): void {
  wrE(c, 0, cond(c, c.opb & 15) ? 1 : 0, 0);
}
/** 0F C8-CF: BSWAP r32/r64 */
export function bswap(c: X86Cpu): void {
  const r = (c.opb & 7) | c.rexB();
  const sw = (x: number): number => ((x >>> 24) | ((x >>> 8) & 0xff00) | ((x & 0xff00) << 8) | (x << 24)) | 0;
  if (c.osz === 3) { const lo = c.getReg(3, r), hi = c.rhi; c.setReg(3, r, sw(hi), sw(lo)); }
  else if (c.osz === 2) c.setReg(2, r, sw(c.getReg(2, r)), 0);
  else c.setReg(1, r, 0, 0); // BSWAP r16 is undefined; zeroing the low word is what Intel cores do
}
/** D7: XLAT */
export function xlat(c: X86Cpu): void {
  const asz = c.asz;
  let off = c.regAddr(3, asz) + c.getReg(0, 0);
  if (asz === 1) off &= 0xffff; else if (asz === 2) off = off >>> 0;
  c.setReg(0, 0, rdS(c, 0, c.seg, off), 0);
}
/** 9F: LAHF (in 64-bit mode only with CPUID LAHF-SAHF, which the CPU reports) */
export function lahf(c: X86Cpu): void {
  flagsSync(c);
  const g = c.state.gpr;
  g[0] = (g[0] & ~0xff00) | (((c.fl & 0xd5) | 2) << 8);
}
/** 9E: SAHF */
export function sahf(c: X86Cpu): void {
  flagsSync(c);
  const ah = (c.state.gpr[0] >>> 8) & 0xff;
  c.fl = (c.fl & ~(CF | PF | AF | ZF | SF)) | (ah & (CF | PF | AF | ZF | SF));
}
/** 0F B0/B1: CMPXCHG E, G */
export function cmpxchg(c: X86Cpu): void {
  const sz = c.opb & 1 ? c.osz : 0;
  const d = rdERmw(c, sz), dh = c.rhi;
  const a = c.getReg(sz, 0), ah = c.rhi;
  if (sz === 3) alu64(c, ALU_SUB, a, ah, d, dh); else alu(c, ALU_SUB, sz, a, d);
  const eq = sz === 3 ? a === d && ah === dh : ((a ^ d) & (sz === 0 ? 0xff : sz === 1 ? 0xffff : -1)) === 0;
  if (eq) { const s = rdG(c, sz); wrERmw(c, sz, s, c.rhi); }
  else {
    // The destination is written back with its own value (the locked cycle always writes).
    if (c.mod !== 3) wrERmw(c, sz, d, dh);
    c.setReg(sz, 0, d, dh);
  }
}
/** 0F C7 /1: CMPXCHG8B / CMPXCHG16B m */
export function cmpxchg8b(c: X86Cpu): void {
  if (c.mod === 3) c.raise(UD_VECTOR, -1);
  const g = c.state.gpr;
  if (c.osz === 3) {
    const la = eaLin(c, 16, 2);
    if ((la & 15) !== 0) c.raise(GP_VECTOR, 0);
    const l0 = rdLW(c, 3, la), h0 = c.rhi;
    const l1 = rdLW(c, 3, la + 16 - 8), h1 = c.rhi;
    flagsSync(c);
    if (l0 === g[0] && h0 === g[1] && l1 === g[4] && h1 === g[5]) {
      wrL(c, 3, la, g[6], g[7]); wrL(c, 3, la + 8, g[2], g[3]);
      c.fl |= ZF;
    } else {
      wrL(c, 3, la, l0, h0); wrL(c, 3, la + 8, l1, h1);
      g[0] = l0; g[1] = h0; g[4] = l1; g[5] = h1;
      c.fl &= ~ZF;
    }
    return;
  }
  const la = eaLin(c, 8, 2);
  const lo = rdLW(c, 3, la), hi = c.rhi;
  flagsSync(c);
  if (lo === g[0] && hi === g[4]) { wrL(c, 3, la, g[6], g[2]); c.fl |= ZF; }
  else { wrL(c, 3, la, lo, hi); c.setReg(2, 0, lo, 0); c.setReg(2, 2, hi, 0); c.fl &= ~ZF; }
}
/** 0F C0/C1: XADD E, G */
export function xadd(c: X86Cpu): void {
  const sz = c.opb & 1 ? c.osz : 0;
  const d = rdERmw(c, sz), dh = c.rhi;
  const s = rdG(c, sz), sh = c.rhi;
  let r: number, rh = 0;
  if (sz === 3) { r = alu64(c, ALU_ADD, d, dh, s, sh); rh = c.rhi; } else r = alu(c, ALU_ADD, sz, d, s);
  wrG(c, sz, d, dh);
  wrERmw(c, sz, r, rh);
}
/** 0F 38 F0/F1 (no F2): MOVBE */
export function movbe(c: X86Cpu): void {
  if (c.mod === 3) c.raise(UD_VECTOR, -1);
  const sz = c.osz;
  const sw = (x: number): number => ((x >>> 24) | ((x >>> 8) & 0xff00) | ((x & 0xff00) << 8) | (x << 24)) | 0;
  if (c.opb === 0xf0) {
    const v = rdE(c, sz), vh = c.rhi;
    if (sz === 3) wrG(c, 3, sw(vh), sw(v)); else if (sz === 2) wrG(c, 2, sw(v), 0); else wrG(c, 1, ((v & 0xff) << 8) | ((v >>> 8) & 0xff), 0);
  } else {
    const v = rdG(c, sz), vh = c.rhi;
    if (sz === 3) wrE(c, 3, sw(vh), sw(v)); else if (sz === 2) wrE(c, 2, sw(v), 0); else wrE(c, 1, ((v & 0xff) << 8) | ((v >>> 8) & 0xff), 0);
  }
}


/** Specialized 32-bit MOV r, r (89/8B with a register operand: decode.ts SPEC_MOV_RR32). */
export function movRR32(c: X86Cpu): void {
  const w1 = c.w1;
  const rm = (w1 >>> 6) & 15, reg = (w1 >>> 2) & 15;
  const g = c.state.gpr;
  if (c.opb === 0x89) { g[rm << 1] = g[reg << 1]; g[(rm << 1) | 1] = 0; }
  else { g[reg << 1] = g[rm << 1]; g[(reg << 1) | 1] = 0; }
}

/** Specialized 64-bit MOV r, r (REX.W 89/8B, register operand: SPEC_MOV_RR64). */
export function movRR64(c: X86Cpu): void {
  const w1 = c.w1;
  const rm = ((w1 >>> 6) & 15) << 1, reg = ((w1 >>> 2) & 15) << 1;
  const g = c.state.gpr;
  if (c.opb === 0x89) { g[rm] = g[reg]; g[rm | 1] = g[reg | 1]; }
  else { g[reg] = g[rm]; g[reg | 1] = g[rm | 1]; }
}

/** Specialized 32/64-bit MOV between a register and memory (89/8B with a memory operand: SPEC_MOV_RM). */
export function movRM(c: X86Cpu): void {
  const w1 = c.w1;
  const reg = ((w1 >>> 2) & 15) << 1;
  const g = c.state.gpr;
  const q = c.osz === 3;
  if (c.opb === 0x8b) {
    const la = linAddr(c, (w1 >>> 22) & 7, ea(c), q ? 8 : 4, 1);
    if (q) { const lo = rd64(c, la); g[reg] = lo; g[reg | 1] = c.rhi; }
    else { g[reg] = rd32(c, la); g[reg | 1] = 0; }
  } else {
    const la = linAddr(c, (w1 >>> 22) & 7, ea(c), q ? 8 : 4, 2);
    if (q) wr64(c, la, g[reg], g[reg | 1]); else wr32(c, la, g[reg]);
  }
}
