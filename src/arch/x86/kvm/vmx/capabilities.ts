/**
 * arch/x86/kvm/vmx/capabilities.h + setup_vmcs_config(): read the processor's IA32_VMX_*
 * capability MSRs and choose the VM-execution, VM-exit and VM-entry controls KVM runs guests
 * with, the way adjust_vmx_controls() does: "required" controls must be allowed-1 or VMX
 * setup fails; "optional" ones are used when the processor offers them; default1 bits are
 * always set (SDM Vol. 3D Appendix A.3-A.5, 31.5.1).
 */

import * as V from "../../../../hw/x86/vmx/vmcs.js";
import {
  MSR_IA32_VMX_BASIC, MSR_IA32_VMX_CR0_FIXED0, MSR_IA32_VMX_CR0_FIXED1, MSR_IA32_VMX_CR4_FIXED0, MSR_IA32_VMX_CR4_FIXED1,
  MSR_IA32_VMX_EPT_VPID_CAP, MSR_IA32_VMX_MISC, MSR_IA32_VMX_PROCBASED_CTLS2, MSR_IA32_VMX_TRUE_ENTRY_CTLS,
  MSR_IA32_VMX_TRUE_EXIT_CTLS, MSR_IA32_VMX_TRUE_PINBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
  MSR_IA32_VMX_PINBASED_CTLS, MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_EXIT_CTLS, MSR_IA32_VMX_ENTRY_CTLS,
  VMX_EPT_AD_BIT, VMX_EPT_PAGE_WALK_4_BIT, VMX_EPTP_WB_BIT, VMX_EPT_2MB_PAGE_BIT, VMX_EPT_1GB_PAGE_BIT,
  VMX_EPT_EXTENT_CONTEXT_BIT, VMX_EPT_INVEPT_BIT, VMX_EPT_EXTENT_GLOBAL_BIT, VMX_VPID_INVVPID_BIT_HI,
  VMX_VPID_EXTENT_SINGLE_CONTEXT_BIT_HI,
} from "../../../../hw/x86/vmx/caps.js";

/** Reads an MSR of the processor ([lo, hi] into out); false if it does not exist. */
export type MsrReader = (msr: number, out: Int32Array) => boolean;

/** struct vmcs_config + struct vmx_capability */
export interface VmcsConfig {
  revisionId: number;
  pinBasedExecCtrl: number;
  cpuBasedExecCtrl: number;
  cpuBasedExec2Ctrl: number;
  vmexitCtrl: number;
  vmentryCtrl: number;
  /** IA32_VMX_EPT_VPID_CAP low / high dwords */
  ept: number;
  vpid: number;
  misc: number;
  cr0Fixed0: number;
  cr0Fixed1: number;
  cr4Fixed0: number;
  cr4Fixed1: number;
  /** enable_ept_ad_bits */
  eptAdBits: boolean;
  /** The largest EPT page level the processor supports (1 = 4K, 2 = 2M, 3 = 1G). */
  eptMaxLevel: number;
}

/** A failure of hardware setup, reported the way vmx_init would (module load fails). */
export class VmxSetupError extends Error {
  constructor(msg: string) {
    super(`kvm_intel: ${msg}`);
    this.name = "VmxSetupError";
  }
}

/**
 * adjust_vmx_controls(): `required | optional` intersected with allowed-1, OR default-1. Throws
 * if a required control is not available.
 */
export function adjustVmxControls(required: number, optional: number, msr: number, rd: MsrReader, name: string): number {
  const out = new Int32Array(2);
  if (!rd(msr, out)) throw new VmxSetupError(`cannot read VMX capability MSR 0x${msr.toString(16)}`);
  const default1 = out[0] >>> 0;
  const allowed1 = out[1] >>> 0;
  let ctl = (required | optional) >>> 0;
  ctl = (ctl & allowed1) >>> 0;
  ctl = (ctl | default1) >>> 0;
  if (((ctl & required) >>> 0) !== (required >>> 0)) {
    throw new VmxSetupError(`${name}: required controls 0x${((required & ~ctl) >>> 0).toString(16)} not supported`);
  }
  return ctl;
}

/** Controls KVM cannot run without, and the ones it uses when available (vmx.h KVM_*_VMX_* sets). */
const KVM_REQUIRED_VMX_PIN_BASED = V.PIN_BASED_EXT_INTR_MASK | V.PIN_BASED_NMI_EXITING;
const KVM_OPTIONAL_VMX_PIN_BASED = V.PIN_BASED_VIRTUAL_NMIS;
const KVM_REQUIRED_VMX_CPU_BASED = (V.CPU_BASED_HLT_EXITING | V.CPU_BASED_CR8_LOAD_EXITING | V.CPU_BASED_CR8_STORE_EXITING |
  V.CPU_BASED_UNCOND_IO_EXITING | V.CPU_BASED_MOV_DR_EXITING | V.CPU_BASED_USE_TSC_OFFSETTING |
  V.CPU_BASED_MWAIT_EXITING | V.CPU_BASED_MONITOR_EXITING | V.CPU_BASED_INVLPG_EXITING | V.CPU_BASED_RDPMC_EXITING |
  V.CPU_BASED_USE_MSR_BITMAPS | V.CPU_BASED_ACTIVATE_SECONDARY_CONTROLS) >>> 0;
const KVM_REQUIRED_VMX_SECONDARY = V.SECONDARY_EXEC_ENABLE_EPT | V.SECONDARY_EXEC_UNRESTRICTED_GUEST;
const KVM_OPTIONAL_VMX_SECONDARY = V.SECONDARY_EXEC_ENABLE_VPID | V.SECONDARY_EXEC_ENABLE_RDTSCP | V.SECONDARY_EXEC_ENABLE_XSAVES |
  V.SECONDARY_EXEC_WBINVD_EXITING | V.SECONDARY_EXEC_ENABLE_INVPCID | V.SECONDARY_EXEC_TSC_SCALING |
  V.SECONDARY_EXEC_PAUSE_LOOP_EXITING;
const KVM_REQUIRED_VMX_VM_EXIT = (V.VM_EXIT_SAVE_DEBUG_CONTROLS | V.VM_EXIT_HOST_ADDR_SPACE_SIZE | V.VM_EXIT_ACK_INTR_ON_EXIT |
  V.VM_EXIT_SAVE_IA32_EFER | V.VM_EXIT_LOAD_IA32_EFER) >>> 0;
const KVM_OPTIONAL_VMX_VM_EXIT = V.VM_EXIT_SAVE_IA32_PAT | V.VM_EXIT_LOAD_IA32_PAT;
const KVM_REQUIRED_VMX_VM_ENTRY = V.VM_ENTRY_LOAD_DEBUG_CONTROLS | V.VM_ENTRY_LOAD_IA32_EFER;
const KVM_OPTIONAL_VMX_VM_ENTRY = V.VM_ENTRY_IA32E_MODE | V.VM_ENTRY_LOAD_IA32_PAT;

/** setup_vmcs_config(): the controls every vCPU's VMCS starts from. */
export function setupVmcsConfig(rd: MsrReader): VmcsConfig {
  const out = new Int32Array(2);
  if (!rd(MSR_IA32_VMX_BASIC, out)) throw new VmxSetupError("VMX not supported (no IA32_VMX_BASIC)");
  const revisionId = out[0] & 0x7fffffff;
  // Bit 55: the TRUE_* MSRs exist and report which default1 bits may be cleared (SDM A.2).
  const hasTrue = (out[1] & (1 << 23)) !== 0;
  const pinMsr = hasTrue ? MSR_IA32_VMX_TRUE_PINBASED_CTLS : MSR_IA32_VMX_PINBASED_CTLS;
  const procMsr = hasTrue ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS;
  const exitMsr = hasTrue ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS;
  const entryMsr = hasTrue ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS;

  const pin = adjustVmxControls(KVM_REQUIRED_VMX_PIN_BASED, KVM_OPTIONAL_VMX_PIN_BASED, pinMsr, rd, "pin-based controls");
  let cpu = adjustVmxControls(KVM_REQUIRED_VMX_CPU_BASED, 0, procMsr, rd, "processor-based controls");
  const cpu2 = adjustVmxControls(KVM_REQUIRED_VMX_SECONDARY, KVM_OPTIONAL_VMX_SECONDARY, MSR_IA32_VMX_PROCBASED_CTLS2, rd, "secondary controls");
  // With EPT the guest's own CR3 loads/stores and INVLPG need no exits (vmx_exec_control()).
  cpu = (cpu & ~(V.CPU_BASED_CR3_LOAD_EXITING | V.CPU_BASED_CR3_STORE_EXITING | V.CPU_BASED_INVLPG_EXITING)) >>> 0;
  if (!rd(procMsr, out)) throw new VmxSetupError("processor-based controls");
  cpu = (cpu | (out[0] >>> 0)) >>> 0;
  const exit = adjustVmxControls(KVM_REQUIRED_VMX_VM_EXIT, KVM_OPTIONAL_VMX_VM_EXIT, exitMsr, rd, "VM-exit controls");
  const entry = adjustVmxControls(KVM_REQUIRED_VMX_VM_ENTRY, KVM_OPTIONAL_VMX_VM_ENTRY, entryMsr, rd, "VM-entry controls");
  if ((entry & V.VM_ENTRY_IA32E_MODE) === 0) throw new VmxSetupError("no 64-bit guest support");

  if (!rd(MSR_IA32_VMX_EPT_VPID_CAP, out)) throw new VmxSetupError("EPT capability MSR missing");
  const ept = out[0] >>> 0;
  const vpid = out[1] >>> 0;
  if ((ept & VMX_EPT_PAGE_WALK_4_BIT) === 0 || (ept & VMX_EPTP_WB_BIT) === 0 || (ept & VMX_EPT_INVEPT_BIT) === 0 ||
    (ept & (VMX_EPT_EXTENT_CONTEXT_BIT | VMX_EPT_EXTENT_GLOBAL_BIT)) === 0) {
    throw new VmxSetupError("EPT without 4-level walks, WB memory type or INVEPT");
  }
  const eptMaxLevel = (ept & VMX_EPT_1GB_PAGE_BIT) !== 0 ? 3 : (ept & VMX_EPT_2MB_PAGE_BIT) !== 0 ? 2 : 1;
  let cpu2Final = cpu2;
  // VPID is only used with INVVPID single-context (vmx_setup_vpid / cpu_has_vmx_invvpid_single).
  if ((vpid & VMX_VPID_INVVPID_BIT_HI) === 0 || (vpid & VMX_VPID_EXTENT_SINGLE_CONTEXT_BIT_HI) === 0) cpu2Final &= ~V.SECONDARY_EXEC_ENABLE_VPID;

  const rd1 = (msr: number): number => {
    if (!rd(msr, out)) throw new VmxSetupError(`cannot read MSR 0x${msr.toString(16)}`);
    return out[0] >>> 0;
  };
  return {
    revisionId,
    pinBasedExecCtrl: pin,
    cpuBasedExecCtrl: cpu,
    cpuBasedExec2Ctrl: cpu2Final >>> 0,
    vmexitCtrl: exit,
    vmentryCtrl: (entry & ~V.VM_ENTRY_IA32E_MODE) >>> 0,
    ept,
    vpid,
    misc: rd1(MSR_IA32_VMX_MISC),
    cr0Fixed0: rd1(MSR_IA32_VMX_CR0_FIXED0),
    cr0Fixed1: rd1(MSR_IA32_VMX_CR0_FIXED1),
    cr4Fixed0: rd1(MSR_IA32_VMX_CR4_FIXED0),
    cr4Fixed1: rd1(MSR_IA32_VMX_CR4_FIXED1),
    eptAdBits: (ept & VMX_EPT_AD_BIT) !== 0,
    eptMaxLevel,
  };
}
