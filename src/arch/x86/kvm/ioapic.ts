/**
 * arch/x86/kvm/ioapic.c: the 82093AA-style I/O APIC at 0xfec00000 with 24 pins.
 * IOREGSEL (offset 0x00) selects an indirect register read/written through IOWIN (0x10):
 * 0 ID, 1 version, 2 arbitration, 0x10 + 2n / 0x11 + 2n redirection entry n (low / high).
 * This model reports version 0x20, so it also has the EOI register at offset 0x40.
 *
 * Level-triggered pins set Remote IRR when delivered and are not delivered again until the
 * LAPIC broadcasts the EOI of their vector (or the guest writes the EOI register); at that
 * point a line that is still asserted is delivered again.
 */
import type { KvmIoDevice, KvmVcpuLike } from "../../../virt/kvm/kvm_host.js";
import { kvmIrqLineState, type KvmIrqRouting } from "../../../virt/kvm/irqchip.js";
import { KVM_IOAPIC_DEFAULT_BASE_ADDRESS, KVM_IOAPIC_NUM_PINS, KVM_IRQCHIP_IOAPIC, type KvmIoapicState } from "../../../uapi/irqchip.js";
import { APIC_DEST_NOSHORT, newLapicIrq, type KvmLapic, type KvmLapicIrq } from "./lapic.js";

export const IOAPIC_NUM_PINS = KVM_IOAPIC_NUM_PINS;
export const IOAPIC_VERSION_ID = 0x20;
export const IOAPIC_MEM_LENGTH = 0x100;
export const IOAPIC_REG_SELECT = 0x00;
export const IOAPIC_REG_WINDOW = 0x10;
export const IOAPIC_REG_EOI = 0x40;
export const IOAPIC_REG_APIC_ID = 0x00;
export const IOAPIC_REG_VERSION = 0x01;
export const IOAPIC_REG_ARB_ID = 0x02;

/** Redirection entry low dword fields (82093AA 3.2.4). */
export const IOAPIC_VECTOR_MASK = 0xff;
export const IOAPIC_DELIVERY_MODE_SHIFT = 8;
export const IOAPIC_DEST_MODE_LOGICAL = 1 << 11;
export const IOAPIC_DELIVERY_STATUS = 1 << 12;
export const IOAPIC_POLARITY_LOW = 1 << 13;
export const IOAPIC_REMOTE_IRR = 1 << 14;
export const IOAPIC_LEVEL_TRIG = 1 << 15;
export const IOAPIC_MASKED = 1 << 16;

/**
 * Delivers an interrupt message to the LAPICs (kvm_irq_delivery_to_apic); returns targets
 * reached or -1. With `destMap`, the LAPICs that accepted it are appended (struct dest_map).
 */
export type ApicDeliveryFn = (irq: KvmLapicIrq, destMap: KvmLapic[] | null) => number;

/** The RTC's GSI: its EOIs are tracked so KVM_IRQ_LINE_STATUS can report coalesced ticks. */
export const RTC_GSI = 8;

/** struct kvm_ioapic */
export class KvmIoapic implements KvmIoDevice {
  baseAddress = KVM_IOAPIC_DEFAULT_BASE_ADDRESS;
  ioregsel = 0;
  id = 0;
  /** Asserted lines (edge pins: the line level; level pins: the request). */
  irr = 0;
  /** redirtbl[n] low / high dwords at [2n] / [2n+1]. */
  readonly redirtbl = new Uint32Array(2 * IOAPIC_NUM_PINS);
  readonly irqStates = new Uint32Array(IOAPIC_NUM_PINS);
  /** Vectors some pin is programmed with (the ioapic_handled_vectors role), 256 bits. */
  private readonly handledVectors = new Uint32Array(8);
  private readonly irqe = newLapicIrq();

  /**
   * rtc_status: the LAPICs that got the RTC's last interrupt (with line status) and have not
   * EOIed it yet. While any has not, another RTC tick is reported as coalesced and not sent
   * (userspace RTCs use this to catch up lost ticks for guests that count them).
   */
  private readonly rtcDestMap: KvmLapic[] = [];
  private rtcVector = -1;

  constructor(
    private readonly routing: KvmIrqRouting | null,
    private readonly deliver: ApicDeliveryFn,
    /** The VM's LAPICs, to rebuild RTC EOI tracking after KVM_SET_IRQCHIP. */
    private readonly apics: readonly (KvmLapic | null)[] = [],
  ) {
    this.reset();
  }

  /** rtc_status.pending_eoi */
  get rtcPendingEoi(): number {
    return this.rtcDestMap.length;
  }

  /** kvm_ioapic_reset() */
  reset(): void {
    for (let i = 0; i < IOAPIC_NUM_PINS; i++) {
      this.redirtbl[2 * i] = IOAPIC_MASKED;
      this.redirtbl[2 * i + 1] = 0;
    }
    this.baseAddress = KVM_IOAPIC_DEFAULT_BASE_ADDRESS;
    this.ioregsel = 0;
    this.irr = 0;
    this.id = 0;
    this.irqStates.fill(0);
    this.rtcDestMap.length = 0;
    this.rtcVector = -1;
    this.recalcHandledVectors();
  }

  private recalcHandledVectors(): void {
    this.handledVectors.fill(0);
    for (let i = 0; i < IOAPIC_NUM_PINS; i++) {
      const v = this.redirtbl[2 * i] & 0xff;
      this.handledVectors[v >> 5] |= 1 << (v & 31);
    }
  }

  /** kvm_ioapic_handles_vector() */
  handlesVector(vector: number): boolean {
    return (this.handledVectors[vector >> 5] & (1 << (vector & 31))) !== 0;
  }

  private inRange(addr: number): boolean {
    return addr >= this.baseAddress && addr < this.baseAddress + IOAPIC_MEM_LENGTH;
  }

  /** ioapic_mmio_read() */
  read(_vcpu: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean {
    if (!this.inRange(addr)) return false;
    const off = (addr - this.baseAddress) & 0xff;
    let result = 0;
    if (off === IOAPIC_REG_SELECT) result = this.ioregsel;
    else if (off === IOAPIC_REG_WINDOW) result = this.readIndirect();
    data.fill(0, 0, len);
    for (let i = 0; i < len && i < 4; i++) data[i] = (result >>> (8 * i)) & 0xff;
    return true;
  }

  /** ioapic_mmio_write() */
  write(_vcpu: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean {
    if (!this.inRange(addr)) return false;
    if (len !== 1 && len !== 2 && len !== 4 && len !== 8) return true;
    let val = 0;
    for (let i = 0; i < len && i < 4; i++) val |= data[i] << (8 * i);
    val >>>= 0;
    const off = (addr - this.baseAddress) & 0xff;
    if (off === IOAPIC_REG_SELECT) this.ioregsel = val & 0xff;
    else if (off === IOAPIC_REG_WINDOW) this.writeIndirect(val);
    else if (off === IOAPIC_REG_EOI) this.eoiRegister(val & 0xff);
    return true;
  }

  /** ioapic_read_indirect() */
  readIndirect(): number {
    switch (this.ioregsel) {
      case IOAPIC_REG_VERSION:
        return (((IOAPIC_NUM_PINS - 1) & 0xff) << 16) | IOAPIC_VERSION_ID;
      case IOAPIC_REG_APIC_ID:
      case IOAPIC_REG_ARB_ID:
        return ((this.id & 0xf) << 24) >>> 0;
      default: {
        const index = (this.ioregsel - 0x10) >> 1;
        if (this.ioregsel < 0x10 || index >= IOAPIC_NUM_PINS) return 0xffffffff;
        return this.redirtbl[2 * index + (this.ioregsel & 1)];
      }
    }
  }

  /** ioapic_write_indirect() */
  writeIndirect(val: number): void {
    switch (this.ioregsel) {
      case IOAPIC_REG_VERSION:
      case IOAPIC_REG_ARB_ID:
        return;
      case IOAPIC_REG_APIC_ID:
        this.id = (val >>> 24) & 0xf;
        return;
    }
    const index = (this.ioregsel - 0x10) >> 1;
    if (this.ioregsel < 0x10 || index >= IOAPIC_NUM_PINS) return;
    const old = this.redirtbl[2 * index];
    if (this.ioregsel & 1) {
      this.redirtbl[2 * index + 1] = val;
    } else {
      // Remote IRR and delivery status are read-only; Remote IRR reads 0 for edge pins.
      let lo = (val & ~(IOAPIC_REMOTE_IRR | IOAPIC_DELIVERY_STATUS)) | (old & (IOAPIC_REMOTE_IRR | IOAPIC_DELIVERY_STATUS));
      if (!(lo & IOAPIC_LEVEL_TRIG)) lo &= ~IOAPIC_REMOTE_IRR;
      this.redirtbl[2 * index] = lo >>> 0;
      this.recalcHandledVectors();
    }
    const lo = this.redirtbl[2 * index];
    if ((old ^ lo) & IOAPIC_MASKED) this.routing?.fireMaskNotifiers(KVM_IRQCHIP_IOAPIC, index, (lo & IOAPIC_MASKED) !== 0);
    if (lo & IOAPIC_LEVEL_TRIG && this.irr & (1 << index) && !(lo & IOAPIC_MASKED) && !(lo & IOAPIC_REMOTE_IRR)) this.service(index);
  }

  /** ioapic_service(): send pin `irq`'s message; -1 if masked or awaiting EOI. */
  private service(irq: number, lineStatus = false): number {
    const lo = this.redirtbl[2 * irq];
    const hi = this.redirtbl[2 * irq + 1];
    if (lo & IOAPIC_MASKED || (lo & IOAPIC_LEVEL_TRIG && lo & IOAPIC_REMOTE_IRR)) return -1;
    const e = this.irqe;
    e.destId = hi >>> 24;
    e.vector = lo & 0xff;
    e.destMode = (lo & IOAPIC_DEST_MODE_LOGICAL) !== 0 ? 1 : 0;
    e.trigMode = (lo & IOAPIC_LEVEL_TRIG) !== 0 ? 1 : 0;
    e.deliveryMode = (lo >> IOAPIC_DELIVERY_MODE_SHIFT) & 7;
    e.level = 1;
    e.shorthand = APIC_DEST_NOSHORT;
    e.msiRedirHint = false;
    let ret: number;
    if (irq === RTC_GSI && lineStatus) {
      this.rtcDestMap.length = 0;
      this.rtcVector = e.vector;
      ret = this.deliver(e, this.rtcDestMap);
    } else {
      ret = this.deliver(e, null);
    }
    if (ret > 0 && e.trigMode) this.redirtbl[2 * irq] = (lo | IOAPIC_REMOTE_IRR) >>> 0;
    return ret;
  }

  /** kvm_ioapic_set_irq(): returns the line status (1 delivered/deasserted, 0 coalesced, -1 masked). */
  setIrq(irq: number, irqSourceId: number, level: number, lineStatus: boolean): number {
    const ret = this.setIrqLine(irq, irqSourceId, level, lineStatus);
    const tr = this.routing?.tracer;
    if (tr && tr.tracing) {
      const e = (BigInt(this.redirtbl[2 * irq + 1]) << 32n) | BigInt(this.redirtbl[2 * irq]);
      tr.trace("kvm_ioapic_set_irq", { e, pin: irq, coalesced: ret === 0 });
    }
    return ret;
  }

  /** ioapic_set_irq() */
  private setIrqLine(irq: number, irqSourceId: number, level: number, lineStatus: boolean): number {
    const irqLevel = kvmIrqLineState(this.irqStates, irq, irqSourceId, level);
    const mask = 1 << irq;
    if (!irqLevel) {
      this.irr &= ~mask;
      return 1;
    }
    // The RTC's previous tick is still unacknowledged somewhere: this one is coalesced.
    if (irq === RTC_GSI && lineStatus && this.rtcDestMap.length > 0) return 0;
    const edge = !(this.redirtbl[2 * irq] & IOAPIC_LEVEL_TRIG);
    const oldIrr = this.irr;
    this.irr |= mask;
    // A line already high is no new edge: the interrupt is coalesced.
    if (edge && oldIrr === this.irr) return 0;
    return this.service(irq, lineStatus);
  }

  /** kvm_ioapic_clear_all() */
  clearAll(irqSourceId: number): void {
    for (let i = 0; i < IOAPIC_NUM_PINS; i++) this.irqStates[i] &= ~(1 << irqSourceId);
  }

  /**
   * kvm_ioapic_update_eoi(): the LAPIC EOIed `vector`. Ack notifiers of every pin with that
   * vector run; for a level-triggered EOI, Remote IRR clears (unless the LAPIC uses directed
   * EOI, which leaves it to the guest's EOI-register write) and a still-asserted line fires again.
   */
  updateEoi(vector: number, levelTriggered: boolean, directedEoi: boolean, from: KvmLapic | null = null): void {
    if (vector === this.rtcVector && from !== null) {
      // rtc_irq_eoi()
      const i = this.rtcDestMap.indexOf(from);
      if (i >= 0) this.rtcDestMap.splice(i, 1);
    }
    for (let pin = 0; pin < IOAPIC_NUM_PINS; pin++) {
      const lo = this.redirtbl[2 * pin];
      if ((lo & 0xff) !== vector) continue;
      this.routing?.notifyAckedIrq(KVM_IRQCHIP_IOAPIC, pin);
      if (!levelTriggered || directedEoi) continue;
      this.clearRemoteIrrAndResample(pin);
    }
  }

  /** The EOI register (version 0x20): a directed EOI of `vector` from software. */
  private eoiRegister(vector: number): void {
    for (let pin = 0; pin < IOAPIC_NUM_PINS; pin++) {
      const lo = this.redirtbl[2 * pin];
      if ((lo & 0xff) !== vector || !(lo & IOAPIC_LEVEL_TRIG)) continue;
      this.clearRemoteIrrAndResample(pin);
    }
  }

  private clearRemoteIrrAndResample(pin: number): void {
    const lo = this.redirtbl[2 * pin] & ~IOAPIC_REMOTE_IRR;
    this.redirtbl[2 * pin] = lo >>> 0;
    if (lo & IOAPIC_LEVEL_TRIG && !(lo & IOAPIC_MASKED) && this.irr & (1 << pin)) this.service(pin);
  }

  /** kvm_rtc_eoi_tracking_restore_all(): LAPICs with the RTC vector requested or in service owe an EOI. */
  private rtcEoiTrackingRestore(): void {
    this.rtcDestMap.length = 0;
    const lo = this.redirtbl[2 * RTC_GSI];
    this.rtcVector = lo & 0xff;
    if (lo & IOAPIC_MASKED) return;
    for (const apic of this.apics) if (apic && apic.pendingEoi(this.rtcVector)) this.rtcDestMap.push(apic);
  }

  /** KVM_GET_IRQCHIP (chip 2) */
  getState(): KvmIoapicState {
    const redirtbl: bigint[] = [];
    for (let i = 0; i < IOAPIC_NUM_PINS; i++) redirtbl.push((BigInt(this.redirtbl[2 * i + 1]) << 32n) | BigInt(this.redirtbl[2 * i]));
    return { baseAddress: BigInt(this.baseAddress), ioregsel: this.ioregsel, id: this.id, irr: this.irr >>> 0, redirtbl };
  }

  /** KVM_SET_IRQCHIP (chip 2): copy in and deliver pending level interrupts (kvm_ioapic_inject_all). */
  setState(s: KvmIoapicState): void {
    this.baseAddress = Number(s.baseAddress);
    this.ioregsel = s.ioregsel & 0xff;
    this.id = s.id & 0xf;
    this.irr = s.irr >>> 0;
    for (let i = 0; i < IOAPIC_NUM_PINS; i++) {
      const b = s.redirtbl[i] ?? 0n;
      this.redirtbl[2 * i] = Number(b & 0xffffffffn);
      this.redirtbl[2 * i + 1] = Number(b >> 32n);
    }
    this.recalcHandledVectors();
    this.rtcEoiTrackingRestore();
    const irr = this.irr;
    for (let i = 0; i < IOAPIC_NUM_PINS; i++) if (irr & (1 << i) && this.redirtbl[2 * i] & IOAPIC_LEVEL_TRIG) this.service(i);
  }
}
