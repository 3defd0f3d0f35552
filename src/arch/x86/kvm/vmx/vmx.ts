/**
 * arch/x86/kvm/vmx/vmx.c: the VMX vendor module. Per vCPU it owns a VMCS on the processor the
 * vCPU runs on, sets it up as KVM does (init_vmcs / vmx_vcpu_reset), enters the guest with
 * VMLAUNCH/VMRESUME (vmx_vcpu_run), and dispatches VM exits through `kvmVmxExitHandlers`, a
 * table indexed by basic exit reason whose handlers return ExitResult.Resume or
 * ExitResult.ToUserspace (vmx_handle_exit / kvm_vmx_exit_handlers[]). Everything else x86 KVM
 * needs from the vendor goes through the `vmxX86Ops` object (kvm_x86_ops).
 *
 * The processor is the emulated one of hw/x86: each vCPU is pinned to its own logical
 * processor (`VmxPcpu`: the core plus its VMX root-operation instructions), which holds the
 * guest's state while it runs, exactly as a physical CPU does between VM entry and VM exit.
 */

import { KVM_MSR_FILTER_READ, KVM_MSR_FILTER_WRITE, kvmMsrAllowed } from "../msr_filter.js";
import { KVM_X86_DISABLE_EXITS_PAUSE } from "../../../../uapi/kvm.js";
import * as V from "../../../../hw/x86/vmx/vmcs.js";
import type { X86State } from "../../../../hw/x86/state.js";
import * as R from "../../../../uapi/vmx.js";
import { EXIT_FASTPATH_NONE, type DescPtr, type KvmSeg, type KvmX86Ops } from "../kvm_x86_ops.js";
import {
  EFER_LMA, EFER_LME, EFER_NX, KVM_POSSIBLE_CR0_GUEST_BITS, KVM_POSSIBLE_CR4_GUEST_BITS, KVM_REQ_EVENT,
  KVM_REQ_TLB_FLUSH, KVM_REQ_TLB_FLUSH_CURRENT,
  X86_CR0_CD, X86_CR0_NE, X86_CR0_NW, X86_CR0_PE, X86_CR0_PG, X86_CR0_WP, X86_CR4_LA57, X86_CR4_PAE, X86_CR4_PCIDE,
  X86_CR4_PGE, X86_CR4_PKE, X86_CR4_PSE, X86_CR4_SMAP, X86_CR4_SMEP, X86_CR4_VMXE,
  X86_EFLAGS_IF, X86_EFLAGS_TF, X86_EFLAGS_VM, CR4_RESERVED_BITS_MASK, kvmCheckRequest, kvmMakeRequest, kvmRipRead,
  type X86Vcpu,
} from "../kvm_host.js";
import type { VmcsConfig } from "./capabilities.js";
import { vmxHandleExit } from "./vmx_exit.js";
import { EPT_MT_MASK_WB } from "../mmu/spte.js";
import {
  kvmMmuTrackWrite, kvmShadowFlushTlbGuest, kvmShadowMmuDestroy, kvmShadowMmuReset, kvmShadowNewPgd, kvmShadowPdptrsLoaded,
  vcpuShadowMmu,
} from "../mmu/shadow.js";
import { kvmEmulatorSetWriteTracker } from "../emulate_mmio.js";
import { guestCpuidHas } from "../cpuid.js";

// ----------------------------------------------------------------------------------------------
// The processor a vCPU runs on
// ----------------------------------------------------------------------------------------------

/** The parts of the emulated core (hw/x86/cpu.ts X86Cpu) KVM touches. */
export interface PcpuCore {
  readonly state: X86State;
  readonly hostIrq: Int32Array;
  getRflags(): number;
  setRflags(v: number): void;
  stateChanged(): void;
  readMsr(msr: number, out: Int32Array): boolean;
  writeMsr(msr: number, lo: number, hi: number): boolean;
  cpuid(leaf: number, subleaf: number, out: Int32Array): void;
  tlbFlushAll(): void;
  /** The CPU's time-stamp counter (for RDTSC emulation). */
  tsc(): number;
  /** The vCPU is freed: its processor leaves the host's shared state (code coherence). Optional for test doubles. */
  release?(): void;
  /** Its rate in kHz (tsc_khz). */
  readonly tscKhz: number;
  /** Last opcode that raised #UD because the core lacks it, or -1. */
  lastUnimplemented: number;
}

/**
 * The VMX root-operation instructions of that processor (hw/x86/vmx), with the SDM 31.2
 * conventions: 0 = VMsucceed, anything else = VMfail (the VM-instruction error is then in
 * VM_INSTRUCTION_ERROR for VMfailValid).
 */
export interface VmxInstructions {
  vmxon(regionHpa: number): number;
  vmxoff(): number;
  vmclear(hpa: number): number;
  vmptrld(hpa: number): number;
  /** A field as a number (exact for 16/32-bit fields, physical and canonical addresses). */
  vmread(field: number): number;
  vmread64(field: number, out: Int32Array): number;
  vmwrite(field: number, value: number): number;
  vmwrite64(field: number, lo: number, hi: number): number;
  /** Enter the guest; returns 0 after a VM exit (the exit reason is in the VMCS), nonzero on VMfail. */
  vmlaunch(): number;
  vmresume(): number;
  invept(type: number, eptp: number): number;
  invvpid(type: number, vpid: number, la: number): number;
}

export interface VmxPcpu {
  readonly cpu: PcpuCore;
  readonly vmx: VmxInstructions;
}

/** Everything the VMX module needs from its environment (vmx_init's view of the machine). */
export interface VmxModuleEnv {
  /** Bring up a logical processor for a new vCPU (the pCPU the vCPU thread is pinned to). */
  createPcpu(): VmxPcpu;
  /** One zeroed host page (for VMXON regions, VMCSs, MSR bitmaps). */
  allocPage(): number;
  freePage(pfn: number): void;
  /** Controls chosen from the capability MSRs (setup_vmcs_config). */
  config: VmcsConfig;
  /** kvm_intel.ept (default true); false runs guests on shadow page tables (mmu/shadow.ts). */
  enableEpt?: boolean;
  /**
   * kvm_intel.ple_gap: PAUSE-loop exiting with this gap (and kvm_intel's default window), 0 off.
   * Off by default here, unlike Linux (128): the gap counts TSC ticks of host time, which an
   * emulated PAUSE-loop iteration often exceeds, and on this single-threaded host a yield can
   * only end the spinning vCPU's whole time slice: a 2-vCPU Linux boot took 162 s with 128
   * against 54 s without (the other vCPU runs a full slice each time one spins briefly).
   */
  pleGap?: number;
}

// ----------------------------------------------------------------------------------------------
// struct vcpu_vmx
// ----------------------------------------------------------------------------------------------

export class VcpuVmx {
  launched = false;
  /** The last exit (vmx->exit_reason, exit qualification, interruption info). */
  exitReason = 0;
  exitQualification = 0;
  exitIntrInfo = 0;
  idtVectoringInfo = 0;
  /** VMfail of the last VMLAUNCH/VMRESUME (vmx->fail). */
  fail = false;
  /** Shadows of the execution controls (the vmx->loaded_vmcs->controls_shadow role). */
  pinBased = 0;
  cpuBased = 0;
  secondary = 0;
  /** The PLE window (vmx->ple_window) and whether the VMCS still has the old value. */
  pleWindow = 0;
  pleWindowDirty = false;
  vmEntry = 0;
  vmExit = 0;
  eptp = 0;
  vpid = 0;
  exceptionBitmap = 0;
  /** Guest-owned CR0/CR4 bits, read back from the VMCS after an exit. */
  cr0GuestOwned = KVM_POSSIBLE_CR0_GUEST_BITS;
  cr4GuestOwned = KVM_POSSIBLE_CR4_GUEST_BITS;
  /** vcpu->mode == IN_GUEST_MODE: between VM entry and VM exit (a kick must then interrupt the processor). */
  inGuest = false;
  /** The exit's instruction length, needed to re-inject software events (event_exit_inst_len). */
  eventExitInstLen = 0;
  /** enable_ept for this vCPU's VM; false = shadow paging. */
  ept = true;
  /** vmx->emulation_required: the guest state cannot run without unrestricted guest (real mode, ept=0). */
  emulationRequired = false;
  constructor(
    readonly pcpu: VmxPcpu,
    readonly vmxonPfn: number,
    readonly vmcsPfn: number,
    readonly msrBitmapPfn: number,
    readonly hostCr3Pfn: number,
  ) {}
}

export function toVmx(vcpu: X86Vcpu): VcpuVmx {
  return vcpu.arch.vendor as VcpuVmx;
}

/**
 * The module environment of the VM's vCPU (hardware_setup's result), kept in kvm.arch.vendor
 * so several independent KVM instances (one per openKvm) can coexist.
 */
function vmxEnv(vcpu: X86Vcpu): VmxModuleEnv {
  const e = vcpu.kvm.arch.vendor as VmxModuleEnv | null;
  if (e === null) throw new Error("kvm_intel: module environment missing (openKvm wires it)");
  return e;
}

/** The VPID bitmap (vmx_vpid_bitmap); VPID 0 is the host's. */
const vpidInUse = new Uint8Array(65536);

/** allocate_vpid() */
function allocateVpid(): number {
  for (let v = 1; v < 65536; v++) {
    if (vpidInUse[v] === 0) {
      vpidInUse[v] = 1;
      return v;
    }
  }
  return 0;
}

// VMCS accessors (vmcs_read32 / vmcs_write32 / vmcs_readl / vmcs_writel ...).
function vmcsRead(vcpu: X86Vcpu, field: number): number {
  return toVmx(vcpu).pcpu.vmx.vmread(field);
}
function vmcsWrite(vcpu: X86Vcpu, field: number, v: number): void {
  const r = toVmx(vcpu).pcpu.vmx.vmwrite(field, v);
  if (r !== 0) vmwriteError(vcpu, field, v);
}
function vmcsWrite64(vcpu: X86Vcpu, field: number, lo: number, hi: number): void {
  const r = toVmx(vcpu).pcpu.vmx.vmwrite64(field, lo, hi);
  if (r !== 0) vmwriteError(vcpu, field, lo);
}

/** vmwrite_error(): a VMWRITE KVM issued failed; that is a KVM bug, never a guest error. */
function vmwriteError(vcpu: X86Vcpu, field: number, v: number): never {
  const err = toVmx(vcpu).pcpu.vmx.vmread(V.VM_INSTRUCTION_ERROR);
  throw new Error(`kvm_intel: vmwrite of field 0x${field.toString(16)} value 0x${v.toString(16)} failed, VM-instruction error ${err}`);
}

export { vmcsRead, vmcsWrite };

/** Set/clear bits of an execution control, keeping the shadow in sync (controls_setbit/clearbit). */
export function execControlsSetbit(vcpu: X86Vcpu, bits: number): void {
  const vmx = toVmx(vcpu);
  const v = (vmx.cpuBased | bits) >>> 0;
  if (v !== vmx.cpuBased) {
    vmx.cpuBased = v;
    vmcsWrite(vcpu, V.CPU_BASED_VM_EXEC_CONTROL, v);
  }
}
export function execControlsClearbit(vcpu: X86Vcpu, bits: number): void {
  const vmx = toVmx(vcpu);
  const v = (vmx.cpuBased & ~bits) >>> 0;
  if (v !== vmx.cpuBased) {
    vmx.cpuBased = v;
    vmcsWrite(vcpu, V.CPU_BASED_VM_EXEC_CONTROL, v);
  }
}
function vmEntryControlsSet(vcpu: X86Vcpu, v: number): void {
  const vmx = toVmx(vcpu);
  if (v !== vmx.vmEntry) {
    vmx.vmEntry = v >>> 0;
    vmcsWrite(vcpu, V.VM_ENTRY_CONTROLS, vmx.vmEntry);
  }
}

// ----------------------------------------------------------------------------------------------
// MSR bitmap (SDM 25.6.9): read-low, read-high, write-low, write-high quarters
// ----------------------------------------------------------------------------------------------

/** vmx_disable_intercept_for_msr(): let the guest access `msr` without exits. */
function disableInterceptForMsr(vcpu: X86Vcpu, msr: number, read: boolean, write: boolean): void {
  const vmx = toVmx(vcpu);
  const pm = vcpu.kvm.physmem;
  const base = pm.frameOffset(vmx.msrBitmapPfn);
  const mem = pm.chunk(vmx.msrBitmapPfn);
  let off: number;
  let bit: number;
  if (msr <= 0x1fff) {
    off = 0;
    bit = msr;
  } else if (msr >= 0xc0000000 && msr <= 0xc0001fff) {
    off = 1024;
    bit = msr - 0xc0000000;
  } else return;
  if (read) mem[base + off + (bit >>> 3)] &= ~(1 << (bit & 7));
  if (write) mem[base + 2048 + off + (bit >>> 3)] &= ~(1 << (bit & 7));
}

/** The MSRs KVM passes through to the guest (vmx_vcpu_create: FS/GS base, KERNEL_GS_BASE, SYSENTER_*, TSC reads). */
const PASSTHROUGH_MSRS_RW = [0xc0000100, 0xc0000101, 0xc0000102, 0x174, 0x175, 0x176];
const MSR_IA32_TSC = 0x10;

/**
 * Intercept every MSR, then open the pass-through ones the MSR filter allows (vmx_msr_filter_changed:
 * a filtered MSR must exit so the filter can deny it).
 */
function vmxRecalcMsrIntercepts(vcpu: X86Vcpu): void {
  const vmx = toVmx(vcpu);
  const pm = vcpu.kvm.physmem;
  const filter = vcpu.kvm.arch.msrFilter;
  pm.chunk(vmx.msrBitmapPfn).fill(0xff, pm.frameOffset(vmx.msrBitmapPfn), pm.frameOffset(vmx.msrBitmapPfn) + 4096);
  for (const m of PASSTHROUGH_MSRS_RW) {
    disableInterceptForMsr(vcpu, m, kvmMsrAllowed(filter, m, KVM_MSR_FILTER_READ), kvmMsrAllowed(filter, m, KVM_MSR_FILTER_WRITE));
  }
  disableInterceptForMsr(vcpu, MSR_IA32_TSC, kvmMsrAllowed(filter, MSR_IA32_TSC, KVM_MSR_FILTER_READ), false);
}

// ----------------------------------------------------------------------------------------------
// vCPU creation and VMCS setup
// ----------------------------------------------------------------------------------------------

/** Put the processor into a 64-bit host-kernel state and VMXON (kvm_cpu_vmxon / hardware_enable). */
function hardwareEnable(vcpu: X86Vcpu): void {
  const vmx = toVmx(vcpu);
  const cpu = vmx.pcpu.cpu;
  const st = cpu.state;
  // The host kernel runs in 64-bit mode with paging and CR4.VMXE (SDM 24.7: VMXON requires it).
  st.cr0 = 0x80050033;
  st.cr4 = 0x26a0 | X86_CR4_VMXE;
  st.efer = 0xd01;
  st.cr3 = vmx.hostCr3Pfn * 4096;
  st.segSel[1] = 0x10;
  st.segAr[1] = 0xa09b;
  st.segSel[2] = 0x18;
  st.segAr[2] = 0xc093;
  st.segSel[7] = 0x40;
  st.segAr[7] = 0x8b;
  st.segLimit[7] = 0x67;
  cpu.stateChanged();
  // Firmware locks IA32_FEATURE_CONTROL with "VMX outside SMX" enabled (SDM 24.7).
  cpu.writeMsr(0x3a, 5, 0);
  const pm = vcpu.kvm.physmem;
  pm.write32(vmx.vmxonPfn * 4096, vmxEnv(vcpu).config.revisionId);
  if (vmx.pcpu.vmx.vmxon(vmx.vmxonPfn * 4096) !== 0) throw new Error("kvm_intel: VMXON failed");
}

/** vmx_vcpu_create(): VMXON on its processor, allocate and load a VMCS, set it up (init_vmcs). */
function vmxVcpuCreate(vcpu: X86Vcpu): void {
  const e = vmxEnv(vcpu);
  const vmx = new VcpuVmx(e.createPcpu(), e.allocPage(), e.allocPage(), e.allocPage(), e.allocPage());
  vcpu.arch.vendor = vmx;
  vmx.ept = e.enableEpt !== false;
  // The processor is this vCPU's alone: the guest FPU stays loaded in it (arch/x86/kvm/fpu.ts).
  vcpu.arch.guestFpu = vmx.pcpu.cpu.state;
  const pm = vcpu.kvm.physmem;
  hardwareEnable(vcpu);
  const vmcsHpa = vmx.vmcsPfn * 4096;
  pm.write32(vmcsHpa, e.config.revisionId);
  if (vmx.pcpu.vmx.vmclear(vmcsHpa) !== 0 || vmx.pcpu.vmx.vmptrld(vmcsHpa) !== 0) throw new Error("kvm_intel: VMCLEAR/VMPTRLD failed");
  vmxRecalcMsrIntercepts(vcpu);
  initVmcs(vcpu);
}

/** kvm_intel's ple_window / ple_window_grow / ple_window_max defaults (KVM_VMX_DEFAULT_PLE_WINDOW*). */
const PLE_WINDOW_DEFAULT = 4096;
const PLE_WINDOW_GROW = 2;
const PLE_WINDOW_MAX = 0xffffffff;

function pleWindowUpdate(vcpu: X86Vcpu, val: number): void {
  const vmx = toVmx(vcpu);
  const old = vmx.pleWindow;
  if (val === old) return;
  vmx.pleWindow = val;
  vmx.pleWindowDirty = true;
  if (vcpu.kvm.tracing) vcpu.kvm.trace("kvm_ple_window_update", { vcpu_id: vcpu.vcpuId, new: val, old }, vcpu);
}

/** grow_ple_window(): a PAUSE-loop exit doubles the window (the vCPU spins less often), up to ple_window_max. */
export function growPleWindow(vcpu: X86Vcpu): void {
  if ((toVmx(vcpu).secondary & V.SECONDARY_EXEC_PAUSE_LOOP_EXITING) === 0) return;
  pleWindowUpdate(vcpu, Math.min(toVmx(vcpu).pleWindow * PLE_WINDOW_GROW, PLE_WINDOW_MAX));
}

/** vmx_vcpu_sched_in() -> shrink_ple_window(): back on a CPU, the window returns to ple_window (ple_window_shrink 0). */
function vmxSchedIn(vcpu: X86Vcpu): void {
  if ((toVmx(vcpu).secondary & V.SECONDARY_EXEC_PAUSE_LOOP_EXITING) === 0) return;
  pleWindowUpdate(vcpu, PLE_WINDOW_DEFAULT);
}

/** init_vmcs(): controls, host state, MSR bitmap, CR masks, EPT pointer, VPID. */
function initVmcs(vcpu: X86Vcpu): void {
  const vmx = toVmx(vcpu);
  const c = vmxEnv(vcpu).config;
  vmx.pinBased = c.pinBasedExecCtrl;
  vmx.cpuBased = c.cpuBasedExecCtrl;
  vmx.secondary = c.cpuBasedExec2Ctrl;
  if (!vmx.ept) {
    // Shadow paging (ept=0): no EPT, hence no unrestricted guest; CR3 loads/stores and INVLPG
    // exit, and the paging bits of CR0/CR4 belong to KVM (vmx_secondary_exec_control,
    // vmx_exec_control, set_cr4_guest_host_mask).
    vmx.secondary &= ~(V.SECONDARY_EXEC_ENABLE_EPT | V.SECONDARY_EXEC_UNRESTRICTED_GUEST);
    vmx.cpuBased |= V.CPU_BASED_CR3_LOAD_EXITING | V.CPU_BASED_CR3_STORE_EXITING | V.CPU_BASED_INVLPG_EXITING;
    vmx.cr4GuestOwned = KVM_POSSIBLE_CR4_GUEST_BITS & ~X86_CR4_PGE;
    // kvm_page_track_register_notifier(): emulated stores to RAM reach the shadow MMU.
    kvmEmulatorSetWriteTracker(kvmMmuTrackWrite);
  }
  // PAUSE-loop exiting when ple_gap is set, unless userspace let the guest PAUSE freely
  // (kvm_pause_in_guest(); vmx_secondary_exec_control, hardware_setup's ple_gap == 0 case).
  const pleGap = vmxEnv(vcpu).pleGap ?? 0;
  if (pleGap === 0 || (vcpu.kvm.arch.disabledExits & KVM_X86_DISABLE_EXITS_PAUSE) !== 0) vmx.secondary &= ~V.SECONDARY_EXEC_PAUSE_LOOP_EXITING;
  // XSAVES/XRSTORS stay #UD until KVM_SET_CPUID2 gives the guest XSAVES (vmxVcpuAfterSetCpuid).
  vmx.secondary &= ~V.SECONDARY_EXEC_ENABLE_XSAVES;
  if ((vmx.secondary & V.SECONDARY_EXEC_ENABLE_VPID) !== 0) {
    vmx.vpid = allocateVpid();
    if (vmx.vpid === 0) vmx.secondary &= ~V.SECONDARY_EXEC_ENABLE_VPID;
  }
  vmx.vmExit = c.vmexitCtrl;
  vmx.vmEntry = c.vmentryCtrl;
  vmcsWrite(vcpu, V.PIN_BASED_VM_EXEC_CONTROL, vmx.pinBased);
  vmcsWrite(vcpu, V.CPU_BASED_VM_EXEC_CONTROL, vmx.cpuBased);
  vmcsWrite(vcpu, V.SECONDARY_VM_EXEC_CONTROL, vmx.secondary);
  // VMX_XSS_EXIT_BITMAP: no XSAVES/XRSTORS exits (the guest's IA32_XSS can only be 0 anyway).
  if ((c.cpuBasedExec2Ctrl & V.SECONDARY_EXEC_ENABLE_XSAVES) !== 0) vmcsWrite64(vcpu, V.XSS_EXIT_BITMAP, 0, 0);
  vmcsWrite(vcpu, V.VM_EXIT_CONTROLS, vmx.vmExit);
  vmcsWrite(vcpu, V.VM_ENTRY_CONTROLS, vmx.vmEntry);
  if (vmx.vpid !== 0) vmcsWrite(vcpu, V.VIRTUAL_PROCESSOR_ID, vmx.vpid);
  vmcsWrite(vcpu, V.MSR_BITMAP, vmx.msrBitmapPfn * 4096);
  vmcsWrite64(vcpu, V.VMCS_LINK_POINTER, -1, -1);
  vmcsWrite(vcpu, V.PAGE_FAULT_ERROR_CODE_MASK, 0);
  vmcsWrite(vcpu, V.PAGE_FAULT_ERROR_CODE_MATCH, 0);
  vmcsWrite(vcpu, V.CR3_TARGET_COUNT, 0);
  vmcsWrite(vcpu, V.VM_EXIT_MSR_STORE_COUNT, 0);
  vmcsWrite(vcpu, V.VM_EXIT_MSR_LOAD_COUNT, 0);
  vmcsWrite(vcpu, V.VM_ENTRY_MSR_LOAD_COUNT, 0);
  vmcsWrite(vcpu, V.VM_ENTRY_INTR_INFO_FIELD, 0);
  vmcsWrite64(vcpu, V.TSC_OFFSET, 0, 0);
  // With TSC scaling on, the multiplier starts at 1.0 (kvm_caps.default_tsc_scaling_ratio, 2^48).
  if ((vmx.secondary & V.SECONDARY_EXEC_TSC_SCALING) !== 0) vmcsWrite64(vcpu, V.TSC_MULTIPLIER, 0, 0x10000);
  if ((vmx.secondary & V.SECONDARY_EXEC_PAUSE_LOOP_EXITING) !== 0) {
    vmcsWrite(vcpu, V.PLE_GAP, pleGap);
    vmx.pleWindow = PLE_WINDOW_DEFAULT;
    vmcsWrite(vcpu, V.PLE_WINDOW, vmx.pleWindow);
  }
  vmxSetConstantHostState(vcpu);
  // CR0/CR4: the guest owns only the bits KVM lets it (set_cr0_guest_host_mask / set_cr4_guest_host_mask).
  vmcsWrite(vcpu, V.CR0_GUEST_HOST_MASK, ~vmx.cr0GuestOwned);
  vmcsWrite(vcpu, V.CR4_GUEST_HOST_MASK, ~vmx.cr4GuestOwned);
  vmcsWrite64(vcpu, V.GUEST_IA32_PAT, 0x00070406, 0x00070406);
  vmcsWrite64(vcpu, V.GUEST_IA32_DEBUGCTL, 0, 0);
  vmxUpdateExceptionBitmap(vcpu);
}

/**
 * vmx_set_constant_host_state(): the host kernel's state, loaded by every VM exit. The
 * emulated processor never executes host code (KVM's C code is this TypeScript), so these
 * describe a consistent 64-bit kernel context that passes the VM-entry host-state checks
 * (SDM 26.2.2-26.2.4); HOST_RIP is the vmx_vmexit entry point such a kernel would have.
 */
function vmxSetConstantHostState(vcpu: X86Vcpu): void {
  const vmx = toVmx(vcpu);
  const st = vmx.pcpu.cpu.state;
  vmcsWrite(vcpu, V.HOST_CR0, st.cr0);
  vmcsWrite(vcpu, V.HOST_CR3, st.cr3);
  vmcsWrite(vcpu, V.HOST_CR4, st.cr4);
  vmcsWrite(vcpu, V.HOST_CS_SELECTOR, 0x10);
  vmcsWrite(vcpu, V.HOST_SS_SELECTOR, 0x18);
  vmcsWrite(vcpu, V.HOST_DS_SELECTOR, 0);
  vmcsWrite(vcpu, V.HOST_ES_SELECTOR, 0);
  vmcsWrite(vcpu, V.HOST_FS_SELECTOR, 0);
  vmcsWrite(vcpu, V.HOST_GS_SELECTOR, 0);
  vmcsWrite(vcpu, V.HOST_TR_SELECTOR, 0x40);
  vmcsWrite(vcpu, V.HOST_FS_BASE, 0);
  vmcsWrite(vcpu, V.HOST_GS_BASE, 0);
  vmcsWrite(vcpu, V.HOST_TR_BASE, -0x200000);
  vmcsWrite(vcpu, V.HOST_GDTR_BASE, -0x201000);
  vmcsWrite(vcpu, V.HOST_IDTR_BASE, -0x202000);
  vmcsWrite(vcpu, V.HOST_IA32_SYSENTER_CS, 0);
  vmcsWrite(vcpu, V.HOST_IA32_SYSENTER_ESP, 0);
  vmcsWrite(vcpu, V.HOST_IA32_SYSENTER_EIP, 0);
  vmcsWrite64(vcpu, V.HOST_IA32_EFER, st.efer, 0);
  vmcsWrite64(vcpu, V.HOST_IA32_PAT, 0x00070406, 0x00070406);
  vmcsWrite(vcpu, V.HOST_RSP, -0x100000);
  vmcsWrite(vcpu, V.HOST_RIP, -0x7f000000);
}

/** Segment AR bytes of the reset state (SDM Table 10-1 / vmx_vcpu_reset / seg_setup). */
function segSetup(vcpu: X86Vcpu, seg: number, ar: number): void {
  vmcsWrite(vcpu, V.GUEST_SEG_SELECTOR_BASE + 2 * seg, 0);
  vmcsWrite(vcpu, V.GUEST_SEG_BASE_BASE + 2 * seg, 0);
  vmcsWrite(vcpu, V.GUEST_SEG_LIMIT_BASE + 2 * seg, 0xffff);
  vmcsWrite(vcpu, V.GUEST_SEG_AR_BASE + 2 * seg, ar);
}

/** vmx_vcpu_reset() + kvm_vcpu_reset(): the power-on (or INIT) state of the processor. */
function vmxVcpuReset(vcpu: X86Vcpu, initEvent: boolean): void {
  const a = vcpu.arch;
  a.regs.fill(0);
  // EDX after reset holds the processor signature (family/model/stepping from CPUID.1:EAX).
  const sig = new Int32Array(4);
  toVmx(vcpu).pcpu.cpu.cpuid(1, 0, sig);
  a.regs[4] = sig[0];
  a.regsAvail = 0xffffffff;
  a.regsDirty = 0xffffffff;
  for (const s of [0, 2, 3, 4, 5]) segSetup(vcpu, s, 0x93);
  vmcsWrite(vcpu, V.GUEST_CS_SELECTOR, 0xf000);
  vmcsWrite(vcpu, V.GUEST_CS_BASE, 0xffff0000);
  vmcsWrite(vcpu, V.GUEST_CS_LIMIT, 0xffff);
  vmcsWrite(vcpu, V.GUEST_CS_AR_BYTES, 0x9b);
  vmcsWrite(vcpu, V.GUEST_TR_SELECTOR, 0);
  vmcsWrite(vcpu, V.GUEST_TR_BASE, 0);
  vmcsWrite(vcpu, V.GUEST_TR_LIMIT, 0xffff);
  vmcsWrite(vcpu, V.GUEST_TR_AR_BYTES, 0x8b);
  vmcsWrite(vcpu, V.GUEST_LDTR_SELECTOR, 0);
  vmcsWrite(vcpu, V.GUEST_LDTR_BASE, 0);
  vmcsWrite(vcpu, V.GUEST_LDTR_LIMIT, 0xffff);
  vmcsWrite(vcpu, V.GUEST_LDTR_AR_BYTES, 0x82);
  vmcsWrite(vcpu, V.GUEST_GDTR_BASE, 0);
  vmcsWrite(vcpu, V.GUEST_GDTR_LIMIT, 0xffff);
  vmcsWrite(vcpu, V.GUEST_IDTR_BASE, 0);
  vmcsWrite(vcpu, V.GUEST_IDTR_LIMIT, 0xffff);
  vmcsWrite(vcpu, V.GUEST_ACTIVITY_STATE, V.GUEST_ACTIVITY_ACTIVE);
  vmcsWrite(vcpu, V.GUEST_INTERRUPTIBILITY_INFO, 0);
  vmcsWrite(vcpu, V.GUEST_PENDING_DBG_EXCEPTIONS, 0);
  vmcsWrite(vcpu, V.GUEST_SYSENTER_CS, 0);
  vmcsWrite(vcpu, V.GUEST_SYSENTER_ESP, 0);
  vmcsWrite(vcpu, V.GUEST_SYSENTER_EIP, 0);
  vmcsWrite(vcpu, V.GUEST_DR7, 0x400);
  vmcsWrite(vcpu, V.GUEST_RFLAGS, 2);
  vmcsWrite(vcpu, V.GUEST_RIP, 0xfff0);
  vmcsWrite(vcpu, V.GUEST_RSP, 0);
  a.rip = 0xfff0;
  a.dr6 = 0xffff0ff0;
  a.dr7 = 0x400;
  a.db.fill(0);
  a.cr2 = 0;
  a.cr3 = 0;
  vmcsWrite(vcpu, V.GUEST_CR3, 0);
  a.cr8 = 0;
  a.xcr0 = 1;
  if (!initEvent) a.apicBase = (0xfee00000 | (vcpu.vcpuIdx === 0 ? 0x900 : 0x800)) >>> 0;
  // Both RESET and INIT leave the processor in real mode with EFER clear (kvm_vcpu_reset).
  vmxSetEfer(vcpu, 0);
  vmxSetCr0(vcpu, 0x60000010);
  vmxSetCr4(vcpu, 0);
  a.exception.pending = a.exception.injected = false;
  a.interrupt.injected = false;
  a.nmiInjected = false;
  a.nmiPending = 0;
  a.nmiQueued = 0;
  kvmMakeRequest(vcpu, KVM_REQ_EVENT);
}

function vmxVcpuFree(vcpu: X86Vcpu): void {
  const vmx = vcpu.arch.vendor as VcpuVmx | null;
  if (vmx === null) return;
  const e = vmxEnv(vcpu);
  vmx.pcpu.vmx.vmclear(vmx.vmcsPfn * 4096);
  vmx.pcpu.vmx.vmxoff();
  if (vmx.vpid !== 0) vpidInUse[vmx.vpid] = 0;
  e.freePage(vmx.vmcsPfn);
  e.freePage(vmx.vmxonPfn);
  e.freePage(vmx.msrBitmapPfn);
  e.freePage(vmx.hostCr3Pfn);
  kvmShadowMmuDestroy(vcpu);
  vmx.pcpu.cpu.release?.();
  vcpu.arch.vendor = null;
}

// ----------------------------------------------------------------------------------------------
// Register state
// ----------------------------------------------------------------------------------------------

const AR_UNUSABLE = 1 << 16;

/** vmx_get_segment() */
function vmxGetSegment(vcpu: X86Vcpu, out: KvmSeg, seg: number): void {
  const ar = vmcsRead(vcpu, V.GUEST_SEG_AR_BASE + 2 * seg);
  out.base = vmcsRead(vcpu, V.GUEST_SEG_BASE_BASE + 2 * seg);
  out.limit = vmcsRead(vcpu, V.GUEST_SEG_LIMIT_BASE + 2 * seg) >>> 0;
  out.selector = vmcsRead(vcpu, V.GUEST_SEG_SELECTOR_BASE + 2 * seg) & 0xffff;
  out.unusable = (ar >>> 16) & 1;
  out.type = ar & 15;
  out.s = (ar >>> 4) & 1;
  out.dpl = (ar >>> 5) & 3;
  out.present = (ar >>> 7) & 1;
  out.avl = (ar >>> 12) & 1;
  out.l = (ar >>> 13) & 1;
  out.db = (ar >>> 14) & 1;
  out.g = (ar >>> 15) & 1;
}

/** vmx_segment_access_rights() */
function segmentAccessRights(s: KvmSeg): number {
  if (s.unusable || !s.present) return AR_UNUSABLE;
  return (s.type & 15) | (s.s & 1) << 4 | (s.dpl & 3) << 5 | (s.present & 1) << 7 | (s.avl & 1) << 12 | (s.l & 1) << 13 | (s.db & 1) << 14 | (s.g & 1) << 15;
}

/** __vmx_set_segment(): with unrestricted guest, usable segments other than LDTR get the accessed bit (SDM 26.3.1.2). */
function vmxSetSegment(vcpu: X86Vcpu, s: KvmSeg, seg: number): void {
  let ar = segmentAccessRights(s);
  if (seg !== 6 && (ar & AR_UNUSABLE) === 0) ar |= 1;
  vmcsWrite(vcpu, V.GUEST_SEG_SELECTOR_BASE + 2 * seg, s.selector & 0xffff);
  vmcsWrite(vcpu, V.GUEST_SEG_BASE_BASE + 2 * seg, s.base);
  vmcsWrite(vcpu, V.GUEST_SEG_LIMIT_BASE + 2 * seg, s.limit >>> 0);
  vmcsWrite(vcpu, V.GUEST_SEG_AR_BASE + 2 * seg, ar);
}

function vmxGetSegmentBase(vcpu: X86Vcpu, seg: number): number {
  return vmcsRead(vcpu, V.GUEST_SEG_BASE_BASE + 2 * seg);
}

/** vmx_get_cpl(): SS.DPL in protected mode, 0 in real mode, 3 in virtual-8086 mode. */
function vmxGetCpl(vcpu: X86Vcpu): number {
  if ((vcpu.arch.cr0 & X86_CR0_PE) === 0) return 0;
  if ((vmxGetRflags(vcpu) & X86_EFLAGS_VM) !== 0) return 3;
  return (vmcsRead(vcpu, V.GUEST_SS_AR_BYTES) >>> 5) & 3;
}

function vmxGetCsDbLBits(vcpu: X86Vcpu, out: Int32Array): void {
  const ar = vmcsRead(vcpu, V.GUEST_CS_AR_BYTES);
  out[0] = (ar >>> 14) & 1;
  out[1] = (ar >>> 13) & 1;
}

function vmxGetRflags(vcpu: X86Vcpu): number {
  let rf = vmcsRead(vcpu, V.GUEST_RFLAGS) >>> 0;
  // KVM_GUESTDBG_SINGLESTEP sets TF on the guest's behalf; the guest's own value is hidden (kvm_get_rflags).
  if ((vcpu.arch.guestDebug & 2) !== 0) rf = (rf & ~X86_EFLAGS_TF) >>> 0;
  return rf;
}

function vmxSetRflags(vcpu: X86Vcpu, rflags: number): void {
  let rf = rflags >>> 0;
  if ((vcpu.arch.guestDebug & 2) !== 0) rf = (rf | X86_EFLAGS_TF) >>> 0;
  vmcsWrite(vcpu, V.GUEST_RFLAGS, rf);
}

/** vmx_cache_reg(): RSP and RIP are read back from the VMCS after every exit. */
function vmxCacheReg(vcpu: X86Vcpu, reg: number): void {
  const a = vcpu.arch;
  if (reg === 4) {
    const rsp = vmcsRead(vcpu, V.GUEST_RSP);
    const hi = Math.floor(rsp / 4294967296);
    a.regs[8] = (rsp - hi * 4294967296) | 0;
    a.regs[9] = hi | 0;
  } else if (reg === 16) {
    a.rip = vmcsRead(vcpu, V.GUEST_RIP);
  } else if (reg === 18) {
    // Guest-owned CR0 bits live in the VMCS while the guest runs.
    const vmx = toVmx(vcpu);
    a.cr0 = ((a.cr0 & ~vmx.cr0GuestOwned) | (vmcsRead(vcpu, V.GUEST_CR0) & vmx.cr0GuestOwned)) >>> 0;
    a.cr4 = ((a.cr4 & ~vmx.cr4GuestOwned) | (vmcsRead(vcpu, V.GUEST_CR4) & vmx.cr4GuestOwned)) >>> 0;
    // With EPT, MOV to CR3 does not exit: the guest's CR3 is only in the VMCS
    // (vmx_cache_reg(VCPU_EXREG_CR3)). Without, GUEST_CR3 holds the shadow root.
    if (vmx.ept) a.cr3 = vmcsRead(vcpu, V.GUEST_CR3);
    return;
  }
  a.regsAvail |= 1 << reg;
}

/** vmx_is_valid_cr0(): the bits unrestricted guest still requires (NE is forced by KVM, not demanded). */
function vmxIsValidCr0(vcpu: X86Vcpu, cr0: number): boolean {
  const c = vmxEnv(vcpu).config;
  const fixed1 = c.cr0Fixed1 >>> 0;
  return (cr0 & ~fixed1) === 0;
}

/** vmx_set_cr0(): long-mode transitions, the hardware value (NE forced on, CD/NW off) and the read shadow. */
function vmxSetCr0(vcpu: X86Vcpu, cr0: number): void {
  const a = vcpu.arch;
  cr0 >>>= 0;
  const oldPaging = (a.cr0 & X86_CR0_PG) !== 0;
  const paging = (cr0 & X86_CR0_PG) !== 0;
  if ((a.efer & EFER_LME) !== 0) {
    if (!oldPaging && paging) vmxSetEfer(vcpu, a.efer | EFER_LMA);
    else if (oldPaging && !paging) vmxSetEfer(vcpu, a.efer & ~EFER_LMA);
  }
  let hw = ((cr0 & ~(X86_CR0_CD | X86_CR0_NW)) | X86_CR0_NE) >>> 0;
  const vmx = toVmx(vcpu);
  if (!vmx.ept) {
    // KVM_VM_CR0_ALWAYS_ON without unrestricted guest, and WP so that read-only shadow entries
    // bind the supervisor too (CR0.WP=0 is emulated in the shadow entries).
    hw = (hw | X86_CR0_PG | X86_CR0_PE | X86_CR0_WP) >>> 0;
    vmx.emulationRequired = (cr0 & X86_CR0_PE) === 0;
    if (((a.cr0 ^ cr0) & (X86_CR0_PG | X86_CR0_WP | X86_CR0_PE)) !== 0) kvmShadowMmuReset(vcpu);
  }
  vmcsWrite(vcpu, V.CR0_READ_SHADOW, cr0);
  vmcsWrite(vcpu, V.GUEST_CR0, hw);
  a.cr0 = cr0;
  if (!vmx.ept) vmxSetCr4(vcpu, a.cr4);
}

function vmxPostSetCr3(vcpu: X86Vcpu, cr3: number): void {
  // With EPT the guest's CR3 goes straight into the VMCS (vmx_load_mmu_pgd's guest_cr3 part).
  // Without, kvm_mmu_new_pgd picks the shadow root of the new address space (a cached one if
  // there is one) and vmx_vcpu_run loads it.
  if (toVmx(vcpu).ept) vmcsWrite(vcpu, V.GUEST_CR3, cr3);
  else kvmShadowNewPgd(vcpu);
}

/** vmx_is_valid_cr4(): VMXE is reserved to the guest (no nested VMX); the rest per the processor. */
function vmxIsValidCr4(vcpu: X86Vcpu, cr4: number): boolean {
  if ((cr4 & X86_CR4_VMXE) !== 0) return false;
  if ((cr4 & CR4_RESERVED_BITS_MASK) !== 0) return false;
  return (cr4 & ~vmxEnv(vcpu).config.cr4Fixed1) === 0;
}

/** vmx_set_cr4() */
function vmxSetCr4(vcpu: X86Vcpu, cr4: number): void {
  const a = vcpu.arch;
  cr4 >>>= 0;
  let hw = (cr4 | X86_CR4_VMXE) >>> 0;
  if (!toVmx(vcpu).ept) {
    // The processor always uses PAE/4-level shadow tables, with nothing global and no PCIDs (its
    // TLB is flushed at every guest CR3 load); SMEP/SMAP only while the guest pages.
    hw = ((hw | X86_CR4_PAE) & ~(X86_CR4_PGE | X86_CR4_PCIDE)) >>> 0;
    if ((a.cr0 & X86_CR0_PG) === 0) hw = (hw & ~(X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_PKE)) >>> 0;
    const modeBits = X86_CR4_PAE | X86_CR4_PSE | X86_CR4_PGE | X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_PCIDE | X86_CR4_LA57 | X86_CR4_PKE;
    if (((a.cr4 ^ cr4) & modeBits) !== 0) kvmShadowMmuReset(vcpu);
  }
  vmcsWrite(vcpu, V.CR4_READ_SHADOW, cr4);
  vmcsWrite(vcpu, V.GUEST_CR4, hw);
  a.cr4 = cr4;
}

/** vmx_set_efer(): IA-32e mode guest follows EFER.LMA; outside long mode the loaded EFER has LME clear too (SDM 26.3.1.1). */
function vmxSetEfer(vcpu: X86Vcpu, efer: number): number {
  const a = vcpu.arch;
  const old = a.efer;
  a.efer = efer >>> 0;
  const vmx = toVmx(vcpu);
  const lma = (efer & EFER_LMA) !== 0;
  vmEntryControlsSet(vcpu, lma ? (vmx.vmEntry | V.VM_ENTRY_IA32E_MODE) >>> 0 : (vmx.vmEntry & ~V.VM_ENTRY_IA32E_MODE) >>> 0);
  let hw = lma ? efer : efer & ~EFER_LME;
  if (!vmx.ept) {
    // update_transition_efer(): shadow paging runs with NX on (XD in shadow entries emulates
    // CR0.WP=0 under SMEP); a change of NXE or LMA changes the guest's paging mode.
    hw |= EFER_NX;
    if (((old ^ efer) & (EFER_NX | EFER_LMA)) !== 0) kvmShadowMmuReset(vcpu);
  }
  vmcsWrite64(vcpu, V.GUEST_IA32_EFER, hw >>> 0, 0);
  return 0;
}

function vmxGetIdt(vcpu: X86Vcpu, out: DescPtr): void {
  out.base = vmcsRead(vcpu, V.GUEST_IDTR_BASE);
  out.limit = vmcsRead(vcpu, V.GUEST_IDTR_LIMIT) & 0xffff;
}
function vmxSetIdt(vcpu: X86Vcpu, dt: DescPtr): void {
  vmcsWrite(vcpu, V.GUEST_IDTR_BASE, dt.base);
  vmcsWrite(vcpu, V.GUEST_IDTR_LIMIT, dt.limit & 0xffff);
}
function vmxGetGdt(vcpu: X86Vcpu, out: DescPtr): void {
  out.base = vmcsRead(vcpu, V.GUEST_GDTR_BASE);
  out.limit = vmcsRead(vcpu, V.GUEST_GDTR_LIMIT) & 0xffff;
}
function vmxSetGdt(vcpu: X86Vcpu, dt: DescPtr): void {
  vmcsWrite(vcpu, V.GUEST_GDTR_BASE, dt.base);
  vmcsWrite(vcpu, V.GUEST_GDTR_LIMIT, dt.limit & 0xffff);
}

/** The MSRs the VMCS or the processor holds for the guest (vmx_get_msr / vmx_set_msr). */
function vmxGetMsr(vcpu: X86Vcpu, index: number, out: Int32Array, _host: boolean): boolean {
  const cpu = toVmx(vcpu).pcpu.cpu;
  switch (index) {
    case 0xc0000100: return splitNum(vmcsRead(vcpu, V.GUEST_FS_BASE), out);
    case 0xc0000101: return splitNum(vmcsRead(vcpu, V.GUEST_GS_BASE), out);
    case 0x174: return splitNum(vmcsRead(vcpu, V.GUEST_SYSENTER_CS) >>> 0, out);
    case 0x175: return splitNum(vmcsRead(vcpu, V.GUEST_SYSENTER_ESP), out);
    case 0x176: return splitNum(vmcsRead(vcpu, V.GUEST_SYSENTER_EIP), out);
    case 0x277: toVmx(vcpu).pcpu.vmx.vmread64(V.GUEST_IA32_PAT, out); return true;
    case MSR_IA32_TSC: return cpu.readMsr(MSR_IA32_TSC, out);
    // KERNEL_GS_BASE, STAR, LSTAR, CSTAR, SFMASK and TSC_AUX stay loaded in the processor for the guest.
    case 0xc0000102: case 0xc0000081: case 0xc0000082: case 0xc0000083: case 0xc0000084: case 0xc0000103:
      return cpu.readMsr(index, out);
    default:
      return false;
  }
}

function isCanonical(v: number): boolean {
  return v >= -(2 ** 47) && v < 2 ** 47;
}

function vmxSetMsr(vcpu: X86Vcpu, index: number, lo: number, hi: number, _host: boolean): boolean {
  const cpu = toVmx(vcpu).pcpu.cpu;
  const v = hi * 4294967296 + (lo >>> 0);
  switch (index) {
    case 0xc0000100: if (!isCanonical(v)) return false; vmcsWrite(vcpu, V.GUEST_FS_BASE, v); return true;
    case 0xc0000101: if (!isCanonical(v)) return false; vmcsWrite(vcpu, V.GUEST_GS_BASE, v); return true;
    case 0x174: vmcsWrite(vcpu, V.GUEST_SYSENTER_CS, lo >>> 0); return true;
    case 0x175: if (!isCanonical(v)) return false; vmcsWrite(vcpu, V.GUEST_SYSENTER_ESP, v); return true;
    case 0x176: if (!isCanonical(v)) return false; vmcsWrite(vcpu, V.GUEST_SYSENTER_EIP, v); return true;
    case 0x277: {
      // Each PAT entry must be a valid memory type: 0, 1, 4, 5, 6, 7 (SDM 11.12.2).
      for (let i = 0; i < 8; i++) {
        const t = ((i < 4 ? lo : hi) >>> ((i & 3) * 8)) & 0xff;
        if (t > 7 || t === 2 || t === 3) return false;
      }
      vmcsWrite64(vcpu, V.GUEST_IA32_PAT, lo, hi);
      return true;
    }
    case MSR_IA32_TSC: case 0xc0000102: case 0xc0000081: case 0xc0000082: case 0xc0000083: case 0xc0000084: case 0xc0000103:
      return cpu.writeMsr(index, lo, hi);
    default:
      return false;
  }
}

/** rdtsc() on the processor this vCPU runs on. */
function vmxReadHostTsc(vcpu: X86Vcpu): number {
  return toVmx(vcpu).pcpu.cpu.tsc();
}

/** tsc_khz of that processor. */
function vmxHostTscKhz(vcpu: X86Vcpu): number {
  return toVmx(vcpu).pcpu.cpu.tscKhz;
}

/** vmx_write_tsc_offset() */
function vmxWriteTscOffset(vcpu: X86Vcpu, offset: number): void {
  const hi = Math.floor(offset / 4294967296);
  vmcsWrite64(vcpu, V.TSC_OFFSET, (offset - hi * 4294967296) | 0, hi | 0);
}

/** vmx_write_tsc_multiplier(): only with the "use TSC scaling" control (kvm_caps.has_tsc_control). */
function vmxWriteTscMultiplier(vcpu: X86Vcpu, lo: number, hi: number): boolean {
  if ((toVmx(vcpu).secondary & V.SECONDARY_EXEC_TSC_SCALING) === 0) return false;
  vmcsWrite64(vcpu, V.TSC_MULTIPLIER, lo, hi);
  return true;
}

function splitNum(v: number, out: Int32Array): boolean {
  const hi = Math.floor(v / 4294967296);
  out[0] = (v - hi * 4294967296) | 0;
  out[1] = hi | 0;
  return true;
}

// ----------------------------------------------------------------------------------------------
// TLB / MMU
// ----------------------------------------------------------------------------------------------

const VMX_EPT_EXTENT_CONTEXT = 1;
const VMX_EPT_EXTENT_GLOBAL = 2;
const VMX_VPID_EXTENT_SINGLE_CONTEXT = 1;
const VMX_VPID_EXTENT_ALL_CONTEXT = 2;

function vmxFlushTlbAll(vcpu: X86Vcpu): void {
  const vmx = toVmx(vcpu);
  if (vmx.ept) vmx.pcpu.vmx.invept(VMX_EPT_EXTENT_GLOBAL, 0);
  else vmx.pcpu.vmx.invvpid(VMX_VPID_EXTENT_ALL_CONTEXT, 0, 0);
}

function vmxFlushTlbCurrent(vcpu: X86Vcpu): void {
  const vmx = toVmx(vcpu);
  if (vmx.ept) {
    if (vmx.eptp !== 0) vmx.pcpu.vmx.invept(VMX_EPT_EXTENT_CONTEXT, vmx.eptp);
  } else if (vmx.vpid !== 0) {
    // Without VPID every VM entry flushes the TLB anyway (SDM 29.4.3.1).
    vmx.pcpu.vmx.invvpid(VMX_VPID_EXTENT_SINGLE_CONTEXT, vmx.vpid, 0);
  }
}

/** Flush this vCPU's guest translations from the processor (vpid_sync_context). */
function vmxFlushHwTlbGuest(vcpu: X86Vcpu): void {
  const vmx = toVmx(vcpu);
  if (vmx.vpid !== 0) vmx.pcpu.vmx.invvpid(VMX_VPID_EXTENT_SINGLE_CONTEXT, vmx.vpid, 0);
  else vmxFlushTlbCurrent(vcpu);
}

/**
 * kvm_vcpu_flush_tlb_guest(): with shadow paging the guest's edits of unsync leaf tables take
 * effect (the rest of the shadow tables is kept equal to the guest's by write tracking).
 */
function vmxFlushTlbGuest(vcpu: X86Vcpu): void {
  if (!toVmx(vcpu).ept) kvmShadowFlushTlbGuest(vcpu);
  vmxFlushHwTlbGuest(vcpu);
}

/** vmx_flush_tlb_gva(): INVLPG/INVPCID of one address; with shadow paging its shadow entry goes first (FNAME(invlpg)). */
function vmxFlushTlbGva(vcpu: X86Vcpu, gva: number): void {
  if (!toVmx(vcpu).ept) vcpuShadowMmu(vcpu).invlpg(gva < 0 ? gva + 2 ** 64 : gva);
  vmxFlushHwTlbGuest(vcpu);
}

/** construct_eptp(): root | WB memory type | walk length 4 - 1 | A/D enable (SDM 25.6.11). */
function vmxLoadMmuPgd(vcpu: X86Vcpu, rootHpa: number): void {
  const vmx = toVmx(vcpu);
  // Shadow paging: the root goes into GUEST_CR3 at every entry (vmxVcpuRun).
  if (!vmx.ept) return;
  const ad = vcpu.kvm.arch.mmu.adEnabled ? 1 << 6 : 0;
  vmx.eptp = rootHpa + (3 << 3) + 6 + ad;
  vmcsWrite(vcpu, V.EPT_POINTER, vmx.eptp);
}

// ----------------------------------------------------------------------------------------------
// Events
// ----------------------------------------------------------------------------------------------

/** vmx_update_exception_bitmap() */
function vmxUpdateExceptionBitmap(vcpu: X86Vcpu): void {
  // #UD (emulation), #MC, #DB and #AC always; #BP when userspace plants software breakpoints.
  let eb = (1 << 6) | (1 << 18) | (1 << 1) | (1 << 17);
  if ((vcpu.arch.guestDebug & 0x10001) === 0x10001) eb |= 1 << 3;
  const vmx = toVmx(vcpu);
  // Shadow paging intercepts every #PF (the guest's own ones are reflected back).
  if (!vmx.ept) eb |= 1 << 14;
  vmx.exceptionBitmap = eb;
  vmcsWrite(vcpu, V.EXCEPTION_BITMAP, eb);
}

/** vmx_inject_exception(): hardware exception (or #BP/#OF as software exceptions with the instruction length). */
function vmxInjectException(vcpu: X86Vcpu): void {
  const a = vcpu.arch;
  const ex = a.exception;
  let info = ex.vector | V.INTR_INFO_VALID_MASK;
  // Real mode pushes no error code (kvm_inject_exception: has_error_code &= is_protmode).
  if (ex.hasErrorCode && (a.cr0 & X86_CR0_PE) !== 0) {
    vmcsWrite(vcpu, V.VM_ENTRY_EXCEPTION_ERROR_CODE, ex.errorCode >>> 0);
    info |= V.INTR_INFO_DELIVER_CODE_MASK;
  }
  if (ex.vector === 3 || ex.vector === 4) {
    vmcsWrite(vcpu, V.VM_ENTRY_INSTRUCTION_LEN, toVmx(vcpu).eventExitInstLen);
    info |= V.INTR_TYPE_SOFT_EXCEPTION;
  } else {
    info |= V.INTR_TYPE_HARD_EXCEPTION;
  }
  vmcsWrite(vcpu, V.VM_ENTRY_INTR_INFO_FIELD, info >>> 0);
}

/** vmx_inject_irq() */
function vmxInjectIrq(vcpu: X86Vcpu, _reinjected: boolean): void {
  const a = vcpu.arch;
  let info = (a.interrupt.nr & 0xff) | V.INTR_INFO_VALID_MASK;
  if (a.interrupt.soft) {
    info |= V.INTR_TYPE_SOFT_INTR;
    vmcsWrite(vcpu, V.VM_ENTRY_INSTRUCTION_LEN, toVmx(vcpu).eventExitInstLen);
  } else {
    info |= V.INTR_TYPE_EXT_INTR;
  }
  vmcsWrite(vcpu, V.VM_ENTRY_INTR_INFO_FIELD, info >>> 0);
}

/** vmx_inject_nmi() */
function vmxInjectNmi(vcpu: X86Vcpu): void {
  vmcsWrite(vcpu, V.VM_ENTRY_INTR_INFO_FIELD, (2 | V.INTR_TYPE_NMI_INTR | V.INTR_INFO_VALID_MASK) >>> 0);
}

function vmxCancelInjection(vcpu: X86Vcpu): void {
  vmcsWrite(vcpu, V.VM_ENTRY_INTR_INFO_FIELD, 0);
}

function vmxInterruptAllowed(vcpu: X86Vcpu, _forVmenter: boolean): boolean {
  const shadow = vmcsRead(vcpu, V.GUEST_INTERRUPTIBILITY_INFO) & (V.GUEST_INTR_STATE_STI | V.GUEST_INTR_STATE_MOV_SS);
  return (vmcsRead(vcpu, V.GUEST_RFLAGS) & X86_EFLAGS_IF) !== 0 && shadow === 0;
}

function vmxNmiAllowed(vcpu: X86Vcpu, _forVmenter: boolean): boolean {
  const info = vmcsRead(vcpu, V.GUEST_INTERRUPTIBILITY_INFO);
  return (info & (V.GUEST_INTR_STATE_STI | V.GUEST_INTR_STATE_MOV_SS | V.GUEST_INTR_STATE_NMI)) === 0;
}

function vmxGetNmiMask(vcpu: X86Vcpu): boolean {
  return (vmcsRead(vcpu, V.GUEST_INTERRUPTIBILITY_INFO) & V.GUEST_INTR_STATE_NMI) !== 0;
}

function vmxSetNmiMask(vcpu: X86Vcpu, masked: boolean): void {
  const info = vmcsRead(vcpu, V.GUEST_INTERRUPTIBILITY_INFO);
  vmcsWrite(vcpu, V.GUEST_INTERRUPTIBILITY_INFO, masked ? info | V.GUEST_INTR_STATE_NMI : info & ~V.GUEST_INTR_STATE_NMI);
}

/** KVM_X86_SHADOW_INT_MOV_SS / KVM_X86_SHADOW_INT_STI (the kvm_vcpu_events.interrupt.shadow bits). */
const KVM_X86_SHADOW_INT_MOV_SS = 1;
const KVM_X86_SHADOW_INT_STI = 2;

/** vmx_get_interrupt_shadow() */
function vmxGetInterruptShadow(vcpu: X86Vcpu): number {
  const info = vmcsRead(vcpu, V.GUEST_INTERRUPTIBILITY_INFO);
  return ((info & V.GUEST_INTR_STATE_STI) !== 0 ? KVM_X86_SHADOW_INT_STI : 0) | ((info & V.GUEST_INTR_STATE_MOV_SS) !== 0 ? KVM_X86_SHADOW_INT_MOV_SS : 0);
}

/** vmx_set_interrupt_shadow() */
function vmxSetInterruptShadow(vcpu: X86Vcpu, mask: number): void {
  const info = vmcsRead(vcpu, V.GUEST_INTERRUPTIBILITY_INFO) & ~(V.GUEST_INTR_STATE_STI | V.GUEST_INTR_STATE_MOV_SS);
  let v = info;
  if (mask & KVM_X86_SHADOW_INT_STI) v |= V.GUEST_INTR_STATE_STI;
  if (mask & KVM_X86_SHADOW_INT_MOV_SS) v |= V.GUEST_INTR_STATE_MOV_SS;
  vmcsWrite(vcpu, V.GUEST_INTERRUPTIBILITY_INFO, v);
}

/**
 * __vmx_complete_interrupts(): after an exit, what was being injected is no longer pending;
 * if the exit interrupted its delivery (IDT-vectoring information valid), queue it again.
 */
function vmxCompleteInterrupts(vcpu: X86Vcpu): void {
  const a = vcpu.arch;
  const vmx = toVmx(vcpu);
  a.nmiInjected = false;
  a.exception.injected = false;
  a.interrupt.injected = false;
  const info = vmx.idtVectoringInfo;
  if ((info & V.VECTORING_INFO_VALID_MASK) === 0) return;
  kvmMakeRequest(vcpu, KVM_REQ_EVENT);
  const vector = info & V.VECTORING_INFO_VECTOR_MASK;
  const type = info & V.VECTORING_INFO_TYPE_MASK;
  vmx.eventExitInstLen = vmcsRead(vcpu, V.VM_EXIT_INSTRUCTION_LEN);
  switch (type) {
    case V.INTR_TYPE_NMI_INTR:
      a.nmiInjected = true;
      vmxSetNmiMask(vcpu, false);
      break;
    case V.INTR_TYPE_SOFT_EXCEPTION:
    case V.INTR_TYPE_HARD_EXCEPTION:
      a.exception.injected = true;
      a.exception.pending = false;
      a.exception.vector = vector;
      a.exception.hasErrorCode = (info & V.VECTORING_INFO_DELIVER_CODE_MASK) !== 0;
      a.exception.errorCode = a.exception.hasErrorCode ? vmcsRead(vcpu, V.IDT_VECTORING_ERROR_CODE) : 0;
      break;
    case V.INTR_TYPE_SOFT_INTR:
    case V.INTR_TYPE_EXT_INTR:
      a.interrupt.injected = true;
      a.interrupt.nr = vector;
      a.interrupt.soft = type === V.INTR_TYPE_SOFT_INTR;
      break;
  }
}

// ----------------------------------------------------------------------------------------------
// Running the guest
// ----------------------------------------------------------------------------------------------

/**
 * vmx_vcpu_run(): load the guest's GPRs (and the registers the VMCS does not hold: CR2, DRs,
 * XCR0) into the processor, VMLAUNCH/VMRESUME, and read the exit back.
 */
function vmxVcpuRun(vcpu: X86Vcpu): number {
  const a = vcpu.arch;
  const vmx = toVmx(vcpu);
  const st = vmx.pcpu.cpu.state;
  if ((a.regsDirty & (1 << 4)) !== 0) vmcsWrite(vcpu, V.GUEST_RSP, a.regs[9] * 4294967296 + (a.regs[8] >>> 0));
  if ((a.regsDirty & (1 << 16)) !== 0) vmcsWrite(vcpu, V.GUEST_RIP, a.rip);
  a.regsDirty = 0;
  if (vmx.pleWindowDirty) {
    vmx.pleWindowDirty = false;
    vmcsWrite(vcpu, V.PLE_WINDOW, vmx.pleWindow);
  }
  if (!vmx.ept) {
    // Without unrestricted guest a real-mode guest would need vm86 emulation, which this KVM does
    // not do: vmx_handle_exit reports it (handle_invalid_guest_state's emulation failure).
    if (vmx.emulationRequired) {
      vmx.fail = false;
      vmx.exitReason = 0;
      vmx.idtVectoringInfo = 0;
      return EXIT_FASTPATH_NONE;
    }
    // kvm_mmu_load(): the shadow root of the guest's current paging mode.
    vmcsWrite(vcpu, V.GUEST_CR3, vcpuShadowMmu(vcpu).rootHpa());
    // Building a root write-tracks its guest table, which may have write-protected leaves this
    // vCPU's TLB still holds: flush now rather than at the next entry.
    const flushAll = kvmCheckRequest(vcpu, KVM_REQ_TLB_FLUSH);
    if (kvmCheckRequest(vcpu, KVM_REQ_TLB_FLUSH_CURRENT) || flushAll) vmxFlushTlbCurrent(vcpu);
  }
  st.gpr.set(a.regs);
  st.cr2 = a.cr2;
  st.xcr0 = a.xcr0;
  const db = (a.guestDebug & 0x20000) !== 0 ? a.guestDebugDb : a.db;
  st.dr[0] = db[0];
  st.dr[1] = db[1];
  st.dr[2] = db[2];
  st.dr[3] = db[3];
  st.dr[6] = a.dr6;

  vmx.inGuest = true;
  let r: number;
  try {
    r = vmx.launched ? vmx.pcpu.vmx.vmresume() : vmx.pcpu.vmx.vmlaunch();
  } finally {
    vmx.inGuest = false;
  }
  if (r !== 0) {
    vmx.fail = true;
    vmx.exitReason = R.VMX_EXIT_REASONS_FAILED_VMENTRY;
    a.regsAvail = 0;
    return EXIT_FASTPATH_NONE;
  }
  vmx.fail = false;
  a.regs.set(st.gpr);
  a.cr2 = st.cr2;
  a.dr6 = st.dr[6] >>> 0;
  a.xcr0 = st.xcr0;
  // RSP, RIP and the guest-owned CR bits are read lazily from the VMCS (vmx_register_cache_reset).
  a.regsAvail = ~((1 << 4) | (1 << 16));
  vmx.exitReason = vmcsRead(vcpu, V.VM_EXIT_REASON) >>> 0;
  if ((vmx.exitReason & R.VMX_EXIT_REASONS_FAILED_VMENTRY) === 0) vmx.launched = true;
  vmx.idtVectoringInfo = vmcsRead(vcpu, V.IDT_VECTORING_INFO_FIELD) >>> 0;
  vmcsWrite(vcpu, V.VM_ENTRY_INTR_INFO_FIELD, 0);
  vmxCacheReg(vcpu, 18);
  return EXIT_FASTPATH_NONE;
}

/** vmx_get_exit_info() */
function vmxGetExitInfo(vcpu: X86Vcpu, out: Float64Array): void {
  const vmx = toVmx(vcpu);
  out[0] = vmx.exitReason;
  const q = vmx.fail ? 0 : vmcsRead(vcpu, V.EXIT_QUALIFICATION);
  const qhi = Math.floor(q / 4294967296);
  out[1] = qhi >>> 0;
  out[2] = (q - qhi * 4294967296) >>> 0;
  out[3] = 0;
  out[4] = vmx.fail ? 0 : vmx.idtVectoringInfo;
  const intr = vmx.fail ? 0 : vmcsRead(vcpu, V.VM_EXIT_INTR_INFO) >>> 0;
  out[5] = intr;
  out[6] = (intr & V.INTR_INFO_DELIVER_CODE_MASK) !== 0 ? vmcsRead(vcpu, V.VM_EXIT_INTR_ERROR_CODE) >>> 0 : 0;
}

/** skip_emulated_instruction(): RIP += VM_EXIT_INSTRUCTION_LEN, and the STI/MOV SS shadow ends. */
function vmxSkipEmulatedInstruction(vcpu: X86Vcpu): boolean {
  const len = vmcsRead(vcpu, V.VM_EXIT_INSTRUCTION_LEN);
  let rip = kvmRipRead(vcpu) + len;
  // Outside 64-bit mode RIP wraps at 32 bits (16-bit code: the CS limit check happens on fetch).
  const a = vcpu.arch;
  const long = (a.efer & EFER_LMA) !== 0 && ((vmcsRead(vcpu, V.GUEST_CS_AR_BYTES) >>> 13) & 1) === 1;
  if (!long) rip = rip >>> 0;
  a.rip = rip;
  a.regsAvail |= 1 << 16;
  a.regsDirty |= 1 << 16;
  const info = vmcsRead(vcpu, V.GUEST_INTERRUPTIBILITY_INFO);
  if ((info & (V.GUEST_INTR_STATE_STI | V.GUEST_INTR_STATE_MOV_SS)) !== 0) {
    vmcsWrite(vcpu, V.GUEST_INTERRUPTIBILITY_INFO, info & ~(V.GUEST_INTR_STATE_STI | V.GUEST_INTR_STATE_MOV_SS));
  }
  return true;
}

function vmxSetDr7(vcpu: X86Vcpu, value: number): void {
  vmcsWrite(vcpu, V.GUEST_DR7, value >>> 0);
}

/** vmx_patch_hypercall(): VMCALL (0f 01 c1). */
function vmxPatchHypercall(out: Uint8Array): void {
  out[0] = 0x0f;
  out[1] = 0x01;
  out[2] = 0xc1;
}

/** vmx_get_mt_mask(): guest RAM is write-back and the guest's PAT is ignored (no non-coherent DMA). */
function vmxGetMtMask(_vcpu: X86Vcpu | null, _gfn: number, _isMmio: boolean): number {
  return EPT_MT_MASK_WB;
}

/**
 * vmx_vcpu_after_set_cpuid(), XSAVES part of vmx_secondary_exec_control(): "enable XSAVES/XRSTORS"
 * only when the guest's CPUID has XSAVE and XSAVES, so a guest without them gets #UD.
 */
function vmxVcpuAfterSetCpuid(vcpu: X86Vcpu): void {
  if ((vmxEnv(vcpu).config.cpuBasedExec2Ctrl & V.SECONDARY_EXEC_ENABLE_XSAVES) === 0) return;
  const vmx = toVmx(vcpu);
  const xsaves = guestCpuidHas(vcpu, 1, 0, "ecx", 26) && guestCpuidHas(vcpu, 0xd, 1, "eax", 3);
  vmx.secondary = xsaves ? vmx.secondary | V.SECONDARY_EXEC_ENABLE_XSAVES : vmx.secondary & ~V.SECONDARY_EXEC_ENABLE_XSAVES;
  vmcsWrite(vcpu, V.SECONDARY_VM_EXEC_CONTROL, vmx.secondary);
}

/** The kvm_x86_ops of VMX (vt_x86_ops / vmx_x86_ops). */
export const vmxX86Ops = {
  name: "kvm_intel",
  hardwareEnable,
  vcpuCreate: vmxVcpuCreate,
  vcpuFree: vmxVcpuFree,
  vcpuReset: vmxVcpuReset,
  vcpuAfterSetCpuid: vmxVcpuAfterSetCpuid,
  msrFilterChanged: vmxRecalcMsrIntercepts,
  getSegment: vmxGetSegment,
  setSegment: vmxSetSegment,
  getSegmentBase: vmxGetSegmentBase,
  getCpl: vmxGetCpl,
  getCsDbLBits: vmxGetCsDbLBits,
  isValidCr0: vmxIsValidCr0,
  setCr0: vmxSetCr0,
  postSetCr3: vmxPostSetCr3,
  isValidCr4: vmxIsValidCr4,
  setCr4: vmxSetCr4,
  setEfer: vmxSetEfer,
  getIdt: vmxGetIdt,
  setIdt: vmxSetIdt,
  getGdt: vmxGetGdt,
  setGdt: vmxSetGdt,
  setDr7: vmxSetDr7,
  cacheReg: vmxCacheReg,
  getRflags: vmxGetRflags,
  setRflags: vmxSetRflags,
  getIfFlag: (vcpu: X86Vcpu) => (vmcsRead(vcpu, V.GUEST_RFLAGS) & X86_EFLAGS_IF) !== 0,
  getMsr: vmxGetMsr,
  setMsr: vmxSetMsr,
  readHostTsc: vmxReadHostTsc,
  hostTscKhz: vmxHostTscKhz,
  writeTscOffset: vmxWriteTscOffset,
  writeTscMultiplier: vmxWriteTscMultiplier,
  flushTlbAll: vmxFlushTlbAll,
  flushTlbCurrent: vmxFlushTlbCurrent,
  flushTlbGva: vmxFlushTlbGva,
  flushTlbGuest: vmxFlushTlbGuest,
  loadMmuPgd: vmxLoadMmuPgd,
  schedIn: vmxSchedIn,
  getMtMask: vmxGetMtMask,
  vcpuRun: vmxVcpuRun,
  handleExit: vmxHandleExit,
  skipEmulatedInstruction: vmxSkipEmulatedInstruction,
  setInterruptShadow: vmxSetInterruptShadow,
  getInterruptShadow: vmxGetInterruptShadow,
  getExitInfo: vmxGetExitInfo,
  injectIrq: vmxInjectIrq,
  injectNmi: vmxInjectNmi,
  injectException: vmxInjectException,
  cancelInjection: vmxCancelInjection,
  interruptAllowed: vmxInterruptAllowed,
  nmiAllowed: vmxNmiAllowed,
  getNmiMask: vmxGetNmiMask,
  setNmiMask: vmxSetNmiMask,
  enableNmiWindow: (vcpu: X86Vcpu) => execControlsSetbit(vcpu, V.CPU_BASED_NMI_WINDOW_EXITING),
  enableIrqWindow: (vcpu: X86Vcpu) => execControlsSetbit(vcpu, V.CPU_BASED_INTR_WINDOW_EXITING),
  updateExceptionBitmap: vmxUpdateExceptionBitmap,
  completeInterrupts: vmxCompleteInterrupts,
  patchHypercall: vmxPatchHypercall,
  getPdptr: (vcpu: X86Vcpu, i: number, out: Int32Array) => {
    toVmx(vcpu).pcpu.vmx.vmread64(V.GUEST_PDPTR0 + 2 * i, out);
  },
  setPdptr: (vcpu: X86Vcpu, i: number, lo: number, hi: number) => {
    vmcsWrite64(vcpu, V.GUEST_PDPTR0 + 2 * i, lo, hi);
    // Without EPT the fields only hold the guest's PDPTE registers; the shadow PAE root follows them.
    if (!toVmx(vcpu).ept) kvmShadowPdptrsLoaded(vcpu);
  },
  kick: (vcpu: X86Vcpu) => {
    // kvm_vcpu_kick() only IPIs a vCPU that is in guest mode; otherwise it sees its requests at the next entry.
    const vmx = vcpu.arch.vendor as VcpuVmx | null;
    if (vmx !== null && vmx.inGuest) Atomics.store(vmx.pcpu.cpu.hostIrq, 0, 1);
  },
} satisfies KvmX86Ops;
