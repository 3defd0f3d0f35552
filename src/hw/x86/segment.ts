/**
 * Segmentation (SDM Vol. 3A ch. 3, 5): descriptor-table reads, segment-register loads with
 * their privilege and type checks, and the far transfers JMP/CALL/RET far including call gates
 * (SDM 5.8) with the inner-stack switch through the TSS.
 */
import type { X86Cpu } from "./cpu.js";
import { AR_UNUSABLE } from "./state.js";
import { sysRd, sysWr } from "./mmu.js";
import { GP_VECTOR, NP_VECTOR, SS_VECTOR, TS_VECTOR } from "./fault.js";

export const SEG_ES = 0, SEG_CS = 1, SEG_SS = 2, SEG_DS = 3, SEG_FS = 4, SEG_GS = 5, SEG_LDTR = 6, SEG_TR = 7;

/** Descriptor as read from a table: low and high dwords (and for 16-byte system descriptors, the third dword). */
export class Desc {
  lo = 0;
  hi = 0;
  hi2 = 0;
  get ar(): number { return (this.hi >>> 8) & 0xf0ff; }
  get type(): number { return (this.hi >>> 8) & 0xf; }
  get s(): boolean { return (this.hi & 0x1000) !== 0; }
  get dpl(): number { return (this.hi >>> 13) & 3; }
  get present(): boolean { return (this.hi & 0x8000) !== 0; }
  get base(): number { return ((this.lo >>> 16) | ((this.hi & 0xff) << 16) | (this.hi & 0xff000000)) >>> 0; }
  get limit(): number {
    const l = (this.lo & 0xffff) | (this.hi & 0xf0000);
    return this.hi & 0x800000 ? ((l << 12) | 0xfff) >>> 0 : l;
  }
  isCode(): boolean { return (this.hi & 0x1800) === 0x1800; }
  isData(): boolean { return (this.hi & 0x1800) === 0x1000; }
}

/** Scratch descriptors (no allocation per load). */
export const D1 = new Desc();
export const D2 = new Desc();

/**
 * Read the descriptor for `sel` into d. Returns false for a selector beyond the table limit
 * (the caller raises its own fault with its own error code). `wide` reads 16 bytes (64-bit system descriptors).
 */
export function readDesc(c: X86Cpu, sel: number, d: Desc, wide: boolean): boolean {
  const st = c.state;
  let base: number, limit: number;
  if (sel & 4) {
    if (st.segAr[SEG_LDTR] & AR_UNUSABLE || (st.segSel[SEG_LDTR] & ~3) === 0) return false;
    base = st.segBase[SEG_LDTR]; limit = st.segLimit[SEG_LDTR];
  } else { base = st.gdtrBase; limit = st.gdtrLimit; }
  const off = sel & ~7;
  if (off + (wide ? 15 : 7) > limit) return false;
  const la = c.m64 ? base + off : (base + off) >>> 0;
  d.lo = sysRd(c, la, 4);
  d.hi = sysRd(c, c.m64 ? la + 4 : (la + 4) >>> 0, 4);
  d.hi2 = wide ? sysRd(c, c.m64 ? la + 8 : (la + 8) >>> 0, 4) : 0;
  return true;
}

/** Set the accessed bit of a segment descriptor in memory (SDM 3.4.5.1) if clear. */
export function setAccessed(c: X86Cpu, sel: number, d: Desc): void {
  if (d.hi & 0x100) return;
  d.hi |= 0x100;
  const st = c.state;
  const base = sel & 4 ? st.segBase[SEG_LDTR] : st.gdtrBase;
  const la = base + (sel & ~7) + 5;
  sysWr(c, c.m64 ? la : la >>> 0, 1, (d.hi >>> 8) & 0xff, 0);
}

/** Write a segment register's hidden part from a descriptor. */
export function loadCache(c: X86Cpu, s: number, sel: number, d: Desc): void {
  const st = c.state;
  st.segSel[s] = sel;
  st.segBase[s] = d.base;
  st.segLimit[s] = d.limit;
  st.segAr[s] = d.ar;
}

/** A null selector in a data segment register: unusable (SDM 3.4.2). */
export function loadNull(c: X86Cpu, s: number, sel: number): void {
  const st = c.state;
  st.segSel[s] = sel;
  st.segBase[s] = 0;
  st.segLimit[s] = 0;
  st.segAr[s] = AR_UNUSABLE;
  c.segCache(s);
}

/**
 * Return to an outer privilege level (IRET, far RET): ES, DS, FS and GS holding a data or
 * non-conforming code segment whose DPL is below the new CPL become null (SDM Vol. 2 IRET
 * "RETURN-TO-OUTER-PRIVILEGE-LEVEL", RET).
 */
export function nullDataSegsForCpl(c: X86Cpu, cpl: number): void {
  const ar = c.state.segAr;
  for (let s = SEG_ES; s <= SEG_GS; s++) {
    if (s === SEG_CS || s === SEG_SS) continue;
    const a = ar[s]!;
    if (!(a & AR_UNUSABLE) && (a & 0x10) && (a & 0x1c) !== 0x1c && ((a >>> 5) & 3) < cpl) loadNull(c, s, 0);
  }
}

/** Real/virtual-8086 segment load: base = selector * 16 (limit and rights kept in real mode: unreal mode works). */
export function loadReal(c: X86Cpu, s: number, sel: number): void {
  const st = c.state;
  st.segSel[s] = sel;
  st.segBase[s] = sel << 4;
  if (c.v86) { st.segLimit[s] = 0xffff; st.segAr[s] = s === SEG_CS ? 0xfb : 0xf3; }
  c.segCache(s);
}

/**
 * MOV/POP/LDS.. to a data segment register or SS (SDM Vol. 2 MOV "Operation"): the protected-mode
 * checks and their #GP/#SS/#NP error codes.
 */
export function loadSeg(c: X86Cpu, s: number, sel: number): void {
  if (!c.pe || c.v86) { loadReal(c, s, sel); if (s === SEG_SS) c.stateChanged(); return; }
  const cpl = c.cpl, rpl = sel & 3;
  if ((sel & ~3) === 0) {
    if (s === SEG_SS) {
      if (!(c.m64 && cpl !== 3 && rpl === cpl)) c.raise(GP_VECTOR, 0);
      loadNull(c, s, sel);
      c.state.segAr[s] |= cpl << 5;
      c.stateChanged();
      return;
    }
    loadNull(c, s, sel);
    return;
  }
  const d = D1;
  if (!readDesc(c, sel, d, false)) c.raise(GP_VECTOR, sel & 0xfffc);
  if (s === SEG_SS) {
    if (rpl !== cpl || d.dpl !== cpl || !d.isData() || !(d.type & 2)) c.raise(GP_VECTOR, sel & 0xfffc);
    if (!d.present) c.raise(SS_VECTOR, sel & 0xfffc);
  } else {
    if (!d.s || (d.isCode() && !(d.type & 2))) c.raise(GP_VECTOR, sel & 0xfffc);
    const conforming = d.isCode() && (d.type & 4) !== 0;
    if (!conforming && d.dpl < Math.max(cpl, rpl)) c.raise(GP_VECTOR, sel & 0xfffc);
    if (!d.present) c.raise(NP_VECTOR, sel & 0xfffc);
  }
  setAccessed(c, sel, d);
  loadCache(c, s, sel, d);
  if (s === SEG_SS) c.stateChanged(); else c.segCache(s);
}

/**
 * Check a code-segment descriptor as the target of a far JMP/CALL/RET/IRET or gate (SDM 5.8.1).
 * Returns normally or raises #GP(sel)/#NP(sel).
 */
export function checkCodeTarget(c: X86Cpu, sel: number, d: Desc, newCpl: number, direct: boolean): void {
  if (!d.isCode()) c.raise(GP_VECTOR, sel & 0xfffc);
  const conforming = (d.type & 4) !== 0;
  if (direct) {
    if (conforming ? d.dpl > c.cpl : (sel & 3) > c.cpl || d.dpl !== c.cpl) c.raise(GP_VECTOR, sel & 0xfffc);
  } else if (d.dpl > newCpl) c.raise(GP_VECTOR, sel & 0xfffc);
  if ((c.state.efer & (1 << 10)) && (d.hi & 0x200000) && (d.hi & 0x400000)) c.raise(GP_VECTOR, sel & 0xfffc);
  if (!d.present) c.raise(NP_VECTOR, sel & 0xfffc);
}

/** Load CS from descriptor d with the given CPL in its RPL and enter the resulting mode. */
export function loadCs(c: X86Cpu, sel: number, d: Desc, cpl: number): void {
  setAccessed(c, sel, d);
  const st = c.state;
  st.segSel[SEG_CS] = (sel & ~3) | cpl;
  st.segBase[SEG_CS] = d.base;
  st.segLimit[SEG_CS] = d.limit;
  st.segAr[SEG_CS] = d.ar;
}

/** Read the inner stack pointer for privilege level `dpl` from the current TSS (SDM 7.2.1, 7.7). */
export function tssStack(c: X86Cpu, dpl: number, out: Float64Array): void {
  const st = c.state;
  const type = st.segAr[SEG_TR] & 0xf;
  const base = st.segBase[SEG_TR];
  if (st.efer & (1 << 10)) {
    const off = 4 + dpl * 8;
    if (off + 7 > st.segLimit[SEG_TR]) c.raise(TS_VECTOR, st.segSel[SEG_TR] & 0xfffc);
    const lo = sysRd(c, base + off, 4), hi = sysRd(c, base + off + 4, 4);
    out[0] = hi * 4294967296 + (lo >>> 0); out[1] = 0;
    return;
  }
  if (type === 3 || type === 1) { // 16-bit TSS
    const off = 2 + dpl * 4;
    if (off + 3 > st.segLimit[SEG_TR]) c.raise(TS_VECTOR, st.segSel[SEG_TR] & 0xfffc);
    out[0] = sysRd(c, (base + off) >>> 0, 2); out[1] = sysRd(c, (base + off + 2) >>> 0, 2);
    return;
  }
  const off = 4 + dpl * 8;
  if (off + 5 > st.segLimit[SEG_TR]) c.raise(TS_VECTOR, st.segSel[SEG_TR] & 0xfffc);
  out[0] = sysRd(c, (base + off) >>> 0, 4) >>> 0; out[1] = sysRd(c, (base + off + 4) >>> 0, 2);
}

/** Check and read a new SS for an inner-privilege transfer (SDM 5.8.5): #TS(sel) on a bad one, #SS(sel) if not present. */
export function checkInnerSs(c: X86Cpu, sel: number, dpl: number, d: Desc): void {
  if ((sel & ~3) === 0) c.raise(TS_VECTOR, 0);
  if (!readDesc(c, sel, d, false)) c.raise(TS_VECTOR, sel & 0xfffc);
  if ((sel & 3) !== dpl || d.dpl !== dpl || !d.isData() || !(d.type & 2)) c.raise(TS_VECTOR, sel & 0xfffc);
  if (!d.present) c.raise(SS_VECTOR, sel & 0xfffc);
}

/** Linear address of offset `off` in a segment described by d (for pushes on a stack not yet loaded). */
export function descLin(c: X86Cpu, d: Desc, off: number, size: number, errSel: number): number {
  const lim = d.limit;
  const expandDown = d.isData() && (d.type & 4) !== 0;
  const ok = expandDown ? off > lim && off + size - 1 <= (d.hi & 0x400000 ? 0xffffffff : 0xffff) : off + size - 1 <= lim;
  if (!ok) c.raise(SS_VECTOR, errSel);
  return (d.base + off) >>> 0;
}

