/**
 * Linear and segmented memory access with a software TLB (SDM Vol. 3A 3.4 segmentation,
 * 4.10 TLBs).
 *
 * The TLB maps a 4 KiB linear page to a host frame. It is direct mapped (TLB_SIZE entries indexed
 * by the low bits of the virtual page number) and keeps separate tags for read, write and fetch,
 * so a hit needs no permission check: a tag is only installed for an access kind the page walk
 * allowed (a write tag only once the dirty bit is set). There are two sets, one used at CPL 3 and
 * one at CPL 0-2, so U/S checks are also done at fill time. Supervisor accesses to user pages
 * under SMAP, and all accesses while a data breakpoint is armed, are never cached.
 *
 * Hot functions (rd8..wr64) are a tag compare and a typed-array index; everything else is in the
 * *Slow functions.
 */
import type { X86Cpu } from "./cpu.js";
import { FRAMES_PER_CHUNK_SHIFT, FRAMES_PER_CHUNK } from "../physmem.js";
import { walk, WALK_R, WALK_W, WALK_X } from "./paging.js";
import { GP_VECTOR, SS_VECTOR, AC_VECTOR } from "./fault.js";

/**
 * 16384 entries per set: the reach (64 MiB) covers a 32 MiB working set of 4 KiB pages with
 * room for conflicts; at 4096 a pointer chase over 8192 pages missed on every load. Flushes stay
 * cheap because each set lists the slots it filled since the last full flush.
 */
export const TLB_BITS = 14;
export const TLB_SIZE = 1 << TLB_BITS;
export const TLB_MASK = TLB_SIZE - 1;

const EMPTY8 = new Uint8Array(0);
const EMPTY32 = new Int32Array(0);

export class TlbSet {
  readonly tagR = new Float64Array(TLB_SIZE).fill(NaN);
  readonly tagW = new Float64Array(TLB_SIZE).fill(NaN);
  readonly tagX = new Float64Array(TLB_SIZE).fill(NaN);
  /** Virtual page number the entry maps (NaN if none), whatever tags are valid. */
  readonly vpn = new Float64Array(TLB_SIZE).fill(NaN);
  readonly pfn = new Float64Array(TLB_SIZE);
  readonly off = new Int32Array(TLB_SIZE);
  readonly glob = new Uint8Array(TLB_SIZE);
  readonly mem8: Uint8Array[] = new Array<Uint8Array>(TLB_SIZE).fill(EMPTY8);
  readonly mem32: Int32Array[] = new Array<Int32Array>(TLB_SIZE).fill(EMPTY32);
  /** Slots that may hold an entry (each listed once, `listed` marks them): flushes and write drops visit only these. */
  readonly used = new Int32Array(TLB_SIZE);
  readonly listed = new Uint8Array(TLB_SIZE);
  nUsed = 0;

  /** Slot i is about to hold an entry. */
  note(i: number): void {
    if (this.listed[i]) return;
    this.listed[i] = 1;
    this.used[this.nUsed++] = i;
  }

  private clear(i: number): void {
    this.tagR[i] = NaN; this.tagW[i] = NaN; this.tagX[i] = NaN; this.vpn[i] = NaN;
  }

  flush(nonGlobalOnly: boolean): void {
    const used = this.used, n = this.nUsed;
    if (!nonGlobalOnly) {
      if (n > TLB_SIZE >> 3) {
        this.tagR.fill(NaN); this.tagW.fill(NaN); this.tagX.fill(NaN); this.vpn.fill(NaN); this.listed.fill(0);
      } else {
        for (let k = 0; k < n; k++) { const i = used[k]; this.clear(i); this.listed[i] = 0; }
      }
      this.nUsed = 0;
      return;
    }
    // Keep the global entries listed, drop the rest.
    let m = 0;
    for (let k = 0; k < n; k++) {
      const i = used[k];
      if (this.glob[i] && this.vpn[i] === this.vpn[i]) used[m++] = i;
      else { this.clear(i); this.listed[i] = 0; }
    }
    this.nUsed = m;
  }

  flushPage(vpn: number): void {
    const i = vpn & TLB_MASK;
    if (this.vpn[i] === vpn) this.clear(i);
  }

  /** Drop write permission of every entry mapping host frame `pfn` (it now holds cached code). */
  dropWrites(pfn: number): void {
    const p = this.pfn, w = this.tagW, used = this.used, n = this.nUsed;
    for (let k = 0; k < n; k++) { const i = used[k]; if (p[i] === pfn) w[i] = NaN; }
  }
}

export function tlbFlushAllSets(c: X86Cpu): void { c.tlbUser.flush(false); c.tlbSup.flush(false); }
export function tlbFlushNonGlobalSets(c: X86Cpu): void { c.tlbUser.flush(true); c.tlbSup.flush(true); }
export function tlbFlushPageSets(c: X86Cpu, la: number): void {
  const vpn = Math.floor(la / 4096);
  c.tlbUser.flushPage(vpn); c.tlbSup.flushPage(vpn);
}

/** The frame `pfn` now has cached decoded instructions: later writes to it must take the slow path. */
export function markCode(c: X86Cpu, pfn: number): void {
  if (c.hasCode[pfn]) return;
  c.hasCode[pfn] = 1;
  c.physmem.markCode(pfn, c);
}

/**
 * Translate `la` for an access of kind `acc` at the current privilege and install the TLB entry
 * when allowed. Returns the host-physical address, or -1 for an address with no memory behind
 * it (reads float to all ones, writes are dropped).
 */
export function xlateFill(c: X86Cpu, la: number, acc: number): number {
  const user = c.cpl === 3;
  const hpa = walk(c, la, acc, user, false);
  const pfn = Math.floor(hpa / 4096);
  const pm = c.physmem;
  if (pfn >= pm.nrFrames) return -1;
  const ci = pfn >>> FRAMES_PER_CHUNK_SHIFT;
  const m8 = pm.chunks8[ci];
  if (m8 === undefined) return -1;
  if (acc === WALK_W && pm.codeFrames[pfn]) pm.codeWritten(pfn);
  let perm = c.walkPerm;
  if (c.dbgData || perm === 0) return hpa;
  if (c.acCheck) perm &= WALK_X;
  if (pm.codeFrames[pfn]) perm &= ~WALK_W;
  const set = user ? c.tlbUser : c.tlbSup;
  const vpn = Math.floor(la / 4096);
  const i = vpn & TLB_MASK;
  if (set.vpn[i] !== vpn || set.pfn[i] !== pfn) {
    set.note(i);
    set.tagR[i] = NaN; set.tagW[i] = NaN; set.tagX[i] = NaN;
    set.vpn[i] = vpn; set.pfn[i] = pfn;
    set.mem8[i] = m8; set.mem32[i] = pm.chunks32[ci]!;
    set.off[i] = (pfn & (FRAMES_PER_CHUNK - 1)) << 12;
  }
  set.glob[i] = c.walkGlobal;
  if (perm & WALK_R) set.tagR[i] = vpn;
  if (perm & WALK_W) set.tagW[i] = vpn;
  if (perm & WALK_X) set.tagX[i] = vpn;
  return hpa;
}

/** Instruction-fetch translation for the run loop (TLB miss path). */
export function fetchTranslate(c: X86Cpu, la: number): number {
  return xlateFill(c, la, WALK_X);
}

function xlate(c: X86Cpu, la: number, acc: number): number {
  const vpn = Math.floor(la / 4096);
  const i = vpn & TLB_MASK;
  const tag = acc === WALK_R ? c.tR : acc === WALK_W ? c.tW : c.tX;
  if (tag[i] === vpn) return c.tPfn[i] * 4096 + (la & 4095);
  return xlateFill(c, la, acc);
}

function physRd8(c: X86Cpu, hpa: number): number {
  if (hpa < 0) return 0xff;
  const pfn = Math.floor(hpa / 4096);
  return c.physmem.chunks8[pfn >>> FRAMES_PER_CHUNK_SHIFT]![((pfn & (FRAMES_PER_CHUNK - 1)) << 12) + (hpa & 4095)];
}

function physWr8(c: X86Cpu, hpa: number, v: number): void {
  if (hpa < 0) return;
  const pfn = Math.floor(hpa / 4096);
  if (c.physmem.codeFrames[pfn]) c.physmem.codeWritten(pfn);
  c.physmem.chunks8[pfn >>> FRAMES_PER_CHUNK_SHIFT]![((pfn & (FRAMES_PER_CHUNK - 1)) << 12) + (hpa & 4095)] = v;
}

function dataBreak(c: X86Cpu, la: number, size: number, kind: number): void {
  c.pendingDr6 |= c.matchBreakpoints(la, size, kind);
}

/** Read of 1-8 bytes that missed the TLB or crosses a page. Returns the low 32 bits; high in c.rhi. */
export function rdSlow(c: X86Cpu, la: number, size: number, acc: number): number {
  if (c.acCheck && acc !== WALK_X && (la & (size - 1)) !== 0) c.raise(AC_VECTOR, 0);
  if (c.dbgData) dataBreak(c, la, size, 3);
  let hpa = xlate(c, la, acc);
  let lo = 0, hi = 0;
  for (let k = 0; k < size; k++) {
    const a = c.m64 ? la + k : (la + k) >>> 0;
    if (k > 0 && (a & 4095) === 0) hpa = xlate(c, a, acc);
    else if (k > 0 && hpa >= 0) hpa++;
    const b = physRd8(c, hpa);
    if (k < 4) lo |= b << (k * 8); else hi |= b << ((k - 4) * 8);
  }
  c.rhi = hi;
  return lo;
}

/** Write of 1-8 bytes that missed the TLB or crosses a page: both pages are checked before any byte is written. */
export function wrSlow(c: X86Cpu, la: number, size: number, lo: number, hi: number): void {
  if (c.acCheck && (la & (size - 1)) !== 0) c.raise(AC_VECTOR, 0);
  if (c.dbgData) dataBreak(c, la, size, 1);
  const h1 = xlate(c, la, WALK_W);
  const la2 = c.m64 ? la + size - 1 : (la + size - 1) >>> 0;
  const split = (la & ~4095) !== (la2 & ~4095) || Math.floor(la / 4096) !== Math.floor(la2 / 4096);
  const h2 = split ? xlate(c, la2 - (la2 & 4095), WALK_W) : -1;
  let hpa = h1;
  for (let k = 0; k < size; k++) {
    const a = c.m64 ? la + k : (la + k) >>> 0;
    if (k > 0) hpa = (a & 4095) === 0 ? h2 : hpa >= 0 ? hpa + 1 : -1;
    physWr8(c, hpa, k < 4 ? lo >>> (k * 8) : hi >>> ((k - 4) * 8));
  }
}

// ---------------- hot paths ----------------

export function rd8(c: X86Cpu, la: number): number {
  const vpn = Math.floor(la / 4096);
  const i = vpn & TLB_MASK;
  if (c.tR[i] === vpn) return c.tM8[i][c.tOff[i] + (la & 4095)];
  return rdSlow(c, la, 1, WALK_R);
}

export function rd16(c: X86Cpu, la: number): number {
  const vpn = Math.floor(la / 4096);
  const i = vpn & TLB_MASK;
  const o = la & 4095;
  if (c.tR[i] === vpn && o !== 4095) {
    const m = c.tM8[i], p = c.tOff[i] + o;
    return m[p] | (m[p + 1] << 8);
  }
  return rdSlow(c, la, 2, WALK_R);
}

export function rd32(c: X86Cpu, la: number): number {
  const vpn = Math.floor(la / 4096);
  const i = vpn & TLB_MASK;
  const o = la & 4095;
  if (c.tR[i] === vpn) {
    if ((o & 3) === 0) return c.tM32[i][(c.tOff[i] + o) >> 2];
    if (o <= 4092) { const m = c.tM8[i], p = c.tOff[i] + o; return m[p] | (m[p + 1] << 8) | (m[p + 2] << 16) | (m[p + 3] << 24); }
  }
  return rdSlow(c, la, 4, WALK_R);
}

/** 64-bit read: low half returned, high half in c.rhi. */
export function rd64(c: X86Cpu, la: number): number {
  const vpn = Math.floor(la / 4096);
  const i = vpn & TLB_MASK;
  const o = la & 4095;
  if (c.tR[i] === vpn && (o & 7) === 0) {
    const m = c.tM32[i], p = (c.tOff[i] + o) >> 2;
    c.rhi = m[p + 1];
    return m[p];
  }
  return rdSlow(c, la, 8, WALK_R);
}

export function wr8(c: X86Cpu, la: number, v: number): void {
  const vpn = Math.floor(la / 4096);
  const i = vpn & TLB_MASK;
  if (c.tW[i] === vpn) { c.tM8[i][c.tOff[i] + (la & 4095)] = v; return; }
  wrSlow(c, la, 1, v, 0);
}

export function wr16(c: X86Cpu, la: number, v: number): void {
  const vpn = Math.floor(la / 4096);
  const i = vpn & TLB_MASK;
  const o = la & 4095;
  if (c.tW[i] === vpn && o !== 4095) {
    const m = c.tM8[i], p = c.tOff[i] + o;
    m[p] = v; m[p + 1] = v >> 8;
    return;
  }
  wrSlow(c, la, 2, v, 0);
}

export function wr32(c: X86Cpu, la: number, v: number): void {
  const vpn = Math.floor(la / 4096);
  const i = vpn & TLB_MASK;
  const o = la & 4095;
  if (c.tW[i] === vpn) {
    if ((o & 3) === 0) { c.tM32[i][(c.tOff[i] + o) >> 2] = v; return; }
    if (o <= 4092) { const m = c.tM8[i], p = c.tOff[i] + o; m[p] = v; m[p + 1] = v >> 8; m[p + 2] = v >> 16; m[p + 3] = v >> 24; return; }
  }
  wrSlow(c, la, 4, v, 0);
}

export function wr64(c: X86Cpu, la: number, lo: number, hi: number): void {
  const vpn = Math.floor(la / 4096);
  const i = vpn & TLB_MASK;
  const o = la & 4095;
  if (c.tW[i] === vpn && (o & 7) === 0) {
    const m = c.tM32[i], p = (c.tOff[i] + o) >> 2;
    m[p] = lo; m[p + 1] = hi;
    return;
  }
  wrSlow(c, la, 8, lo, hi);
}

/** Read sz (0..3 = 1/2/4/8 bytes) at linear la; 64-bit high half in c.rhi. */
export function rdL(c: X86Cpu, sz: number, la: number): number {
  switch (sz) {
    case 0: return rd8(c, la);
    case 1: return rd16(c, la);
    case 2: return rd32(c, la);
    default: return rd64(c, la);
  }
}

/** Read for a read-modify-write: the access is checked (and the dirty bit set) as a write. */
export function rdLW(c: X86Cpu, sz: number, la: number): number {
  const vpn = Math.floor(la / 4096);
  const i = vpn & TLB_MASK;
  if (c.tW[i] !== vpn) { const n = 1 << sz; return rdSlow(c, la, n, WALK_W); }
  return rdL(c, sz, la);
}

export function wrL(c: X86Cpu, sz: number, la: number, lo: number, hi: number): void {
  switch (sz) {
    case 0: wr8(c, la, lo); return;
    case 1: wr16(c, la, lo); return;
    case 2: wr32(c, la, lo); return;
    default: wr64(c, la, lo, hi); return;
  }
}

// ---------------- segmentation: offset -> linear (SDM 3.4, 5.3) ----------------

/** Fault for an offset outside segment `s` or a forbidden access: #SS(0) for SS, else #GP(0). */
export function segFault(c: X86Cpu, s: number): never {
  return c.raise(s === 2 ? SS_VECTOR : GP_VECTOR, 0);
}

/** A 64-bit-mode address that is not canonical (after folding it modulo 2^64). */
function canonFix(c: X86Cpu, s: number, la: number): number {
  const TWO64 = 18446744073709551616;
  if (la >= 9223372036854775808) la -= TWO64;
  else if (la < -9223372036854775808) la += TWO64;
  if (la < -c.canon || la >= c.canon) segFault(c, s);
  return la;
}

/** Linear address of `size` bytes at offset `off` in segment `s`, for acc 1 = read, 2 = write. */
export function linAddr(c: X86Cpu, s: number, off: number, size: number, acc: number): number {
  if (c.m64) {
    const la = off + c.effBase[s];
    if (la < -c.canon || la >= c.canon) return canonFix(c, s, la);
    return la;
  }
  if (off < c.segLo[s] || off + size - 1 > c.segHi[s] || (c.segRW[s] & acc) === 0) segFault(c, s);
  return (off + c.effBase[s]) >>> 0;
}

/** Canonical check for a 64-bit value used as RIP or a linear address (#GP(0) if not). */
export function isCanonical(c: X86Cpu, la: number): boolean {
  return la >= -c.canon && la < c.canon;
}

export function rdS(c: X86Cpu, sz: number, s: number, off: number): number {
  return rdL(c, sz, linAddr(c, s, off, 1 << sz, 1));
}

export function wrS(c: X86Cpu, sz: number, s: number, off: number, lo: number, hi: number): void {
  wrL(c, sz, linAddr(c, s, off, 1 << sz, 2), lo, hi);
}

/** Read of a read-modify-write operand at offset `off` of segment `s`: checked as a write first (operand.ts rdERmw). */
export function rdSW(c: X86Cpu, sz: number, s: number, off: number): number {
  return rdLW(c, sz, linAddr(c, s, off, 1 << sz, 2));
}

// ---------------- system accesses (descriptor tables, TSS, event delivery) ----------------

/**
 * Implicit supervisor-mode access (GDT/LDT/IDT/TSS, SDM 4.6.1): always privileged whatever the
 * CPL, never cached in the TLB.
 */
export function sysRd(c: X86Cpu, la: number, size: number): number {
  const save = c.cpl;
  let lo = 0, hi = 0;
  try {
    c.cpl = 0;
    for (let k = 0; k < size; k++) {
      const a = c.m64 ? la + k : (la + k) >>> 0;
      const hpa = walk(c, a, WALK_R, false, true);
      const b = physRd8(c, hpa < 0 || Math.floor(hpa / 4096) >= c.physmem.nrFrames || c.physmem.chunks8[Math.floor(hpa / 4096) >>> FRAMES_PER_CHUNK_SHIFT] === undefined ? -1 : hpa);
      if (k < 4) lo |= b << (k * 8); else hi |= b << ((k - 4) * 8);
    }
  } finally { c.cpl = save; }
  c.rhi = hi;
  return lo;
}

export function sysWr(c: X86Cpu, la: number, size: number, lo: number, hi: number): void {
  const save = c.cpl;
  try {
    c.cpl = 0;
    const hp: number[] = [];
    for (let k = 0; k < size; k++) {
      const a = c.m64 ? la + k : (la + k) >>> 0;
      const hpa = walk(c, a, WALK_W, false, true);
      hp.push(Math.floor(hpa / 4096) >= c.physmem.nrFrames || c.physmem.chunks8[Math.floor(hpa / 4096) >>> FRAMES_PER_CHUNK_SHIFT] === undefined ? -1 : hpa);
    }
    for (let k = 0; k < size; k++) physWr8(c, hp[k], k < 4 ? lo >>> (k * 8) : hi >>> ((k - 4) * 8));
  } finally { c.cpl = save; }
}

/** Write as a given privilege (stack pushes during event delivery before CPL changes). */
export function privWr(c: X86Cpu, la: number, size: number, lo: number, hi: number, cpl: number): void {
  const save = c.cpl;
  if (save === cpl) { wrL(c, size === 8 ? 3 : size === 4 ? 2 : 1, la, lo, hi); return; }
  try { c.setCpl(cpl); wrL(c, size === 8 ? 3 : size === 4 ? 2 : 1, la, lo, hi); } finally { c.setCpl(save); }
}

export function privRd(c: X86Cpu, la: number, size: number, cpl: number): number {
  const save = c.cpl;
  const sz = size === 8 ? 3 : size === 4 ? 2 : 1;
  if (save === cpl) return rdL(c, sz, la);
  try { c.setCpl(cpl); return rdL(c, sz, la); } finally { c.setCpl(save); }
}

