/**
 * The arch-independent KVM core (virt/kvm/kvm_main.c): the three handle levels of the API,
 *   KvmDev  - the open /dev/kvm (kvm_dev_ioctl),
 *   Kvm     - a VM (kvm_vm_ioctl): memslots, vCPU creation, dirty logging, io buses, stats,
 *   KvmVcpu - a vCPU (kvm_vcpu_ioctl): KVM_RUN, the run area, requests, stats,
 * each with typed methods named after the ioctls and a byte-level `ioctl(request, arg)` where
 * `arg` is an integer or a user pointer (hva in the owning process's address space), structs
 * being copied in and out the way the kernel's copy_{from,to}_user do (EFAULT when they can't).
 * Ioctls the core does not know go to the arch hooks (kvm_arch_*_ioctl): structs the core knows
 * the layout of are decoded to objects first (ARCH_IOCTL_ARGS in kvm_ioctl_args.ts); others pass `arg` as is.
 *
 * The handles are also files of the owning process (host/file.ts): `dev.open()` gives the
 * /dev/kvm descriptor, and the byte-level KVM_CREATE_VM, KVM_CREATE_VCPU and KVM_GET_STATS_FD
 * return descriptors, so a VMM can be written exactly like its C original
 * (`proc.files.ioctl(vmfd, KVM_CREATE_VCPU, 0)`); closing the last VM descriptor destroys the VM.
 *
 * Errors are thrown as KvmError(errno, ioctl name); the errno is what Linux returns for the
 * same input.
 */
import { PAGE_SIZE, type PhysMem } from "../../hw/physmem.js";
import type { HostFile } from "../../host/file.js";
import type { HostProcess } from "../../host/process.js";
import type { MmStruct } from "../../host/mm.js";
import type { HostTask } from "../../host/signal.js";
import { TASK_SIZE } from "../../host/mm.js";
import { E2BIG, EEXIST, EFAULT, EINTR, EINVAL, EIO, ENOENT, ENOMEM, ENXIO } from "../../uapi/errno.js";
import { SIGKILL, SIGSTOP } from "../../uapi/signal.js";
import * as K from "../../uapi/kvm.js";
import { KvmRun } from "../../uapi/kvm_run.js";
import * as S from "../../uapi/kvm_structs.js";
import { KvmStatsFd } from "./binary_stats.js";
import { archIoctlBytes, copyIn, copyInBytes, copyOutBytes } from "./kvm_ioctl_args.js";
import { KVM_DIRTY_GFN_SIZE, KVM_DIRTY_RING_MAX_ENTRIES, KVM_DIRTY_RING_RSVD_ENTRIES, KvmDirtyRing } from "./dirty_ring.js";
import { KvmError } from "./kvm_error.js";
import {
  KVM_PFN_ERR_FAULT, KVM_PFN_ERR_RO_FAULT, KVM_PFN_NOSLOT, KVM_REQ_DIRTY_RING_SOFT_FULL, KVM_REQ_TLB_FLUSH, KvmBus,
  KvmMrChange, kvmCheckRequest, kvmMakeRequest, kvmTestRequest,
  type KvmArch, type KvmIoDevice, type KvmLike, type KvmMemorySlot, type KvmStatDesc, type KvmVcpuLike,
} from "./kvm_host.js";
import { KvmIoBus } from "./kvm_io_bus.js";
import { CoalescedMmioDev, checkZone, KvmCoalescedMmioRing, type CoalescedZone } from "./coalesced_mmio.js";
import { KvmMemslots } from "./memslots.js";
import { KVM_GENERIC_VCPU_STATS, KVM_GENERIC_VM_STATS, KvmStats } from "./stats.js";
import { KvmTracer, type TraceCallback, type TraceFields, type TraceFilter } from "./trace.js";

/** KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET */
export const KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1 << 0;
export const KVM_DIRTY_LOG_INITIALLY_SET = 1 << 1;
export const KVM_DIRTY_LOG_MANUAL_CAPS = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;

const KVM_SET_USER_MEMORY_REGION_V1_FLAGS = K.KVM_MEM_LOG_DIRTY_PAGES | K.KVM_MEM_READONLY;
const PAGE_SHIFT = 12;
const KERNEL_SIGSET_SIZE = 8;
const TWO64 = 1n << 64n;

export interface KvmDevOptions {
  /** num_online_cpus() reported by KVM_CAP_NR_VCPUS (default: navigator.hardwareConcurrency or 1). */
  onlineCpus?: number;
}

/** kvm_init(): the arch module hands its hooks to the core; returns the /dev/kvm handle. */
export function kvmInit(arch: KvmArch, proc: HostProcess, opts: KvmDevOptions = {}): KvmDev {
  return new KvmDev(arch, proc, opts);
}

const toNumber = (v: bigint | number): number => (typeof v === "bigint" ? Number(v) : v);

// ------------------------------------------------------------------------------------------------
// KvmDev: /dev/kvm
// ------------------------------------------------------------------------------------------------

export class KvmDev implements HostFile {
  readonly fileKind = "kvm";
  readonly tracer = new KvmTracer();
  readonly onlineCpus: number;
  private vmStatDescs: KvmStatDesc[];
  private vcpuStatDescs: KvmStatDesc[];
  readonly vms = new Set<Kvm>();

  constructor(
    readonly arch: KvmArch,
    readonly proc: HostProcess,
    opts: KvmDevOptions = {},
  ) {
    const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
    this.onlineCpus = Math.max(1, opts.onlineCpus ?? nav?.hardwareConcurrency ?? 1);
    this.vmStatDescs = [...KVM_GENERIC_VM_STATS, ...(arch.vmStatDescs ?? [])];
    this.vcpuStatDescs = [...KVM_GENERIC_VCPU_STATS, ...(arch.vcpuStatDescs ?? [])];
  }

  /** open("/dev/kvm"): install this device in the process's file table; returns the fd. */
  open(): number {
    return this.proc.files.install(this);
  }

  /** Add arch statistics (after the generic ones) for VMs and vCPUs created from now on. */
  registerArchStats(vmDescs: readonly KvmStatDesc[], vcpuDescs: readonly KvmStatDesc[]): void {
    const add = (list: KvmStatDesc[], ds: readonly KvmStatDesc[]): void => {
      for (const d of ds) if (!list.some((x) => x.name === d.name)) list.push(d);
    };
    add(this.vmStatDescs, vmDescs);
    add(this.vcpuStatDescs, vcpuDescs);
  }

  get vmStats(): readonly KvmStatDesc[] {
    return this.vmStatDescs;
  }

  get vcpuStats(): readonly KvmStatDesc[] {
    return this.vcpuStatDescs;
  }

  /** Listen to tracepoints of every VM of this /dev/kvm (see trace.ts). Returns unsubscribe. */
  subscribeTrace(filter: TraceFilter, cb: TraceCallback): () => void {
    return this.tracer.subscribe(filter, cb);
  }

  /** KVM_GET_API_VERSION: 12. */
  getApiVersion(): number {
    return K.KVM_API_VERSION;
  }

  /** KVM_CHECK_EXTENSION on /dev/kvm. */
  checkExtension(cap: number): number {
    return checkExtensionGeneric(this, null, cap);
  }

  /** KVM_GET_VCPU_MMAP_SIZE */
  getVcpuMmapSize(): number {
    return this.arch.vcpuMmapSize;
  }

  /** KVM_CREATE_VM(type): the machine type goes to kvm_arch_init_vm(), which rejects unknown ones. */
  createVm(type = 0): Kvm {
    if (!Number.isInteger(type) || type < 0) throw new KvmError(EINVAL, "KVM_CREATE_VM", `type ${type}`);
    const kvm = new Kvm(this, type);
    this.vms.add(kvm);
    return kvm;
  }

  /** KVM_GET_SUPPORTED_CPUID (arch): `nent` is the room the caller has. */
  getSupportedCpuid(nent: number): S.KvmCpuid2 {
    return this.arch.devIoctl(K.KVM_GET_SUPPORTED_CPUID, { nent, entries: [] }) as S.KvmCpuid2;
  }

  /** KVM_GET_MSR_INDEX_LIST (arch) */
  getMsrIndexList(nmsrs: number): S.KvmMsrList {
    return this.arch.devIoctl(K.KVM_GET_MSR_INDEX_LIST, { nmsrs, indices: [] }) as S.KvmMsrList;
  }

  /** kvm_dev_ioctl(): `arg` is an integer or a user pointer into `proc.mm`. */
  ioctl(request: number, arg = 0): number {
    request >>>= 0;
    switch (request) {
      case K.KVM_GET_API_VERSION:
        if (arg !== 0) throw new KvmError(EINVAL, "KVM_GET_API_VERSION", "arg must be 0");
        return this.getApiVersion();
      case K.KVM_CHECK_EXTENSION:
        return this.checkExtension(arg);
      case K.KVM_GET_VCPU_MMAP_SIZE:
        if (arg !== 0) throw new KvmError(EINVAL, "KVM_GET_VCPU_MMAP_SIZE", "arg must be 0");
        return this.getVcpuMmapSize();
      case K.KVM_CREATE_VM:
        return this.proc.files.install(this.createVm(arg));
      default:
        return archIoctlBytes(this.proc.mm, request, arg, (a) => this.arch.devIoctl(request, a));
    }
  }
}

/** kvm_vm_ioctl_check_extension_generic() */
function checkExtensionGeneric(dev: KvmDev, kvm: Kvm | null, cap: number): number {
  const arch = dev.arch;
  switch (cap) {
    case K.KVM_CAP_USER_MEMORY:
    case K.KVM_CAP_USER_MEMORY2:
    case K.KVM_CAP_DESTROY_MEMORY_REGION_WORKS:
    case K.KVM_CAP_JOIN_MEMORY_REGIONS_WORKS:
    case K.KVM_CAP_INTERNAL_ERROR_DATA:
    case K.KVM_CAP_CHECK_EXTENSION_VM:
    case K.KVM_CAP_ENABLE_CAP_VM:
    case K.KVM_CAP_IMMEDIATE_EXIT:
    case K.KVM_CAP_BINARY_STATS_FD:
    case K.KVM_CAP_READONLY_MEM:
    case K.KVM_CAP_HALT_POLL:
      return 1;
    case K.KVM_CAP_NR_VCPUS:
      return Math.min(dev.onlineCpus, K.KVM_MAX_VCPUS);
    case K.KVM_CAP_MAX_VCPUS:
      return K.KVM_MAX_VCPUS;
    case K.KVM_CAP_MAX_VCPU_ID:
      return K.KVM_MAX_VCPU_IDS;
    case K.KVM_CAP_NR_MEMSLOTS:
      return K.KVM_USER_MEM_SLOTS;
    case K.KVM_CAP_MULTI_ADDRESS_SPACE:
      return arch.nrMemslotAsIds ?? 1;
    case K.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
      return KVM_DIRTY_LOG_MANUAL_CAPS;
    case K.KVM_CAP_COALESCED_MMIO:
      return arch.vcpuMmapSize > K.KVM_COALESCED_MMIO_PAGE_OFFSET * PAGE_SIZE ? K.KVM_COALESCED_MMIO_PAGE_OFFSET : 0;
    case K.KVM_CAP_COALESCED_PIO:
      return arch.vcpuMmapSize > K.KVM_COALESCED_MMIO_PAGE_OFFSET * PAGE_SIZE ? 1 : 0;
    case K.KVM_CAP_DIRTY_LOG_RING:
    case K.KVM_CAP_DIRTY_LOG_RING_ACQ_REL:
      return KVM_DIRTY_RING_MAX_ENTRIES * KVM_DIRTY_GFN_SIZE;
    default:
      return arch.checkExtension(kvm, cap);
  }
}

// ------------------------------------------------------------------------------------------------
// Kvm: a VM
// ------------------------------------------------------------------------------------------------

/** The result of KVM_GET_STATS_FD: a read-only "file". */
export type { KvmStatsFd };

export class Kvm implements KvmLike, HostFile {
  readonly fileKind = "kvm-vm";
  readonly physmem: PhysMem;
  readonly proc: HostProcess;
  readonly mm: MmStruct;
  readonly stats: KvmStats;
  readonly stat: Record<string, number>;
  arch: unknown = undefined;
  /** kvm->memslots[as_id] */
  readonly memslots: KvmMemslots[];
  readonly vcpus: KvmVcpu[] = [];
  /** kvm->created_vcpus (counts creations in flight too) */
  createdVcpus = 0;
  maxVcpus = K.KVM_MAX_VCPUS;
  readonly buses: KvmIoBus[] = [new KvmIoBus(), new KvmIoBus(), new KvmIoBus(), new KvmIoBus()];
  /** kvm->dirty_ring_size in bytes (0: dirty bitmaps are used) */
  dirtyRingSize = 0;
  /** kvm->manual_dirty_log_protect */
  manualDirtyLogProtect = 0;
  /** mmu_invalidate_seq / mmu_invalidate_in_progress: arch page faults retry when these moved. */
  mmuInvalidateSeq = 0;
  mmuInvalidateInProgress = 0;
  /** The VM is dead after a fatal internal error (KVM_BUG_ON): every ioctl returns EIO. */
  dead = false;
  /** kvm->max_halt_poll_ns / override_halt_poll_ns (KVM_CAP_HALT_POLL; kvm_vcpu_halt.ts). */
  maxHaltPollNs = 0;
  overrideHaltPollNs = false;
  /** kvm->coalesced_mmio_ring, when the vCPU mmap area has room for its page. */
  readonly coalescedMmioRing: KvmCoalescedMmioRing | null;
  private readonly coalescedZones: CoalescedMmioDev[] = [];
  private readonly unregisterNotifier: () => void;

  constructor(
    readonly dev: KvmDev,
    readonly type: number,
  ) {
    this.proc = dev.proc;
    this.mm = dev.proc.mm;
    this.physmem = dev.proc.host.physmem;
    this.stats = new KvmStats(dev.vmStats);
    this.stat = this.stats.stat;
    const nAs = dev.arch.nrMemslotAsIds ?? 1;
    this.memslots = [];
    for (let i = 0; i < nAs; i++) this.memslots.push(new KvmMemslots(i));
    this.coalescedMmioRing = dev.arch.vcpuMmapSize > K.KVM_COALESCED_MMIO_PAGE_OFFSET * PAGE_SIZE ? new KvmCoalescedMmioRing() : null;
    dev.arch.initVm(this, type);
    this.unregisterNotifier = this.mm.registerMmuNotifier({
      invalidateRangeStart: (s, e) => this.mmuNotifierInvalidateRangeStart(s, e),
      invalidateRangeEnd: () => this.mmuInvalidateInProgress--,
    });
  }

  // ---------------------------------------------------------------- KvmLike

  get tracing(): boolean {
    return this.dev.tracer.enabled;
  }

  trace(event: string, fields: TraceFields, vcpu?: KvmVcpuLike): void {
    const t = this.dev.tracer;
    if (!t.enabled) return;
    const task = vcpu instanceof KvmVcpu ? vcpu.task : this.proc.task;
    t.emit({ name: event, fields, tsNs: this.proc.clock.nowNs(), pid: task.tid, comm: this.proc.comm, cpu: 0, vcpuId: vcpu ? vcpu.vcpuId : -1 });
  }

  /** gfn_to_memslot() / __gfn_to_memslot(kvm_memslots(kvm, as_id), gfn) */
  gfnToMemslot(gfn: number, asId = 0): KvmMemorySlot | null {
    const m = this.memslots[asId];
    return m === undefined ? null : m.lookup(gfn);
  }

  /** __gfn_to_pfn_memslot(): slot -> hva -> get_user_pages. */
  gfnToPfn(gfn: number, write: boolean, asId = 0): number {
    const m = this.memslots[asId];
    const slot = m === undefined ? null : m.lookup(gfn);
    if (slot === null) return KVM_PFN_NOSLOT;
    if (write && (slot.flags & K.KVM_MEM_READONLY) !== 0) return KVM_PFN_ERR_RO_FAULT;
    const pfn = this.mm.getUserPage(slot.userspaceAddr + (gfn - slot.baseGfn) * PAGE_SIZE, write);
    return pfn < 0 ? KVM_PFN_ERR_FAULT : pfn;
  }

  /** gfn_to_hva_memslot(): the hva backing `gfn`, or -1 without a slot. */
  gfnToHva(gfn: number, asId = 0): number {
    const slot = this.gfnToMemslot(gfn, asId);
    return slot === null ? -1 : slot.userspaceAddr + (gfn - slot.baseGfn) * PAGE_SIZE;
  }

  /** mark_page_dirty_in_slot(): dirty ring of `vcpu` when rings are on, else the slot's bitmap. */
  markPageDirty(vcpu: KvmVcpuLike | null, gfn: number, asId = 0): void {
    const slot = this.gfnToMemslot(gfn, asId);
    if (slot === null || (slot.flags & K.KVM_MEM_LOG_DIRTY_PAGES) === 0) return;
    const rel = gfn - slot.baseGfn;
    if (this.dirtyRingSize !== 0) {
      if (vcpu instanceof KvmVcpu && vcpu.dirtyRing) {
        const ring = vcpu.dirtyRing;
        ring.push(slot.id, rel);
        if (ring.softFull()) kvmMakeRequest(vcpu, KVM_REQ_DIRTY_RING_SOFT_FULL);
      }
      return;
    }
    const bm = slot.dirtyBitmap;
    if (bm !== null) bm[rel >>> 5] |= 1 << (rel & 31);
  }

  ioBusRead(vcpu: KvmVcpuLike | null, bus: KvmBus, addr: number, len: number, data: Uint8Array): boolean {
    return this.buses[bus].read(vcpu, addr, len, data);
  }

  ioBusWrite(vcpu: KvmVcpuLike | null, bus: KvmBus, addr: number, len: number, data: Uint8Array): boolean {
    return this.buses[bus].write(vcpu, addr, len, data);
  }

  /** kvm_io_bus_register_dev() */
  ioBusRegisterDev(bus: KvmBus, addr: number, len: number, dev: KvmIoDevice): void {
    this.buses[bus].register(addr, len, dev);
  }

  /** kvm_io_bus_unregister_dev() */
  ioBusUnregisterDev(bus: KvmBus, dev: KvmIoDevice): void {
    this.buses[bus].unregister(dev);
  }

  /** kvm_flush_remote_tlbs(): every vCPU flushes before its next entry. */
  flushRemoteTlbs(): void {
    this.stat.remote_tlb_flush_requests++;
    for (const v of this.vcpus) kvmMakeRequest(v, KVM_REQ_TLB_FLUSH);
    this.stat.remote_tlb_flush++;
    for (const v of this.vcpus) kvmVcpuKick(v);
  }

  /** kvm_make_all_cpus_request() */
  makeAllCpusRequest(req: number): void {
    for (const v of this.vcpus) {
      kvmMakeRequest(v, req);
      kvmVcpuKick(v);
    }
  }

  /** kvm_get_vcpu_by_id() */
  getVcpuById(id: number): KvmVcpu | null {
    return this.vcpus.find((v) => v.vcpuId === id) ?? null;
  }

  /** Throws EIO once the VM is dead (KVM_BUG_ON). */
  checkAlive(name: string): void {
    if (this.dead) throw new KvmError(EIO, name, "VM is dead");
  }

  // ---------------------------------------------------------------- memory regions

  /** KVM_SET_USER_MEMORY_REGION */
  setUserMemoryRegion(r: S.KvmUserspaceMemoryRegion): void {
    const name = "KVM_SET_USER_MEMORY_REGION";
    this.checkAlive(name);
    // Rule 1: the v1 ioctl accepts only LOG_DIRTY_PAGES and READONLY.
    if (r.flags & ~KVM_SET_USER_MEMORY_REGION_V1_FLAGS) throw new KvmError(EINVAL, name, `flags 0x${r.flags.toString(16)}`);
    this.setMemoryRegion({ ...r, guest_memfd_offset: 0n, guest_memfd: 0, pad1: 0, pad2: [] }, name);
  }

  /** KVM_SET_USER_MEMORY_REGION2 */
  setUserMemoryRegion2(r: S.KvmUserspaceMemoryRegion2): void {
    this.checkAlive("KVM_SET_USER_MEMORY_REGION2");
    this.setMemoryRegion(r, "KVM_SET_USER_MEMORY_REGION2");
  }

  /** kvm_set_memory_region() / __kvm_set_memory_region(): the digest §2 checks in order. */
  private setMemoryRegion(mem: S.KvmUserspaceMemoryRegion2, name: string): void {
    const slotArg = mem.slot >>> 0;
    const asId = slotArg >>> 16;
    const id = slotArg & 0xffff;
    const size = BigInt.asUintN(64, BigInt(mem.memory_size));
    const gpa = BigInt.asUintN(64, BigInt(mem.guest_phys_addr));
    const uaddr = BigInt.asUintN(64, BigInt(mem.userspace_addr));
    const hex = (v: bigint): string => `0x${v.toString(16)}`;
    // Rule 2: slot number (the u16 part) beyond KVM_USER_MEM_SLOTS.
    if (id >= K.KVM_USER_MEM_SLOTS) throw new KvmError(EINVAL, name, `slot ${id} >= ${K.KVM_USER_MEM_SLOTS}`);
    // Rule 3: check_memory_region_flags(): guest_memfd is not implemented, so its flag is unknown here.
    const valid = K.KVM_MEM_LOG_DIRTY_PAGES | K.KVM_MEM_READONLY;
    if (mem.flags & ~valid) throw new KvmError(EINVAL, name, `flags 0x${mem.flags.toString(16)}`);
    // Rule 4: size page aligned (and representable).
    if (size & BigInt(PAGE_SIZE - 1)) throw new KvmError(EINVAL, name, `memory_size ${hex(size)} not page aligned`);
    // Rule 5: gpa page aligned.
    if (gpa & BigInt(PAGE_SIZE - 1)) throw new KvmError(EINVAL, name, `guest_phys_addr ${hex(gpa)} not page aligned`);
    // Rule 6: userspace_addr aligned and access_ok() over the size (inside the user address space).
    if (uaddr & BigInt(PAGE_SIZE - 1) || uaddr + size > BigInt(TASK_SIZE)) throw new KvmError(EINVAL, name, `userspace_addr ${hex(uaddr)} size ${hex(size)}`);
    // Rule 7 (guest_memfd offset) is unreachable: KVM_MEM_GUEST_MEMFD was refused by rule 3.
    // Rule 8: address space.
    if (asId >= this.memslots.length) throw new KvmError(EINVAL, name, `address space ${asId}`);
    // Rule 9: gpa + size wraps.
    if (gpa + size >= TWO64) throw new KvmError(EINVAL, name, "guest_phys_addr + memory_size wraps");
    const npagesBig = size >> BigInt(PAGE_SHIFT);
    // Rule 10: too many pages.
    if (npagesBig > BigInt(K.KVM_MEM_MAX_NR_PAGES)) throw new KvmError(EINVAL, name, `${npagesBig} pages`);
    const npages = Number(npagesBig);
    const baseGfn = Number(gpa >> BigInt(PAGE_SHIFT));
    const slots = this.memslots[asId];
    const old = slots.byNumber(id);

    if (npages === 0) {
      // Rule 11: deleting a slot that does not exist.
      if (old === null) throw new KvmError(EINVAL, name, `delete of absent slot ${id}`);
      this.commitMemslot(slots, old, null, KvmMrChange.DELETE);
      return;
    }
    let change: KvmMrChange;
    if (old === null) {
      // Rule 12: the total page count must not overflow (kvm->nr_memslot_pages).
      if (slots.nrPages + npages > Number.MAX_SAFE_INTEGER) throw new KvmError(EINVAL, name, "total page count overflows");
      change = KvmMrChange.CREATE;
    } else {
      // Rule 13 (modifying a guest_memfd slot) is unreachable for the same reason as rule 7.
      // Rule 14: slots can't be resized, remapped or have READONLY toggled.
      if (Number(uaddr) !== old.userspaceAddr || npages !== old.npages || ((mem.flags ^ old.flags) & K.KVM_MEM_READONLY) !== 0) {
        throw new KvmError(EINVAL, name, `slot ${id}: userspace_addr/size/READONLY can't change`);
      }
      // Rule 15: what kind of change.
      if (baseGfn !== old.baseGfn) change = KvmMrChange.MOVE;
      else if (mem.flags !== old.flags) change = KvmMrChange.FLAGS_ONLY;
      else return;
    }
    // Rule 16: CREATE and MOVE must not overlap another slot of the address space.
    if (change === KvmMrChange.CREATE || change === KvmMrChange.MOVE) {
      const o = slots.findOverlap(baseGfn, npages, old ? old.id : -1);
      if (o) throw new KvmError(EEXIST, name, `gfn 0x${baseGfn.toString(16)}+${npages} overlaps slot ${o.id & 0xffff}`);
    }
    let dirtyBitmap: Uint32Array | null = null;
    if (mem.flags & K.KVM_MEM_LOG_DIRTY_PAGES && this.dirtyRingSize === 0) {
      if (old && old.dirtyBitmap && change !== KvmMrChange.MOVE) dirtyBitmap = old.dirtyBitmap;
      else {
        try {
          // ALIGN(npages, BITS_PER_LONG) bits, so the user copy is a whole number of u64s.
          dirtyBitmap = new Uint32Array(Math.ceil(npages / 64) * 2);
        } catch {
          // Rule 17: allocation failure.
          throw new KvmError(ENOMEM, name, "dirty bitmap");
        }
        if (this.manualDirtyLogProtect & KVM_DIRTY_LOG_INITIALLY_SET) initiallySet(dirtyBitmap, npages);
      }
    }
    const next: KvmMemorySlot = {
      id: (asId << 16) | id,
      asId,
      baseGfn,
      npages,
      userspaceAddr: Number(uaddr),
      flags: mem.flags,
      dirtyBitmap,
      arch: change === KvmMrChange.FLAGS_ONLY && old ? old.arch : undefined,
    };
    this.commitMemslot(slots, old, next, change);
  }

  /** kvm_set_memslot(): arch prepare, invalidate on delete/move, install, arch commit. */
  private commitMemslot(slots: KvmMemslots, old: KvmMemorySlot | null, next: KvmMemorySlot | null, change: KvmMrChange): void {
    const arch = this.dev.arch;
    arch.prepareMemoryRegion?.(this, old, next, change);
    if ((change === KvmMrChange.DELETE || change === KvmMrChange.MOVE) && old) {
      // kvm_invalidate_memslot(): no vCPU may keep using the old mapping.
      slots.replace(old, null);
      arch.flushShadowMemslot?.(this, old);
      if (next) slots.replace(null, next);
    } else {
      slots.replace(old, next);
    }
    arch.commitMemoryRegion?.(this, old, next, change);
  }

  /** The mmu notifier: drop KVM's mappings of host pages that change (kvm_mmu_notifier_invalidate_range_start). */
  private mmuNotifierInvalidateRangeStart(start: number, end: number): void {
    this.mmuInvalidateInProgress++;
    this.mmuInvalidateSeq++;
    const unmap = this.dev.arch.unmapGfnRange;
    if (!unmap) return;
    let flush = false;
    for (const slots of this.memslots) {
      for (const slot of slots.slots) {
        const sStart = slot.userspaceAddr;
        const sEnd = sStart + slot.npages * PAGE_SIZE;
        const lo = Math.max(start, sStart);
        const hi = Math.min(end, sEnd);
        if (lo >= hi) continue;
        const g0 = slot.baseGfn + Math.floor((lo - sStart) / PAGE_SIZE);
        const g1 = slot.baseGfn + Math.ceil((hi - sStart) / PAGE_SIZE);
        if (unmap.call(this.dev.arch, this, slot, g0, g1)) flush = true;
      }
    }
    if (flush) this.flushRemoteTlbs();
  }

  // ---------------------------------------------------------------- vCPUs

  /** KVM_CREATE_VCPU (kvm_vm_ioctl_create_vcpu) */
  createVcpu(id: number): KvmVcpu {
    const name = "KVM_CREATE_VCPU";
    this.checkAlive(name);
    if (!Number.isInteger(id) || id < 0 || id >= K.KVM_MAX_VCPU_IDS) throw new KvmError(EINVAL, name, `id ${id} >= KVM_MAX_VCPU_IDS`);
    if (this.createdVcpus >= this.maxVcpus) throw new KvmError(EINVAL, name, `already ${this.createdVcpus} vCPUs (max ${this.maxVcpus})`);
    if (this.getVcpuById(id)) throw new KvmError(EEXIST, name, `vcpu id ${id} exists`);
    this.dev.arch.vcpuPrecreate?.(this, id);
    this.createdVcpus++;
    let vcpu: KvmVcpu;
    try {
      vcpu = new KvmVcpu(this, id, this.vcpus.length);
      this.dev.arch.vcpuCreate(vcpu);
    } catch (e) {
      this.createdVcpus--;
      throw e;
    }
    this.vcpus.push(vcpu);
    const off = K.KVM_COALESCED_MMIO_PAGE_OFFSET * PAGE_SIZE;
    this.coalescedMmioRing?.addMirror(vcpu.runBytes.subarray(off, off + PAGE_SIZE));
    return vcpu;
  }

  // ---------------------------------------------------------------- dirty logging

  private dirtyLogSlot(slotArg: number, name: string): KvmMemorySlot {
    if (this.dirtyRingSize !== 0) throw new KvmError(ENXIO, name, "dirty ring in use");
    const asId = slotArg >>> 16;
    const id = slotArg & 0xffff;
    if (asId >= this.memslots.length || id >= K.KVM_USER_MEM_SLOTS) throw new KvmError(EINVAL, name, `slot 0x${slotArg.toString(16)}`);
    const slot = this.memslots[asId].byNumber(id);
    if (!slot || !slot.dirtyBitmap) throw new KvmError(ENOENT, name, `slot ${id} has no dirty log`);
    return slot;
  }

  /**
   * KVM_GET_DIRTY_LOG (kvm_get_dirty_log_protect): the slot's bitmap as bytes (ALIGN(npages, 64)
   * bits). Without manual protect the bitmap is cleared and the pages write-protected again.
   */
  getDirtyLog(slotArg: number): Uint8Array {
    const name = "KVM_GET_DIRTY_LOG";
    this.checkAlive(name);
    const slot = this.dirtyLogSlot(slotArg >>> 0, name);
    const bm = slot.dirtyBitmap!;
    const snapshot = new Uint32Array(bm);
    if (!this.manualDirtyLogProtect) {
      let protect = false;
      const reprotect = this.dev.arch.enableLogDirtyPtMasked;
      for (let i = 0; i < bm.length; i++) {
        const mask = bm[i];
        if (mask === 0) continue;
        bm[i] = 0;
        protect = true;
        reprotect?.call(this.dev.arch, this, slot, i * 32, mask >>> 0);
      }
      if (protect) this.flushRemoteTlbs();
    }
    return new Uint8Array(snapshot.buffer);
  }

  /** KVM_CLEAR_DIRTY_LOG (kvm_clear_dirty_log_protect): `bitmap` bit i covers page first_page + i. */
  clearDirtyLog(slotArg: number, firstPage: number, numPages: number, bitmap: Uint8Array): void {
    const name = "KVM_CLEAR_DIRTY_LOG";
    const slot = this.checkClearDirtyLog(slotArg, firstPage, numPages);
    const bm = slot.dirtyBitmap!;
    const words = Math.ceil(numPages / 32);
    if (bitmap.length < Math.ceil(numPages / 64) * 8) throw new KvmError(EFAULT, name, "bitmap too short");
    const dv = new DataView(bitmap.buffer, bitmap.byteOffset, bitmap.byteLength);
    const reprotect = this.dev.arch.enableLogDirtyPtMasked;
    let flush = false;
    for (let i = 0; i < words; i++) {
      let user = dv.getUint32(i * 4, true);
      const left = numPages - i * 32;
      if (left < 32) user &= (1 << left) - 1;
      const w = firstPage / 32 + i;
      const mask = (bm[w] & user) >>> 0;
      if (mask === 0) continue;
      bm[w] &= ~mask;
      flush = true;
      reprotect?.call(this.dev.arch, this, slot, w * 32, mask);
    }
    if (flush) this.flushRemoteTlbs();
  }

  /** The argument checks of kvm_clear_dirty_log_protect(), before the user bitmap is copied. */
  private checkClearDirtyLog(slotArg: number, firstPage: number, numPages: number): KvmMemorySlot {
    const name = "KVM_CLEAR_DIRTY_LOG";
    this.checkAlive(name);
    const slot = this.dirtyLogSlot(slotArg >>> 0, name);
    if (firstPage % 64 !== 0) throw new KvmError(EINVAL, name, `first_page ${firstPage} not a multiple of 64`);
    if (firstPage > slot.npages || numPages > slot.npages - firstPage || (numPages < slot.npages - firstPage && numPages % 64 !== 0)) {
      throw new KvmError(EINVAL, name, `pages ${firstPage}+${numPages} of ${slot.npages}`);
    }
    return slot;
  }

  /** KVM_RESET_DIRTY_RINGS: recycle harvested entries of every vCPU; returns how many. */
  resetDirtyRings(): number {
    const name = "KVM_RESET_DIRTY_RINGS";
    this.checkAlive(name);
    if (this.dirtyRingSize === 0) throw new KvmError(EINVAL, name, "dirty ring not enabled");
    const arch = this.dev.arch;
    let cleared = 0;
    for (const v of this.vcpus) {
      const ring = v.dirtyRing!;
      cleared += ring.reset((slotId, offset, mask) => {
        // kvm_reset_dirty_gfn(): ignore entries naming a slot that no longer fits.
        const asId = slotId >>> 16;
        const id = slotId & 0xffff;
        if (asId >= this.memslots.length || id >= K.KVM_USER_MEM_SLOTS) return;
        const slot = this.memslots[asId].byNumber(id);
        if (!slot || offset + 31 - Math.clz32(mask) >= slot.npages) return;
        arch.enableLogDirtyPtMasked?.(this, slot, offset, mask);
      });
      if (!ring.softFull()) kvmCheckRequest(v, KVM_REQ_DIRTY_RING_SOFT_FULL);
    }
    if (cleared) this.flushRemoteTlbs();
    return cleared;
  }

  // ---------------------------------------------------------------- coalesced MMIO

  /** KVM_REGISTER_COALESCED_MMIO (kvm_vm_ioctl_register_coalesced_mmio) */
  registerCoalescedMmio(zone: CoalescedZone): void {
    const name = "KVM_REGISTER_COALESCED_MMIO";
    this.checkAlive(name);
    if (!this.coalescedMmioRing) throw new KvmError(EINVAL, name, "no coalesced MMIO ring page in the vCPU mmap area");
    checkZone(zone, name);
    const dev = new CoalescedMmioDev({ ...zone }, this.coalescedMmioRing);
    this.buses[zone.pio ? KvmBus.PIO : KvmBus.MMIO].register(zone.addr, zone.size, dev);
    this.coalescedZones.push(dev);
  }

  /** KVM_UNREGISTER_COALESCED_MMIO: drops every zone inside the given range (none is not an error). */
  unregisterCoalescedMmio(zone: CoalescedZone): void {
    const name = "KVM_UNREGISTER_COALESCED_MMIO";
    this.checkAlive(name);
    checkZone(zone, name);
    for (let i = this.coalescedZones.length - 1; i >= 0; i--) {
      const d = this.coalescedZones[i];
      const inside = zone.addr <= d.zone.addr && d.zone.addr + d.zone.size <= zone.addr + zone.size;
      if (d.zone.pio === zone.pio && inside) {
        this.buses[zone.pio ? KvmBus.PIO : KvmBus.MMIO].unregister(d);
        this.coalescedZones.splice(i, 1);
      }
    }
  }

  // ---------------------------------------------------------------- caps, stats, misc

  /** KVM_CHECK_EXTENSION on the VM fd */
  checkExtension(cap: number): number {
    return checkExtensionGeneric(this.dev, this, cap);
  }

  /** KVM_ENABLE_CAP on the VM (kvm_vm_ioctl_enable_cap_generic, then the arch). */
  enableCap(cap: Partial<S.KvmEnableCap> & { cap: number }): number {
    const name = "KVM_ENABLE_CAP";
    this.checkAlive(name);
    const flags = cap.flags ?? 0;
    const args = (cap.args ?? []).map((a) => BigInt.asUintN(64, BigInt(a)));
    while (args.length < 4) args.push(0n);
    switch (cap.cap) {
      case K.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: {
        if (flags || args[0] & ~BigInt(KVM_DIRTY_LOG_MANUAL_CAPS)) throw new KvmError(EINVAL, name, "MANUAL_DIRTY_LOG_PROTECT2 options");
        this.manualDirtyLogProtect = Number(args[0]);
        return 0;
      }
      case K.KVM_CAP_HALT_POLL:
        // The window is an unsigned int in struct kvm (kvm_vm_ioctl_enable_cap_generic).
        if (flags || args[0] > 0xffffffffn) throw new KvmError(EINVAL, name, "KVM_CAP_HALT_POLL");
        this.maxHaltPollNs = Number(args[0]);
        this.overrideHaltPollNs = true;
        return 0;
      case K.KVM_CAP_DIRTY_LOG_RING:
      case K.KVM_CAP_DIRTY_LOG_RING_ACQ_REL:
        if (!this.checkExtension(cap.cap)) throw new KvmError(EINVAL, name, "dirty ring unsupported");
        return this.enableDirtyLogRing(args[0]);
      default:
        return toNumber(this.dev.arch.vmIoctl(this, K.KVM_ENABLE_CAP, { cap: cap.cap, flags, args, pad: cap.pad ?? [] }) as number);
    }
  }

  /** kvm_vm_ioctl_enable_dirty_log_ring() */
  private enableDirtyLogRing(sizeBig: bigint): number {
    const name = "KVM_ENABLE_CAP";
    if (sizeBig === 0n || (sizeBig & (sizeBig - 1n)) !== 0n) throw new KvmError(EINVAL, name, `ring size ${sizeBig} not a power of two`);
    if (sizeBig < BigInt(KVM_DIRTY_RING_RSVD_ENTRIES * KVM_DIRTY_GFN_SIZE) || sizeBig < BigInt(PAGE_SIZE)) throw new KvmError(EINVAL, name, `ring size ${sizeBig} too small`);
    if (sizeBig > BigInt(KVM_DIRTY_RING_MAX_ENTRIES * KVM_DIRTY_GFN_SIZE)) throw new KvmError(E2BIG, name, `ring size ${sizeBig}`);
    if (this.dirtyRingSize) throw new KvmError(EINVAL, name, "dirty ring already enabled");
    if (this.createdVcpus) throw new KvmError(EINVAL, name, "vCPUs already created");
    this.dirtyRingSize = Number(sizeBig);
    return 0;
  }

  /** KVM_GET_STATS_FD on the VM: id "kvm-<pid>". */
  getStatsFd(): KvmStatsFd {
    return new KvmStatsFd(`kvm-${this.proc.pid}`, this.stats);
  }

  /** Dispatch a VM-level arch ioctl with an already-decoded argument (KVM_SET_TSS_ADDR, KVM_CREATE_IRQCHIP, ...). */
  archIoctl(request: number, arg: number | object = 0): number | object {
    this.checkAlive(`ioctl 0x${(request >>> 0).toString(16)}`);
    return this.dev.arch.vmIoctl(this, request >>> 0, arg);
  }

  /** The last close of the VM fd. */
  release(): void {
    if (!this.dead) this.destroy();
  }

  /** Tear the VM down (the last close of the VM fd): vCPUs, devices, memslots, arch state. */
  destroy(): void {
    // kvm_destroy_vm() order: kvm_arch_sync_events() runs while the io buses still exist (x86
    // unregisters its PIT there), then the buses go, then kvm_arch_destroy_vm().
    this.dev.arch.syncEvents?.(this);
    for (const v of this.vcpus) this.dev.arch.vcpuDestroy?.(v);
    this.vcpus.length = 0;
    for (const b of this.buses) b.destroy();
    this.dev.arch.destroyVm?.(this);
    this.unregisterNotifier();
    this.dev.vms.delete(this);
    this.dead = true;
  }

  /** kvm_vm_ioctl(): `arg` is an integer or a user pointer into the process's mm. */
  ioctl(request: number, arg = 0): number {
    request >>>= 0;
    const mm = this.mm;
    switch (request) {
      case K.KVM_CREATE_VCPU:
        return this.proc.files.install(this.createVcpu(arg));
      case K.KVM_SET_USER_MEMORY_REGION:
        this.setUserMemoryRegion(copyIn(mm, S.kvm_userspace_memory_region, arg, "KVM_SET_USER_MEMORY_REGION"));
        return 0;
      case K.KVM_SET_USER_MEMORY_REGION2:
        this.setUserMemoryRegion2(copyIn(mm, S.kvm_userspace_memory_region2, arg, "KVM_SET_USER_MEMORY_REGION2"));
        return 0;
      case K.KVM_GET_DIRTY_LOG: {
        const log = copyIn(mm, S.kvm_dirty_log, arg, "KVM_GET_DIRTY_LOG");
        const bytes = this.getDirtyLog(log.slot);
        copyOutBytes(mm, Number(log.dirty_bitmap), bytes, "KVM_GET_DIRTY_LOG");
        return 0;
      }
      case K.KVM_CLEAR_DIRTY_LOG: {
        const log = copyIn(mm, S.kvm_clear_dirty_log, arg, "KVM_CLEAR_DIRTY_LOG");
        const first = Number(log.first_page);
        const n = log.num_pages;
        // Validate before copying: the bitmap's size comes from userspace.
        this.checkClearDirtyLog(log.slot, first, n);
        const user = copyInBytes(mm, Number(log.dirty_bitmap), Math.ceil(n / 64) * 8, "KVM_CLEAR_DIRTY_LOG");
        this.clearDirtyLog(log.slot, first, n, user);
        return 0;
      }
      case K.KVM_RESET_DIRTY_RINGS:
        return this.resetDirtyRings();
      case K.KVM_REGISTER_COALESCED_MMIO:
      case K.KVM_UNREGISTER_COALESCED_MMIO: {
        const reg = request === K.KVM_REGISTER_COALESCED_MMIO;
        const z = copyIn(mm, S.kvm_coalesced_mmio_zone, arg, reg ? "KVM_REGISTER_COALESCED_MMIO" : "KVM_UNREGISTER_COALESCED_MMIO");
        const zone = { addr: Number(z.addr), size: z.size, pio: z.pad };
        if (reg) this.registerCoalescedMmio(zone);
        else this.unregisterCoalescedMmio(zone);
        return 0;
      }
      case K.KVM_CHECK_EXTENSION:
        return this.checkExtension(arg);
      case K.KVM_ENABLE_CAP:
        return this.enableCap(copyIn(mm, S.kvm_enable_cap, arg, "KVM_ENABLE_CAP"));
      case K.KVM_GET_STATS_FD:
        return this.proc.files.install(this.getStatsFd());
      default:
        this.checkAlive(`ioctl 0x${request.toString(16)}`);
        return archIoctlBytes(mm, request, arg, (a) => this.dev.arch.vmIoctl(this, request, a));
    }
  }
}

function initiallySet(bm: Uint32Array, npages: number): void {
  for (let i = 0; i < npages; i++) bm[i >>> 5] |= 1 << (i & 31);
}

// ------------------------------------------------------------------------------------------------
// KvmVcpu
// ------------------------------------------------------------------------------------------------

export class KvmVcpu implements KvmVcpuLike, HostFile {
  readonly runBytes: Uint8Array;
  /** The kvm_run accessor over the first page of runBytes. */
  readonly kvmRun: KvmRun;
  readonly stats: KvmStats;
  readonly stat: Record<string, number>;
  requests = 0;
  arch: unknown = undefined;
  /** The host thread running this vCPU: its pending signals interrupt KVM_RUN. */
  task: HostTask;
  /** The per-vCPU dirty ring when KVM_CAP_DIRTY_LOG_RING is on. */
  readonly dirtyRing: KvmDirtyRing | null;
  /** vcpu->wants_to_run: false when KVM_RUN was entered with immediate_exit set. */
  wantsToRun = false;
  /** A kick arrived while the vCPU was not in the guest: honoured at the next entry check. */
  kicked = false;
  /** vcpu->sigset when KVM_SET_SIGNAL_MASK is active (bit sig-1 blocked), else null. */
  sigset: number | null = null;
  /** vcpu->halt_poll_ns: the current halt-polling window (grown and shrunk by kvm_vcpu_halt). */
  haltPollNs = 0;

  constructor(
    readonly kvm: Kvm,
    readonly vcpuId: number,
    readonly vcpuIdx: number,
  ) {
    const size = kvm.dev.arch.vcpuMmapSize;
    this.runBytes = new Uint8Array(new SharedArrayBuffer(size));
    this.kvmRun = new KvmRun(this.runBytes);
    this.stats = new KvmStats(kvm.dev.vcpuStats);
    this.stat = this.stats.stat;
    this.task = kvm.proc.task;
    this.dirtyRing = kvm.dirtyRingSize ? new KvmDirtyRing(kvm.dirtyRingSize) : null;
  }

  get fileKind(): string {
    return `kvm-vcpu:${this.vcpuId}`;
  }

  /** signal_pending(current) for the thread running this vCPU (checked by the arch run loop). */
  signalPending(): boolean {
    return this.task.signalPending();
  }

  yieldCpu(): void {
    this.task.yieldCpu();
  }

  /**
   * mmap(vcpu_fd, offset, length): page 0.. of the run area (kvm_run, PIO page, ...) or, at page
   * KVM_DIRTY_LOG_PAGE_OFFSET, the dirty ring. Returns a view of the shared bytes.
   */
  mmap(offset: number, length: number): Uint8Array {
    if (offset % PAGE_SIZE !== 0 || length <= 0) throw new KvmError(EINVAL, "mmap", `offset ${offset} length ${length}`);
    const ringOff = K.KVM_DIRTY_LOG_PAGE_OFFSET * PAGE_SIZE;
    if (this.dirtyRing && offset >= ringOff) {
      const o = offset - ringOff;
      if (o + length > this.dirtyRing.bytes.length) throw new KvmError(EINVAL, "mmap", "beyond the dirty ring");
      return this.dirtyRing.bytes.subarray(o, o + length);
    }
    if (offset + length > this.runBytes.length) throw new KvmError(EINVAL, "mmap", "beyond KVM_GET_VCPU_MMAP_SIZE");
    return this.runBytes.subarray(offset, offset + length);
  }

  /**
   * KVM_RUN (kvm_vcpu_ioctl -> kvm_arch_vcpu_ioctl_run). Returns 0 when kvm_run describes an exit
   * for userspace; throws KvmError(EINTR) for immediate_exit or a pending signal (then exit_reason
   * is KVM_EXIT_INTR when a signal caused it), other KvmErrors as the arch reports them.
   */
  run(): number {
    const name = "KVM_RUN";
    this.kvm.checkAlive(name);
    const arch = this.kvm.dev.arch;
    const run = this.kvmRun;
    this.wantsToRun = run.immediateExit === 0;
    this.kicked = false;
    // Userspace-served exits complete first, so immediate_exit still completes them (api.rst).
    // Paths that return without reaching the arch's run loop emit kvm_userspace_exit here (the
    // arch emits it for the exits it produces).
    if (arch.completeUserspaceIo && arch.completeUserspaceIo(this) <= 0) return this.userspaceExit(0);
    if (!this.wantsToRun) {
      this.userspaceExit(-EINTR);
      throw new KvmError(EINTR, name, "immediate_exit");
    }
    if (kvmDirtyRingCheckRequest(this)) return this.userspaceExit(0);
    this.kvm.coalescedMmioRing?.syncFirst();
    if (this.sigset === null) return arch.vcpuIoctlRun(this);
    // kvm_sigset_activate(): the KVM_SET_SIGNAL_MASK set replaces the thread's mask while in KVM_RUN.
    const task = this.task;
    const saved = task.blocked;
    task.blocked = this.sigset;
    try {
      return arch.vcpuIoctlRun(this);
    } finally {
      task.blocked = saved;
    }
  }

  /** trace_kvm_userspace_exit(exit_reason, r); returns 0 for `return this.userspaceExit(0)`. */
  private userspaceExit(r: number): number {
    if (this.kvm.tracing) this.kvm.trace("kvm_userspace_exit", { reason: this.kvmRun.exitReason, errno: r }, this);
    return 0;
  }

  /**
   * KVM_SET_SIGNAL_MASK (kvm_vcpu_ioctl_set_sigmask): signals blocked while this vCPU is in
   * KVM_RUN (bit sig-1); null restores the thread's own mask. SIGKILL and SIGSTOP stay deliverable.
   */
  setSignalMask(mask: bigint | number | null): void {
    if (mask === null) {
      this.sigset = null;
      return;
    }
    const m = Number(BigInt.asUintN(32, BigInt(mask)));
    this.sigset = (m & ~((1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1)))) | 0;
  }

  /** KVM_GET_REGS (arch) */
  getRegs(): S.KvmRegs {
    return this.archIoctl(K.KVM_GET_REGS, 0) as S.KvmRegs;
  }
  /** KVM_SET_REGS (arch) */
  setRegs(r: S.KvmRegs): void {
    this.archIoctl(K.KVM_SET_REGS, r);
  }
  /** KVM_GET_SREGS (arch) */
  getSregs(): S.KvmSregs {
    return this.archIoctl(K.KVM_GET_SREGS, 0) as S.KvmSregs;
  }
  /** KVM_SET_SREGS (arch) */
  setSregs(s: S.KvmSregs): void {
    this.archIoctl(K.KVM_SET_SREGS, s);
  }
  /** KVM_GET_FPU / KVM_SET_FPU (arch) */
  getFpu(): S.KvmFpu {
    return this.archIoctl(K.KVM_GET_FPU, 0) as S.KvmFpu;
  }
  setFpu(f: S.KvmFpu): void {
    this.archIoctl(K.KVM_SET_FPU, f);
  }
  /** KVM_GET_MSRS: fills entries[i].data; returns how many were read. */
  getMsrs(msrs: S.KvmMsrs): number {
    return this.archIoctl(K.KVM_GET_MSRS, msrs) as number;
  }
  /** KVM_SET_MSRS: returns how many were written (stops at the first failure). */
  setMsrs(msrs: S.KvmMsrs): number {
    return this.archIoctl(K.KVM_SET_MSRS, msrs) as number;
  }
  /** KVM_SET_CPUID2 */
  setCpuid2(c: S.KvmCpuid2): void {
    this.archIoctl(K.KVM_SET_CPUID2, c);
  }
  /** KVM_GET_CPUID2 */
  getCpuid2(nent: number): S.KvmCpuid2 {
    return this.archIoctl(K.KVM_GET_CPUID2, { nent, entries: [] }) as S.KvmCpuid2;
  }
  /** KVM_GET_MP_STATE / KVM_SET_MP_STATE */
  getMpState(): S.KvmMpState {
    return this.archIoctl(K.KVM_GET_MP_STATE, 0) as S.KvmMpState;
  }
  setMpState(s: S.KvmMpState): void {
    this.archIoctl(K.KVM_SET_MP_STATE, s);
  }
  /** KVM_TRANSLATE */
  translate(linearAddress: bigint): S.KvmTranslation {
    const t = { ...S.kvm_translation.zero(), linear_address: linearAddress };
    const r = this.archIoctl(K.KVM_TRANSLATE, t);
    return typeof r === "object" ? (r as S.KvmTranslation) : t;
  }
  /** KVM_INTERRUPT */
  interrupt(irq: number): void {
    this.archIoctl(K.KVM_INTERRUPT, { irq });
  }
  /** KVM_NMI */
  nmi(): void {
    this.archIoctl(K.KVM_NMI, 0);
  }
  /** KVM_SET_GUEST_DEBUG */
  setGuestDebug(d: Partial<S.KvmGuestDebug> & { control: number }): void {
    this.archIoctl(K.KVM_SET_GUEST_DEBUG, { pad: 0, debugreg: [0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n], ...d });
  }
  /** KVM_GET_VCPU_EVENTS / KVM_SET_VCPU_EVENTS */
  getVcpuEvents(): S.KvmVcpuEvents {
    return this.archIoctl(K.KVM_GET_VCPU_EVENTS, 0) as S.KvmVcpuEvents;
  }
  setVcpuEvents(e: S.KvmVcpuEvents): void {
    this.archIoctl(K.KVM_SET_VCPU_EVENTS, e);
  }
  /** KVM_GET_DEBUGREGS / KVM_SET_DEBUGREGS */
  getDebugregs(): S.KvmDebugregs {
    return this.archIoctl(K.KVM_GET_DEBUGREGS, 0) as S.KvmDebugregs;
  }
  setDebugregs(d: S.KvmDebugregs): void {
    this.archIoctl(K.KVM_SET_DEBUGREGS, d);
  }
  /** KVM_ENABLE_CAP on the vCPU (arch) */
  enableCap(cap: Partial<S.KvmEnableCap> & { cap: number }): number {
    return this.archIoctl(K.KVM_ENABLE_CAP, { flags: 0, args: [0n, 0n, 0n, 0n], pad: [], ...cap }) as number;
  }
  /** KVM_GET_STATS_FD on the vCPU: id "kvm-<pid>/vcpu-<id>". */
  getStatsFd(): KvmStatsFd {
    return new KvmStatsFd(`kvm-${this.kvm.proc.pid}/vcpu-${this.vcpuId}`, this.stats);
  }

  /** Any other vCPU ioctl, argument already decoded (kvm_arch_vcpu_ioctl). */
  archIoctl(request: number, arg: number | object): number | object {
    this.kvm.checkAlive(`ioctl 0x${(request >>> 0).toString(16)}`);
    return this.kvm.dev.arch.vcpuIoctl(this, request >>> 0, arg);
  }

  /** kvm_vcpu_ioctl(): `arg` is an integer or a user pointer into the process's mm. */
  ioctl(request: number, arg = 0): number {
    request >>>= 0;
    switch (request) {
      case K.KVM_RUN:
        if (arg !== 0) throw new KvmError(EINVAL, "KVM_RUN", "arg must be 0");
        return this.run();
      case K.KVM_GET_STATS_FD:
        return this.kvm.proc.files.install(this.getStatsFd());
      case K.KVM_SET_SIGNAL_MASK: {
        const name = "KVM_SET_SIGNAL_MASK";
        if (arg === 0) {
          this.setSignalMask(null);
          return 0;
        }
        const mm = this.kvm.mm;
        const len = copyIn(mm, S.kvm_signal_mask, arg, name).len;
        // The kernel's sigset_t is 8 bytes on x86-64.
        if (len !== KERNEL_SIGSET_SIZE) throw new KvmError(EINVAL, name, `len ${len} != ${KERNEL_SIGSET_SIZE}`);
        const set = copyInBytes(mm, arg + S.kvm_signal_mask.size, KERNEL_SIGSET_SIZE, name);
        this.setSignalMask(new DataView(set.buffer).getBigUint64(0, true));
        return 0;
      }
      default:
        this.kvm.checkAlive(`ioctl 0x${request.toString(16)}`);
        return archIoctlBytes(this.kvm.mm, request, arg, (a) => this.kvm.dev.arch.vcpuIoctl(this, request, a));
    }
  }
}

// ------------------------------------------------------------------------------------------------
// helpers for the arch run loop
// ------------------------------------------------------------------------------------------------

/**
 * kvm_vcpu_kick(): make the vCPU leave the guest soon (the arch stops its execution loop) and
 * notice its requests. Without threads the kick is a flag the arch checks at its next boundary.
 */
export function kvmVcpuKick(vcpu: KvmVcpuLike): void {
  if (vcpu instanceof KvmVcpu) {
    vcpu.kicked = true;
    vcpu.kvm.dev.arch.vcpuKick?.(vcpu);
  }
}

/**
 * kvm_handle_signal_exit(): a pending signal ends KVM_RUN with KVM_EXIT_INTR / -EINTR.
 * Sets exit_reason, counts signal_exits when the arch defines it, and returns the KvmError to throw.
 */
export function kvmHandleSignalExit(vcpu: KvmVcpuLike): KvmError {
  new KvmRun(vcpu.runBytes).exitReason = K.KVM_EXIT_INTR;
  if ("signal_exits" in vcpu.stat) vcpu.stat.signal_exits++;
  return new KvmError(EINTR, "KVM_RUN", "signal pending");
}

/**
 * kvm_dirty_ring_check_request(): when the vCPU's dirty ring is soft-full, fill kvm_run with
 * KVM_EXIT_DIRTY_RING_FULL and return true (the arch returns to userspace without entering).
 */
export function kvmDirtyRingCheckRequest(vcpu: KvmVcpuLike): boolean {
  if (!kvmTestRequest(vcpu, KVM_REQ_DIRTY_RING_SOFT_FULL)) return false;
  const ring = vcpu instanceof KvmVcpu ? vcpu.dirtyRing : null;
  if (ring && ring.softFull()) {
    new KvmRun(vcpu.runBytes).exitReason = K.KVM_EXIT_DIRTY_RING_FULL;
    return true;
  }
  kvmCheckRequest(vcpu, KVM_REQ_DIRTY_RING_SOFT_FULL);
  return false;
}
