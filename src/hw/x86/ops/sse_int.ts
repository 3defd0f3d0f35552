/**
 * Integer SIMD instructions in their MMX (no prefix, MM registers) and SSE2+ (66 prefix, XMM
 * registers) forms: arithmetic, compares, logic, packs/unpacks, shifts, shuffles, SSSE3 and
 * SSE4.1 integer operations (SDM Vol. 2 instruction pages; Vol. 1 ch. 9, 11, 12). The lane
 * arithmetic is fp/simd_int.ts; this file binds it to operands.
 *
 * An MMX form runs the 128-bit operation on the low quadwords of scratch slots and writes back
 * the low quadword. Three ways of doing so cover every MMX form:
 *   MM_LANE    dst in XS, src in XS2, result = low quadword (lane-wise operations);
 *   MM_COMBINE XS = [dst, src] and op(XS, XS): packs and horizontal operations take their two
 *              64-bit halves from one register, which is exactly the MMX layout;
 *   MM_HIGH    the low unpack of dst and src, high quadword: the MMX high unpacks.
 */
import type { X86Cpu } from "../cpu.js";
import type { Handler } from "../decode.js";
import * as _simd_int from "../fp/simd_int.js";
import * as _flags from "../flags.js";
import * as _sse from "./sse.js";
// Module-local copies of the imported bindings: a loader that compiles imports to property
// reads (CommonJS interop) would otherwise pay a getter call per use on the hot paths.
const { padd, paddSat, pmulw, pmulhrsw, pmulld, pmuldq, pmaddwd, pmaddubsw, pavg, psadbw, pminmax, pabs, psign, pcmp, plogic, LOGIC_AND, LOGIC_ANDN, LOGIC_OR, LOGIC_XOR, pack, punpck, pshufb, phaddsub, pshift, pshiftBytes, shiftCountFromReg, SHIFT_LL, SHIFT_RL, SHIFT_RA, pshufd, pshufw, palignr, pblendw, blendv, pmovx, phminposuw, mpsadbw, ptest, pmovmskb } = _simd_int;
const { setArith } = _flags;
const { XS, XS2, simd, sseCheck, mmxCheck, srcX, pfx, regX, invalid, mmToSlot, mmWrite, mmSrc, mmOperands, loadMem, mmxEnter } = _sse;

export type IntOp = (r: _simd_int.SimdRegs, d: number, s: number) => void;

export const MM_NONE = 0;
export const MM_LANE = 1;
export const MM_COMBINE = 2;
export const MM_HIGH = 3;

/** Write the low (or high) quadword of slot XS to MM register `mm`. */
function mmFromXs(c: X86Cpu, mm: number, high: boolean): void {
  const x = c.state.xmm, o = XS * 4 + (high ? 2 : 0);
  mmWrite(c, mm, x[o]!, x[o + 1]!);
}

/** Run an MMX form of a binary operation (see the file comment). */
function mmBinary(c: X86Cpu, op: IntOp, mode: number): void {
  mmxCheck(c);
  const d = mmOperands(c), r = simd(c), x = c.state.xmm;
  if (mode === MM_COMBINE) {
    x[XS * 4 + 2] = x[XS2 * 4]!; x[XS * 4 + 3] = x[XS2 * 4 + 1]!;
    op(r, XS, XS);
  } else {
    op(r, XS, XS2);
  }
  mmFromXs(c, d, mode === MM_HIGH);
}

/**
 * Handler of a binary integer instruction: `xop` for 66 (XMM, m128 aligned), `mop` with `mode`
 * for no prefix (MMX), MM_NONE when the no-prefix form does not exist. Other prefixes are #UD.
 */
export function intBinary(xop: IntOp, mop: IntOp | null, mode: number): Handler {
  return (c: X86Cpu): void => {
    const p = pfx(c);
    if (p === 1) {
      sseCheck(c);
      const s = srcX(c, 16);
      xop(simd(c), regX(c), s);
      return;
    }
    if (p !== 0 || mop === null || mode === MM_NONE) return invalid(c);
    mmBinary(c, mop, mode);
  };
}

/** Shorthand: the same operation for both forms. */
export function intBoth(op: IntOp, mode: number): Handler {
  return intBinary(op, op, mode);
}

/** An SSE4.1 (66-only) binary operation. */
export function int66(op: IntOp): Handler {
  return intBinary(op, null, MM_NONE);
}

// ---- operation table entries (module constants, no per-instruction closures) ----
export const OPS = {
  paddb: ((r, d, s) => padd(r, d, s, 1, false)) as IntOp,
  paddw: ((r, d, s) => padd(r, d, s, 2, false)) as IntOp,
  paddd: ((r, d, s) => padd(r, d, s, 4, false)) as IntOp,
  paddq: ((r, d, s) => padd(r, d, s, 8, false)) as IntOp,
  psubb: ((r, d, s) => padd(r, d, s, 1, true)) as IntOp,
  psubw: ((r, d, s) => padd(r, d, s, 2, true)) as IntOp,
  psubd: ((r, d, s) => padd(r, d, s, 4, true)) as IntOp,
  psubq: ((r, d, s) => padd(r, d, s, 8, true)) as IntOp,
  paddsb: ((r, d, s) => paddSat(r, d, s, 1, false, false)) as IntOp,
  paddsw: ((r, d, s) => paddSat(r, d, s, 2, false, false)) as IntOp,
  paddusb: ((r, d, s) => paddSat(r, d, s, 1, false, true)) as IntOp,
  paddusw: ((r, d, s) => paddSat(r, d, s, 2, false, true)) as IntOp,
  psubsb: ((r, d, s) => paddSat(r, d, s, 1, true, false)) as IntOp,
  psubsw: ((r, d, s) => paddSat(r, d, s, 2, true, false)) as IntOp,
  psubusb: ((r, d, s) => paddSat(r, d, s, 1, true, true)) as IntOp,
  psubusw: ((r, d, s) => paddSat(r, d, s, 2, true, true)) as IntOp,
  pmullw: ((r, d, s) => pmulw(r, d, s, false, false)) as IntOp,
  pmulhw: ((r, d, s) => pmulw(r, d, s, true, false)) as IntOp,
  pmulhuw: ((r, d, s) => pmulw(r, d, s, true, true)) as IntOp,
  pmulhrsw: pmulhrsw as IntOp,
  pmulld: pmulld as IntOp,
  pmuludq: ((r, d, s) => pmuldq(r, d, s, false)) as IntOp,
  pmuldq: ((r, d, s) => pmuldq(r, d, s, true)) as IntOp,
  pmaddwd: pmaddwd as IntOp,
  pmaddubsw: pmaddubsw as IntOp,
  pavgb: ((r, d, s) => pavg(r, d, s, 1)) as IntOp,
  pavgw: ((r, d, s) => pavg(r, d, s, 2)) as IntOp,
  psadbw: psadbw as IntOp,
  pminub: ((r, d, s) => pminmax(r, d, s, 1, false, false)) as IntOp,
  pmaxub: ((r, d, s) => pminmax(r, d, s, 1, false, true)) as IntOp,
  pminsw: ((r, d, s) => pminmax(r, d, s, 2, true, false)) as IntOp,
  pmaxsw: ((r, d, s) => pminmax(r, d, s, 2, true, true)) as IntOp,
  pminsb: ((r, d, s) => pminmax(r, d, s, 1, true, false)) as IntOp,
  pmaxsb: ((r, d, s) => pminmax(r, d, s, 1, true, true)) as IntOp,
  pminuw: ((r, d, s) => pminmax(r, d, s, 2, false, false)) as IntOp,
  pmaxuw: ((r, d, s) => pminmax(r, d, s, 2, false, true)) as IntOp,
  pminsd: ((r, d, s) => pminmax(r, d, s, 4, true, false)) as IntOp,
  pmaxsd: ((r, d, s) => pminmax(r, d, s, 4, true, true)) as IntOp,
  pminud: ((r, d, s) => pminmax(r, d, s, 4, false, false)) as IntOp,
  pmaxud: ((r, d, s) => pminmax(r, d, s, 4, false, true)) as IntOp,
  pabsb: ((r, d, s) => pabs(r, d, s, 1)) as IntOp,
  pabsw: ((r, d, s) => pabs(r, d, s, 2)) as IntOp,
  pabsd: ((r, d, s) => pabs(r, d, s, 4)) as IntOp,
  psignb: ((r, d, s) => psign(r, d, s, 1)) as IntOp,
  psignw: ((r, d, s) => psign(r, d, s, 2)) as IntOp,
  psignd: ((r, d, s) => psign(r, d, s, 4)) as IntOp,
  pcmpeqb: ((r, d, s) => pcmp(r, d, s, 1, false)) as IntOp,
  pcmpeqw: ((r, d, s) => pcmp(r, d, s, 2, false)) as IntOp,
  pcmpeqd: ((r, d, s) => pcmp(r, d, s, 4, false)) as IntOp,
  pcmpeqq: ((r, d, s) => pcmp(r, d, s, 8, false)) as IntOp,
  pcmpgtb: ((r, d, s) => pcmp(r, d, s, 1, true)) as IntOp,
  pcmpgtw: ((r, d, s) => pcmp(r, d, s, 2, true)) as IntOp,
  pcmpgtd: ((r, d, s) => pcmp(r, d, s, 4, true)) as IntOp,
  pcmpgtq: ((r, d, s) => pcmp(r, d, s, 8, true)) as IntOp,
  pand: ((r, d, s) => plogic(r, d, s, LOGIC_AND)) as IntOp,
  pandn: ((r, d, s) => plogic(r, d, s, LOGIC_ANDN)) as IntOp,
  por: ((r, d, s) => plogic(r, d, s, LOGIC_OR)) as IntOp,
  pxor: ((r, d, s) => plogic(r, d, s, LOGIC_XOR)) as IntOp,
  packsswb: ((r, d, s) => pack(r, d, s, 2, false)) as IntOp,
  packuswb: ((r, d, s) => pack(r, d, s, 2, true)) as IntOp,
  packssdw: ((r, d, s) => pack(r, d, s, 4, false)) as IntOp,
  packusdw: ((r, d, s) => pack(r, d, s, 4, true)) as IntOp,
  punpcklbw: ((r, d, s) => punpck(r, d, s, 1, false)) as IntOp,
  punpcklwd: ((r, d, s) => punpck(r, d, s, 2, false)) as IntOp,
  punpckldq: ((r, d, s) => punpck(r, d, s, 4, false)) as IntOp,
  punpcklqdq: ((r, d, s) => punpck(r, d, s, 8, false)) as IntOp,
  punpckhbw: ((r, d, s) => punpck(r, d, s, 1, true)) as IntOp,
  punpckhwd: ((r, d, s) => punpck(r, d, s, 2, true)) as IntOp,
  punpckhdq: ((r, d, s) => punpck(r, d, s, 4, true)) as IntOp,
  punpckhqdq: ((r, d, s) => punpck(r, d, s, 8, true)) as IntOp,
  pshufb: pshufb as IntOp,
  /** PSHUFB mm: indices select among 8 bytes (bit 7 still zeroes). */
  pshufbMm: ((r, d, s) => { for (let i = 0; i < 8; i++) r.u8[s * 16 + i] &= 0x87; pshufb(r, d, s); }) as IntOp,
  phaddw: ((r, d, s) => phaddsub(r, d, s, 2, false, false)) as IntOp,
  phaddd: ((r, d, s) => phaddsub(r, d, s, 4, false, false)) as IntOp,
  phaddsw: ((r, d, s) => phaddsub(r, d, s, 2, false, true)) as IntOp,
  phsubw: ((r, d, s) => phaddsub(r, d, s, 2, true, false)) as IntOp,
  phsubd: ((r, d, s) => phaddsub(r, d, s, 4, true, false)) as IntOp,
  phsubsw: ((r, d, s) => phaddsub(r, d, s, 2, true, true)) as IntOp,
  phminposuw: phminposuw as IntOp,
  pblendvb: ((r, d, s) => blendv(r, d, s, 0, 1)) as IntOp,
  blendvps: ((r, d, s) => blendv(r, d, s, 0, 4)) as IntOp,
  blendvpd: ((r, d, s) => blendv(r, d, s, 0, 8)) as IntOp,
};

// ---------------------------------------------------------------------------------------------
// Shifts

/** PSRLW/PSRAW/PSLLW … by the count in an XMM/MM register or memory (D1-D3, E1-E2, F1-F3). */
export function shiftByReg(width: number, kind: number): Handler {
  return (c: X86Cpu): void => {
    const p = pfx(c), r = simd(c);
    if (p === 1) {
      sseCheck(c);
      const s = srcX(c, 16);
      pshift(r, regX(c), width, kind, shiftCountFromReg(r, s));
      return;
    }
    if (p !== 0) invalid(c);
    mmxCheck(c);
    const d = mmOperands(c);
    pshift(r, XS, width, kind, shiftCountFromReg(r, XS2));
    mmFromXs(c, d, false);
  };
}

// 0F 71/72/73 groups: ModRM.reg selects the operation, r/m is the register shifted by imm8.
const GRP_KIND = [-1, -1, SHIFT_RL, -1, SHIFT_RA, -1, SHIFT_LL, -1];

/** 0F 71 (words), 72 (dwords), 73 (quadwords; /3 PSRLDQ and /7 PSLLDQ on XMM only) shift by imm8. */
export function shiftGroup(width: number): Handler {
  return (c: X86Cpu): void => {
    const op = (c.w1 >>> 2) & 7, p = pfx(c), r = simd(c);
    if ((c.w1 & 3) !== 3 || (p !== 0 && p !== 1)) invalid(c);
    const count = c.w3 & 0xff;
    if (width === 8 && p === 1 && (op === 3 || op === 7)) {
      sseCheck(c);
      pshiftBytes(r, (c.w1 >>> 6) & 15, count > 16 ? 16 : count, op === 7);
      return;
    }
    const kind = GRP_KIND[op]!;
    if (kind < 0 || (width === 8 && kind === SHIFT_RA)) invalid(c);
    const n = count > 64 ? 64 : count;
    if (p === 1) {
      sseCheck(c);
      pshift(r, (c.w1 >>> 6) & 15, width, kind, n);
      return;
    }
    mmxCheck(c);
    const d = (c.w1 >>> 6) & 7;
    mmToSlot(c, d, XS);
    pshift(r, XS, width, kind, n);
    mmFromXs(c, d, false);
  };
}

// ---------------------------------------------------------------------------------------------
// Shuffles, inserts, extracts, masks

/** 0F 70: PSHUFW mm (none), PSHUFD (66), PSHUFHW (F3), PSHUFLW (F2), imm8. */
export function pshuf(c: X86Cpu): void {
  const p = pfx(c), r = simd(c), imm = c.w3 & 0xff;
  if (p === 0) {
    mmxCheck(c);
    mmSrc(c);
    pshufw(r, XS, XS2, imm, false);
    mmFromXs(c, (c.w1 >>> 2) & 7, false);
    return;
  }
  sseCheck(c);
  const s = srcX(c, 16);
  if (p === 1) pshufd(r, regX(c), s, imm);
  else pshufw(r, regX(c), s, imm, p === 2);
}

/** 0F C4: PINSRW mm/xmm, r32/m16, imm8. */
export function pinsrw(c: X86Cpu): void {
  const p = pfx(c), imm = c.w3 & 0xff;
  if (p > 1) invalid(c);
  if (p === 1) sseCheck(c); else mmxCheck(c);
  const v = (c.w1 & 3) === 3 ? c.state.gpr[((c.w1 >>> 6) & 15) << 1]! : (loadMem(c, XS2, 2, false), c.state.xmm[XS2 * 4]!);
  const r = simd(c);
  if (p === 1) { r.u16[regX(c) * 8 + (imm & 7)] = v; return; }
  const d = (c.w1 >>> 2) & 7;
  mmToSlot(c, d, XS);
  r.u16[XS * 8 + (imm & 3)] = v;
  mmFromXs(c, d, false);
}

/** 0F C5: PEXTRW r32, mm/xmm, imm8 (register source only). */
export function pextrwReg(c: X86Cpu): void {
  const p = pfx(c), imm = c.w3 & 0xff;
  if (p > 1 || (c.w1 & 3) !== 3) invalid(c);
  const r = simd(c);
  let v: number;
  if (p === 1) { sseCheck(c); v = r.u16[((c.w1 >>> 6) & 15) * 8 + (imm & 7)]!; }
  else { mmxCheck(c); mmToSlot(c, (c.w1 >>> 6) & 7, XS2); v = r.u16[XS2 * 8 + (imm & 3)]!; mmxEnter(c); }
  c.setReg(c.osz === 3 ? 3 : 2, (c.w1 >>> 2) & 15, v, 0);
}

/** 0F D7: PMOVMSKB r32, mm/xmm. */
export function pmovmskbInsn(c: X86Cpu): void {
  const p = pfx(c);
  if (p > 1 || (c.w1 & 3) !== 3) invalid(c);
  const r = simd(c);
  let m: number;
  if (p === 1) { sseCheck(c); m = pmovmskb(r, (c.w1 >>> 6) & 15); }
  else { mmxCheck(c); mmToSlot(c, (c.w1 >>> 6) & 7, XS2); m = pmovmskb(r, XS2) & 0xff; mmxEnter(c); }
  c.setReg(c.osz === 3 ? 3 : 2, (c.w1 >>> 2) & 15, m, 0);
}

/** 0F 3A 0F: PALIGNR mm/xmm, imm8. */
export function palignrInsn(c: X86Cpu): void {
  const p = pfx(c), imm = c.w3 & 0xff, r = simd(c);
  if (p === 1) {
    sseCheck(c);
    const s = srcX(c, 16);
    palignr(r, regX(c), s, imm);
    return;
  }
  if (p !== 0) invalid(c);
  mmxCheck(c);
  const d = mmOperands(c);
  // The 16-byte concatenation dst:src shifted right by imm bytes, low 8 bytes kept.
  const u8 = r.u8, a = XS * 16, b = XS2 * 16;
  for (let i = 0; i < 8; i++) {
    const j = i + imm;
    u8[XS * 16 + 8 + i] = j < 8 ? u8[b + j]! : j < 16 ? u8[a + j - 8]! : 0;
  }
  mmFromXs(c, d, true);
}

/** 0F 3A 0E PBLENDW, 42 MPSADBW (66, imm8). */
export function pblendwInsn(c: X86Cpu): void {
  if (pfx(c) !== 1) invalid(c);
  sseCheck(c);
  const s = srcX(c, 16);
  pblendw(simd(c), regX(c), s, c.w3 & 0xff);
}

export function mpsadbwInsn(c: X86Cpu): void {
  if (pfx(c) !== 1) invalid(c);
  sseCheck(c);
  const s = srcX(c, 16);
  mpsadbw(simd(c), regX(c), s, c.w3 & 0xff);
}

/** 66 0F 38 17: PTEST xmm, xmm/m128 (ZF, CF; the other arithmetic flags cleared). */
export function ptestInsn(c: X86Cpu): void {
  if (pfx(c) !== 1) invalid(c);
  sseCheck(c);
  const s = srcX(c, 16);
  setArith(c, ptest(simd(c), regX(c), s));
}

/** Memory bytes read by PMOVSX/PMOVZX (from, to) element widths. */
function pmovBytes(from: number, to: number): number {
  return (16 / to) * from;
}

/** 66 0F 38 20-25 PMOVSX, 30-35 PMOVZX: widen from `from` to `to` bytes. */
export function pmovxInsn(from: number, to: number, signed: boolean): Handler {
  const bytes = pmovBytes(from, to);
  return (c: X86Cpu): void => {
    if (pfx(c) !== 1) invalid(c);
    sseCheck(c);
    let s = (c.w1 >>> 6) & 15;
    if ((c.w1 & 3) !== 3) { loadMem(c, XS, bytes, false); s = XS; }
    pmovx(simd(c), regX(c), s, from, to, signed);
  };
}
