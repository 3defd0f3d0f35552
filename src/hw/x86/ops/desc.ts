/**
 * Descriptor-table instructions: LGDT/LIDT/SGDT/SIDT, LLDT/LTR/SLDT/STR, LAR/LSL/VERR/VERW,
 * ARPL (SDM Vol. 2), with UMIP and the VMX descriptor-table exits (SDM 26.1.3, Tables 28-10/11).
 */
import type { X86Cpu } from "../cpu.js";
import { flagsSync, ZF } from "../flags.js";
import { GP_VECTOR, UD_VECTOR, NP_VECTOR } from "../fault.js";
import { rdL, wrL, sysWr } from "../mmu.js";
import { eaLin, rdE, wrE, rdERmw, wrERmw } from "./operand.js";
import { D1, readDesc, SEG_LDTR, SEG_TR } from "../segment.js";
import { hookBegin, requireCpl0, vmxMemInfo } from "./system.js";
import { EXIT_REASON_GDTR_IDTR, EXIT_REASON_LDTR_TR } from "../../../uapi/vmx.js";

const CR4_UMIP = 1 << 11;

function umip(c: X86Cpu): void {
  if ((c.state.cr4 & CR4_UMIP) && c.pe && c.cpl > 0) c.raise(GP_VECTOR, 0);
}

function dtExit(c: X86Cpu, reason: number, identity: number, regForm: boolean): void {
  const v = c.vmx;
  if (v === null) return;
  let info = (identity << 28) | ((c.osz === 1 ? 0 : 1) << 11);
  let qual = 0;
  if (regForm) info |= (c.rm << 3) | (1 << 10);
  else { info |= vmxMemInfo(c); qual = c.disp; }
  const n = hookBegin(c);
  v.descriptorTable(reason, c.ilen, info, qual);
  c.state.rip = n;
}

/** 0F 01 /0 SGDT, /1 SIDT, /2 LGDT, /3 LIDT (memory forms) */
export function gdtIdt(c: X86Cpu): void {
  const op = c.reg & 7;
  if (c.mod === 3) c.raise(UD_VECTOR, -1);
  if (op < 2) umip(c); else requireCpl0(c);
  dtExit(c, EXIT_REASON_GDTR_IDTR, op, false);
  const st = c.state;
  const n = c.m64 ? 8 : 4;
  const la = eaLin(c, 2 + n, op < 2 ? 2 : 1);
  const la2 = c.m64 ? la + 2 : (la + 2) >>> 0;
  if (op < 2) {
    const base = op === 0 ? st.gdtrBase : st.idtrBase, limit = op === 0 ? st.gdtrLimit : st.idtrLimit;
    wrL(c, 1, la, limit, 0);
    if (c.m64) wrL(c, 3, la2, base | 0, Math.floor(base / 4294967296) | 0);
    else wrL(c, 2, la2, base | 0, 0);
    return;
  }
  const limit = rdL(c, 1, la) & 0xffff;
  let base: number;
  if (c.m64) {
    const lo = rdL(c, 3, la2), hi = c.rhi;
    base = hi * 4294967296 + (lo >>> 0);
    if (base < -c.canon || base >= c.canon) c.raise(GP_VECTOR, 0);
  } else {
    base = rdL(c, 2, la2) >>> 0;
    if (c.osz === 1) base &= 0xffffff;
  }
  if (op === 2) { st.gdtrBase = base; st.gdtrLimit = limit; } else { st.idtrBase = base; st.idtrLimit = limit; }
}

/** 0F 00 /0 SLDT, /1 STR, /2 LLDT, /3 LTR, /4 VERR, /5 VERW */
export function grp6(c: X86Cpu): void {
  const op = c.reg & 7;
  if (!c.pe || c.v86) c.raise(UD_VECTOR, -1);
  const st = c.state;
  switch (op) {
    case 0: case 1: {
      umip(c);
      dtExit(c, EXIT_REASON_LDTR_TR, op, c.mod === 3);
      const sel = st.segSel[op === 0 ? SEG_LDTR : SEG_TR];
      if (c.mod === 3) c.setReg(c.osz, c.rm, sel, 0); else wrE(c, 1, sel, 0);
      return;
    }
    case 2: case 3: {
      requireCpl0(c);
      dtExit(c, EXIT_REASON_LDTR_TR, op, c.mod === 3);
      const sel = rdE(c, 1) & 0xffff;
      if (op === 2) lldt(c, sel); else ltr(c, sel);
      return;
    }
    case 4: case 5: verrw(c, op === 5); return;
    default: c.unimplemented(0x10000 | op);
  }
}

function lldt(c: X86Cpu, sel: number): void {
  const st = c.state;
  if ((sel & ~3) === 0) { st.segSel[SEG_LDTR] = sel; st.segAr[SEG_LDTR] = 1 << 16; st.segBase[SEG_LDTR] = 0; st.segLimit[SEG_LDTR] = 0; return; }
  if (sel & 4) c.raise(GP_VECTOR, sel & 0xfffc);
  const wide = (st.efer & (1 << 10)) !== 0;
  if (!readDesc(c, sel, D1, wide)) c.raise(GP_VECTOR, sel & 0xfffc);
  if (D1.s || D1.type !== 2) c.raise(GP_VECTOR, sel & 0xfffc);
  if (!D1.present) c.raise(NP_VECTOR, sel & 0xfffc);
  st.segSel[SEG_LDTR] = sel;
  st.segBase[SEG_LDTR] = wide ? D1.hi2 * 4294967296 + D1.base : D1.base;
  st.segLimit[SEG_LDTR] = D1.limit;
  st.segAr[SEG_LDTR] = D1.ar;
}

function ltr(c: X86Cpu, sel: number): void {
  const st = c.state;
  if ((sel & ~3) === 0 || (sel & 4)) c.raise(GP_VECTOR, sel & 0xfffc);
  const wide = (st.efer & (1 << 10)) !== 0;
  if (!readDesc(c, sel, D1, wide)) c.raise(GP_VECTOR, sel & 0xfffc);
  const t = D1.type;
  if (D1.s || (wide ? t !== 9 : t !== 1 && t !== 9)) c.raise(GP_VECTOR, sel & 0xfffc);
  if (!D1.present) c.raise(NP_VECTOR, sel & 0xfffc);
  // Mark the TSS busy in the GDT (SDM LTR).
  const la = st.gdtrBase + (sel & ~7) + 5;
  sysWr(c, c.m64 ? la : la >>> 0, 1, ((D1.hi >>> 8) & 0xff) | 2, 0);
  st.segSel[SEG_TR] = sel;
  st.segBase[SEG_TR] = wide ? D1.hi2 * 4294967296 + D1.base : D1.base;
  st.segLimit[SEG_TR] = D1.limit;
  st.segAr[SEG_TR] = D1.ar | 2;
}

/** Whether the descriptor for `sel` is visible at CPL/RPL (the LAR/LSL/VERR/VERW rule). */
function visible(c: X86Cpu, sel: number): boolean {
  if ((sel & ~3) === 0) return false;
  if (!readDesc(c, sel, D1, false)) return false;
  const conformingCode = D1.isCode() && (D1.type & 4) !== 0;
  if (!conformingCode && (D1.dpl < c.cpl || D1.dpl < (sel & 3))) return false;
  return true;
}

function setZf(c: X86Cpu, z: boolean): void {
  flagsSync(c);
  if (z) c.fl |= ZF; else c.fl &= ~ZF;
}

function verrw(c: X86Cpu, write: boolean): void {
  const sel = rdE(c, 1) & 0xffff;
  let ok = visible(c, sel) && D1.s;
  if (ok) ok = write ? D1.isData() && (D1.type & 2) !== 0 : D1.isData() || (D1.type & 2) !== 0;
  setZf(c, ok);
}

/** 0F 02: LAR; 0F 03: LSL */
export function larLsl(c: X86Cpu): void {
  if (!c.pe || c.v86) c.raise(UD_VECTOR, -1);
  const sel = rdE(c, 1) & 0xffff;
  const lsl = c.opb === 3;
  let ok = visible(c, sel);
  if (ok && !D1.s) {
    const t = D1.type;
    const lma = (c.state.efer & (1 << 10)) !== 0;
    const okTypes = lsl ? (lma ? [2, 9, 11] : [1, 2, 3, 9, 11]) : (lma ? [2, 9, 11, 12] : [1, 2, 3, 4, 5, 9, 11, 12]);
    ok = okTypes.includes(t);
  }
  setZf(c, ok);
  if (!ok) return;
  if (lsl) c.setReg(c.osz, c.reg, D1.limit | 0, 0);
  else c.setReg(c.osz, c.reg, D1.hi & 0x00f0ff00, 0);
}

/** 63 outside 64-bit mode: ARPL Ew, Gw */
export function arpl(c: X86Cpu): void {
  if (!c.pe || c.v86) c.raise(UD_VECTOR, -1);
  const d = rdERmw(c, 1);
  const s = c.getReg(1, c.reg);
  if ((d & 3) < (s & 3)) { wrERmw(c, 1, (d & ~3) | (s & 3), 0); setZf(c, true); }
  else { wrERmw(c, 1, d, 0); setZf(c, false); }
}
