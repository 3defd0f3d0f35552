/**
 * The MSR part of arch/x86/kvm/x86.c: kvm_get_msr_common / kvm_set_msr_common for the MSRs
 * KVM emulates itself, the dispatch to the vendor (MSRs held in the VMCS or passed through to
 * the processor), KVM_GET_MSR_INDEX_LIST, RDMSR/WRMSR emulation with the
 * KVM_CAP_X86_USER_SPACE_MSR exits (KVM_EXIT_X86_RDMSR / KVM_EXIT_X86_WRMSR).
 */

import { KVM_MSR_FILTER_READ, KVM_MSR_FILTER_WRITE, kvmMsrAllowed } from "./msr_filter.js";
import { E2BIG } from "../../../uapi/errno.js";
import * as K from "../../../uapi/kvm.js";
import { KvmError } from "../../../virt/kvm/kvm_error.js";
import { ExitResult } from "./kvm_x86_ops.js";
import { CompleteUserspaceIo, EFER_LMA, EFER_LME, EFER_NX, EFER_SCE, GP_VECTOR, X86_CR0_PG, type X86Vcpu } from "./kvm_host.js";
import { KVM_SUPPORTED_XSS, guestCpuidHas } from "./cpuid.js";
import { kvmLapicGetMsr, kvmLapicSetMsr } from "./x86_irqchip.js";
import { MSR_IA32_TSC, MSR_IA32_TSC_ADJUST, kvmTscGetMsr, kvmTscSetMsr } from "./tsc.js";
import { kvmClockGetMsr, kvmClockSetMsr, KVMCLOCK_MSRS } from "./kvmclock.js";

export { MSR_IA32_TSC, MSR_IA32_TSC_ADJUST };

export const MSR_IA32_APICBASE = 0x1b;
export const MSR_IA32_FEAT_CTL = 0x3a;
export const MSR_IA32_UCODE_REV = 0x8b;
export const MSR_IA32_TSC_DEADLINE = 0x6e0;
export const MSR_MTRRcap = 0xfe;
export const MSR_IA32_SYSENTER_CS = 0x174;
export const MSR_IA32_SYSENTER_ESP = 0x175;
export const MSR_IA32_SYSENTER_EIP = 0x176;
export const MSR_IA32_MCG_CAP = 0x179;
export const MSR_IA32_MCG_STATUS = 0x17a;
export const MSR_IA32_MCG_CTL = 0x17b;
export const MSR_IA32_MISC_ENABLE = 0x1a0;
export const MSR_IA32_CR_PAT = 0x277;
export const MSR_MTRRdefType = 0x2ff;
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

/** MTRR MSRs: variable ranges 0x200-0x20f and the fixed-range ones (SDM 11.11.2). */
const MTRR_MSRS = [
  ...Array.from({ length: 16 }, (_, i) => 0x200 + i),
  0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f, MSR_MTRRdefType,
];
const isMtrr = (i: number): boolean => (i >= 0x200 && i <= 0x20f) || i === 0x250 || i === 0x258 || i === 0x259 || (i >= 0x268 && i <= 0x26f) || i === MSR_MTRRdefType;

/** msrs_to_save + emulated_msrs: what KVM_GET_MSR_INDEX_LIST reports (each really handled below or by the vendor). */
export const KVM_MSR_INDEX_LIST: readonly number[] = [
  MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP, MSR_STAR, MSR_CSTAR,
  MSR_KERNEL_GS_BASE, MSR_SYSCALL_MASK, MSR_LSTAR, MSR_IA32_TSC, MSR_TSC_AUX,
  MSR_IA32_APICBASE, MSR_IA32_TSC_ADJUST, MSR_IA32_TSC_DEADLINE, MSR_IA32_MISC_ENABLE, MSR_IA32_MCG_STATUS, MSR_IA32_MCG_CTL,
  MSR_IA32_CR_PAT, MSR_EFER, MSR_FS_BASE, MSR_GS_BASE, MSR_MTRRcap, ...MTRR_MSRS, ...KVMCLOCK_MSRS,
];

/** KVM_GET_MSR_INDEX_LIST: `arg.nmsrs` is the room the caller has (E2BIG, with the needed count, when short). */
export function kvmGetMsrIndexList(arg: number | object): { nmsrs: number; indices: number[] } {
  const room = typeof arg === "object" ? (arg as { nmsrs?: number }).nmsrs ?? 0 : 0;
  const n = KVM_MSR_INDEX_LIST.length;
  if (room < n) throw new KvmError(E2BIG, "KVM_GET_MSR_INDEX_LIST", `nmsrs ${room} < ${n}`);
  return { nmsrs: n, indices: [...KVM_MSR_INDEX_LIST] };
}

/** kvm_valid_efer() + set_efer(): reserved bits and the LME-while-paging rule (SDM 2.2.1). */
function setEfer(vcpu: X86Vcpu, lo: number, hi: number, hostInitiated: boolean): boolean {
  const a = vcpu.arch;
  let allowed = EFER_SCE | EFER_LME | EFER_LMA;
  if (guestCpuidHas(vcpu, 0x80000001, 0, "edx", 20) || hostInitiated) allowed |= EFER_NX;
  if (hi !== 0 || (lo & ~allowed) !== 0) return false;
  if (!hostInitiated) {
    if (!guestCpuidHas(vcpu, 0x80000001, 0, "edx", 29) && (lo & EFER_LME) !== 0) return false;
    // LME cannot change while paging is on; LMA is not writable by the guest.
    if ((a.cr0 & X86_CR0_PG) !== 0 && ((lo ^ a.efer) & EFER_LME) !== 0) return false;
    lo = (lo & ~EFER_LMA) | (a.efer & EFER_LMA);
  }
  return a.ops.setEfer(vcpu, lo) === 0;
}

/** guest_cpuid_has(X86_FEATURE_XSAVES): CPUID.(EAX=0DH,ECX=1):EAX[3]. */
function guestHasXsaves(vcpu: X86Vcpu): boolean {
  return guestCpuidHas(vcpu, 0xd, 1, "eax", 3);
}

/** kvm_get_msr_common() then the vendor's get_msr. out = [lo, hi]. */
export function kvmGetMsr(vcpu: X86Vcpu, index: number, out: Int32Array, hostInitiated: boolean): boolean {
  const a = vcpu.arch;
  const apic = kvmLapicGetMsr(vcpu, index >>> 0, out);
  if (apic !== undefined) return apic;
  const tsc = kvmTscGetMsr(vcpu, index >>> 0, out) ?? kvmClockGetMsr(vcpu, index >>> 0, out);
  if (tsc !== undefined) return tsc;
  const s = a.msr;
  index >>>= 0;
  switch (index) {
    case MSR_IA32_APICBASE:
      out[0] = a.apicBase | 0;
      out[1] = Math.floor(a.apicBase / 4294967296);
      return true;
    case MSR_EFER:
      out[0] = a.efer;
      out[1] = 0;
      return true;
    case MSR_IA32_MISC_ENABLE:
      out[0] = s.miscEnableLo;
      out[1] = 0;
      return true;
    case MSR_IA32_MCG_CAP:
    case MSR_IA32_TSC_DEADLINE:
      // TSC_DEADLINE without an in-kernel LAPIC reads as 0 (kvm_get_lapic_tscdeadline_msr).
      out[0] = 0;
      out[1] = 0;
      return true;
    case MSR_IA32_MCG_STATUS:
      out[0] = s.mcgStatusLo;
      out[1] = 0;
      return true;
    case MSR_IA32_MCG_CTL:
      out[0] = s.mcgCtlLo;
      out[1] = 0;
      return true;
    case MSR_IA32_UCODE_REV:
      // The microcode revision lives in bits 63:32.
      out[0] = 0;
      out[1] = 1;
      return true;
    case MSR_IA32_XSS:
      // The guest reads IA32_XSS only if its CPUID has XSAVES; the value is within
      // KVM_SUPPORTED_XSS, which has no bit, so it is 0.
      if (!hostInitiated && !guestHasXsaves(vcpu)) return false;
      out[0] = 0;
      out[1] = 0;
      return true;
    case MSR_MTRRcap:
      // 8 variable ranges, fixed ranges, write-combining (SDM 11.11.1).
      out[0] = 0x500 | 8;
      out[1] = 0;
      return true;
    default:
      if (isMtrr(index)) {
        const v = s.mtrr.get(index);
        out[0] = v ? v[0] : 0;
        out[1] = v ? v[1] : 0;
        return true;
      }
      return a.ops.getMsr(vcpu, index, out, hostInitiated);
  }
}

/** kvm_set_msr_common() then the vendor's set_msr. */
export function kvmSetMsr(vcpu: X86Vcpu, index: number, lo: number, hi: number, hostInitiated: boolean): boolean {
  const a = vcpu.arch;
  const apic = kvmLapicSetMsr(vcpu, index >>> 0, lo, hi, hostInitiated);
  if (apic !== undefined) return apic;
  const tsc = kvmTscSetMsr(vcpu, index >>> 0, lo, hi, hostInitiated) ?? kvmClockSetMsr(vcpu, index >>> 0, lo, hi, hostInitiated);
  if (tsc !== undefined) return tsc;
  const s = a.msr;
  index >>>= 0;
  switch (index) {
    case MSR_IA32_APICBASE: {
      // Reserved: bits 0-7, 9, and above MAXPHYADDR; BSP flag writable only by the host.
      const v = (hi >>> 0) * 4294967296 + (lo >>> 0);
      if ((lo & 0x2ff) !== 0 || v >= 2 ** a.maxphyaddr) return false;
      if (!hostInitiated && ((lo ^ a.apicBase) & 0x100) !== 0) return false;
      a.apicBase = v;
      return true;
    }
    case MSR_EFER:
      return setEfer(vcpu, lo, hi, hostInitiated);
    case MSR_IA32_MISC_ENABLE:
      s.miscEnableLo = lo;
      return hi === 0;
    case MSR_IA32_MCG_STATUS:
      s.mcgStatusLo = lo;
      return true;
    case MSR_IA32_MCG_CTL:
      // Only all-zeros or all-ones (SDM 15.3.1.3).
      if (lo !== 0 && lo !== -1) return false;
      s.mcgCtlLo = lo;
      return true;
    case MSR_IA32_MCG_CAP:
      return hostInitiated && lo === 0 && hi === 0;
    case MSR_IA32_UCODE_REV:
      // Guest writes (Linux writes 0 before CPUID(1) to read back the revision) are accepted and
      // dropped, as kvm_set_msr_common() does; the revision stays what KVM reports.
      return true;
    case MSR_IA32_TSC_DEADLINE:
      return true;
    case MSR_MTRRcap:
      return hostInitiated;
    case MSR_IA32_XSS:
      // kvm_set_msr_common(): guest writes need CPUID XSAVES; any bit outside supported_xss fails (#GP / KVM_SET_MSRS stops).
      if (!hostInitiated && !guestHasXsaves(vcpu)) return false;
      return hi === 0 && (lo & ~KVM_SUPPORTED_XSS) === 0;
    default:
      if (isMtrr(index)) {
        s.mtrr.set(index, [lo | 0, hi | 0]);
        return true;
      }
      return a.ops.setMsr(vcpu, index, lo, hi, hostInitiated);
  }
}

const msrOut = new Int32Array(2);

function traceMsr(vcpu: X86Vcpu, write: boolean, ecx: number, lo: number, hi: number, exception: boolean): void {
  if (vcpu.kvm.tracing) vcpu.kvm.trace("kvm_msr", { write: write ? 1 : 0, ecx, data: (hi >>> 0) * 4294967296 + (lo >>> 0), exception }, vcpu);
}

/**
 * kvm_msr_user_space(): exit to userspace for a failed access when KVM_CAP_X86_USER_SPACE_MSR
 * asks for that reason (KVM_MSR_EXIT_REASON_UNKNOWN for an MSR KVM does not handle,
 * KVM_MSR_EXIT_REASON_FILTER for one the MSR filter denies).
 */
function msrUserSpace(vcpu: X86Vcpu, index: number, exitReason: number, lo: number, hi: number, cui: CompleteUserspaceIo,
  reason: number = K.KVM_MSR_EXIT_REASON_UNKNOWN): boolean {
  if ((vcpu.kvm.arch.userSpaceMsrMask & reason) === 0) return false;
  const run = vcpu.arch.run;
  run.exitReason = exitReason;
  run.msrError = 0;
  run.msrReason = reason;
  run.msrIndex = index;
  run.msrDataBig = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  vcpu.arch.msrIndex = index;
  vcpu.arch.completeUserspaceIo = cui;
  return true;
}

/** RDMSR result into EDX:EAX (32-bit writes zero-extend). */
function setEdxEax(vcpu: X86Vcpu, lo: number, hi: number): void {
  const r = vcpu.arch.regs;
  r[0] = lo | 0;
  r[1] = 0;
  r[4] = hi | 0;
  r[5] = 0;
}

/**
 * kvm_emulate_rdmsr(): ECX selects the MSR; success loads EDX:EAX and skips the instruction;
 * failure injects #GP or exits to userspace. `skip` is kvm_skip_emulated_instruction.
 */
export function kvmEmulateRdmsr(vcpu: X86Vcpu, skip: (v: X86Vcpu) => ExitResult, injectGp: (v: X86Vcpu) => void): ExitResult {
  const ecx = vcpu.arch.regs[2] >>> 0;
  if (!kvmMsrAllowed(vcpu.kvm.arch.msrFilter, ecx, KVM_MSR_FILTER_READ)) {
    if (msrUserSpace(vcpu, ecx, K.KVM_EXIT_X86_RDMSR, 0, 0, CompleteUserspaceIo.EmulatedRdmsr, K.KVM_MSR_EXIT_REASON_FILTER)) return ExitResult.ToUserspace;
    traceMsr(vcpu, false, ecx, 0, 0, true);
    injectGp(vcpu);
    return ExitResult.Resume;
  }
  if (kvmGetMsr(vcpu, ecx, msrOut, false)) {
    traceMsr(vcpu, false, ecx, msrOut[0], msrOut[1], false);
    setEdxEax(vcpu, msrOut[0], msrOut[1]);
    return skip(vcpu);
  }
  if (msrUserSpace(vcpu, ecx, K.KVM_EXIT_X86_RDMSR, 0, 0, CompleteUserspaceIo.EmulatedRdmsr)) return ExitResult.ToUserspace;
  traceMsr(vcpu, false, ecx, 0, 0, true);
  injectGp(vcpu);
  return ExitResult.Resume;
}

/** kvm_emulate_wrmsr() */
export function kvmEmulateWrmsr(vcpu: X86Vcpu, skip: (v: X86Vcpu) => ExitResult, injectGp: (v: X86Vcpu) => void): ExitResult {
  const r = vcpu.arch.regs;
  const ecx = r[2] >>> 0;
  const lo = r[0];
  const hi = r[4];
  if (!kvmMsrAllowed(vcpu.kvm.arch.msrFilter, ecx, KVM_MSR_FILTER_WRITE)) {
    if (msrUserSpace(vcpu, ecx, K.KVM_EXIT_X86_WRMSR, lo, hi, CompleteUserspaceIo.EmulatedWrmsr, K.KVM_MSR_EXIT_REASON_FILTER)) return ExitResult.ToUserspace;
    traceMsr(vcpu, true, ecx, lo, hi, true);
    injectGp(vcpu);
    return ExitResult.Resume;
  }
  if (kvmSetMsr(vcpu, ecx, lo, hi, false)) {
    traceMsr(vcpu, true, ecx, lo, hi, false);
    return skip(vcpu);
  }
  if (msrUserSpace(vcpu, ecx, K.KVM_EXIT_X86_WRMSR, lo, hi, CompleteUserspaceIo.EmulatedWrmsr)) return ExitResult.ToUserspace;
  traceMsr(vcpu, true, ecx, lo, hi, true);
  injectGp(vcpu);
  return ExitResult.Resume;
}

/** complete_emulated_rdmsr / complete_emulated_msr_access: userspace answered (run.msr.error != 0 means #GP). */
export function completeEmulatedMsr(vcpu: X86Vcpu, isRead: boolean, skip: (v: X86Vcpu) => ExitResult, injectGp: (v: X86Vcpu) => void): ExitResult {
  const run = vcpu.arch.run;
  if (run.msrError !== 0) {
    injectGp(vcpu);
    return ExitResult.Resume;
  }
  if (isRead) {
    const d = run.msrDataBig;
    setEdxEax(vcpu, Number(d & 0xffffffffn), Number(d >> 32n));
  }
  return skip(vcpu);
}

export { GP_VECTOR };
