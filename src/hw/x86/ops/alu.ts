/**
 * Integer arithmetic and logic: ADD/OR/ADC/SBB/AND/SUB/XOR/CMP in every form, TEST, INC/DEC,
 * NEG/NOT (SDM Vol. 2). Flags are recorded lazily (flags.ts).
 */
import type { X86Cpu } from "../cpu.js";
import { getCF, LOP_ADD, LOP_ADC, LOP_SUB, LOP_SBB, LOP_LOGIC, LOP_INC, LOP_DEC, CF } from "../flags.js";
import { rdE, rdERmw, wrERmw, rdG, wrG } from "./operand.js";

export const ALU_ADD = 0, ALU_OR = 1, ALU_ADC = 2, ALU_SBB = 3, ALU_AND = 4, ALU_SUB = 5, ALU_XOR = 6, ALU_CMP = 7;

/** Shift that puts the sign bit of an 8/16/32-bit value at bit 31. */
const SH = [24, 16, 0];

/** ALU operation op on sz (0..2) operands; returns the zero-extended result and records flags. */
export function alu(c: X86Cpu, op: number, sz: number, d: number, s: number): number {
  const sh = SH[sz];
  const dd = d << sh, ss = s << sh;
  let r: number, lop: number;
  switch (op) {
    case ALU_ADD: r = (dd + ss) | 0; lop = LOP_ADD; break;
    case ALU_OR: r = dd | ss; lop = LOP_LOGIC; break;
    case ALU_ADC: { const ci = getCF(c); r = (dd + ss + (ci << sh)) | 0; c.lcin = ci; lop = LOP_ADC; break; }
    case ALU_SBB: { const ci = getCF(c); r = (dd - ss - (ci << sh)) | 0; c.lcin = ci; lop = LOP_SBB; break; }
    case ALU_AND: r = dd & ss; lop = LOP_LOGIC; break;
    case ALU_XOR: r = dd ^ ss; lop = LOP_LOGIC; break;
    default: r = (dd - ss) | 0; lop = LOP_SUB; break;
  }
  c.lop = lop; c.lsh = sh; c.l64 = 0;
  c.ldst = dd; c.lsrc = ss; c.lres = r;
  return sz === 2 ? r : r >>> sh;
}

/** 64-bit ALU operation on lo/hi pairs; returns the low half, high half in c.rhi. */
export function alu64(c: X86Cpu, op: number, dl: number, dh: number, sl: number, sh: number): number {
  let rl: number, rh: number, lop: number;
  switch (op) {
    case ALU_ADD: case ALU_ADC: {
      const ci = op === ALU_ADC ? getCF(c) : 0;
      const t = (dl >>> 0) + (sl >>> 0) + ci;
      rl = t | 0; rh = (dh + sh + (t > 0xffffffff ? 1 : 0)) | 0;
      c.lcin = ci; lop = op === ALU_ADC ? LOP_ADC : LOP_ADD; break;
    }
    case ALU_SUB: case ALU_SBB: case ALU_CMP: {
      const ci = op === ALU_SBB ? getCF(c) : 0;
      const t = (dl >>> 0) - (sl >>> 0) - ci;
      rl = t | 0; rh = (dh - sh - (t < 0 ? 1 : 0)) | 0;
      c.lcin = ci; lop = op === ALU_SBB ? LOP_SBB : LOP_SUB; break;
    }
    case ALU_OR: rl = dl | sl; rh = dh | sh; lop = LOP_LOGIC; break;
    case ALU_AND: rl = dl & sl; rh = dh & sh; lop = LOP_LOGIC; break;
    default: rl = dl ^ sl; rh = dh ^ sh; lop = LOP_LOGIC; break;
  }
  c.lop = lop; c.lsh = 0; c.l64 = 1;
  c.ldst = dl; c.ldstH = dh; c.lsrc = sl; c.lsrcH = sh; c.lres = rl; c.lresH = rh;
  c.rhi = rh;
  return rl;
}

/** Record flags of a logical result (TEST, and the BMI/bit ops that define them that way). */
export function logicFlags(c: X86Cpu, sz: number, lo: number, hi: number): void {
  if (sz === 3) { c.lop = LOP_LOGIC; c.l64 = 1; c.lsh = 0; c.lres = lo; c.lresH = hi; c.ldst = 0; c.lsrc = 0; c.ldstH = 0; c.lsrcH = 0; return; }
  const sh = SH[sz];
  c.lop = LOP_LOGIC; c.l64 = 0; c.lsh = sh; c.lres = lo << sh; c.ldst = 0; c.lsrc = 0;
}

/** dst(E) op= src, writing back unless CMP. */
function aluToE(c: X86Cpu, op: number, sz: number, sl: number, shi: number): void {
  if (op === ALU_CMP) {
    const d = rdE(c, sz);
    if (sz === 3) alu64(c, op, d, c.rhi, sl, shi); else alu(c, op, sz, d, sl);
    return;
  }
  const d = rdERmw(c, sz);
  if (sz === 3) { const r = alu64(c, op, d, c.rhi, sl, shi); wrERmw(c, sz, r, c.rhi); }
  else wrERmw(c, sz, alu(c, op, sz, d, sl), 0);
}

/** 00/08/../38: op Eb, Gb */
export function aluEbGb(c: X86Cpu): void {
  aluToE(c, (c.opb >> 3) & 7, 0, rdG(c, 0), 0);
}
/** 01/09/../39: op Ev, Gv */
export function aluEvGv(c: X86Cpu): void {
  const sz = c.osz;
  const s = rdG(c, sz);
  aluToE(c, (c.opb >> 3) & 7, sz, s, c.rhi);
}
/** 02/0A/../3A: op Gb, Eb */
export function aluGbEb(c: X86Cpu): void {
  const op = (c.opb >> 3) & 7;
  const s = rdE(c, 0);
  const r = alu(c, op, 0, rdG(c, 0), s);
  if (op !== ALU_CMP) wrG(c, 0, r, 0);
}
/** 03/0B/../3B: op Gv, Ev */
export function aluGvEv(c: X86Cpu): void {
  const op = (c.opb >> 3) & 7;
  const sz = c.osz;
  const s = rdE(c, sz);
  if (sz === 3) {
    const sh = c.rhi;
    const d = rdG(c, 3);
    const r = alu64(c, op, d, c.rhi, s, sh);
    if (op !== ALU_CMP) wrG(c, 3, r, c.rhi);
    return;
  }
  const r = alu(c, op, sz, rdG(c, sz), s);
  if (op !== ALU_CMP) wrG(c, sz, r, 0);
}
/** 04/0C/../3C: op AL, Ib */
export function aluALIb(c: X86Cpu): void {
  const op = (c.opb >> 3) & 7;
  const r = alu(c, op, 0, c.getReg(0, 0), c.imm);
  if (op !== ALU_CMP) c.setReg(0, 0, r, 0);
}
/** 05/0D/../3D: op eAX, Iz */
export function aluAXIz(c: X86Cpu): void {
  const op = (c.opb >> 3) & 7;
  const sz = c.osz;
  if (sz === 3) {
    const d = c.getReg(3, 0);
    const r = alu64(c, op, d, c.rhi, c.imm, c.imm >> 31);
    if (op !== ALU_CMP) c.setReg(3, 0, r, c.rhi);
    return;
  }
  const r = alu(c, op, sz, c.getReg(sz, 0), c.imm);
  if (op !== ALU_CMP) c.setReg(sz, 0, r, 0);
}
/** 80/82: grp1 Eb, Ib */
export function grp1EbIb(c: X86Cpu): void {
  aluToE(c, c.reg & 7, 0, c.imm, 0);
}
/** 81: grp1 Ev, Iz; 83: grp1 Ev, Ib (sign-extended) */
export function grp1EvI(c: X86Cpu): void {
  aluToE(c, c.reg & 7, c.osz, c.imm, c.imm >> 31);
}

/** 84: TEST Eb, Gb */
export function testEbGb(c: X86Cpu): void {
  logicFlags(c, 0, rdE(c, 0) & rdG(c, 0), 0);
}
/** 85: TEST Ev, Gv */
export function testEvGv(c: X86Cpu): void {
  const sz = c.osz;
  const a = rdE(c, sz), ah = c.rhi;
  const b = rdG(c, sz), bh = c.rhi;
  logicFlags(c, sz, a & b, ah & bh);
}
/** A8: TEST AL, Ib */
export function testALIb(c: X86Cpu): void {
  logicFlags(c, 0, c.getReg(0, 0) & c.imm, 0);
}
/** A9: TEST eAX, Iz */
export function testAXIz(c: X86Cpu): void {
  const sz = c.osz;
  const a = c.getReg(sz, 0), ah = c.rhi;
  logicFlags(c, sz, a & c.imm, ah & (c.imm >> 31));
}

/** INC (dec=false) / DEC of a value: CF is preserved (SDM Vol. 2 INC). */
export function incDec(c: X86Cpu, sz: number, lo: number, hi: number, dec: boolean): number {
  const cf = getCF(c);
  c.fl = (c.fl & ~CF) | cf;
  if (sz === 3) {
    const t = dec ? (lo >>> 0) - 1 : (lo >>> 0) + 1;
    const rl = t | 0;
    const rh = (hi + (t > 0xffffffff ? 1 : t < 0 ? -1 : 0)) | 0;
    c.lop = dec ? LOP_DEC : LOP_INC; c.l64 = 1; c.lsh = 0;
    c.ldst = lo; c.ldstH = hi; c.lsrc = 1; c.lsrcH = 0; c.lres = rl; c.lresH = rh;
    c.rhi = rh;
    return rl;
  }
  const sh = SH[sz];
  const dd = lo << sh, one = 1 << sh;
  const r = dec ? (dd - one) | 0 : (dd + one) | 0;
  c.lop = dec ? LOP_DEC : LOP_INC; c.l64 = 0; c.lsh = sh;
  c.ldst = dd; c.lsrc = one; c.lres = r;
  return sz === 2 ? r : r >>> sh;
}

/** 40-47 / 48-4F (outside 64-bit mode): INC/DEC r16/32 */
export function incDecReg(c: X86Cpu): void {
  const r = c.opb & 7, sz = c.osz;
  c.setReg(sz, r, incDec(c, sz, c.getReg(sz, r), 0, (c.opb & 8) !== 0), 0);
}

/** FE /0 /1: INC/DEC Eb */
export function grp4(c: X86Cpu): void {
  const r = c.reg & 7;
  if (r > 1) c.unimplemented(0xfe);
  const v = rdERmw(c, 0);
  wrERmw(c, 0, incDec(c, 0, v, 0, r === 1), 0);
}

/** INC/DEC Ev (FF /0 /1) */
export function incDecEv(c: X86Cpu, dec: boolean): void {
  const sz = c.osz;
  const v = rdERmw(c, sz);
  const r = incDec(c, sz, v, c.rhi, dec);
  wrERmw(c, sz, r, c.rhi);
}

/** NOT (F6/F7 /2): no flags. */
export function notE(c: X86Cpu, sz: number): void {
  const v = rdERmw(c, sz);
  wrERmw(c, sz, ~v, ~c.rhi);
}

/** NEG (F6/F7 /3): 0 - v with SUB flags (CF = v != 0). */
export function negE(c: X86Cpu, sz: number): void {
  const v = rdERmw(c, sz);
  if (sz === 3) { const r = alu64(c, ALU_SUB, 0, 0, v, c.rhi); wrERmw(c, 3, r, c.rhi); return; }
  wrERmw(c, sz, alu(c, ALU_SUB, sz, 0, v), 0);
}

/** Specialized 32-bit register-register form of 01/03/09/../3B (decode.ts SPEC_ALU_RR32). */
export function aluRR32(c: X86Cpu): void {
  const b = c.opb, op = (b >> 3) & 7;
  const w1 = c.w1;
  const rm = (w1 >>> 6) & 15, reg = (w1 >>> 2) & 15;
  const d = b & 2 ? reg : rm, s = b & 2 ? rm : reg;
  const g = c.state.gpr;
  const r = alu(c, op, 2, g[d << 1], g[s << 1]);
  if (op !== ALU_CMP) { g[d << 1] = r; g[(d << 1) | 1] = 0; }
}

/** Specialized 64-bit register-register form of 01/03/09/../3B with REX.W (SPEC_ALU_RR64). */
export function aluRR64(c: X86Cpu): void {
  const b = c.opb, op = (b >> 3) & 7;
  const w1 = c.w1;
  const rm = (w1 >>> 6) & 15, reg = (w1 >>> 2) & 15;
  const d = (b & 2 ? reg : rm) << 1, s = (b & 2 ? rm : reg) << 1;
  const g = c.state.gpr;
  const r = alu64(c, op, g[d], g[d | 1], g[s], g[s | 1]);
  if (op !== ALU_CMP) { g[d] = r; g[d | 1] = c.rhi; }
}

/** Specialized FF /0 /1 on a 32/64-bit register (SPEC_INCDEC_R). */
export function incDecR(c: X86Cpu): void {
  const w1 = c.w1;
  const r = ((w1 >>> 6) & 15) << 1;
  const g = c.state.gpr;
  const dec = (w1 & (1 << 2)) !== 0;
  if (c.osz === 3) { const v = incDec(c, 3, g[r], g[r | 1], dec); g[r] = v; g[r | 1] = c.rhi; }
  else { g[r] = incDec(c, 2, g[r], 0, dec); g[r | 1] = 0; }
}
