/**
 * arch/x86/include/asm/kvm_host.h: x86 KVM's per-VM (struct kvm_arch) and per-vCPU
 * (struct kvm_vcpu_arch) state, the x86 vCPU request numbers and architectural constants the
 * run loop, the emulator and the vendor modules share.
 */

import type { MsrFilter } from "./msr_filter.js";
import type { KvmLike, KvmVcpuLike } from "../../../virt/kvm/kvm_host.js";
import { KvmRun } from "../../../uapi/kvm_run.js";
import type { KvmX86Ops } from "./kvm_x86_ops.js";
import type { TdpMmu } from "./mmu/tdp_mmu.js";
import type { HostPageInfo } from "./mmu/mmu.js";
import type { X86State } from "../../../hw/x86/state.js";

export interface X86Kvm extends KvmLike {
  arch: KvmArchX86;
}

export interface X86Vcpu extends KvmVcpuLike {
  readonly kvm: X86Kvm;
  arch: KvmVcpuArch;
}

// vCPU requests (kvm_host.h). The generic ones and the request helpers come from the core;
// vcpu.requests is a 32-bit mask, so x86's own requests are numbered from KVM_REQUEST_ARCH_BASE
// below 32.
export {
  KVM_REQ_TLB_FLUSH, KVM_REQ_VM_DEAD, KVM_REQ_UNBLOCK, KVM_REQUEST_ARCH_BASE,
  kvmMakeRequest, kvmCheckRequest, kvmTestRequest, kvmClearRequest, kvmRequestPending,
} from "../../../virt/kvm/kvm_host.js";
import { KVM_REQUEST_ARCH_BASE } from "../../../virt/kvm/kvm_host.js";
export const KVM_REQ_TRIPLE_FAULT = KVM_REQUEST_ARCH_BASE + 2;
export const KVM_REQ_MMU_SYNC = KVM_REQUEST_ARCH_BASE + 3;
export const KVM_REQ_LOAD_MMU_PGD = KVM_REQUEST_ARCH_BASE + 5;
export const KVM_REQ_EVENT = KVM_REQUEST_ARCH_BASE + 6;
export const KVM_REQ_NMI = KVM_REQUEST_ARCH_BASE + 9;
export const KVM_REQ_TLB_FLUSH_CURRENT = KVM_REQUEST_ARCH_BASE + 18;
export const KVM_REQ_TLB_FLUSH_GUEST = KVM_REQUEST_ARCH_BASE + 19;
/** Rewrite this vCPU's kvmclock (pvclock_vcpu_time_info) before the next entry (kvmclock.ts). */
export const KVM_REQ_CLOCK_UPDATE = KVM_REQUEST_ARCH_BASE + 4;
/** Recompute the VM's master clock, then every vCPU's kvmclock (kvm_update_masterclock). */
export const KVM_REQ_MASTERCLOCK_UPDATE = KVM_REQUEST_ARCH_BASE + 13;

// Exception vectors (SDM Vol. 3A 6.3.1): the processor's own table, shared with hw/x86.
import {
  DE_VECTOR, DB_VECTOR, NMI_VECTOR, BP_VECTOR, OF_VECTOR, BR_VECTOR, UD_VECTOR, NM_VECTOR, DF_VECTOR, TS_VECTOR, NP_VECTOR, SS_VECTOR, GP_VECTOR, PF_VECTOR, MF_VECTOR, AC_VECTOR, MC_VECTOR, XM_VECTOR,
} from "../../../hw/x86/fault.js";
export {
  DE_VECTOR, DB_VECTOR, NMI_VECTOR, BP_VECTOR, OF_VECTOR, BR_VECTOR, UD_VECTOR, NM_VECTOR, DF_VECTOR, TS_VECTOR, NP_VECTOR, SS_VECTOR, GP_VECTOR, PF_VECTOR, MF_VECTOR, AC_VECTOR, MC_VECTOR, XM_VECTOR,
};
export const VE_VECTOR = 20;

/** x86_exception_has_error_code(): #DF #TS #NP #SS #GP #PF #AC */
export const EXCEPTION_HAS_ERROR_CODE_MASK = (1 << DF_VECTOR) | (1 << TS_VECTOR) | (1 << NP_VECTOR) | (1 << SS_VECTOR) | (1 << GP_VECTOR) | (1 << PF_VECTOR) | (1 << AC_VECTOR);

// CR0 / CR4 / EFER / RFLAGS bits (SDM Vol. 3A 2.5, 2.2.1).
export const X86_CR0_PE = 1 << 0;
export const X86_CR0_MP = 1 << 1;
export const X86_CR0_EM = 1 << 2;
export const X86_CR0_TS = 1 << 3;
export const X86_CR0_ET = 1 << 4;
export const X86_CR0_NE = 1 << 5;
export const X86_CR0_WP = 1 << 16;
export const X86_CR0_AM = 1 << 18;
export const X86_CR0_NW = 1 << 29;
export const X86_CR0_CD = 1 << 30;
export const X86_CR0_PG = 1 << 31;
export const X86_CR4_VME = 1 << 0;
export const X86_CR4_PVI = 1 << 1;
export const X86_CR4_TSD = 1 << 2;
export const X86_CR4_DE = 1 << 3;
export const X86_CR4_PSE = 1 << 4;
export const X86_CR4_PAE = 1 << 5;
export const X86_CR4_MCE = 1 << 6;
export const X86_CR4_PGE = 1 << 7;
export const X86_CR4_PCE = 1 << 8;
export const X86_CR4_OSFXSR = 1 << 9;
export const X86_CR4_OSXMMEXCPT = 1 << 10;
export const X86_CR4_UMIP = 1 << 11;
export const X86_CR4_LA57 = 1 << 12;
export const X86_CR4_VMXE = 1 << 13;
export const X86_CR4_FSGSBASE = 1 << 16;
export const X86_CR4_PCIDE = 1 << 17;
export const X86_CR4_OSXSAVE = 1 << 18;
export const X86_CR4_SMEP = 1 << 20;
export const X86_CR4_SMAP = 1 << 21;
export const X86_CR4_PKE = 1 << 22;
export const EFER_SCE = 1 << 0;
export const EFER_LME = 1 << 8;
export const EFER_LMA = 1 << 10;
export const EFER_NX = 1 << 11;
export const X86_EFLAGS_CF = 1 << 0;
export const X86_EFLAGS_FIXED = 1 << 1;
export const X86_EFLAGS_PF = 1 << 2;
export const X86_EFLAGS_AF = 1 << 4;
export const X86_EFLAGS_ZF = 1 << 6;
export const X86_EFLAGS_SF = 1 << 7;
export const X86_EFLAGS_TF = 1 << 8;
export const X86_EFLAGS_IF = 1 << 9;
export const X86_EFLAGS_DF = 1 << 10;
export const X86_EFLAGS_OF = 1 << 11;
export const X86_EFLAGS_IOPL = 3 << 12;
export const X86_EFLAGS_NT = 1 << 14;
export const X86_EFLAGS_RF = 1 << 16;
export const X86_EFLAGS_VM = 1 << 17;
export const X86_EFLAGS_AC = 1 << 18;

/** CR0 bits KVM lets the guest own by default (KVM_POSSIBLE_CR0_GUEST_BITS): only TS. */
export const KVM_POSSIBLE_CR0_GUEST_BITS = X86_CR0_TS;
/** CR4 bits KVM may pass through (KVM_POSSIBLE_CR4_GUEST_BITS). */
export const KVM_POSSIBLE_CR4_GUEST_BITS = X86_CR4_PVI | X86_CR4_DE | X86_CR4_PCE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT | X86_CR4_PGE | X86_CR4_TSD | X86_CR4_FSGSBASE;
/** CR4 bits that are reserved for the guest (no feature behind them here). */
export const CR4_RESERVED_BITS_MASK = ~(X86_CR4_VME | X86_CR4_PVI | X86_CR4_TSD | X86_CR4_DE | X86_CR4_PSE | X86_CR4_PAE | X86_CR4_MCE | X86_CR4_PGE | X86_CR4_PCE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT | X86_CR4_UMIP | X86_CR4_LA57 | X86_CR4_VMXE | X86_CR4_FSGSBASE | X86_CR4_PCIDE | X86_CR4_OSXSAVE | X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_PKE);

// Segments: VCPU_SREG_* (same order as the VMCS and hw/x86/state.ts Seg).
export const VCPU_SREG_ES = 0;
export const VCPU_SREG_CS = 1;
export const VCPU_SREG_SS = 2;
export const VCPU_SREG_DS = 3;
export const VCPU_SREG_FS = 4;
export const VCPU_SREG_GS = 5;
export const VCPU_SREG_LDTR = 6;
export const VCPU_SREG_TR = 7;

/** What to do when KVM_RUN is entered again after a userspace exit (vcpu->arch.complete_userspace_io). */
export const enum CompleteUserspaceIo {
  None = 0,
  /** complete_fast_pio_in(): copy the data userspace put in the PIO page into RAX, skip the IN. */
  FastPioIn = 1,
  /** complete_fast_pio_out(): skip the OUT. */
  FastPioOut = 2,
  /** complete_emulated_pio(): continue the emulated (string) I/O instruction. */
  EmulatedPio = 3,
  /** complete_emulated_mmio(): feed MMIO read data back into the emulator / finish the write. */
  EmulatedMmio = 4,
  /** complete_emulated_msr_access(): RDMSR/WRMSR exit to userspace done. */
  EmulatedRdmsr = 5,
  EmulatedWrmsr = 6,
  /** complete_hypercall_exit() */
  Hypercall = 7,
}

/** struct kvm_queued_exception */
export interface KvmQueuedException {
  pending: boolean;
  injected: boolean;
  hasErrorCode: boolean;
  vector: number;
  errorCode: number;
  hasPayload: boolean;
  /** CR2 for #PF, DR6 bits for #DB. */
  payload: number;
}

/** struct kvm_cpuid_entry2 with numbers (the guest's CPUID table). */
export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/** Per-vCPU storage of MSRs KVM emulates itself (msr.ts). */
export class KvmMsrState {
  readonly mtrr = new Map<number, [number, number]>();
  /** IA32_MISC_ENABLE: fast-strings enable. */
  miscEnableLo = 1;
  mcgStatusLo = 0;
  mcgCtlLo = 0;
  tscAdjustLo = 0;
  tscAdjustHi = 0;
}

/** Per-vCPU TSC and kvmclock state (the tsc_* / hv_clock / time fields of struct kvm_vcpu_arch; tsc.ts, kvmclock.ts). */
export class KvmVcpuTscState {
  /** vcpu->arch.virtual_tsc_khz (KVM_GET_TSC_KHZ); 0 while the vendor has no TSC. */
  virtualTscKhz = 0;
  /** l1_tsc_scaling_ratio as the 16.48 VMCS multiplier, lo/hi (1.0 = hi 0x10000). */
  ratioLo = 0;
  ratioHi = 0x10000;
  /** l1_tsc_offset: guest TSC = scale(host TSC) + offset (signed; exact below 2^53). */
  offset = 0;
  /** vcpu->arch.this_tsc_generation / this_tsc_nsec / this_tsc_write (kvm_track_tsc_matching). */
  generation = 0;
  /** MSR_KVM_SYSTEM_TIME(_NEW) as written: GPA of pvclock_vcpu_time_info | enable bit 0. */
  systemTimeMsr = 0;
  /** The last pvclock_vcpu_time_info written to the guest (vcpu->arch.hv_clock). */
  readonly hvClock = { version: 0, tscTimestamp: 0, systemTime: 0, tscToSystemMul: 0, tscShift: 0, flags: 0 };
}

/** Per-VM clock state (the tsc and kvmclock fields of struct kvm_arch). */
export class KvmArchClockState {
  /** kvmclock_offset: kvmclock ns = host monotonic ns + this. */
  kvmclockOffset = 0;
  /** MSR_KVM_WALL_CLOCK(_NEW) as last written (kvm->arch.wall_clock). */
  wallClockMsr = 0;
  /** CLOCK_REALTIME - CLOCK_MONOTONIC of the host, fixed when the VM is created (ns). */
  realtimeOffsetNs = 0;
  /** kvm_synchronize_tsc() matching: the last host write and the offset vCPUs are matched to. */
  lastTscNsec = 0;
  lastTscWrite = 0;
  lastTscKhz = 0;
  lastTscOffset = 0;
  curTscGeneration = 0;
  curTscOffset = 0;
  curTscNsec = 0;
  curTscWrite = 0;
  nrVcpusMatchedTsc = 0;
  /** user_set_tsc: userspace wrote a non-zero TSC once. */
  userSetTsc = false;
  /** boot_vcpu_runs_old_kvmclock: vCPU 0 uses MSR_KVM_SYSTEM_TIME (0x12), which has no stable bit. */
  bootVcpuRunsOldKvmclock = false;
  /** The master clock (pvclock_update_vm_gtod_copy): one (host TSC, ns) pair every vCPU's kvmclock is built from. */
  useMasterClock = false;
  masterKernelNs = 0;
  masterCycleNow = 0;
}

/** Per-VM x86 state (struct kvm_arch). */
export class KvmArchX86 {
  readonly vcpus: X86Vcpu[] = [];
  /** KVM_SET_TSS_ADDR: three pages used by the real-mode TSS when unrestricted guest is off. */
  tssAddr = 0;
  identityMapAddr = 0xfffbc000;
  /** Generation of the memslot set (kvm_memslots()->generation): MMIO SPTEs record it. */
  memslotsGeneration = 0;
  /** KVM_CAP_X86_USER_SPACE_MSR: which MSR failures exit to userspace (KVM_MSR_EXIT_REASON_*). */
  userSpaceMsrMask = 0;
  /** KVM_X86_SET_MSR_FILTER (msr_filter.ts); null = no filtering. */
  msrFilter: MsrFilter | null = null;
  /** KVM_CAP_EXIT_ON_EMULATION_FAILURE */
  exitOnEmulationFailure = false;
  /** KVM_CAP_X86_DISABLE_EXITS (HLT, PAUSE, ...) */
  disabledExits = 0;
  /** The interrupt-controller state (x86_irqchip.ts KvmX86IrqchipState); devices exist after KVM_CREATE_IRQCHIP. */
  irqState: unknown = null;
  /** Vendor-module data for this VM (the VMX module's environment). */
  vendor: unknown = null;
  /** The in-kernel interrupt controller (KVM_CREATE_IRQCHIP), or null: interrupts come from KVM_INTERRUPT. */
  irqchip: X86IrqChip | null = null;
  /** The host page allocator, for pages KVM itself needs (the emulator's MMIO bounce page). */
  pageAlloc: { allocPage(): number; putPage(pfn: number): void } | null = null;
  /** The emulator's MMIO bounce frame (emulate.ts), or -1; freed when the VM is destroyed. */
  emulatorBouncePfn = -1;
  /** The emulator's processor (emulate_mmio.ts), released with the VM. */
  emulatorCpu: { release(): void } | null = null;
  /** TSC synchronisation and kvmclock (tsc.ts, kvmclock.ts). */
  readonly clock = new KvmArchClockState();
  constructor(
    readonly ops: KvmX86Ops,
    readonly mmu: TdpMmu,
    /** The host page allocator's view of compound pages (host_pfn_mapping_level), or null. */
    readonly hostPages: HostPageInfo | null,
  ) {}
}

/**
 * The in-kernel interrupt controller seam (irq.c: kvm_cpu_has_injectable_intr /
 * kvm_cpu_get_interrupt), installed in kvm.arch.irqchip when the irqchip is created.
 */
export interface X86IrqChip {
  hasInjectableIntr(vcpu: X86Vcpu): boolean;
  /** Acknowledge the highest-priority interrupt and return its vector. */
  getInterrupt(vcpu: X86Vcpu): number;
}

/** Per-vCPU x86 state (struct kvm_vcpu_arch). */
export class KvmVcpuArch {
  /** GPRs as lo/hi halves in ModRM order (same layout as X86State.gpr). RSP is cached from the VMCS. */
  readonly regs = new Int32Array(32);
  rip = 0;
  /** Bitmasks of cached / modified VCPU_REGS_* and VCPU_EXREG_* (kvm_register_is_available/dirty). */
  regsAvail = 0;
  regsDirty = 0;
  /** The guest's view of the control registers (host-owned bits reflected from the shadows). */
  cr0 = 0x60000010;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  cr8 = 0;
  efer = 0;
  xcr0 = 1;
  /** Bits of CR0/CR4 the guest owns (written without exits). */
  cr0GuestOwnedBits = 0;
  cr4GuestOwnedBits = 0;
  readonly db = new Float64Array(4);
  dr6 = 0xffff0ff0;
  dr7 = 0x400;
  apicBase = 0xfee00800;
  mpState = 0;
  /** The guest's TSC = host TSC + offset; kept as lo/hi of the offset by the vendor. */
  readonly exception: KvmQueuedException = { pending: false, injected: false, hasErrorCode: false, vector: 0, errorCode: 0, hasPayload: false, payload: 0 };
  readonly interrupt = { injected: false, nr: 0, soft: false };
  nmiPending = 0;
  /** vcpu->arch.nmi_queued: NMIs raised (KVM_NMI, LAPIC) and not yet folded into nmiPending by process_nmi. */
  nmiQueued = 0;
  nmiInjected = false;
  /** KVM_INTERRUPT from userspace without in-kernel irqchip: the vector, or -1. */
  pendingExternalVector = -1;
  /** The guest's CPUID table (KVM_SET_CPUID2). */
  cpuidEntries: CpuidEntry[] = [];
  /** CPUID.0x80000008 physical-address width the guest was given. */
  maxphyaddr = 36;

  // complete_userspace_io and the state it needs
  completeUserspaceIo = CompleteUserspaceIo.None;
  /** struct kvm_pio_request */
  readonly pio = {
    port: 0, in: false, size: 0, count: 0,
    /** String I/O (INS/OUTS) state for complete_emulated_pio: REP, DF, address size in bytes, first item's linear address. */
    string: false, rep: false, down: false, asz: 2, la: 0,
  };
  /** The MSR index of a pending userspace RDMSR/WRMSR exit. */
  msrIndex = 0;

  // KVM_SET_GUEST_DEBUG
  guestDebug = 0;
  readonly guestDebugDb = new Float64Array(4);
  guestDebugDr7 = 0;
  /** Single-step: the RFLAGS.TF value KVM set on the guest's behalf. */
  singlestepRip = 0;

  /** Instruction bytes of the last emulation failure (for KVM_INTERNAL_ERROR_EMULATION). */
  readonly insnBytes = new Uint8Array(15);
  insnLen = 0;

  /** The in-kernel LAPIC (vcpu->arch.apic), or null. */
  lapic: unknown = null;
  /** MSRs KVM emulates without processor state (MTRRs, MCE, misc). */
  readonly msr = new KvmMsrState();
  /** TSC offset/scaling and kvmclock (tsc.ts, kvmclock.ts). */
  readonly tsc = new KvmVcpuTscState();

  /** Vendor state (struct vcpu_vmx). */
  vendor: unknown = null;

  /**
   * vcpu->arch.guest_fpu: the guest's x87/SSE state, i.e. the register file of the processor the
   * vendor module dedicates to this vCPU (set at vcpu_create; fpu.ts explains why nothing is swapped).
   */
  guestFpu: X86State | null = null;

  /** vcpu->arch.emulate_ctxt plus the vcpu->mmio_* fields: the emulator's per-vCPU state (emulate.ts owns it). */
  emulateCtxt: unknown = null;

  /** kvm_run accessor over the run area. */
  readonly run: KvmRun;

  constructor(
    readonly ops: KvmX86Ops,
    runBytes: Uint8Array,
  ) {
    this.run = new KvmRun(runBytes);
  }
}

// Register accessors (kvm_cache_regs.h).

/** kvm_register_read() for a GPR, as a number (low 32 bits + high 32 bits; exact below 2^53). */
const VCPU_REGS_RSP_NR = 4;

function cacheIfNeeded(vcpu: X86Vcpu, reg: number): void {
  const a = vcpu.arch;
  if ((a.regsAvail & (1 << reg)) === 0) a.ops.cacheReg(vcpu, reg);
}

/** kvm_register_read() of a full GPR as a number, for values that are addresses or counts. */
export function kvmRegisterRead(vcpu: X86Vcpu, reg: number): number {
  if (reg === VCPU_REGS_RSP_NR) cacheIfNeeded(vcpu, VCPU_REGS_RSP_NR);
  const r = vcpu.arch.regs;
  return r[reg * 2 + 1] * 4294967296 + (r[reg * 2] >>> 0);
}

/** kvm_register_write() of the low 32 bits (zero-extending the upper half, as a 32-bit write in 64-bit mode). */
export function kvmRegisterWrite32(vcpu: X86Vcpu, reg: number, v: number): void {
  const a = vcpu.arch;
  a.regs[reg * 2] = v | 0;
  a.regs[reg * 2 + 1] = 0;
  if (reg === VCPU_REGS_RSP_NR) {
    a.regsAvail |= 1 << reg;
    a.regsDirty |= 1 << reg;
  }
}

/** kvm_register_write() of lo/hi halves. */
export function kvmRegisterWrite(vcpu: X86Vcpu, reg: number, lo: number, hi: number): void {
  const a = vcpu.arch;
  a.regs[reg * 2] = lo | 0;
  a.regs[reg * 2 + 1] = hi | 0;
  if (reg === VCPU_REGS_RSP_NR) {
    a.regsAvail |= 1 << reg;
    a.regsDirty |= 1 << reg;
  }
}

const RIP_BIT = 1 << 16;

/** kvm_rip_read() */
export function kvmRipRead(vcpu: X86Vcpu): number {
  const a = vcpu.arch;
  if ((a.regsAvail & RIP_BIT) === 0) a.ops.cacheReg(vcpu, 16);
  return a.rip;
}

/** kvm_rip_write() */
export function kvmRipWrite(vcpu: X86Vcpu, rip: number): void {
  const a = vcpu.arch;
  a.rip = rip;
  a.regsAvail |= RIP_BIT;
  a.regsDirty |= RIP_BIT;
}

/** is_long_mode() */
export function isLongMode(vcpu: X86Vcpu): boolean {
  return (vcpu.arch.efer & EFER_LMA) !== 0;
}

/** is_paging() / is_protmode() */
export function isPaging(vcpu: X86Vcpu): boolean {
  return (vcpu.arch.cr0 & X86_CR0_PG) !== 0;
}
export function isProtmode(vcpu: X86Vcpu): boolean {
  return (vcpu.arch.cr0 & X86_CR0_PE) !== 0;
}
