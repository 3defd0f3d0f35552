/**
 * The part of the KVM API the VMM uses, as structural types: what a C VMM reaches through
 * /dev/kvm, a VM fd and vCPU fds. Typed methods where the API names them (createVm,
 * setUserMemoryRegion, createVcpu, run, getRegs...); everything else through the byte-level
 * `ioctl(request, arg)` with structs in the process's memory, exactly as C passes pointers.
 */
import type { KvmRun } from "../uapi/kvm_run.js";
import type { TraceEvent } from "../virt/kvm/trace.js";
import type { KvmCpuid2, KvmRegs, KvmSregs, KvmUserspaceMemoryRegion } from "../uapi/kvm_structs.js";

export interface KvmStatsFile {
  bytes(): Uint8Array;
}

export interface KvmSystemApi {
  checkExtension(cap: number): number;
  createVm(type?: number): KvmVmApi;
  /** KVM_GET_SUPPORTED_CPUID with room for `nent` entries (E2BIG when too small). */
  getSupportedCpuid(nent: number): KvmCpuid2;
  /** The tracefs role: listen to KVM's tracepoints (names, "kvm_*" prefixes, or null for all). */
  subscribeTrace(filter: readonly string[] | null, cb: (ev: TraceEvent) => void): () => void;
}

export interface KvmVmApi {
  checkExtension(cap: number): number;
  setUserMemoryRegion(r: KvmUserspaceMemoryRegion): unknown;
  createVcpu(id: number): KvmVcpuApi;
  ioctl(request: number, arg: number): unknown;
  getStatsFd(): KvmStatsFile;
  /** close(vm_fd): the VM and its vCPUs go away. */
  destroy(): void;
}

export interface KvmVcpuApi {
  /** KVM_RUN: returns when an exit needs userspace; EINTR surfaces as a thrown KvmError or KVM_EXIT_INTR. */
  run(): unknown;
  readonly kvmRun: KvmRun;
  getRegs(): KvmRegs;
  setRegs(r: KvmRegs): unknown;
  getSregs(): KvmSregs;
  setSregs(s: KvmSregs): unknown;
  setCpuid2(c: KvmCpuid2): unknown;
  ioctl(request: number, arg: number): unknown;
  getStatsFd(): KvmStatsFile;
}
