/**
 * MMX/SSE data movement: MOVUPS … MOVDQU, the scalar and half-register moves, MOVD/MOVQ between
 * general, MMX and XMM registers, non-temporal stores (executed as ordinary stores: this core has
 * no caches to bypass), MASKMOVQ/MASKMOVDQU, PEXTRx/PINSRx, PCMPxSTRx and EMMS (SDM Vol. 2
 * instruction pages; alignment rules Vol. 1 11.4.1 and 12.x).
 */
import type { X86Cpu } from "../cpu.js";
import type { Handler } from "../decode.js";
import * as _mmu from "../mmu.js";
import * as _paging from "../paging.js";
import * as _operand from "./operand.js";
import * as _simd_int from "../fp/simd_int.js";
import * as _flags from "../flags.js";
import * as _sse from "./sse.js";
// Module-local copies of the imported bindings: a loader that compiles imports to property
// reads (CommonJS interop) would otherwise pay a getter call per use on the hot paths.
const { rd8, wr8, wr16, wr32, linAddr, wrL, xlateFill } = _mmu;
const { WALK_W } = _paging;
const { rdE, wrE } = _operand;
const { pcmpstr, strResult, pinsr, pextr } = _simd_int;
const { setArith } = _flags;
const { XS, XS2, simd, sseCheck, mmxCheck, srcX, storeMem, loadMem, memLa, pfx, regX, invalid, mmToSlot, mmWrite, mmSrc, mmxEnter } = _sse;

function copyX(x: Int32Array, d: number, s: number): void {
  const a = d * 4, b = s * 4;
  x[a] = x[b]!; x[a + 1] = x[b + 1]!; x[a + 2] = x[b + 2]!; x[a + 3] = x[b + 3]!;
}

/** ModRM r/m register of an XMM operand. */
function rmX(c: X86Cpu): number {
  return (c.w1 >>> 6) & 15;
}

const isReg = (c: X86Cpu): boolean => (c.w1 & 3) === 3;

/** 0F 10: MOVUPS/MOVUPD (unaligned load), MOVSS (F3), MOVSD (F2): memory forms zero the upper lanes. */
export function mov10(c: X86Cpu): void {
  const p = pfx(c);
  sseCheck(c);
  const d = regX(c), x = c.state.xmm;
  if (p <= 1) { copyX(x, d, srcX(c, 16, true)); return; }
  const n = p === 2 ? 1 : 2;
  if (isReg(c)) {
    const s = rmX(c);
    for (let i = 0; i < n; i++) x[d * 4 + i] = x[s * 4 + i]!;
    return;
  }
  loadMem(c, XS, n * 4, false);
  for (let i = 0; i < 4; i++) x[d * 4 + i] = i < n ? x[XS * 4 + i]! : 0;
}

/** 0F 11: the store direction of 0F 10. */
export function mov11(c: X86Cpu): void {
  const p = pfx(c);
  sseCheck(c);
  const s = regX(c), x = c.state.xmm;
  if (isReg(c)) {
    const d = rmX(c), n = p <= 1 ? 4 : p === 2 ? 1 : 2;
    for (let i = 0; i < n; i++) x[d * 4 + i] = x[s * 4 + i]!;
    return;
  }
  storeMem(c, s, p <= 1 ? 16 : p === 2 ? 4 : 8, false);
}

/** 0F 28 MOVAPS/MOVAPD (load), 0F 6F with 66/F3 MOVDQA/MOVDQU, 66 0F 38 2A MOVNTDQA, F2 0F F0 LDDQU. */
export function movLoad128(aligned: boolean): (c: X86Cpu) => void {
  return (c: X86Cpu): void => {
    sseCheck(c);
    copyX(c.state.xmm, regX(c), srcX(c, 16, !aligned));
  };
}

/** 0F 29 MOVAPS/MOVAPD (store), 0F 7F MOVDQA/MOVDQU, 0F 2B MOVNTPS/PD, 66 0F E7 MOVNTDQ. */
export function movStore128(c: X86Cpu, aligned: boolean): void {
  sseCheck(c);
  if (isReg(c)) { copyX(c.state.xmm, rmX(c), regX(c)); return; }
  storeMem(c, regX(c), 16, aligned);
}

/** 0F 28 / 0F 29 (none or 66). */
export function mov28(c: X86Cpu): void {
  if (pfx(c) > 1) invalid(c);
  sseCheck(c);
  copyX(c.state.xmm, regX(c), srcX(c, 16));
}
export function mov29(c: X86Cpu): void {
  if (pfx(c) > 1) invalid(c);
  movStore128(c, true);
}

/** 0F 2B MOVNTPS/MOVNTPD: memory destination only. */
export function movnt2b(c: X86Cpu): void {
  if (pfx(c) > 1 || isReg(c)) invalid(c);
  movStore128(c, true);
}

/** 0F 12/13/16/17: the half-register moves (see the SDM pages for MOVLPS, MOVHLPS, MOVSLDUP, MOVDDUP, MOVHPS, MOVLHPS, MOVSHDUP). */
export function mov12(c: X86Cpu): void {
  const p = pfx(c);
  sseCheck(c);
  const d = regX(c), x = c.state.xmm;
  if (p === 2) {
    const s = srcX(c, 16);
    const a = x[s * 4]!, b = x[s * 4 + 2]!;
    x[d * 4] = a; x[d * 4 + 1] = a; x[d * 4 + 2] = b; x[d * 4 + 3] = b;
    return;
  }
  if (p === 3) {
    const s = srcX(c, 8);
    const lo = x[s * 4]!, hi = x[s * 4 + 1]!;
    x[d * 4] = lo; x[d * 4 + 1] = hi; x[d * 4 + 2] = lo; x[d * 4 + 3] = hi;
    return;
  }
  if (isReg(c)) {
    if (p === 1) invalid(c);
    const s = rmX(c);
    const lo = x[s * 4 + 2]!, hi = x[s * 4 + 3]!;
    x[d * 4] = lo; x[d * 4 + 1] = hi;
    return;
  }
  loadMem(c, XS, 8, false);
  x[d * 4] = x[XS * 4]!; x[d * 4 + 1] = x[XS * 4 + 1]!;
}

export function mov16(c: X86Cpu): void {
  const p = pfx(c);
  sseCheck(c);
  const d = regX(c), x = c.state.xmm;
  if (p === 2) {
    const s = srcX(c, 16);
    const a = x[s * 4 + 1]!, b = x[s * 4 + 3]!;
    x[d * 4] = a; x[d * 4 + 1] = a; x[d * 4 + 2] = b; x[d * 4 + 3] = b;
    return;
  }
  if (p === 3) invalid(c);
  if (isReg(c)) {
    if (p === 1) invalid(c);
    const s = rmX(c);
    x[d * 4 + 2] = x[s * 4]!; x[d * 4 + 3] = x[s * 4 + 1]!;
    return;
  }
  loadMem(c, XS, 8, false);
  x[d * 4 + 2] = x[XS * 4]!; x[d * 4 + 3] = x[XS * 4 + 1]!;
}

/** 0F 13 (low quadword) / 0F 17 (high quadword) stores, memory only, none or 66. */
export function movHalfStore(high: boolean): Handler {
  return (c: X86Cpu): void => {
    if (pfx(c) > 1 || isReg(c)) invalid(c);
    sseCheck(c);
    const x = c.state.xmm, s = regX(c);
    if (!high) { storeMem(c, s, 8, false); return; }
    x[XS * 4] = x[s * 4 + 2]!; x[XS * 4 + 1] = x[s * 4 + 3]!;
    storeMem(c, XS, 8, false);
  };
}

/** 0F 6E: MOVD/MOVQ mm, r/m32/64 (none) and xmm, r/m32/64 (66; upper lanes zeroed). */
export function movdTo(c: X86Cpu): void {
  const p = pfx(c);
  if (p > 1) invalid(c);
  const w = c.osz === 3;
  if (p === 1) sseCheck(c); else mmxCheck(c);
  const lo = rdE(c, w ? 3 : 2), hi = w ? c.rhi : 0;
  if (p === 0) { mmWrite(c, (c.w1 >>> 2) & 7, lo, hi); return; }
  const x = c.state.xmm, d = regX(c) * 4;
  x[d] = lo; x[d + 1] = hi; x[d + 2] = 0; x[d + 3] = 0;
}

/** 0F 7E: MOVD/MOVQ r/m32/64, mm (none) or xmm (66); F3: MOVQ xmm, xmm/m64. */
export function movdFrom(c: X86Cpu): void {
  const p = pfx(c), x = c.state.xmm;
  if (p === 2) {
    sseCheck(c);
    const s = srcX(c, 8), d = regX(c) * 4;
    x[d] = x[s * 4]!; x[d + 1] = x[s * 4 + 1]!; x[d + 2] = 0; x[d + 3] = 0;
    return;
  }
  if (p === 3) invalid(c);
  const w = c.osz === 3;
  let lo: number, hi: number;
  if (p === 1) { sseCheck(c); const s = regX(c) * 4; lo = x[s]!; hi = x[s + 1]!; }
  else {
    mmxCheck(c);
    const r = c.state.fpu.regs, m = ((c.w1 >>> 2) & 7) * 3;
    lo = r[m]!; hi = r[m + 1]!;
  }
  wrE(c, w ? 3 : 2, lo, w ? hi : 0);
  if (p === 0) mmxEnter(c);
}

/** 0F 6F: MOVQ mm, mm/m64 (none), MOVDQA (66), MOVDQU (F3). */
export function mov6f(c: X86Cpu): void {
  const p = pfx(c);
  if (p === 3) invalid(c);
  if (p === 0) {
    mmxCheck(c);
    mmSrc(c);
    const x = c.state.xmm;
    mmWrite(c, (c.w1 >>> 2) & 7, x[XS2 * 4]!, x[XS2 * 4 + 1]!);
    return;
  }
  sseCheck(c);
  copyX(c.state.xmm, regX(c), srcX(c, 16, p === 2));
}

/** 0F 7F: MOVQ mm/m64, mm (none), MOVDQA (66), MOVDQU (F3) stores. */
export function mov7f(c: X86Cpu): void {
  const p = pfx(c);
  if (p === 3) invalid(c);
  if (p !== 0) { movStore128(c, p === 1); return; }
  mmxStore(c);
}

/** MOVQ mm/m64, mm and MOVNTQ m64, mm. */
function mmxStore(c: X86Cpu): void {
  mmxCheck(c);
  const r = c.state.fpu.regs, m = ((c.w1 >>> 2) & 7) * 3;
  const lo = r[m]!, hi = r[m + 1]!;
  if (isReg(c)) { mmWrite(c, (c.w1 >>> 6) & 7, lo, hi); return; }
  wrL(c, 3, memLa(c, 8, 2, false), lo, hi);
  mmxEnter(c);
}

/** 0F E7: MOVNTQ m64, mm (none), MOVNTDQ m128, xmm (66); memory only. */
export function movntE7(c: X86Cpu): void {
  const p = pfx(c);
  if (p > 1 || isReg(c)) invalid(c);
  if (p === 1) movStore128(c, true); else mmxStore(c);
}

/** 0F D6: MOVQ xmm/m64, xmm (66), MOVQ2DQ xmm, mm (F3), MOVDQ2Q mm, xmm (F2). */
export function movD6(c: X86Cpu): void {
  const p = pfx(c), x = c.state.xmm;
  if (p === 0) invalid(c);
  if (p === 1) {
    sseCheck(c);
    const s = regX(c);
    if (!isReg(c)) { storeMem(c, s, 8, false); return; }
    const d = rmX(c) * 4;
    x[d] = x[s * 4]!; x[d + 1] = x[s * 4 + 1]!; x[d + 2] = 0; x[d + 3] = 0;
    return;
  }
  if (!isReg(c)) invalid(c);
  sseCheck(c);
  mmxCheck(c);
  if (p === 2) {
    const d = regX(c) * 4;
    mmToSlot(c, (c.w1 >>> 6) & 7, XS2);
    x[d] = x[XS2 * 4]!; x[d + 1] = x[XS2 * 4 + 1]!; x[d + 2] = 0; x[d + 3] = 0;
    mmxEnter(c);
    return;
  }
  const s = rmX(c) * 4;
  mmWrite(c, (c.w1 >>> 2) & 7, x[s]!, x[s + 1]!);
}

/** F2 0F F0: LDDQU xmm, m128 (unaligned, memory only). */
export function lddqu(c: X86Cpu): void {
  if (pfx(c) !== 3 || isReg(c)) invalid(c);
  sseCheck(c);
  copyX(c.state.xmm, regX(c), srcX(c, 16, true));
}

/** 66 0F 38 2A: MOVNTDQA xmm, m128 (aligned, memory only). */
export function movntdqa(c: X86Cpu): void {
  if (pfx(c) !== 1 || isReg(c)) invalid(c);
  sseCheck(c);
  copyX(c.state.xmm, regX(c), srcX(c, 16));
}

/** 0F C3: MOVNTI m32/64, r32/64 (no SIMD state involved). */
export function movnti(c: X86Cpu): void {
  if (pfx(c) !== 0 || isReg(c)) invalid(c);
  const w = c.osz === 3 ? 3 : 2;
  const lo = c.getReg(w, (c.w1 >>> 2) & 15);
  wrE(c, w, lo, w === 3 ? c.rhi : 0);
}

/**
 * 0F F7: MASKMOVQ mm, mm (none) / MASKMOVDQU xmm, xmm (66): the bytes of the first operand whose
 * mask byte (second operand) has bit 7 set are stored at DS:rDI (segment overridable); the others
 * are not accessed. Every selected byte is checked before any is written.
 */
export function maskmov(c: X86Cpu): void {
  const p = pfx(c);
  if (p > 1 || !isReg(c)) invalid(c);
  let n = 16, src = regX(c), mask = rmX(c);
  if (p === 1) sseCheck(c);
  else {
    mmxCheck(c);
    mmToSlot(c, (c.w1 >>> 2) & 7, XS);
    mmToSlot(c, (c.w1 >>> 6) & 7, XS2);
    src = XS; mask = XS2; n = 8;
    mmxEnter(c);
  }
  const u8 = simd(c).u8, asz = c.asz;
  const base = c.regAddr(7, asz);
  const seg = (c.w1 >>> 22) & 7;
  let first = -1, last = -1;
  for (let i = 0; i < n; i++) if (u8[mask * 16 + i]! & 0x80) { if (first < 0) first = i; last = i; }
  if (first < 0) return;
  const la = linAddr(c, seg, base, n, 2);
  const a0 = c.m64 ? la + first : (la + first) >>> 0, a1 = c.m64 ? la + last : (la + last) >>> 0;
  xlateFill(c, a0, WALK_W);
  if (Math.floor(a0 / 4096) !== Math.floor(a1 / 4096)) xlateFill(c, a1, WALK_W);
  for (let i = 0; i < n; i++) {
    if (u8[mask * 16 + i]! & 0x80) wr8(c, c.m64 ? la + i : (la + i) >>> 0, u8[src * 16 + i]!);
  }
}

/** 66 0F 3A 14 PEXTRB / 15 PEXTRW / 16 PEXTRD, PEXTRQ (REX.W): r/m destination, xmm in reg. */
export function pextrInsn(width: number): Handler {
  return (c: X86Cpu): void => {
    if (pfx(c) !== 1) invalid(c);
    sseCheck(c);
    const s = regX(c), imm = c.w3 & 0xff, r = simd(c);
    if (width === 4 && c.osz === 3) {
      const q = (imm & 1) * 2, x = c.state.xmm;
      wrE(c, 3, x[s * 4 + q]!, x[s * 4 + q + 1]!);
      return;
    }
    const v = pextr(r, s, imm, width);
    if (isReg(c)) { c.setReg(c.osz === 3 ? 3 : 2, rmX(c), v, 0); return; }
    const la = memLa(c, width, 2, false);
    if (width === 1) wr8(c, la, v); else if (width === 2) wr16(c, la, v); else wr32(c, la, v);
  };
}

/** 66 0F 3A 20 PINSRB (r32/m8) / 22 PINSRD, PINSRQ (REX.W). */
export function pinsrInsn(width: number): Handler {
  return (c: X86Cpu): void => {
    if (pfx(c) !== 1) invalid(c);
    sseCheck(c);
    const d = regX(c), imm = c.w3 & 0xff;
    if (width === 4 && c.osz === 3) {
      const lo = rdE(c, 3), hi = c.rhi, x = c.state.xmm, q = (imm & 1) * 2;
      x[d * 4 + q] = lo; x[d * 4 + q + 1] = hi;
      return;
    }
    let v: number;
    if (isReg(c)) v = c.state.gpr[rmX(c) << 1]!;
    else if (width === 1) v = rd8(c, memLa(c, 1, 1, false));
    else v = rdE(c, 2);
    pinsr(simd(c), d, v, imm, width);
  };
}

/** Explicit string length register (EAX/RAX, EDX/RDX) saturated to a 32-bit signed magnitude. */
function strLen(c: X86Cpu, r: number): number {
  const g = c.state.gpr, lo = g[r << 1]!;
  if (c.osz !== 3) return lo;
  const hi = g[(r << 1) | 1]!;
  if (hi === lo >> 31) return lo;
  return hi < 0 ? -0x7fffffff : 0x7fffffff;
}

/** 66 0F 3A 60 PCMPESTRM, 61 PCMPESTRI, 62 PCMPISTRM, 63 PCMPISTRI (memory operand needs no alignment). */
export function pcmpstrInsn(explicit: boolean, mask: boolean): Handler {
  return (c: X86Cpu): void => {
    if (pfx(c) !== 1) invalid(c);
    sseCheck(c);
    const s = srcX(c, 16, true);
    const eax = explicit ? strLen(c, 0) : 0, edx = explicit ? strLen(c, 2) : 0;
    const fl = pcmpstr(simd(c), regX(c), s, c.w3 & 0xff, explicit, eax, edx, mask, 0);
    if (!mask) c.setReg(2, 1, strResult.ecx, 0);
    setArith(c, fl);
  };
}

/** 0F 77: EMMS: every x87 register tagged empty (SDM Vol. 2 EMMS). */
export function emms(c: X86Cpu): void {
  if (pfx(c) !== 0) invalid(c);
  mmxCheck(c);
  c.state.fpu.tag = 0xffff;
}

