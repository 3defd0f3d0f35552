/**
 * virt/kvm/irqchip.c and the generic halves of virt/kvm/eventfd.c / irq_comm.c: the GSI routing
 * table (KVM_SET_GSI_ROUTING), kvm_set_irq() fan-out to every route of a GSI, irq source ids,
 * and the ack / mask notifier lists interrupt controllers call back into. Arch code supplies
 * the per-entry `set` functions through `KvmIrqRoutingArch` (kvm_set_routing_entry()).
 */
import { EFAULT, EINVAL } from "../../uapi/errno.js";
import { KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQ_ROUTING_MSI } from "../../uapi/kvm.js";
import {
  KVM_IOAPIC_NUM_PINS,
  KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID,
  KVM_MAX_IRQ_ROUTES,
  KVM_MSI_VALID_DEVID,
  KVM_NR_IRQCHIPS,
  KVM_USERSPACE_IRQ_SOURCE_ID,
  type KvmIrqRoutingEntry,
  type KvmMsi,
} from "../../uapi/irqchip.js";
import { KvmError } from "./kvm_error.js";
import type { KvmLike } from "./kvm_host.js";

/** Where irqchip code emits tracepoints (the VM: `kvm.tracing` / `kvm.trace`). */
export type KvmTracer = Pick<KvmLike, "tracing" | "trace">;
export const NO_TRACER: KvmTracer = { tracing: false, trace: () => {} };

/**
 * The set function of a routing entry: returns >0 delivered (to that many targets), 0
 * coalesced (already pending / masked edge), <0 ignored (masked, or a deassert that does nothing).
 */
export type KvmIrqSetFn = (e: KvmKernelIrqRoutingEntry, irqSourceId: number, level: number, lineStatus: boolean) => number;

/** struct kvm_kernel_irq_routing_entry */
export interface KvmKernelIrqRoutingEntry {
  gsi: number;
  type: number;
  flags: number;
  /** IRQCHIP: chip id and pin (PIC slave pins are 8..15, as Linux stores them). */
  irqchip: number;
  pin: number;
  /** MSI */
  msiAddressLo: number;
  msiAddressHi: number;
  msiData: number;
  msiDevid: number;
  set: KvmIrqSetFn;
}

/** The arch side of routing (kvm_set_routing_entry(), kvm_set_msi(), kvm_free_irq_source_id()). */
export interface KvmIrqRoutingArch {
  /** kvm_set_routing_entry(): validate `ue` and fill `e` (including e.set); throw KvmError(EINVAL). */
  setRoutingEntry(e: KvmKernelIrqRoutingEntry, ue: KvmIrqRoutingEntry): void;
  /** kvm_set_msi() for a KVM_SIGNAL_MSI entry built on the fly. */
  setMsi: KvmIrqSetFn;
  /** Clear one source's bit from every line state (kvm_ioapic_clear_all / kvm_pic_clear_all). */
  clearIrqSource(irqSourceId: number): void;
  /** Optional MSI validation (kvm_msi_route_invalid / devid support). */
  msiValidDevid?: boolean;
}

/** struct kvm_irq_ack_notifier */
export interface KvmIrqAckNotifier {
  gsi: number;
  irqAcked(n: KvmIrqAckNotifier): void;
}

/** struct kvm_irq_mask_notifier */
export interface KvmIrqMaskNotifier {
  irq: number;
  func(n: KvmIrqMaskNotifier, masked: boolean): void;
}

/** Line states keep one bit per source in a u32 (Linux: BITS_PER_LONG). */
export const KVM_MAX_IRQ_SOURCES = 32;

/** struct kvm_irq_routing_table */
class KvmIrqRoutingTable {
  /** chip[irqchip * KVM_IOAPIC_NUM_PINS + pin] = gsi, or -1 */
  readonly chip = new Int32Array(KVM_NR_IRQCHIPS * KVM_IOAPIC_NUM_PINS).fill(-1);
  readonly map: KvmKernelIrqRoutingEntry[][];
  constructor(readonly nrRtEntries: number) {
    this.map = new Array(nrRtEntries);
    for (let i = 0; i < nrRtEntries; i++) this.map[i] = [];
  }
}

const NO_ENTRIES: readonly KvmKernelIrqRoutingEntry[] = Object.freeze([]);

export function newRoutingEntry(gsi: number, type: number): KvmKernelIrqRoutingEntry {
  return {
    gsi, type, flags: 0, irqchip: 0, pin: 0, msiAddressLo: 0, msiAddressHi: 0, msiData: 0, msiDevid: 0,
    set: () => -1,
  };
}

/**
 * kvm->irq_routing, irq_ack_notifier_list, mask_notifier_list and irq_sources_bitmap.
 * Created with the in-kernel irqchip (KVM_CREATE_IRQCHIP).
 */
export class KvmIrqRouting {
  private rt = new KvmIrqRoutingTable(0);
  private readonly ackNotifiers: KvmIrqAckNotifier[] = [];
  private readonly maskNotifiers: KvmIrqMaskNotifier[] = [];
  private readonly routingListeners: (() => void)[] = [];
  private irqSourcesBitmap = (1 << KVM_USERSPACE_IRQ_SOURCE_ID) | (1 << KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID);

  constructor(
    readonly arch: KvmIrqRoutingArch,
    /** Tracepoints of the irqchip devices go here (kvm_set_irq, kvm_pic_set_irq, kvm_ioapic_set_irq, ...). */
    readonly tracer: KvmTracer = NO_TRACER,
  ) {}

  /** kvm_set_irq_routing() (KVM_SET_GSI_ROUTING, after the ioctl's own nr/flags checks). */
  setIrqRouting(entries: readonly KvmIrqRoutingEntry[], flags = 0): void {
    const ioctl = "KVM_SET_GSI_ROUTING";
    if (entries.length > KVM_MAX_IRQ_ROUTES || flags) throw new KvmError(EINVAL, ioctl);
    let nr = 0;
    for (const ue of entries) {
      if (ue.gsi >>> 0 >= KVM_MAX_IRQ_ROUTES) throw new KvmError(EINVAL, ioctl, `gsi ${ue.gsi}`);
      nr = Math.max(nr, ue.gsi + 1);
    }
    const next = new KvmIrqRoutingTable(nr);
    for (const ue of entries) {
      const allowed = ue.type === KVM_IRQ_ROUTING_MSI ? KVM_MSI_VALID_DEVID : 0;
      if (ue.flags & ~allowed) throw new KvmError(EINVAL, ioctl, `flags ${ue.flags}`);
      if (ue.flags & KVM_MSI_VALID_DEVID && !this.arch.msiValidDevid) throw new KvmError(EINVAL, ioctl, "devid");
      this.setupRoutingEntry(next, ue);
    }
    this.rt = next;
    for (const l of this.routingListeners) l();
  }

  /** setup_routing_entry(): one irqchip route per chip per GSI; non-irqchip routes stand alone. */
  private setupRoutingEntry(rt: KvmIrqRoutingTable, ue: KvmIrqRoutingEntry): void {
    for (const ei of rt.map[ue.gsi]) {
      if (ei.type !== KVM_IRQ_ROUTING_IRQCHIP || ue.type !== KVM_IRQ_ROUTING_IRQCHIP || ue.irqchip?.irqchip === ei.irqchip)
        throw new KvmError(EINVAL, "KVM_SET_GSI_ROUTING", `gsi ${ue.gsi} routed twice`);
    }
    const e = newRoutingEntry(ue.gsi, ue.type);
    e.flags = ue.flags;
    this.arch.setRoutingEntry(e, ue);
    if (e.type === KVM_IRQ_ROUTING_IRQCHIP) rt.chip[e.irqchip * KVM_IOAPIC_NUM_PINS + e.pin] = e.gsi;
    rt.map[e.gsi].push(e);
  }

  /** kvm_irq_map_gsi() */
  irqMapGsi(gsi: number): readonly KvmKernelIrqRoutingEntry[] {
    return gsi >>> 0 < this.rt.nrRtEntries ? this.rt.map[gsi] : NO_ENTRIES;
  }

  /** kvm_irq_map_chip_pin(): the GSI routed to an irqchip pin, or -1. */
  irqMapChipPin(irqchip: number, pin: number): number {
    return this.rt.chip[irqchip * KVM_IOAPIC_NUM_PINS + pin];
  }

  /** Every route currently installed (KVM has no GET; used by tests and the irqfd resync). */
  routes(): KvmKernelIrqRoutingEntry[] {
    return this.rt.map.flat();
  }

  /**
   * kvm_set_irq(): drive `gsi` to `level` from `irqSourceId` through every route of the GSI.
   * Returns the KVM_IRQ_LINE_STATUS status: -1 no route took it, 0 coalesced, >0 delivered.
   */
  setIrq(irqSourceId: number, gsi: number, level: number, lineStatus: boolean): number {
    if (this.tracer.tracing) this.tracer.trace("kvm_set_irq", { gsi, level, irq_source_id: irqSourceId });
    const set = this.irqMapGsi(gsi);
    let ret = -1;
    for (let i = set.length - 1; i >= 0; i--) {
      const r = set[i].set(set[i], irqSourceId, level, lineStatus);
      if (r < 0) continue;
      ret = r + (ret < 0 ? 0 : ret);
    }
    return ret;
  }

  /** kvm_send_userspace_msi() (KVM_SIGNAL_MSI). */
  sendUserspaceMsi(msi: KvmMsi): number {
    if (msi.flags & ~KVM_MSI_VALID_DEVID) throw new KvmError(EINVAL, "KVM_SIGNAL_MSI");
    if (msi.flags & KVM_MSI_VALID_DEVID && !this.arch.msiValidDevid) throw new KvmError(EINVAL, "KVM_SIGNAL_MSI");
    const e = newRoutingEntry(-1, KVM_IRQ_ROUTING_MSI);
    e.msiAddressLo = msi.addressLo >>> 0;
    e.msiAddressHi = msi.addressHi >>> 0;
    e.msiData = msi.data >>> 0;
    e.flags = msi.flags;
    e.msiDevid = msi.devid >>> 0;
    return this.arch.setMsi(e, KVM_USERSPACE_IRQ_SOURCE_ID, 1, false);
  }

  /** kvm_register_irq_ack_notifier() */
  registerIrqAckNotifier(n: KvmIrqAckNotifier): void {
    this.ackNotifiers.push(n);
  }
  /** kvm_unregister_irq_ack_notifier() */
  unregisterIrqAckNotifier(n: KvmIrqAckNotifier): void {
    const i = this.ackNotifiers.indexOf(n);
    if (i >= 0) this.ackNotifiers.splice(i, 1);
  }

  /** kvm_notify_acked_gsi() */
  notifyAckedGsi(gsi: number): void {
    const list = this.ackNotifiers;
    for (let i = 0; i < list.length; i++) if (list[i].gsi === gsi) list[i].irqAcked(list[i]);
  }

  /** kvm_notify_acked_irq(): an irqchip pin was EOIed (PIC ISR clear, IOAPIC EOI broadcast). */
  notifyAckedIrq(irqchip: number, pin: number): void {
    if (this.tracer.tracing) this.tracer.trace("kvm_ack_irq", { irqchip, pin });
    if (this.ackNotifiers.length === 0) return;
    const gsi = this.irqMapChipPin(irqchip, pin);
    if (gsi !== -1) this.notifyAckedGsi(gsi);
  }

  /** kvm_irq_has_notifier() */
  irqHasNotifier(irqchip: number, pin: number): boolean {
    const gsi = this.irqMapChipPin(irqchip, pin);
    return gsi !== -1 && this.ackNotifiers.some((n) => n.gsi === gsi);
  }

  /** kvm_register_irq_mask_notifier() */
  registerIrqMaskNotifier(n: KvmIrqMaskNotifier): void {
    this.maskNotifiers.push(n);
  }
  unregisterIrqMaskNotifier(n: KvmIrqMaskNotifier): void {
    const i = this.maskNotifiers.indexOf(n);
    if (i >= 0) this.maskNotifiers.splice(i, 1);
  }

  /** kvm_fire_mask_notifiers(): the guest masked or unmasked an irqchip pin. */
  fireMaskNotifiers(irqchip: number, pin: number, masked: boolean): void {
    if (this.maskNotifiers.length === 0) return;
    const gsi = this.irqMapChipPin(irqchip, pin);
    if (gsi === -1) return;
    for (const n of this.maskNotifiers.slice()) if (n.irq === gsi) n.func(n, masked);
  }

  /** Called after every routing change (kvm_irq_routing_update(): irqfds re-resolve their routes). */
  onRoutingUpdate(listener: () => void): () => void {
    this.routingListeners.push(listener);
    return () => {
      const i = this.routingListeners.indexOf(listener);
      if (i >= 0) this.routingListeners.splice(i, 1);
    };
  }

  /** kvm_request_irq_source_id(): EFAULT when all ids are taken, as in Linux. */
  requestIrqSourceId(): number {
    for (let id = 0; id < KVM_MAX_IRQ_SOURCES; id++) {
      if (!(this.irqSourcesBitmap & (1 << id))) {
        this.irqSourcesBitmap |= 1 << id;
        return id;
      }
    }
    throw new KvmError(EFAULT, "kvm_request_irq_source_id", "no free irq source id");
  }

  /** kvm_free_irq_source_id(): also drops the source's contribution to every line. */
  freeIrqSourceId(irqSourceId: number): void {
    if (irqSourceId === KVM_USERSPACE_IRQ_SOURCE_ID || irqSourceId < 0 || irqSourceId >= KVM_MAX_IRQ_SOURCES) return;
    this.irqSourcesBitmap &= ~(1 << irqSourceId);
    this.arch.clearIrqSource(irqSourceId);
  }
}

/** __kvm_irq_line_state(): record one source's level for a line, return the OR of all sources. */
export function kvmIrqLineState(states: Uint32Array, line: number, irqSourceId: number, level: number): number {
  if (level) states[line] |= 1 << irqSourceId;
  else states[line] &= ~(1 << irqSourceId);
  return states[line] !== 0 ? 1 : 0;
}
