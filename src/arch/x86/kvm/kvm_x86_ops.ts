/**
 * arch/x86/include/asm/kvm-x86-ops.h + struct kvm_x86_ops: the vendor interface. x86.ts (the
 * vendor-neutral part of x86 KVM) reaches VMX (vmx/vmx.ts) or a future SVM module only through
 * this table; each vendor module provides one object literal `satisfies KvmX86Ops`.
 *
 * Members without `?` are KVM_X86_OP (required); members with `?` are KVM_X86_OP_OPTIONAL.
 */

import type { KvmLike } from "../../../virt/kvm/kvm_host.js";
import type { X86Vcpu } from "./kvm_host.js";

/**
 * What an exit handler decided (the 1 / 0 of Linux's handlers, named): resume the guest, or
 * return to userspace with kvm_run filled in.
 */
export const enum ExitResult {
  ToUserspace = 0,
  Resume = 1,
}

/** struct kvm_segment with numbers (base is a canonical, sign-extended number; see hw/x86/state.ts). */
export interface KvmSeg {
  base: number;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

/** struct desc_ptr */
export interface DescPtr {
  base: number;
  limit: number;
}

/** enum exit_fastpath_completion */
export const EXIT_FASTPATH_NONE = 0;
export const EXIT_FASTPATH_REENTER_GUEST = 1;
export const EXIT_FASTPATH_EXIT_HANDLED = 2;

/** Registers cached lazily from the VMCS (enum kvm_reg beyond the GPRs). */
export const VCPU_REGS_RSP = 4;
export const VCPU_REGS_RIP = 16;
export const VCPU_EXREG_PDPTR = 17;
export const VCPU_EXREG_CR0 = 18;
export const VCPU_EXREG_CR3 = 19;
export const VCPU_EXREG_CR4 = 20;
export const VCPU_EXREG_RFLAGS = 21;
export const VCPU_EXREG_SEGMENTS = 22;
export const VCPU_EXREG_EXIT_INFO_1 = 23;
export const VCPU_EXREG_EXIT_INFO_2 = 24;

export interface KvmX86Ops {
  readonly name: string;

  // --- module / VM / vCPU lifecycle
  /** hardware_enable(): VMXON on the processor the vCPU runs on. */
  hardwareEnable(vcpu: X86Vcpu): void;
  /** vm_init() */
  vmInit?(kvm: KvmLike): void;
  /** vcpu_create(): vendor state, VMCS allocation. */
  vcpuCreate(vcpu: X86Vcpu): void;
  /** vcpu_free() */
  vcpuFree(vcpu: X86Vcpu): void;
  /** vcpu_reset(): architectural reset state into the VMCS (init_event: INIT rather than power-on). */
  vcpuReset(vcpu: X86Vcpu, initEvent: boolean): void;
  /** msr_filter_changed: recompute which MSRs the guest may access without exits (KVM_X86_SET_MSR_FILTER). */
  msrFilterChanged?(vcpu: X86Vcpu): void;
  /** vcpu_after_set_cpuid() */
  vcpuAfterSetCpuid?(vcpu: X86Vcpu): void;

  // --- register state
  getSegment(vcpu: X86Vcpu, out: KvmSeg, seg: number): void;
  setSegment(vcpu: X86Vcpu, var_: KvmSeg, seg: number): void;
  getSegmentBase(vcpu: X86Vcpu, seg: number): number;
  getCpl(vcpu: X86Vcpu): number;
  /** get_cs_db_l_bits(): [db, l] */
  getCsDbLBits(vcpu: X86Vcpu, out: Int32Array): void;
  isValidCr0(vcpu: X86Vcpu, cr0: number): boolean;
  setCr0(vcpu: X86Vcpu, cr0: number): void;
  postSetCr3?(vcpu: X86Vcpu, cr3: number): void;
  isValidCr4(vcpu: X86Vcpu, cr4: number): boolean;
  setCr4(vcpu: X86Vcpu, cr4: number): void;
  /** set_efer(): returns 0, or 1 when the value cannot be loaded. */
  setEfer(vcpu: X86Vcpu, efer: number): number;
  getIdt(vcpu: X86Vcpu, out: DescPtr): void;
  setIdt(vcpu: X86Vcpu, dt: DescPtr): void;
  getGdt(vcpu: X86Vcpu, out: DescPtr): void;
  setGdt(vcpu: X86Vcpu, dt: DescPtr): void;
  setDr7(vcpu: X86Vcpu, value: number): void;
  /** cache_reg(): pull a lazily cached register (VCPU_REGS_* / VCPU_EXREG_*) from the VMCS. */
  cacheReg(vcpu: X86Vcpu, reg: number): void;
  getRflags(vcpu: X86Vcpu): number;
  setRflags(vcpu: X86Vcpu, rflags: number): void;
  getIfFlag(vcpu: X86Vcpu): boolean;
  /** get_msr(): vendor MSRs (and the ones held in the VMCS). Returns false if not handled. */
  getMsr(vcpu: X86Vcpu, index: number, out: Int32Array, hostInitiated: boolean): boolean;
  setMsr(vcpu: X86Vcpu, index: number, lo: number, hi: number, hostInitiated: boolean): boolean;
  /** rdtsc() on the processor the vCPU runs on (the host TSC the guest's is derived from). */
  readHostTsc?(vcpu: X86Vcpu): number;
  /** tsc_khz of that processor. */
  hostTscKhz?(vcpu: X86Vcpu): number;
  /** write_tsc_offset(): the signed offset added to the (scaled) host TSC. */
  writeTscOffset?(vcpu: X86Vcpu, offset: number): void;
  /** write_tsc_multiplier(): the 16.48 multiplier as lo/hi; false when the processor cannot scale (no kvm_caps.has_tsc_control). */
  writeTscMultiplier?(vcpu: X86Vcpu, lo: number, hi: number): boolean;

  // --- TLB and MMU
  flushTlbAll(vcpu: X86Vcpu): void;
  flushTlbCurrent(vcpu: X86Vcpu): void;
  flushTlbGva(vcpu: X86Vcpu, gva: number): void;
  flushTlbGuest(vcpu: X86Vcpu): void;
  /** sched_in(): the vCPU's thread has the CPU again (each KVM_RUN in this single-threaded host). */
  schedIn?(vcpu: X86Vcpu): void;
  /** load_mmu_pgd(): point the hardware at the root of the TDP tables (EPTP). */
  loadMmuPgd(vcpu: X86Vcpu, rootHpa: number): void;
  /** get_mt_mask(): memory-type bits for a leaf SPTE. */
  getMtMask(vcpu: X86Vcpu | null, gfn: number, isMmio: boolean): number;

  // --- running
  vcpuPreRun?(vcpu: X86Vcpu): boolean;
  /** vcpu_run(): enter the guest once; returns an EXIT_FASTPATH_* value. */
  vcpuRun(vcpu: X86Vcpu): number;
  /** handle_exit(): dispatch the last exit. */
  handleExit(vcpu: X86Vcpu, fastpath: number): ExitResult;
  /** skip_emulated_instruction(): advance RIP past the exiting instruction. Returns false on failure. */
  skipEmulatedInstruction(vcpu: X86Vcpu): boolean;
  setInterruptShadow(vcpu: X86Vcpu, mask: number): void;
  getInterruptShadow(vcpu: X86Vcpu): number;
  /** get_exit_info(): [reason, info1 lo, info1 hi, info2 lo, info2 hi, intr_info, error_code] for tracing. */
  getExitInfo(vcpu: X86Vcpu, out: Float64Array): void;

  // --- events
  injectIrq(vcpu: X86Vcpu, reinjected: boolean): void;
  injectNmi(vcpu: X86Vcpu): void;
  injectException(vcpu: X86Vcpu): void;
  cancelInjection(vcpu: X86Vcpu): void;
  interruptAllowed(vcpu: X86Vcpu, forVmenter: boolean): boolean;
  nmiAllowed(vcpu: X86Vcpu, forVmenter: boolean): boolean;
  getNmiMask(vcpu: X86Vcpu): boolean;
  setNmiMask(vcpu: X86Vcpu, masked: boolean): void;
  enableNmiWindow(vcpu: X86Vcpu): void;
  enableIrqWindow(vcpu: X86Vcpu): void;
  updateExceptionBitmap(vcpu: X86Vcpu): void;
  /** Fold the pending-to-injected state of the last VM exit back into vcpu.arch (vmx_complete_interrupts). */
  completeInterrupts?(vcpu: X86Vcpu): void;

  /** The PAE page-directory pointers the processor uses with EPT (kvm_pdptr_read / load_pdptrs): [lo, hi] of PDPTE i. */
  getPdptr?(vcpu: X86Vcpu, i: number, out: Int32Array): void;
  setPdptr?(vcpu: X86Vcpu, i: number, lo: number, hi: number): void;
  /** Make the processor running the vCPU leave the guest (the IPI of kvm_vcpu_kick). */
  kick?(vcpu: X86Vcpu): void;

  // --- hypercalls
  /** patch_hypercall(): the 3-byte hypercall instruction of this vendor (VMCALL 0f 01 c1). */
  patchHypercall(out: Uint8Array): void;
}
