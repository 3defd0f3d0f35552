/**
 * Model-specific registers the core implements (SDM Vol. 4). RDMSR/WRMSR of any other index
 * raise #GP(0), as on a processor without that MSR. WRMSR of reserved bits raises #GP(0).
 */
import type { X86Cpu } from "./cpu.js";
import { IA32_XSS_SUPPORTED } from "./ops/xsave.js";

export const MSR_IA32_TSC = 0x10;
export const MSR_IA32_PLATFORM_ID = 0x17;
export const MSR_IA32_APICBASE = 0x1b;
export const MSR_IA32_FEATURE_CONTROL = 0x3a;
export const MSR_IA32_TSC_ADJUST = 0x3b;
export const MSR_IA32_SPEC_CTRL = 0x48;
export const MSR_IA32_BIOS_SIGN_ID = 0x8b;
export const MSR_IA32_MTRRCAP = 0xfe;
export const MSR_IA32_SYSENTER_CS = 0x174;
export const MSR_IA32_SYSENTER_ESP = 0x175;
export const MSR_IA32_SYSENTER_EIP = 0x176;
export const MSR_IA32_MCG_CAP = 0x179;
export const MSR_IA32_MCG_STATUS = 0x17a;
export const MSR_IA32_MISC_ENABLE = 0x1a0;
export const MSR_IA32_CR_PAT = 0x277;
export const MSR_MTRR_DEF_TYPE = 0x2ff;
/** IA32_XSS (SDM Vol. 4 Table 2-2): the supervisor state components XSAVES/XRSTORS manage. */
export const MSR_IA32_XSS = 0xda0;
export const MSR_EFER = 0xc0000080;
export const MSR_STAR = 0xc0000081;
export const MSR_LSTAR = 0xc0000082;
export const MSR_CSTAR = 0xc0000083;
export const MSR_SYSCALL_MASK = 0xc0000084;
export const MSR_FS_BASE = 0xc0000100;
export const MSR_GS_BASE = 0xc0000101;
export const MSR_KERNEL_GS_BASE = 0xc0000102;
export const MSR_TSC_AUX = 0xc0000103;

const EFER_SCE = 1, EFER_LME = 1 << 8, EFER_LMA = 1 << 10, EFER_NXE = 1 << 11;

function toNum(lo: number, hi: number): number { return hi * 4294967296 + (lo >>> 0); }
function canonical(c: X86Cpu, lo: number, hi: number): boolean {
  const v = toNum(lo, hi | 0);
  return v >= -c.canon && v < c.canon;
}
function put(out: Int32Array, v: number): void {
  out[0] = v | 0; out[1] = Math.floor(v / 4294967296) | 0;
}

/** RDMSR as the hardware performs it (no VMX intercepts here). */
export function readMsr(c: X86Cpu, msr: number, out: Int32Array): boolean {
  const st = c.state;
  msr = msr >>> 0;
  switch (msr) {
    case MSR_IA32_TSC: put(out, c.tsc()); return true;
    case MSR_IA32_PLATFORM_ID: case MSR_IA32_BIOS_SIGN_ID: case MSR_IA32_SPEC_CTRL: case MSR_IA32_MCG_STATUS:
      out[0] = 0; out[1] = 0; return true;
    case MSR_IA32_APICBASE: out[0] = c.apicBaseLo; out[1] = c.apicBaseHi; return true;
    case MSR_IA32_FEATURE_CONTROL: out[0] = c.featureControl; out[1] = 0; return true;
    case MSR_IA32_TSC_ADJUST: put(out, c.tscAdjust); return true;
    case MSR_IA32_MTRRCAP: out[0] = 0x500; out[1] = 0; return true; // WC supported, no variable ranges
    case MSR_IA32_MCG_CAP: out[0] = 0; out[1] = 0; return true;
    case MSR_IA32_SYSENTER_CS: out[0] = c.sysenterCs; out[1] = 0; return true;
    case MSR_IA32_SYSENTER_ESP: put(out, c.sysenterEsp); return true;
    case MSR_IA32_SYSENTER_EIP: put(out, c.sysenterEip); return true;
    case MSR_IA32_MISC_ENABLE: out[0] = c.miscEnableLo; out[1] = c.miscEnableHi; return true;
    case MSR_IA32_CR_PAT: out[0] = c.patLo; out[1] = c.patHi; return true;
    case MSR_MTRR_DEF_TYPE: out[0] = c.mtrrDefType; out[1] = 0; return true;
    // No supervisor component exists, so no bit of IA32_XSS can be set: it always reads 0.
    case MSR_IA32_XSS: out[0] = 0; out[1] = 0; return true;
    case MSR_EFER: out[0] = st.efer; out[1] = 0; return true;
    case MSR_STAR: out[0] = c.starLo; out[1] = c.starHi; return true;
    case MSR_LSTAR: put(out, c.lstar); return true;
    case MSR_CSTAR: put(out, c.cstar); return true;
    case MSR_SYSCALL_MASK: out[0] = c.fmask; out[1] = 0; return true;
    case MSR_FS_BASE: put(out, st.segBase[4]); return true;
    case MSR_GS_BASE: put(out, st.segBase[5]); return true;
    case MSR_KERNEL_GS_BASE: put(out, c.kernelGsBase); return true;
    case MSR_TSC_AUX: out[0] = c.tscAux; out[1] = 0; return true;
  }
  return false;
}

/** WRMSR as the hardware performs it; false = #GP(0) (unknown MSR or reserved bits). */
export function writeMsr(c: X86Cpu, msr: number, lo: number, hi: number): boolean {
  const st = c.state;
  msr = msr >>> 0;
  switch (msr) {
    case MSR_IA32_TSC: c.tscAdjust += toNum(lo, hi) - c.tsc(); return true;
    case MSR_IA32_TSC_ADJUST: c.tscAdjust = toNum(lo, hi); return true;
    case MSR_IA32_SPEC_CTRL: return (lo & ~7) === 0 && hi === 0;
    case MSR_IA32_BIOS_SIGN_ID: return true;
    case MSR_IA32_APICBASE:
      if ((lo & 0x6ff) || (hi & ~0x3fff)) return false;
      c.apicBaseLo = lo; c.apicBaseHi = hi; return true;
    case MSR_IA32_FEATURE_CONTROL:
      if (c.featureControl & 1) return false; // locked
      c.featureControl = lo & 0x7; return hi === 0;
    case MSR_IA32_SYSENTER_CS: c.sysenterCs = lo & 0xffff; return true;
    case MSR_IA32_SYSENTER_ESP: if (!canonical(c, lo, hi)) return false; c.sysenterEsp = toNum(lo, hi); return true;
    case MSR_IA32_SYSENTER_EIP: if (!canonical(c, lo, hi)) return false; c.sysenterEip = toNum(lo, hi); return true;
    case MSR_IA32_MISC_ENABLE: c.miscEnableLo = lo; c.miscEnableHi = hi; return true;
    case MSR_IA32_CR_PAT: {
      for (let i = 0; i < 8; i++) {
        const t = ((i < 4 ? lo : hi) >>> ((i & 3) * 8)) & 0xff;
        if (t > 7 || t === 2 || t === 3) return false;
      }
      c.patLo = lo; c.patHi = hi; return true;
    }
    case MSR_MTRR_DEF_TYPE: if (hi !== 0 || (lo & ~0xcff)) return false; c.mtrrDefType = lo; return true;
    case MSR_IA32_XSS: return hi === 0 && (lo & ~IA32_XSS_SUPPORTED) === 0;
    case MSR_EFER: {
      // SCE, LME, NXE writable; LMA is read-only (set by the CPU when paging is enabled with LME).
      if (hi !== 0 || (lo & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))) return false;
      const paging = (st.cr0 & 0x80000000) !== 0;
      if (paging && ((lo ^ st.efer) & EFER_LME)) return false;
      const nv = (lo & ~EFER_LMA) | (st.efer & EFER_LMA);
      if ((nv ^ st.efer) & EFER_NXE) c.tlbFlushAll();
      st.efer = nv;
      c.stateChanged();
      return true;
    }
    case MSR_STAR: c.starLo = lo; c.starHi = hi; return true;
    case MSR_LSTAR: if (!canonical(c, lo, hi)) return false; c.lstar = toNum(lo, hi); return true;
    case MSR_CSTAR: if (!canonical(c, lo, hi)) return false; c.cstar = toNum(lo, hi); return true;
    case MSR_SYSCALL_MASK: if (hi !== 0) return false; c.fmask = lo >>> 0; return true;
    case MSR_FS_BASE: if (!canonical(c, lo, hi)) return false; st.segBase[4] = toNum(lo, hi); c.segCache(4); return true;
    case MSR_GS_BASE: if (!canonical(c, lo, hi)) return false; st.segBase[5] = toNum(lo, hi); c.segCache(5); return true;
    case MSR_KERNEL_GS_BASE: if (!canonical(c, lo, hi)) return false; c.kernelGsBase = toNum(lo, hi); return true;
    case MSR_TSC_AUX: if (hi !== 0) return false; c.tscAux = lo >>> 0; return true;
  }
  return false;
}
