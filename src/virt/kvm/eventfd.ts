/**
 * virt/kvm/eventfd.c: irqfd (an eventfd whose signal injects a GSI, KVM_IRQFD) and ioeventfd
 * (a guest PIO/MMIO write that signals an eventfd without leaving the kernel, KVM_IOEVENTFD).
 *
 * irqfd: signalling the eventfd pulses the GSI (1 then 0) from KVM_USERSPACE_IRQ_SOURCE_ID. With
 * KVM_IRQFD_FLAG_RESAMPLE the GSI is instead held asserted from KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID
 * until the guest EOIs it; the ack notifier then de-asserts it and signals the resample eventfd
 * so the device model can re-check its level (level-triggered INTx done in userspace).
 */
import { EAGAIN, EBUSY, EEXIST, EINVAL, ENOENT } from "../../uapi/errno.js";
import {
  KVM_IOEVENTFD_FLAG_DATAMATCH,
  KVM_IOEVENTFD_FLAG_DEASSIGN,
  KVM_IOEVENTFD_FLAG_PIO,
  KVM_IRQFD_FLAG_DEASSIGN,
  KVM_IRQFD_FLAG_RESAMPLE,
} from "../../uapi/kvm.js";
import { KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID, KVM_USERSPACE_IRQ_SOURCE_ID, type KvmIoeventfdArgs, type KvmIrqfdArgs } from "../../uapi/irqchip.js";
import { EPOLLHUP, EPOLLIN, eventfdCtxFdget, type EventfdCtx, type EventfdWaiter } from "../../host/eventfd.js";
import { HostError } from "../../host/errors.js";
import type { FdTable } from "../../host/file.js";
import type { KvmIrqAckNotifier, KvmIrqRouting } from "./irqchip.js";
import { KvmError } from "./kvm_error.js";
import { KvmBus, type KvmIoDevice, type KvmVcpuLike } from "./kvm_host.js";

export const KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY = 1 << 3;
const KVM_IOEVENTFD_VALID_FLAG_MASK = (1 << 4) - 1;

/** kvm_io_bus_register_dev / kvm_io_bus_unregister_dev, as the VM offers them. */
export interface KvmIoBusRegistry {
  /** Throws KvmError (e.g. ENOSPC when the bus is full). `len` 0 means "any access at addr". */
  ioBusRegisterDev(bus: KvmBus, addr: number, len: number, dev: KvmIoDevice): void;
  ioBusUnregisterDev(bus: KvmBus, dev: KvmIoDevice): void;
}

function fdget(files: FdTable, fd: number, ioctl: string): EventfdCtx {
  try {
    return eventfdCtxFdget(files, fd);
  } catch (e) {
    if (e instanceof HostError) throw new KvmError(e.errno, ioctl, `fd ${fd}`);
    throw e;
  }
}

/** struct kvm_kernel_irqfd_resampler: one per GSI, shared by its resample irqfds. */
class IrqfdResampler implements KvmIrqAckNotifier {
  readonly list: Irqfd[] = [];
  constructor(
    readonly gsi: number,
    private readonly routing: KvmIrqRouting,
  ) {}
  /** irqfd_resampler_ack(): de-assert, then tell every resample fd. */
  irqAcked(): void {
    this.routing.setIrq(KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID, this.gsi, 0, false);
    for (const irqfd of this.list) irqfd.resamplefd?.signal(1);
  }
}

/** struct kvm_kernel_irqfd */
class Irqfd {
  resampler: IrqfdResampler | null = null;
  resamplefd: EventfdCtx | null = null;
  readonly wake: EventfdWaiter;
  constructor(
    readonly owner: KvmEventfds,
    readonly eventfd: EventfdCtx,
    readonly gsi: number,
  ) {
    this.wake = (events) => owner.irqfdWakeup(this, events);
  }
}

/** struct _ioeventfd: a KvmIoDevice on one bus. */
class Ioeventfd implements KvmIoDevice {
  readonly wildcard: boolean;
  private readonly matchLo: number;
  private readonly matchHi: number;
  constructor(
    readonly busIdx: KvmBus,
    readonly addr: number,
    readonly length: number,
    readonly eventfd: EventfdCtx,
    readonly datamatch: bigint,
    wildcard: boolean,
  ) {
    this.wildcard = wildcard;
    this.matchLo = Number(datamatch & 0xffffffffn);
    this.matchHi = Number((datamatch >> 32n) & 0xffffffffn);
  }

  /** ioeventfd_in_range() */
  private inRange(addr: number, len: number, val: Uint8Array): boolean {
    if (addr !== this.addr) return false;
    if (!this.length) return true;
    if (len !== this.length) return false;
    if (this.wildcard) return true;
    let lo = 0;
    for (let i = 0; i < len && i < 4; i++) lo |= val[i] << (8 * i);
    let hi = 0;
    for (let i = 4; i < len; i++) hi |= val[i] << (8 * (i - 4));
    return lo >>> 0 === this.matchLo && hi >>> 0 === this.matchHi;
  }

  /** ioeventfd_write() */
  write(_vcpu: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean {
    if (!this.inRange(addr, len, data)) return false;
    this.eventfd.signal(1);
    return true;
  }

  read(): boolean {
    return false;
  }
}

/** The per-VM irqfd and ioeventfd lists (kvm->irqfds, kvm->ioeventfds). */
export class KvmEventfds {
  private readonly irqfds: Irqfd[] = [];
  private readonly resamplers: IrqfdResampler[] = [];
  private readonly ioeventfds: Ioeventfd[] = [];

  /**
   * @param bus where ioeventfds are registered
   * @param files the VM owner's file table: the descriptors in the ioctl structs are looked up there
   * @param irqRouting the in-kernel irqchip's routing; set it when KVM_CREATE_IRQCHIP succeeds
   *   (kvm_arch_intc_initialized() is `irqRouting !== null`)
   */
  constructor(
    private readonly bus: KvmIoBusRegistry,
    private readonly files: FdTable,
    public irqRouting: KvmIrqRouting | null = null,
  ) {}

  // ------------------------------------------------------------------ irqfd
  /** kvm_irqfd() (KVM_IRQFD) */
  irqfd(args: KvmIrqfdArgs): number {
    if (args.flags & ~(KVM_IRQFD_FLAG_DEASSIGN | KVM_IRQFD_FLAG_RESAMPLE)) throw new KvmError(EINVAL, "KVM_IRQFD", `flags ${args.flags}`);
    if (args.flags & KVM_IRQFD_FLAG_DEASSIGN) return this.irqfdDeassign(args);
    return this.irqfdAssign(args);
  }

  /** kvm_irqfd_assign() */
  private irqfdAssign(args: KvmIrqfdArgs): number {
    const routing = this.irqRouting;
    if (routing === null) throw new KvmError(EAGAIN, "KVM_IRQFD", "no in-kernel irqchip");
    const eventfd = fdget(this.files, args.fd, "KVM_IRQFD");
    if (this.irqfds.some((i) => i.eventfd === eventfd)) throw new KvmError(EBUSY, "KVM_IRQFD", "eventfd already used for an irqfd");
    const irqfd = new Irqfd(this, eventfd, args.gsi >>> 0);
    if (args.flags & KVM_IRQFD_FLAG_RESAMPLE) {
      irqfd.resamplefd = fdget(this.files, args.resamplefd, "KVM_IRQFD");
      let r = this.resamplers.find((x) => x.gsi === irqfd.gsi);
      if (!r) {
        r = new IrqfdResampler(irqfd.gsi, routing);
        this.resamplers.push(r);
        routing.registerIrqAckNotifier(r);
      }
      r.list.push(irqfd);
      irqfd.resampler = r;
    }
    this.irqfds.push(irqfd);
    eventfd.addWaiter(irqfd.wake);
    // A signal that arrived before the irqfd existed is delivered now (the poll in kvm_irqfd_assign).
    if (eventfd.poll() & EPOLLIN) this.irqfdWakeup(irqfd, EPOLLIN);
    return 0;
  }

  /** kvm_irqfd_deassign(): detach every irqfd of this eventfd on this GSI; 0 even if none. */
  private irqfdDeassign(args: KvmIrqfdArgs): number {
    const eventfd = fdget(this.files, args.fd, "KVM_IRQFD");
    for (const irqfd of this.irqfds.slice()) if (irqfd.eventfd === eventfd && irqfd.gsi === args.gsi >>> 0) this.irqfdDeactivate(irqfd);
    return 0;
  }

  /** irqfd_deactivate() / irqfd_shutdown() */
  private irqfdDeactivate(irqfd: Irqfd): void {
    const i = this.irqfds.indexOf(irqfd);
    if (i < 0) return;
    this.irqfds.splice(i, 1);
    irqfd.eventfd.removeWaiter(irqfd.wake);
    const r = irqfd.resampler;
    if (r) {
      r.list.splice(r.list.indexOf(irqfd), 1);
      if (r.list.length === 0) {
        // irqfd_resampler_shutdown(): the last user lowers the line and drops the notifier.
        this.irqRouting?.unregisterIrqAckNotifier(r);
        this.irqRouting?.setIrq(KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID, r.gsi, 0, false);
        this.resamplers.splice(this.resamplers.indexOf(r), 1);
      }
    }
  }

  /** irqfd_wakeup(): the eventfd was signalled (inject) or closed (shut down). */
  irqfdWakeup(irqfd: Irqfd, events: number): void {
    if (events & EPOLLIN) {
      if (irqfd.eventfd.poll() & EPOLLIN) irqfd.eventfd.doRead();
      this.irqfdInject(irqfd);
    }
    if (events & EPOLLHUP) this.irqfdDeactivate(irqfd);
  }

  /** irqfd_inject() */
  private irqfdInject(irqfd: Irqfd): void {
    const routing = this.irqRouting;
    if (!routing) return;
    if (!irqfd.resampler) {
      routing.setIrq(KVM_USERSPACE_IRQ_SOURCE_ID, irqfd.gsi, 1, false);
      routing.setIrq(KVM_USERSPACE_IRQ_SOURCE_ID, irqfd.gsi, 0, false);
    } else {
      routing.setIrq(KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID, irqfd.gsi, 1, false);
    }
  }

  /** kvm_irqfd_release(): VM teardown. */
  release(): void {
    for (const irqfd of this.irqfds.slice()) this.irqfdDeactivate(irqfd);
    for (const p of this.ioeventfds.splice(0)) this.bus.ioBusUnregisterDev(p.busIdx, p);
  }

  // ------------------------------------------------------------------ ioeventfd
  /** kvm_ioeventfd() (KVM_IOEVENTFD) */
  ioeventfd(args: KvmIoeventfdArgs): number {
    if (args.flags & KVM_IOEVENTFD_FLAG_DEASSIGN) return this.deassignIoeventfd(args);
    return this.assignIoeventfd(args);
  }

  private static busFromFlags(flags: number): KvmBus {
    if (flags & KVM_IOEVENTFD_FLAG_PIO) return KvmBus.PIO;
    if (flags & KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY) return KvmBus.VIRTIO_CCW_NOTIFY;
    return KvmBus.MMIO;
  }

  /** kvm_assign_ioeventfd() */
  private assignIoeventfd(args: KvmIoeventfdArgs): number {
    const ioctl = "KVM_IOEVENTFD";
    const len = args.len >>> 0;
    if (len !== 0 && len !== 1 && len !== 2 && len !== 4 && len !== 8) throw new KvmError(EINVAL, ioctl, `len ${len}`);
    if (args.addr < 0n || args.addr + BigInt(len) > 0xffffffffffffffffn) throw new KvmError(EINVAL, ioctl, "range wraps");
    if (args.flags & ~KVM_IOEVENTFD_VALID_FLAG_MASK) throw new KvmError(EINVAL, ioctl, `flags ${args.flags}`);
    if (!len && args.flags & KVM_IOEVENTFD_FLAG_DATAMATCH) throw new KvmError(EINVAL, ioctl, "datamatch needs a length");
    const busIdx = KvmEventfds.busFromFlags(args.flags);
    this.assignIoeventfdIdx(busIdx, args);
    // Length-0 MMIO eventfds also go on the fast MMIO bus (looked up before decoding the access).
    if (!len && busIdx === KvmBus.MMIO) {
      try {
        this.assignIoeventfdIdx(KvmBus.FAST_MMIO, args);
      } catch (e) {
        this.deassignIoeventfdIdx(KvmBus.MMIO, args);
        throw e;
      }
    }
    return 0;
  }

  /** kvm_assign_ioeventfd_idx() */
  private assignIoeventfdIdx(busIdx: KvmBus, args: KvmIoeventfdArgs): void {
    const eventfd = fdget(this.files, args.fd, "KVM_IOEVENTFD");
    const wildcard = !(args.flags & KVM_IOEVENTFD_FLAG_DATAMATCH);
    const addr = Number(args.addr);
    const p = new Ioeventfd(busIdx, addr, args.len >>> 0, eventfd, wildcard ? 0n : BigInt.asUintN(64, args.datamatch), wildcard);
    // ioeventfd_check_collision()
    for (const q of this.ioeventfds) {
      if (q.busIdx === p.busIdx && q.addr === p.addr && (!q.length || !p.length || (q.length === p.length && (q.wildcard || p.wildcard || q.datamatch === p.datamatch))))
        throw new KvmError(EEXIST, "KVM_IOEVENTFD", "an ioeventfd already matches this access");
    }
    this.bus.ioBusRegisterDev(busIdx, addr, p.length, p);
    this.ioeventfds.push(p);
  }

  /** kvm_deassign_ioeventfd() */
  private deassignIoeventfd(args: KvmIoeventfdArgs): number {
    const busIdx = KvmEventfds.busFromFlags(args.flags);
    const ret = this.deassignIoeventfdIdx(busIdx, args);
    if (!args.len && busIdx === KvmBus.MMIO) this.deassignIoeventfdIdx(KvmBus.FAST_MMIO, args);
    if (ret) throw new KvmError(ret, "KVM_IOEVENTFD", "no such ioeventfd");
    return 0;
  }

  /** kvm_deassign_ioeventfd_idx(): 0, or ENOENT when nothing matched. */
  private deassignIoeventfdIdx(busIdx: KvmBus, args: KvmIoeventfdArgs): number {
    const eventfd = fdget(this.files, args.fd, "KVM_IOEVENTFD");
    const wildcard = !(args.flags & KVM_IOEVENTFD_FLAG_DATAMATCH);
    const addr = Number(args.addr);
    for (let i = 0; i < this.ioeventfds.length; i++) {
      const p = this.ioeventfds[i];
      if (p.busIdx !== busIdx || p.eventfd !== eventfd || p.addr !== addr || p.length !== args.len >>> 0 || p.wildcard !== wildcard) continue;
      if (!p.wildcard && p.datamatch !== BigInt.asUintN(64, args.datamatch)) continue;
      this.bus.ioBusUnregisterDev(busIdx, p);
      this.ioeventfds.splice(i, 1);
      return 0;
    }
    return ENOENT;
  }

  /** For tests and introspection: how many irqfds / ioeventfds are live. */
  get counts(): { irqfds: number; ioeventfds: number } {
    return { irqfds: this.irqfds.length, ioeventfds: this.ioeventfds.length };
  }
}
