/**
 * FXSAVE/FXRSTOR, LDMXCSR/STMXCSR and the XSAVE feature set for the state components this CPU
 * has: x87 (0) and SSE (1), both in the 512-byte legacy region, followed by the 64-byte XSAVE
 * header (SDM Vol. 1 ch. 13; Vol. 2 FXSAVE, FXRSTOR, XSAVE, XSAVEOPT, XSAVEC, XRSTOR, XSAVES,
 * XRSTORS, XGETBV). No supervisor state component is supported, so IA32_XSS has no settable bit
 * (IA32_XSS_SUPPORTED = 0) and XSAVES/XRSTORS operate on XCR0's components only.
 *
 * XINUSE (Vol. 1 13.6) is not tracked by a separate bit: a component is "in use" when it differs
 * from its initial configuration, which the SDM allows (XINUSE[i] may be 1 for a component in
 * its init configuration, never the reverse). MXCSR other than 1F80H counts as SSE in use, so the
 * init-optimized forms never lose it.
 */
import type { X86Cpu } from "../cpu.js";
import type { X86State } from "../state.js";
import { GP_VECTOR, NM_VECTOR, UD_VECTOR } from "../fault.js";
import { eaLin } from "./operand.js";
import { rd32, wr32 } from "../mmu.js";
import { X87State, encodeFxsave, decodeFxsave, FXSAVE_32, FXSAVE_64 } from "../fp/x87_state.js";
import { x87ControlWord, x87UpdateSummary } from "./x87.js";
import { IMG, readImage, writeImage } from "./x87_mem.js";
import { hookBegin, requireCpl0, vmxMemInfo } from "./system.js";

const CR0_EM = 4, CR0_TS = 8;
const CR4_OSFXSR = 1 << 9, CR4_OSXSAVE = 1 << 18;

/** MXCSR bits that may be set (DAZ supported): FXSAVE's MXCSR_MASK (SDM Vol. 1 11.6.6). */
export const MXCSR_MASK = 0xffff;
/** XCR0 bits this CPU supports: x87 and SSE (CPUID.(EAX=0DH,ECX=0):EAX). */
export const XFEATURE_MASK_FP = 1;
export const XFEATURE_MASK_SSE = 2;
export const XFEATURE_MASK_YMM = 4;
export const XCR0_SUPPORTED = XFEATURE_MASK_FP | XFEATURE_MASK_SSE;
/**
 * IA32_XSS bits this CPU supports: none (no supervisor state component: CPUID.(EAX=0DH,ECX=1):ECX
 * and EDX are 0), so the MSR always reads 0 and WRMSR of any set bit is #GP(0) (SDM Vol. 1 13.3).
 * XSAVES/XRSTORS use XCR0 | IA32_XSS, which is therefore XCR0.
 */
export const IA32_XSS_SUPPORTED = 0;
/** Size of the legacy region plus the XSAVE header: the whole XSAVE area for x87 + SSE. */
export const XSAVE_HDR = 512;
export const XSAVE_AREA_SIZE = 576;

const FX = new Uint8Array(512);

/** XINUSE[0]: the x87 state differs from its initial configuration (FCW 037FH, FSW 0, all empty, pointers 0). */
export function x87InUse(f: X87State): boolean {
  return f.cw !== 0x37f || f.sw !== 0 || f.top !== 0 || f.tag !== 0xffff || f.fop !== 0 || f.fip !== 0 || f.fipHi !== 0 ||
    f.fcs !== 0 || f.fdp !== 0 || f.fdpHi !== 0 || f.fds !== 0;
}

/** XINUSE[1]: some XMM register is non-zero (or MXCSR is not 1F80H). */
export function sseInUse(st: X86State): boolean {
  if (st.mxcsr !== 0x1f80) return true;
  const x = st.xmm;
  for (let i = 0; i < 64; i++) if (x[i] !== 0) return true;
  return false;
}

/** XINUSE as a bitmap of the supported components (XGETBV with ECX = 1 returns it ANDed with XCR0). */
export function xinuse(st: X86State): number {
  return (x87InUse(st.fpu) ? XFEATURE_MASK_FP : 0) | (sseInUse(st) ? XFEATURE_MASK_SSE : 0);
}

/** The x87 initial configuration (XRSTOR of a component whose XSTATE_BV bit is 0, Vol. 1 13.6). */
export function x87Init(f: X87State): void {
  f.init();
  f.regs.fill(0);
}

/**
 * Fill `buf[o..o+512)` with the legacy region of the current state: the FXSAVE image with
 * `nXmm` XMM registers (64-bit format: FIP/FDP as 64-bit offsets).
 */
export function fxImage(st: X86State, buf: Uint8Array, o: number, nXmm: number, form: number): void {
  encodeFxsave(st.fpu, st.mxcsr, MXCSR_MASK, st.xmm, nXmm, buf, o, form);
}

/** Load the x87 part of a legacy-region image (control word normalized, pending state recomputed). */
export function loadX87Image(st: X86State, buf: Uint8Array, o: number, form: number): void {
  const f = st.fpu;
  decodeFxsave(f, st.xmm, 0, buf, o, form);
  f.cw = x87ControlWord(f.cw);
  x87UpdateSummary(f);
}

/** Load `nXmm` XMM registers from a legacy-region image. */
export function loadXmmImage(st: X86State, buf: Uint8Array, o: number, nXmm: number): void {
  const x = st.xmm;
  for (let i = 0; i < nXmm * 4; i++) {
    const p = o + 160 + i * 4;
    x[i] = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24);
  }
}

function r32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

function w32(b: Uint8Array, o: number, v: number): void {
  b[o] = v; b[o + 1] = v >>> 8; b[o + 2] = v >>> 16; b[o + 3] = v >>> 24;
}

// ---------------------------------------------------------------------------------------------
// FXSAVE / FXRSTOR / LDMXCSR / STMXCSR

function fxCheck(c: X86Cpu): number {
  if (c.state.cr0 & (CR0_EM | CR0_TS)) c.raise(NM_VECTOR, -1);
  return c.m64 ? 16 : 8;
}

function aligned(c: X86Cpu, size: number, acc: number, align: number): number {
  const la = eaLin(c, size, acc);
  if ((la & (align - 1)) !== 0) c.raise(GP_VECTOR, 0);
  return la;
}

/** 0F AE /0: FXSAVE m512 (REX.W: FXSAVE64). XMM registers only with CR4.OSFXSR (SDM Vol. 2 FXSAVE). */
export function fxsave(c: X86Cpu): void {
  const n = fxCheck(c);
  const la = aligned(c, 512, 2, 16);
  const st = c.state;
  const form = c.osz === 3 ? FXSAVE_64 : FXSAVE_32;
  // Bytes the instruction does not write (reserved 464-511, XMM slots not saved) keep their contents.
  readImage(c, la, 512, IMG, 0);
  fxImage(st, FX, 0, n, form);
  const top = st.cr4 & CR4_OSFXSR ? 160 + n * 16 : 160;
  IMG.set(FX.subarray(0, top), 0);
  writeImage(c, la, 512, IMG, 0);
}

/** 0F AE /1: FXRSTOR m512 (REX.W: FXRSTOR64). #GP if the image's MXCSR sets reserved bits. */
export function fxrstor(c: X86Cpu): void {
  const n = fxCheck(c);
  const la = aligned(c, 512, 1, 16);
  readImage(c, la, 512, IMG, 0);
  const mx = r32(IMG, 24);
  if (mx & ~MXCSR_MASK) c.raise(GP_VECTOR, 0);
  const st = c.state;
  loadX87Image(st, IMG, 0, c.osz === 3 ? FXSAVE_64 : FXSAVE_32);
  st.mxcsr = mx;
  if (st.cr4 & CR4_OSFXSR) loadXmmImage(st, IMG, 0, n);
}

function mxcsrCheck(c: X86Cpu): void {
  const st = c.state;
  if ((st.cr0 & CR0_EM) || !(st.cr4 & CR4_OSFXSR)) c.raise(UD_VECTOR, -1);
  if (st.cr0 & CR0_TS) c.raise(NM_VECTOR, -1);
}

/** 0F AE /2: LDMXCSR m32 (#GP(0) for reserved bits). */
export function ldmxcsr(c: X86Cpu): void {
  mxcsrCheck(c);
  const v = rd32(c, eaLin(c, 4, 1)) >>> 0;
  if (v & ~MXCSR_MASK) c.raise(GP_VECTOR, 0);
  c.state.mxcsr = v;
}

/** 0F AE /3: STMXCSR m32. */
export function stmxcsr(c: X86Cpu): void {
  mxcsrCheck(c);
  wr32(c, eaLin(c, 4, 2), c.state.mxcsr);
}

// ---------------------------------------------------------------------------------------------
// XSAVE family

/** The checks every XSAVE-family instruction makes: #UD without CR4.OSXSAVE, #NM with CR0.TS, 64-byte alignment. */
function xsaveBegin(c: X86Cpu, acc: number): number {
  const st = c.state;
  if (!(st.cr4 & CR4_OSXSAVE)) c.raise(UD_VECTOR, -1);
  if (st.cr0 & CR0_TS) c.raise(NM_VECTOR, -1);
  return aligned(c, XSAVE_AREA_SIZE, acc, 64);
}

/** Requested-feature bitmap: XCR0 AND EDX:EAX (only the low word matters here). */
function rfbm(c: X86Cpu): number {
  return c.state.xcr0 & c.state.gpr[0] & XCR0_SUPPORTED;
}

const XS_STANDARD = 0, XS_OPT = 1, XS_COMPACT = 2, XS_SUPERVISOR = 3;

/**
 * Copy the selected parts of the legacy region into IMG: x87 (bytes 0-23 and 32-159) for bit 0,
 * MXCSR/MXCSR_MASK (24-31) and the XMM registers for bit 1.
 */
function saveComponents(st: X86State, save: number, n: number, form: number): void {
  fxImage(st, FX, 0, n, form);
  if (save & XFEATURE_MASK_FP) {
    IMG.set(FX.subarray(0, 24), 0);
    IMG.set(FX.subarray(32, 160), 32);
  }
  if (save & XFEATURE_MASK_SSE) {
    IMG.set(FX.subarray(24, 32), 24);
    IMG.set(FX.subarray(160, 160 + n * 16), 160);
  }
}

function xsaveCommon(c: X86Cpu, kind: number): void {
  const la = kind === XS_SUPERVISOR ? xsavesBegin(c, 2, false) : xsaveBegin(c, 2);
  const st = c.state;
  const n = c.m64 ? 16 : 8;
  // XSAVES: RFBM = EDX:EAX AND (XCR0 | IA32_XSS), and IA32_XSS is 0 here.
  const rf = rfbm(c);
  const inuse = xinuse(st);
  readImage(c, la, XSAVE_AREA_SIZE, IMG, 0);
  // XSAVE saves every requested component; XSAVEOPT and XSAVEC skip those in their init configuration.
  saveComponents(st, kind === XS_STANDARD ? rf : rf & inuse, n, c.osz === 3 ? FXSAVE_64 : FXSAVE_32);
  if (kind >= XS_COMPACT) {
    w32(IMG, XSAVE_HDR, rf & inuse);
    w32(IMG, XSAVE_HDR + 4, 0);
    w32(IMG, XSAVE_HDR + 8, rf);
    w32(IMG, XSAVE_HDR + 12, 0x80000000);
  } else {
    // XSTATE_BV[i] for requested i becomes XINUSE[i]; other bits and the rest of the header stay.
    w32(IMG, XSAVE_HDR, (r32(IMG, XSAVE_HDR) & ~rf) | (rf & inuse));
  }
  writeImage(c, la, XSAVE_AREA_SIZE, IMG, 0);
}

/** 0F AE /4: XSAVE (standard format). */
export function xsave(c: X86Cpu): void { xsaveCommon(c, XS_STANDARD); }
/** 0F AE /6: XSAVEOPT (standard format, init optimization; the modified optimization is not used). */
export function xsaveopt(c: X86Cpu): void { xsaveCommon(c, XS_OPT); }
/** 0F C7 /4: XSAVEC (compacted format: XCOMP_BV = 8000000000000000H | RFBM). */
export function xsavec(c: X86Cpu): void { xsaveCommon(c, XS_COMPACT); }
/**
 * 0F C7 /5: XSAVES (SDM Vol. 1 13.11): XSAVEC's compacted image (init optimization; the modified
 * optimization is not used), at CPL 0 only, for the components of XCR0 | IA32_XSS.
 */
export function xsaves(c: X86Cpu): void { xsaveCommon(c, XS_SUPERVISOR); }

/**
 * The checks XSAVES and XRSTORS make before touching memory: #UD without CR4.OSXSAVE; in VMX
 * non-root operation the "enable XSAVES/XRSTORS" control (#UD when clear) and the XSS-exiting
 * bitmap (SDM Vol. 3C 26.1.3, 26.3); #GP(0) above CPL 0; #NM with CR0.TS; 64-byte alignment.
 * The requested mask offered to the XSS-exiting bitmap is EDX:EAX AND IA32_XSS.
 */
function xsavesBegin(c: X86Cpu, acc: number, restore: boolean): number {
  const st = c.state;
  if (!(st.cr4 & CR4_OSXSAVE)) c.raise(UD_VECTOR, -1);
  const v = c.vmx;
  if (v !== null && v.xsaves !== undefined) {
    const n = hookBegin(c);
    // IA32_XSS[63:32] has no defined bit, so the high half of the mask is 0.
    v.xsaves(restore, st.gpr[0] & IA32_XSS_SUPPORTED, 0, c.ilen, vmxMemInfo(c), c.disp);
    st.rip = n;
  }
  requireCpl0(c);
  if (st.cr0 & CR0_TS) c.raise(NM_VECTOR, -1);
  return aligned(c, XSAVE_AREA_SIZE, acc, 64);
}

/**
 * Validate an XSAVE header image and load the requested components into `st` (XRSTOR, SDM
 * Vol. 1 13.8; also KVM_SET_XSAVE's source). Returns false when XRSTOR would raise #GP: header
 * bits beyond XCR0, non-zero reserved header bytes, a compacted image without XSAVEC's rules,
 * or an MXCSR with reserved bits.
 */
export function xrstorImage(st: X86State, buf: Uint8Array, o: number, rf: number, xcr0: number, nXmm: number, form: number, allowCompact: boolean): boolean {
  const bvLo = r32(buf, o + XSAVE_HDR), bvHi = r32(buf, o + XSAVE_HDR + 4);
  const cLo = r32(buf, o + XSAVE_HDR + 8), cHi = r32(buf, o + XSAVE_HDR + 12);
  const compact = (cHi & 0x80000000) !== 0;
  if (bvHi !== 0 || (bvLo & ~xcr0) !== 0) return false;
  if (compact) {
    if (!allowCompact || (cHi & 0x7fffffff) !== 0 || (cLo & ~xcr0) !== 0 || (bvLo & ~cLo) !== 0) return false;
    for (let k = 16; k < 64; k++) if (buf[o + XSAVE_HDR + k] !== 0) return false;
  } else {
    for (let k = 8; k < 24; k++) if (buf[o + XSAVE_HDR + k] !== 0) return false;
  }
  // MXCSR comes from the image when SSE is requested: always in the standard form, only with
  // XSTATE_BV[1] in the compacted form (otherwise it is initialized).
  const loadMx = (rf & XFEATURE_MASK_SSE) !== 0 && (!compact || (bvLo & XFEATURE_MASK_SSE) !== 0);
  const mx = r32(buf, o + 24);
  if (loadMx && (mx & ~MXCSR_MASK) !== 0) return false;
  if (rf & XFEATURE_MASK_FP) {
    if (bvLo & XFEATURE_MASK_FP) loadX87Image(st, buf, o, form);
    else x87Init(st.fpu);
  }
  if (rf & XFEATURE_MASK_SSE) {
    if (bvLo & XFEATURE_MASK_SSE) loadXmmImage(st, buf, o, nXmm);
    else st.xmm.fill(0, 0, nXmm * 4);
    if (loadMx) st.mxcsr = mx;
    else if (compact) st.mxcsr = 0x1f80;
  }
  return true;
}

/**
 * 0F C7 /3: XRSTORS (SDM Vol. 1 13.12): the compacted form of XRSTOR only, at CPL 0, for the
 * components of XCR0 | IA32_XSS: #GP(0) when XCOMP_BV[63] is clear, and (as for the compacted
 * XRSTOR) when XCOMP_BV has bits outside XCR0 | IA32_XSS, XSTATE_BV has bits outside XCOMP_BV,
 * header bytes 63:16 are not zero, or MXCSR would get reserved bits.
 */
export function xrstors(c: X86Cpu): void {
  const la = xsavesBegin(c, 1, true);
  readImage(c, la, XSAVE_AREA_SIZE, IMG, 0);
  const st = c.state;
  if ((r32(IMG, XSAVE_HDR + 12) & 0x80000000) === 0) c.raise(GP_VECTOR, 0);
  const mask = st.xcr0 | IA32_XSS_SUPPORTED;
  if (!xrstorImage(st, IMG, 0, rfbm(c), mask, c.m64 ? 16 : 8, c.osz === 3 ? FXSAVE_64 : FXSAVE_32, true)) c.raise(GP_VECTOR, 0);
}

/** 0F AE /5: XRSTOR (standard or compacted format). */
export function xrstor(c: X86Cpu): void {
  const la = xsaveBegin(c, 1);
  readImage(c, la, XSAVE_AREA_SIZE, IMG, 0);
  const st = c.state;
  if (!xrstorImage(st, IMG, 0, rfbm(c), st.xcr0, c.m64 ? 16 : 8, c.osz === 3 ? FXSAVE_64 : FXSAVE_32, true)) c.raise(GP_VECTOR, 0);
}
