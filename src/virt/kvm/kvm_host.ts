/**
 * The kvm_host.h role: the types shared by the arch-independent core (virt/kvm) and the
 * architecture (arch/<arch>/kvm), and the arch hooks (`kvm_arch_*`) through which the core
 * reaches the architecture. The core never imports arch code; an arch module hands a
 * `KvmArch` to `kvmInit()` (the `kvm_init()` role, called from e.g. `vmx_init()`).
 *
 * Concrete classes live in kvm_main.ts (`KvmDev`, `Kvm`, `KvmVcpu`); this file holds only
 * shapes, so both sides can be written against it.
 */

import type { PhysMem } from "../../hw/physmem.js";
import type { HostProcess } from "../../host/process.js";

/** A memslot as KVM keeps it (struct kvm_memory_slot). */
export interface KvmMemorySlot {
  /** id = as_id << 16 | slot number, as passed by userspace. */
  readonly id: number;
  readonly asId: number;
  readonly baseGfn: number;
  readonly npages: number;
  readonly userspaceAddr: number;
  flags: number;
  /** One bit per page when KVM_MEM_LOG_DIRTY_PAGES is set (kvm_memory_slot.dirty_bitmap). */
  dirtyBitmap: Uint32Array | null;
  /** Arch-private data (e.g. x86 rmap / lpage_info); owned by arch code. */
  arch: unknown;
}

/** enum kvm_mr_change */
export const enum KvmMrChange {
  CREATE = 0,
  DELETE = 1,
  MOVE = 2,
  FLAGS_ONLY = 3,
}

/** Result of a gfn -> pfn resolution (the __gfn_to_pfn_memslot role). */
export const KVM_PFN_NOSLOT = -1; // no memslot covers the gfn: MMIO
export const KVM_PFN_ERR_FAULT = -2; // hva not mapped / not accessible (EFAULT)
export const KVM_PFN_ERR_RO_FAULT = -3; // write to a READONLY slot

/** What an in-kernel device on a KVM io bus implements (struct kvm_io_device_ops). */
export interface KvmIoDevice {
  /** Returns true if it handled the access (0 in C); false means "not mine, keep looking" (-EOPNOTSUPP). */
  read(vcpu: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean;
  write(vcpu: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean;
  destructor?(): void;
}

export const enum KvmBus {
  MMIO = 0,
  PIO = 1,
  VIRTIO_CCW_NOTIFY = 2,
  FAST_MMIO = 3,
}

/** Hooks a tracepoint subscriber receives (see trace.ts). */
export type TraceEventName = string;

/**
 * The minimal view of a vCPU the arch side and io devices rely on. kvm_main.ts's KvmVcpu
 * implements it; arch code keeps its own state in `arch`.
 */
export interface KvmVcpuLike {
  readonly kvm: KvmLike;
  /** vcpu->vcpu_id */
  readonly vcpuId: number;
  /** vcpu->vcpu_idx: index in kvm->vcpus */
  readonly vcpuIdx: number;
  /** The mmap'ed run area (kvm_run at offset 0, then the PIO data page, ...). */
  readonly runBytes: Uint8Array;
  /** Per-vCPU statistics, by KVM's names (see stats.ts). Values are plain numbers. */
  readonly stat: Record<string, number>;
  /** Pending vCPU requests (KVM_REQ_* bits), see kvmMakeRequest / kvmCheckRequest. */
  requests: number;
  /** Arch state (struct kvm_vcpu_arch). */
  arch: unknown;
  /** signal_pending(current) for the task running this vCPU (ends KVM_RUN with EINTR). */
  signalPending(): boolean;
  /** yield_to(): let another thread of the host have the CPU now (HostTask.yieldCpu). */
  yieldCpu(): void;
}

export interface KvmLike {
  readonly physmem: PhysMem;
  /** kvm->stat */
  readonly stat: Record<string, number>;
  /** Current memslot for `gfn` in address space `asId` (the gfn_to_memslot role), or null. */
  gfnToMemslot(gfn: number, asId?: number): KvmMemorySlot | null;
  /** Translate a gfn to a host pfn (or a KVM_PFN_* error) for read or write, faulting the host page in. */
  gfnToPfn(gfn: number, write: boolean, asId?: number): number;
  /** Mark a gfn dirty in the dirty bitmap / ring (mark_page_dirty_in_slot). */
  markPageDirty(vcpu: KvmVcpuLike | null, gfn: number): void;
  /** kvm_io_bus_read/write: returns false when no device claims the access. */
  ioBusRead(vcpu: KvmVcpuLike | null, bus: KvmBus, addr: number, len: number, data: Uint8Array): boolean;
  ioBusWrite(vcpu: KvmVcpuLike | null, bus: KvmBus, addr: number, len: number, data: Uint8Array): boolean;
  /** Emit a tracepoint if anyone listens (cheap check first: `tracing`). */
  readonly tracing: boolean;
  trace(event: TraceEventName, fields: Record<string, number | string | bigint | boolean>, vcpu?: KvmVcpuLike): void;
  /** Arch state (struct kvm_arch). */
  arch: unknown;
  /** The process that created the VM (kvm->mm and its files, clock). */
  readonly proc: HostProcess;
  /** kvm_io_bus_register_dev(): throws KvmError (e.g. ENOSPC when the bus is full); `len` 0 means "any access at addr". */
  ioBusRegisterDev(bus: KvmBus, addr: number, len: number, dev: KvmIoDevice): void;
  /** kvm_io_bus_unregister_dev() */
  ioBusUnregisterDev(bus: KvmBus, dev: KvmIoDevice): void;
  /** kvm_flush_remote_tlbs(): every vCPU flushes its TLB before the next guest entry. */
  flushRemoteTlbs(): void;
}

/**
 * The kvm_arch_* hooks. Members map one-to-one to the Linux functions named in their
 * doc comments. Optional members may be absent when the architecture has nothing to do.
 */
export interface KvmArch {
  readonly name: string;
  /** kvm_vm_ioctl_check_extension() for arch caps; return 0 for unknown caps. */
  checkExtension(kvm: KvmLike | null, cap: number): number;
  /** kvm_arch_dev_ioctl(): system-level arch ioctls (e.g. KVM_GET_MSR_INDEX_LIST). Throw the arch's errno for an unknown request (x86: EINVAL). */
  devIoctl(nr: number, arg: number | object): number | object;
  /** kvm_arch_init_vm() */
  initVm(kvm: KvmLike, type: number): void;
  /** kvm_arch_sync_events(): stop in-kernel device activity (x86: free the PIT) while the io buses still exist. */
  syncEvents?(kvm: KvmLike): void;
  /** kvm_arch_destroy_vm() */
  destroyVm?(kvm: KvmLike): void;
  /** kvm_arch_vm_ioctl(): VM-level arch ioctls. Throw KvmError(ENOTTY) if unknown. */
  vmIoctl(kvm: KvmLike, nr: number, arg: number | object): number | object;
  /** kvm_arch_vcpu_precreate() */
  vcpuPrecreate?(kvm: KvmLike, id: number): void;
  /** kvm_arch_vcpu_create(): set up vcpu.arch. */
  vcpuCreate(vcpu: KvmVcpuLike): void;
  /** kvm_arch_vcpu_destroy() */
  vcpuDestroy?(vcpu: KvmVcpuLike): void;
  /** kvm_arch_vcpu_ioctl_run(): enter the guest until an exit needs userspace. Returns 0 or throws KvmError. */
  vcpuIoctlRun(vcpu: KvmVcpuLike): number;
  /** kvm_arch_vcpu_ioctl(): vCPU-level arch ioctls (GET/SET_REGS live here too). Throw the arch's errno for an unknown request (x86: EINVAL). */
  vcpuIoctl(vcpu: KvmVcpuLike, nr: number, arg: number | object): number | object;
  /** kvm_arch_prepare_memory_region(): may veto with a KvmError. */
  prepareMemoryRegion?(kvm: KvmLike, old: KvmMemorySlot | null, next: KvmMemorySlot | null, change: KvmMrChange): void;
  /** kvm_arch_commit_memory_region() */
  commitMemoryRegion?(kvm: KvmLike, old: KvmMemorySlot | null, next: KvmMemorySlot | null, change: KvmMrChange): void;
  /** kvm_arch_flush_shadow_memslot(): drop every mapping of the slot (delete / move). */
  flushShadowMemslot?(kvm: KvmLike, slot: KvmMemorySlot): void;
  /** kvm_unmap_gfn_range() from the mmu notifier: returns true if a TLB flush is needed. */
  unmapGfnRange?(kvm: KvmLike, slot: KvmMemorySlot, startGfn: number, endGfn: number): boolean;
  /** kvm_arch_mmu_enable_log_dirty_pt_masked(): write-protect pages again after a dirty-log harvest. */
  enableLogDirtyPtMasked?(kvm: KvmLike, slot: KvmMemorySlot, gfnOffset: number, mask: number): void;
  /** kvm_arch_vcpu_kick / kvm_vcpu_kick(): make a running vCPU leave the guest soon. */
  vcpuKick?(vcpu: KvmVcpuLike): void;
  /** The size of the per-vCPU mmap area (KVM_GET_VCPU_MMAP_SIZE). */
  readonly vcpuMmapSize: number;
  /**
   * complete_userspace_io: finish the IN/MMIO-read/MSR exit userspace just served. Called by
   * KVM_RUN before the immediate_exit check (so immediate_exit still completes pending I/O, as
   * api.rst requires). Return > 0 to go on into the guest, <= 0 to return to userspace now.
   */
  completeUserspaceIo?(vcpu: KvmVcpuLike): number;
  /** kvm_arch_nr_memslot_as_ids(): number of memslot address spaces (x86 with SMM: 2). Default 1. */
  readonly nrMemslotAsIds?: number;
  /** Arch statistics (appended after the generic ones, as in kvm_vm_stats_desc[] / kvm_vcpu_stats_desc[]). */
  readonly vmStatDescs?: readonly KvmStatDesc[];
  readonly vcpuStatDescs?: readonly KvmStatDesc[];
}

// ------------------------------------------------------------------------------------------
// Additions (H1): generic vCPU requests (kvm_host.h). vcpu.requests is a 32-bit mask, so request
// numbers are 0..31; the arch numbers its own from KVM_REQUEST_ARCH_BASE.
// ------------------------------------------------------------------------------------------
export const KVM_REQ_TLB_FLUSH = 0;
export const KVM_REQ_VM_DEAD = 1;
export const KVM_REQ_UNBLOCK = 2;
export const KVM_REQ_DIRTY_RING_SOFT_FULL = 3;
export const KVM_REQUEST_ARCH_BASE = 8;

/** kvm_make_request() */
export function kvmMakeRequest(vcpu: KvmVcpuLike, req: number): void {
  vcpu.requests |= 1 << req;
}

/** kvm_test_request() */
export function kvmTestRequest(vcpu: KvmVcpuLike, req: number): boolean {
  return (vcpu.requests & (1 << req)) !== 0;
}

/** kvm_clear_request() */
export function kvmClearRequest(vcpu: KvmVcpuLike, req: number): void {
  vcpu.requests &= ~(1 << req);
}

/** kvm_check_request(): test and clear. */
export function kvmCheckRequest(vcpu: KvmVcpuLike, req: number): boolean {
  const bit = 1 << req;
  if ((vcpu.requests & bit) === 0) return false;
  vcpu.requests &= ~bit;
  return true;
}

/** kvm_request_pending() */
export function kvmRequestPending(vcpu: KvmVcpuLike): boolean {
  return vcpu.requests !== 0;
}

/** Statistic descriptor (struct _kvm_stats_desc without the offset, which the core assigns). */
export interface KvmStatDesc {
  readonly name: string;
  /** KVM_STATS_TYPE_* | KVM_STATS_UNIT_* | KVM_STATS_BASE_* */
  readonly flags: number;
  readonly exponent: number;
  /** Number of u64 values: 1, or the bucket count of a histogram. */
  readonly size: number;
  readonly bucketSize: number;
}
