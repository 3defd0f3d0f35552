/**
 * openKvm(): the `open("/dev/kvm")` of tskvm. Loading x86 KVM with its VMX vendor module is
 * what `modprobe kvm_intel` does in Linux (vmx_init -> kvm_x86_vendor_init -> kvm_init): probe
 * the boot processor's CPUID and VMX capability MSRs, choose the VMCS controls
 * (setup_vmcs_config), and hand the x86 arch hooks to the generic core, which returns the
 * /dev/kvm handle (KvmDev).
 *
 *   const kvm = openKvm();                     // a fresh host machine and process
 *   const vm = kvm.createVm();
 *   ...
 *
 * Every call builds an independent instance; pass a HostProcess to share a host (several VMMs
 * on one machine) or to control its memory size and clock.
 */

import { createHost, type HostProcess } from "./host/process.js";
import { X86Cpu } from "./hw/x86/cpu.js";
import { VmxRoot } from "./hw/x86/vmx/vmx.js";
import { vmxCapabilityMsr } from "./hw/x86/vmx/caps.js";
import { kvmInit, type KvmDev } from "./virt/kvm/kvm_main.js";
import { X86KvmArch } from "./arch/x86/kvm/x86.js";
import { vmxX86Ops, type VmxModuleEnv, type VmxPcpu } from "./arch/x86/kvm/vmx/vmx.js";
import { setupVmcsConfig } from "./arch/x86/kvm/vmx/capabilities.js";

export interface OpenKvmOptions {
  /** Guest instructions per VM entry before the host timer tick exits (the scheduler's time slice). */
  sliceInsns?: number;
  /** num_online_cpus() for KVM_CAP_NR_VCPUS. */
  onlineCpus?: number;
  /**
   * kvm_intel.ept (default true). false = shadow paging: guest page tables are shadowed, #PF,
   * CR3 loads and INVLPG exit; guests must start in protected mode (real mode without
   * unrestricted guest ends KVM_RUN with KVM_EXIT_INTERNAL_ERROR).
   */
  ept?: boolean;
  /** kvm_intel.ple_gap (default 0: no PAUSE-loop exiting; Linux's default is 128, see vmx.ts VmxModuleEnv.pleGap). */
  pleGap?: number;
}

/** The module parameters in effect (/sys/module/kvm_intel/parameters). */
export interface KvmParams {
  readonly ept: boolean;
  /** kvm_intel.ple_gap */
  readonly pleGap: number;
}

export type KvmDevWithParams = KvmDev & { readonly params: KvmParams };

/** vmx_init() + kvm_init(): the /dev/kvm handle of an x86 host with VMX. */
export function openKvm(proc?: HostProcess, opts: OpenKvmOptions = {}): KvmDevWithParams {
  const p = proc ?? createHost().createProcess();
  const host = p.host;
  const clockNs = (): number => host.clock.nowNs();
  // The boot processor, probed as boot_cpu_data / rdmsr(MSR_IA32_VMX_*) are at module load.
  const bootCpu = new X86Cpu(host.physmem, { clockNs });
  const readMsr = (msr: number, out: Int32Array): boolean => vmxCapabilityMsr(msr, out) || bootCpu.readMsr(msr, out);
  const config = setupVmcsConfig(readMsr);
  const env: VmxModuleEnv = {
    // One logical processor per vCPU: the vCPU thread's pCPU.
    createPcpu(): VmxPcpu {
      const cpu = new X86Cpu(host.physmem, { clockNs });
      return { cpu, vmx: new VmxRoot(cpu, { sliceInsns: opts.sliceInsns }) };
    },
    allocPage: () => host.pageAlloc.allocPage(),
    freePage: (pfn) => host.pageAlloc.putPage(pfn),
    config,
    enableEpt: opts.ept !== false,
    pleGap: opts.pleGap ?? 0,
  };
  const arch = new X86KvmArch({
    ops: vmxX86Ops,
    pageAlloc: host.pageAlloc,
    hostCpuid: (leaf, sub, out) => bootCpu.cpuid(leaf, sub, out),
    eptAdBits: config.eptAdBits,
    vendor: env,
  });
  const dev = kvmInit(arch, p, { onlineCpus: opts.onlineCpus });
  const params: KvmParams = Object.freeze({ ept: opts.ept !== false, pleGap: opts.pleGap ?? 0 });
  return Object.assign(dev, { params });
}
