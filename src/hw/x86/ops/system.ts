/**
 * System instructions: HLT, flag control (CLI/STI with IOPL/VME rules, CLC/STC/CMC/CLD/STD),
 * CPUID, RDTSC/RDTSCP, RDMSR/WRMSR, RDPMC, MOV CR/DR, CLTS, LMSW/SMSW, INVLPG, INVPCID,
 * WBINVD/INVD, PAUSE/NOP, XGETBV/XSETBV, RDRAND/RDSEED, SWAPGS, MONITOR/MWAIT, UD0/UD1/UD2
 * (SDM Vol. 2; VMX intercepts per SDM 26.1).
 */
import type { X86Cpu } from "../cpu.js";
import type { VmxNonRoot } from "../vmx/hooks.js";
import { ActivityState, INTR_BLOCKING_STI } from "../state.js";
import { flagsSync, CF, IF, DF, IOPL, VIF, VIP, ARITH } from "../flags.js";
import { GP_VECTOR, UD_VECTOR, DB_VECTOR } from "../fault.js";
import { wrE, eaLin, ea } from "./operand.js";
import { rdL } from "../mmu.js";
import { MAXPHYADDR, loadPdptes } from "../paging.js";
import { xinuse, XCR0_SUPPORTED, XFEATURE_MASK_FP, XFEATURE_MASK_SSE, XFEATURE_MASK_YMM } from "./xsave.js";
import { EXIT_REASON_VMCALL, EXIT_REASON_VMCLEAR, EXIT_REASON_VMLAUNCH, EXIT_REASON_VMPTRLD, EXIT_REASON_VMPTRST,
  EXIT_REASON_VMREAD, EXIT_REASON_VMRESUME, EXIT_REASON_VMWRITE, EXIT_REASON_VMOFF, EXIT_REASON_VMON,
  EXIT_REASON_INVEPT, EXIT_REASON_INVVPID, EXIT_REASON_VMFUNC } from "../../../uapi/vmx.js";

const tmp = new Int32Array(4);

/** Put RIP back at the instruction start for a VMX hook (hooks.ts contract); returns the next RIP. */
export function hookBegin(c: X86Cpu): number {
  const next = c.state.rip;
  c.state.rip = c.curRip;
  return next;
}

/** #GP(0) unless CPL 0 (and not virtual-8086 mode). */
export function requireCpl0(c: X86Cpu): void {
  if (c.pe && (c.v86 || c.cpl !== 0)) c.raise(GP_VECTOR, 0);
}

/**
 * VMX instruction-information for a memory operand (SDM Tables 28-9..28-13 share this layout):
 * scaling 1:0, address size 9:7, segment 17:15, index 21:18 (+ invalid 22), base 26:23 (+ invalid 27).
 */
export function vmxMemInfo(c: X86Cpu): number {
  const idx = c.index, base = c.base;
  let info = c.scale | ((c.asz - 1) << 7) | (c.seg << 15);
  info |= idx < 16 ? idx << 18 : 1 << 22;
  info |= base < 16 ? base << 23 : 1 << 27;
  return info;
}

/** F4: HLT */
export function hlt(c: X86Cpu): void {
  requireCpl0(c);
  const v = c.vmx;
  if (v !== null) { const n = hookBegin(c); v.hlt(c.ilen); c.state.rip = n; }
  c.state.activityState = ActivityState.HLT;
  c.breakLoop = 1; // the run loop looks at the activity state once per block
}

/** F5 CMC, F8 CLC, F9 STC, FC CLD, FD STD */
export function flagOp(c: X86Cpu): void {
  switch (c.opb) {
    case 0xf5: flagsSync(c); c.fl ^= CF; return;
    case 0xf8: flagsSync(c); c.fl &= ~CF; return;
    case 0xf9: flagsSync(c); c.fl |= CF; return;
    case 0xfc: c.fl &= ~DF; return;
    default: c.fl |= DF; return;
  }
}

/** FA: CLI; FB: STI (SDM Vol. 2 CLI/STI decision tables; VME/PVI adjust VIF) */
export function cliSti(c: X86Cpu): void {
  const sti = c.opb === 0xfb;
  const iopl = (c.fl & IOPL) >>> 12;
  const cr4 = c.state.cr4;
  if (c.pe && (c.v86 ? iopl < 3 : c.cpl > iopl)) {
    const virt = c.v86 ? (cr4 & 1) !== 0 : c.cpl === 3 && (cr4 & 2) !== 0;
    if (!virt) c.raise(GP_VECTOR, 0);
    if (sti && (c.fl & VIP)) c.raise(GP_VECTOR, 0);
    if (sti) c.fl |= VIF; else c.fl &= ~VIF;
    return;
  }
  if (!sti) { c.fl &= ~IF; return; }
  if (!(c.fl & IF)) {
    c.fl |= IF;
    // STI blocks interrupts until the end of the next instruction (SDM 6.8.3).
    c.state.interruptibility |= INTR_BLOCKING_STI;
    c.modeFlagsChanged();
  }
}

/** 0F A2: CPUID (always exits in VMX non-root operation) */
export function cpuidInsn(c: X86Cpu): void {
  const v = c.vmx;
  if (v !== null) { const n = hookBegin(c); v.cpuid(c.ilen); c.state.rip = n; }
  const g = c.state.gpr;
  c.cpuid(g[0], g[2], tmp);
  c.setReg(2, 0, tmp[0], 0); c.setReg(2, 3, tmp[1], 0); c.setReg(2, 1, tmp[2], 0); c.setReg(2, 2, tmp[3], 0);
}

/** 0F 31: RDTSC; 0F 01 F9: RDTSCP */
export function rdtsc(c: X86Cpu, rdtscp: boolean): void {
  if ((c.state.cr4 & 4) && c.pe && c.cpl !== 0) c.raise(GP_VECTOR, 0);
  let t = c.tsc();
  const v = c.vmx;
  if (v !== null) {
    const n = hookBegin(c); v.rdtsc(c.ilen, rdtscp); c.state.rip = n;
    t = v.guestTsc ? v.guestTsc(t) : t + v.tscOffsetHi() * 4294967296 + (v.tscOffsetLo() >>> 0);
  }
  const lo = t % 4294967296;
  c.setReg(2, 0, lo | 0, 0);
  c.setReg(2, 2, ((t - lo) / 4294967296) | 0, 0);
  if (rdtscp) c.setReg(2, 1, c.tscAux, 0);
}

/** 0F 32: RDMSR */
export function rdmsr(c: X86Cpu): void {
  requireCpl0(c);
  const msr = c.state.gpr[2] >>> 0;
  const v = c.vmx;
  if (v !== null) { const n = hookBegin(c); v.rdmsr(msr, c.ilen); c.state.rip = n; }
  if (v !== null && msr === 0x10 && v.guestTsc) {
    // RDMSR IA32_TSC without an exit returns the guest's TSC, like RDTSC (SDM 26.3).
    const t = v.guestTsc(c.tsc());
    const lo = t % 4294967296;
    c.setReg(2, 0, lo | 0, 0);
    c.setReg(2, 2, ((t - lo) / 4294967296) | 0, 0);
    return;
  }
  if (!c.readMsr(msr, tmp)) c.raise(GP_VECTOR, 0);
  c.setReg(2, 0, tmp[0], 0);
  c.setReg(2, 2, tmp[1], 0);
}

/** 0F 30: WRMSR */
export function wrmsr(c: X86Cpu): void {
  requireCpl0(c);
  const g = c.state.gpr;
  const msr = g[2] >>> 0;
  const v = c.vmx;
  if (v !== null) { const n = hookBegin(c); v.wrmsr(msr, c.ilen); c.state.rip = n; }
  if (!c.writeMsr(msr, g[0], g[4])) c.raise(GP_VECTOR, 0);
}

/** 0F 33: RDPMC (no performance counters: #GP(0) after the intercept check) */
export function rdpmc(c: X86Cpu): void {
  if (c.pe && c.cpl !== 0 && !(c.state.cr4 & (1 << 8))) c.raise(GP_VECTOR, 0);
  const v = c.vmx;
  if (v !== null) { const n = hookBegin(c); v.rdpmc(c.ilen); c.state.rip = n; }
  c.raise(GP_VECTOR, 0);
}

const CR0_PE = 1, CR0_MP = 2, CR0_EM = 4, CR0_TS = 8, CR0_ET = 16, CR0_NE = 32, CR0_WP = 1 << 16, CR0_AM = 1 << 18,
  CR0_NW = 1 << 29, CR0_CD = 1 << 30, CR0_PG = 0x80000000;
const CR0_VALID = CR0_PE | CR0_MP | CR0_EM | CR0_TS | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_NW | CR0_CD | CR0_PG;
const CR4_PAE = 1 << 5, CR4_PGE = 1 << 7, CR4_PSE = 1 << 4, CR4_LA57 = 1 << 12, CR4_PCIDE = 1 << 17, CR4_SMEP = 1 << 20,
  CR4_SMAP = 1 << 21, CR4_OSXSAVE = 1 << 18;
/**
 * CR4 bits this CPU supports (VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT UMIP VMXE
 * FSGSBASE PCIDE OSXSAVE SMEP SMAP); setting any other bit is #GP(0). LA57 is not among them:
 * CPUID.(7,0):ECX[16] is clear, as is IA32_VMX_CR4_FIXED1[12] (the walker's 5-level path is
 * unused until both advertise it).
 */
export const CR4_VALID = (0x1fff & ~CR4_LA57) | (1 << 13) | (1 << 16) | CR4_PCIDE | CR4_OSXSAVE | CR4_SMEP | CR4_SMAP;
const EFER_LME = 1 << 8, EFER_LMA = 1 << 10;
/** MOV to CR0/CR4 changing one of these reloads the PDPTE registers when PAE paging is in use after it (SDM 4.4.1). */
const CR0_PDPTE_BITS = CR0_CD | CR0_NW | CR0_PG, CR4_PDPTE_BITS = CR4_PAE | CR4_PGE | CR4_PSE | CR4_SMEP;

/** The PDPTE load of a MOV to CR (SDM 4.4.1): #GP(0), before anything changes, if a present PDPTE has a reserved bit. */
function reloadPdptes(c: X86Cpu, cr3: number): void {
  if (!loadPdptes(c, cr3)) c.raise(GP_VECTOR, 0);
}

/** Load CR0 with the MOV CR0 checks (SDM Vol. 2 MOV CR, Vol. 3A 2.5): #GP(0) on invalid combinations. */
export function setCr0(c: X86Cpu, v: number, hi: number): void {
  const st = c.state;
  if (hi !== 0) c.raise(GP_VECTOR, 0);
  v = ((v & CR0_VALID) | CR0_ET) >>> 0;
  if ((v & CR0_PG) && !(v & CR0_PE)) c.raise(GP_VECTOR, 0);
  if ((v & CR0_NW) && !(v & CR0_CD)) c.raise(GP_VECTOR, 0);
  const old = st.cr0;
  let efer = st.efer;
  if ((v & CR0_PG) && !(old & CR0_PG) && (efer & EFER_LME)) {
    if (!(st.cr4 & CR4_PAE) || (st.segAr[1] & (1 << 13))) c.raise(GP_VECTOR, 0);
    efer |= EFER_LMA;
  }
  if (!(v & CR0_PG) && (old & CR0_PG)) {
    if (c.m64) c.raise(GP_VECTOR, 0);
    efer &= ~EFER_LMA;
  }
  if ((v & CR0_PG) && (st.cr4 & CR4_PAE) && !(efer & EFER_LMA) && ((old ^ v) & CR0_PDPTE_BITS)) reloadPdptes(c, st.cr3);
  st.cr0 = v;
  st.efer = efer;
  if ((old ^ v) & (CR0_PG | CR0_WP | CR0_PE)) c.tlbFlushAll();
  c.stateChanged();
}

export function setCr4(c: X86Cpu, v: number, hi: number): void {
  const st = c.state;
  if (hi !== 0 || (v & ~CR4_VALID)) c.raise(GP_VECTOR, 0);
  const old = st.cr4;
  const lma = (st.efer & EFER_LMA) !== 0;
  if (lma && !(v & CR4_PAE)) c.raise(GP_VECTOR, 0);
  if (lma && ((old ^ v) & CR4_LA57)) c.raise(GP_VECTOR, 0);
  if ((v & CR4_PCIDE) && !(old & CR4_PCIDE) && (!lma || (st.cr3 % 4096) !== 0)) c.raise(GP_VECTOR, 0);
  if ((st.cr0 & CR0_PG) && (v & CR4_PAE) && !lma && ((old ^ v) & CR4_PDPTE_BITS)) reloadPdptes(c, st.cr3);
  st.cr4 = v >>> 0;
  if ((old ^ v) & (CR4_PAE | CR4_PGE | CR4_PSE | CR4_PCIDE | CR4_SMEP | CR4_SMAP | CR4_LA57)) c.tlbFlushAll();
  c.stateChanged();
}

export function setCr3(c: X86Cpu, lo: number, hi: number): void {
  const st = c.state;
  const pcide = (st.cr4 & CR4_PCIDE) !== 0;
  if (c.m64 || (st.efer & EFER_LMA)) {
    const h = pcide ? hi & 0x7fffffff : hi;
    if (h >>> (MAXPHYADDR - 32)) c.raise(GP_VECTOR, 0);
    st.cr3 = (h >>> 0) * 4294967296 + (lo >>> 0);
  } else {
    if ((st.cr0 & CR0_PG) && (st.cr4 & CR4_PAE)) reloadPdptes(c, lo);
    st.cr3 = lo >>> 0;
  }
  // Without PCID tagging in the TLB, every CR3 load drops the non-global entries (a superset of what is required).
  c.tlbFlushNonGlobal();
}

/**
 * In VMX non-root operation a MOV to CR0/CR4, CLTS or LMSW that did not exit leaves the bits the
 * guest/host mask gives to the host unchanged (SDM Vol. 3C 26.3, "CR0 and CR4"): a guest toggling
 * CR4.PGE must not clear the host-owned CR4.VMXE.
 */
function guestOwned(v: VmxNonRoot, cr: 0 | 4, value: number, current: number): number {
  return v.crWriteValue !== undefined ? v.crWriteValue(cr, value, current) : value;
}

/** 0F 20 / 0F 22: MOV r, CRn / MOV CRn, r (the r/m field is always a register) */
export function movCr(c: X86Cpu): void {
  requireCpl0(c);
  const cr = c.reg;
  if (cr !== 0 && cr !== 2 && cr !== 3 && cr !== 4 && cr !== 8) c.raise(UD_VECTOR, -1);
  if (cr === 8 && !c.m64) c.raise(UD_VECTOR, -1);
  const sz = c.m64 ? 3 : 2;
  const r = c.rm;
  const st = c.state;
  const v = c.vmx;
  if (c.opb === 0x20) {
    if (v !== null && (cr === 3 || cr === 8)) { const n = hookBegin(c); v.movFromCr(cr, r, c.ilen); st.rip = n; }
    let val: number;
    switch (cr) {
      case 0: val = v !== null ? v.crReadShadow(0, st.cr0) : st.cr0; break;
      case 2: val = st.cr2; break;
      case 3: val = st.cr3; break;
      case 4: val = v !== null ? v.crReadShadow(4, st.cr4) : st.cr4; break;
      default: val = st.cr8; break;
    }
    c.setReg(sz, r, val | 0, sz === 3 ? Math.floor(val / 4294967296) | 0 : 0);
    return;
  }
  const lo = c.getReg(sz, r), hi = sz === 3 ? c.rhi : 0;
  if (v !== null) {
    const n = hookBegin(c);
    v.movToCr(cr, r, hi * 4294967296 + (lo >>> 0), c.ilen);
    st.rip = n;
  }
  switch (cr) {
    case 0: setCr0(c, v !== null ? guestOwned(v, 0, lo, st.cr0) : lo, hi); break;
    case 2: st.cr2 = sz === 3 ? hi * 4294967296 + (lo >>> 0) : lo >>> 0; break;
    case 3: setCr3(c, lo, hi); break;
    case 4: setCr4(c, v !== null ? guestOwned(v, 4, lo, st.cr4) : lo, hi); break;
    default: if (hi !== 0 || (lo & ~15)) c.raise(GP_VECTOR, 0); st.cr8 = lo; break;
  }
}

/** 0F 21 / 0F 23: MOV r, DRn / MOV DRn, r */
export function movDr(c: X86Cpu): void {
  requireCpl0(c);
  const st = c.state;
  let dr = c.reg;
  if (dr > 7) c.raise(UD_VECTOR, -1);
  if ((dr === 4 || dr === 5) && (st.cr4 & 8)) c.raise(UD_VECTOR, -1);
  if (dr === 4 || dr === 5) dr += 2;
  const toDr = c.opb === 0x23;
  if (st.dr[7] & 0x2000) {
    // DR7.GD: general-detect #DB fault before the access (SDM 17.2.4).
    st.dr[7] = st.dr[7] & ~0x2000;
    c.faultVec = DB_VECTOR; c.faultErr = -1; c.faultExtra = 0x2000;
    c.raise(DB_VECTOR, -1);
  }
  const v = c.vmx;
  if (v !== null) { const n = hookBegin(c); v.movDr(c.reg, c.rm, toDr, c.ilen); st.rip = n; }
  const sz = c.m64 ? 3 : 2;
  if (!toDr) {
    let val = st.dr[dr];
    if (dr === 6) val = (val | 0xffff0ff0) >>> 0;
    if (dr === 7) val = (val | 0x400) >>> 0;
    c.setReg(sz, c.rm, val | 0, sz === 3 ? Math.floor(val / 4294967296) | 0 : 0);
    return;
  }
  const lo = c.getReg(sz, c.rm), hi = sz === 3 ? c.rhi : 0;
  if ((dr === 6 || dr === 7) && hi !== 0) c.raise(GP_VECTOR, 0);
  if (dr < 4) st.dr[dr] = sz === 3 ? hi * 4294967296 + (lo >>> 0) : lo >>> 0;
  else if (dr === 6) st.dr[6] = ((lo & 0x0001e00f) | 0xffff0ff0) >>> 0;
  else { st.dr[7] = ((lo & 0xffff2bff) | 0x400) >>> 0; c.modeFlagsChanged(); }
}

/** 0F 06: CLTS */
export function clts(c: X86Cpu): void {
  requireCpl0(c);
  const v = c.vmx;
  const st = c.state;
  if (v !== null) { const n = hookBegin(c); v.clts(c.ilen); st.rip = n; }
  const nv = (st.cr0 & ~CR0_TS) >>> 0;
  st.cr0 = v !== null ? guestOwned(v, 0, nv, st.cr0) : nv;
}

/** 0F 01 /6: LMSW Ew (can set PE, not clear it; only PE/MP/EM/TS) */
export function lmsw(c: X86Cpu): void {
  requireCpl0(c);
  const mem = c.mod !== 3;
  const la = mem ? eaLin(c, 2, 1) : 0;
  const src = mem ? rdL(c, 1, la) : c.getReg(1, c.rm);
  const v = c.vmx;
  if (v !== null) { const n = hookBegin(c); v.lmsw(src, c.ilen, mem, la); c.state.rip = n; }
  const st = c.state;
  const nv = (st.cr0 & ~0xe) | (src & 0xf) | (st.cr0 & 1);
  setCr0(c, v !== null ? guestOwned(v, 0, nv, st.cr0) : nv, 0);
}

/** 0F 01 /4: SMSW (UMIP applies) */
export function smsw(c: X86Cpu): void {
  if ((c.state.cr4 & (1 << 11)) && c.pe && c.cpl > 0) c.raise(GP_VECTOR, 0);
  const v = c.vmx;
  const cr0 = v !== null ? v.crReadShadow(0, c.state.cr0) : c.state.cr0;
  if (c.mod === 3) c.setReg(c.osz, c.rm, cr0, 0);
  else wrE(c, 1, cr0 & 0xffff, 0);
}

/** 0F 01 /7 (memory): INVLPG */
export function invlpg(c: X86Cpu): void {
  requireCpl0(c);
  const la = c.m64 ? ea(c) + c.effBase[c.seg] : (ea(c) + c.effBase[c.seg]) >>> 0;
  const v = c.vmx;
  if (v !== null) { const n = hookBegin(c); v.invlpg(la, c.ilen); c.state.rip = n; }
  c.tlbFlushPage(la);
}

/** 66 0F 38 82: INVPCID r, m128 */
export function invpcid(c: X86Cpu): void {
  if (!c.p66 || c.mod === 3) c.raise(UD_VECTOR, -1);
  requireCpl0(c);
  const v = c.vmx;
  if (v !== null) {
    const n = hookBegin(c);
    v.invpcid(c.ilen, vmxMemInfo(c) | (c.reg << 28), c.disp);
    c.state.rip = n;
  }
  const type = c.m64 ? c.getReg(3, c.reg) : c.getReg(2, c.reg) >>> 0;
  const typeHi = c.m64 ? c.rhi : 0;
  const la = eaLin(c, 16, 1);
  const pcid = rdL(c, 3, la) & 0xfff, pcidHi = c.rhi;
  const addrLo = rdL(c, 3, c.m64 ? la + 8 : (la + 8) >>> 0), addrHi = c.rhi;
  if (typeHi !== 0 || type > 3) c.raise(GP_VECTOR, 0);
  if ((rdL(c, 2, la) & ~0xfff) || pcidHi) c.raise(GP_VECTOR, 0);
  switch (type) {
    case 0: { const a = addrHi * 4294967296 + (addrLo >>> 0); if (a < -c.canon || a >= c.canon) c.raise(GP_VECTOR, 0); c.tlbFlushPage(a); break; }
    case 1: c.tlbFlushPcid(pcid); break;
    case 2: c.tlbFlushAll(); break;
    default: c.tlbFlushNonGlobal(); break;
  }
}

/** 0F 09: WBINVD; 0F 08: INVD (no caches to write back) */
export function wbinvd(c: X86Cpu): void {
  requireCpl0(c);
  const v = c.vmx;
  if (v !== null) { const n = hookBegin(c); if (c.opb === 0x09) v.wbinvd(c.ilen); else v.invd(c.ilen); c.state.rip = n; }
}

/** 90 with F3: PAUSE; otherwise NOP (xchg eax,eax without REX.B is handled by xchgAX) */
export function pause(c: X86Cpu): void {
  const v = c.vmx;
  if (v !== null) { const n = hookBegin(c); v.pause(c.ilen); c.state.rip = n; }
}

/** 0F 1F /0 and the 0F 18-1F hint space: multi-byte NOP (memory operand not accessed) */
export function nopEv(_c: X86Cpu): void {
  // Intentionally no operation (SDM NOP: the operand is not accessed).
}

/** 0F 0B UD2, 0F B9 UD1, 0F FF UD0: defined invalid opcodes, raised as #UD (not "unimplemented"). */
export function ud(c: X86Cpu): void {
  c.raise(UD_VECTOR, -1);
}

/** 0F 01 D0: XGETBV: ECX = 0 reads XCR0, ECX = 1 reads XINUSE AND XCR0 (CPUID.(EAX=0DH,ECX=1):EAX[2]). */
export function xgetbv(c: X86Cpu): void {
  const st = c.state;
  if (!(st.cr4 & CR4_OSXSAVE)) c.raise(UD_VECTOR, -1);
  const ecx = st.gpr[2] >>> 0;
  if (ecx > 1) c.raise(GP_VECTOR, 0);
  c.setReg(2, 0, ecx === 0 ? st.xcr0 : xinuse(st) & st.xcr0, 0);
  c.setReg(2, 2, 0, 0);
}

/**
 * 0F 01 D1: XSETBV (SDM Vol. 2 XSETBV): only XCR0; bit 0 (x87) must be set, AVX needs SSE, and
 * only the components this CPU supports (x87, SSE) may be enabled, otherwise #GP(0).
 */
export function xsetbv(c: X86Cpu): void {
  if (!(c.state.cr4 & CR4_OSXSAVE)) c.raise(UD_VECTOR, -1);
  requireCpl0(c);
  const v = c.vmx;
  if (v !== null) { const n = hookBegin(c); v.xsetbv(c.ilen); c.state.rip = n; }
  const g = c.state.gpr;
  const lo = g[0] >>> 0;
  if ((g[2] >>> 0) !== 0 || g[4] !== 0 || !(lo & XFEATURE_MASK_FP) || (lo & ~XCR0_SUPPORTED) !== 0 ||
    ((lo & XFEATURE_MASK_YMM) !== 0 && (lo & XFEATURE_MASK_SSE) === 0)) c.raise(GP_VECTOR, 0);
  c.state.xcr0 = lo;
}

/** 0F C7 /6 RDRAND, /7 RDSEED (register operand): CF=1 and a random value. */
export function rdrand(c: X86Cpu): void {
  if (c.mod !== 3 || c.rep) c.raise(UD_VECTOR, -1);
  const seed = (c.reg & 7) === 7;
  const v = c.vmx;
  if (v !== null) {
    const n = hookBegin(c);
    const info = (c.rm << 3) | ((c.osz === 1 ? 0 : c.osz === 2 ? 1 : 2) << 11);
    if (seed) v.rdseed(c.ilen, info); else v.rdrand(c.ilen, info);
    c.state.rip = n;
  }
  const lo = (Math.random() * 4294967296) | 0, hi = (Math.random() * 4294967296) | 0;
  c.setReg(c.osz, c.rm, lo, hi);
  flagsSync(c);
  c.fl = (c.fl & ~ARITH) | CF;
}

/** 0F 01 F8: SWAPGS (64-bit mode, CPL 0) */
export function swapgs(c: X86Cpu): void {
  if (!c.m64) c.raise(UD_VECTOR, -1);
  requireCpl0(c);
  const st = c.state;
  const t = st.segBase[5];
  st.segBase[5] = c.kernelGsBase;
  c.kernelGsBase = t;
  c.segCache(5);
}

/** 0F 01 C8: MONITOR; 0F 01 C9: MWAIT (CPUID does not report MONITOR: #UD after the intercept check) */
export function monitorMwait(c: X86Cpu, mwait: boolean): void {
  requireCpl0(c);
  const v = c.vmx;
  if (v !== null) { const n = hookBegin(c); if (mwait) v.mwait(c.ilen); else v.monitor(c.ilen); c.state.rip = n; }
  c.raise(UD_VECTOR, -1);
}

/** VMX instructions and VMCALL: in non-root operation they exit; outside VMX operation they are #UD. */
export function vmxInsn(c: X86Cpu, reason: number): void {
  const v = c.vmx;
  if (v !== null) {
    const n = hookBegin(c);
    let info = 0, qual = 0;
    if (reason !== EXIT_REASON_VMCALL && reason !== EXIT_REASON_VMLAUNCH && reason !== EXIT_REASON_VMRESUME && reason !== EXIT_REASON_VMOFF && reason !== EXIT_REASON_VMFUNC) {
      if (c.mod === 3) info = (c.rm << 3) | (1 << 10);
      else { info = vmxMemInfo(c); qual = c.disp; }
      info |= (c.reg << 28);
    }
    v.vmxInstruction(reason, c.ilen, info, qual);
    c.state.rip = n;
  }
  c.raise(UD_VECTOR, -1);
}

export const VMX_REASONS = {
  VMCALL: EXIT_REASON_VMCALL, VMCLEAR: EXIT_REASON_VMCLEAR, VMLAUNCH: EXIT_REASON_VMLAUNCH, VMPTRLD: EXIT_REASON_VMPTRLD,
  VMPTRST: EXIT_REASON_VMPTRST, VMREAD: EXIT_REASON_VMREAD, VMRESUME: EXIT_REASON_VMRESUME, VMWRITE: EXIT_REASON_VMWRITE,
  VMOFF: EXIT_REASON_VMOFF, VMXON: EXIT_REASON_VMON, INVEPT: EXIT_REASON_INVEPT, INVVPID: EXIT_REASON_INVVPID, VMFUNC: EXIT_REASON_VMFUNC,
};

