/**
 * arch/x86/kvm/irq_comm.c: x86 routing entries (PIC / IOAPIC pins and MSIs), the default GSI
 * table KVM_CREATE_IRQCHIP installs, MSI address/data decoding, and kvm_irq_delivery_to_apic()
 * (message delivery to every matching LAPIC, with lowest-priority arbitration).
 */
import { EINVAL } from "../../../uapi/errno.js";
import { KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQ_ROUTING_MSI } from "../../../uapi/kvm.js";
import {
  KVM_IOAPIC_NUM_PINS,
  KVM_IRQCHIP_IOAPIC,
  KVM_IRQCHIP_PIC_MASTER,
  KVM_IRQCHIP_PIC_SLAVE,
  PIC_NUM_PINS,
  type KvmIrqRoutingEntry,
} from "../../../uapi/irqchip.js";
import type { KvmIrqRoutingArch, KvmKernelIrqRoutingEntry } from "../../../virt/kvm/irqchip.js";
import { KvmError } from "../../../virt/kvm/kvm_error.js";
import type { KvmIoapic } from "./ioapic.js";
import type { KvmPic } from "./i8259.js";
import { APIC_DEST_NOSHORT, APIC_DM_LOWEST, newLapicIrq, type KvmLapic, type KvmLapicIrq } from "./lapic.js";

// MSI address / data layout (SDM 11.11.1, 11.11.2)
export const MSI_ADDR_BASE_LO = 0xfee00000;
export const MSI_ADDR_DEST_MODE_LOGICAL = 1 << 2;
export const MSI_ADDR_REDIRECTION_HINT = 1 << 3;
export const MSI_ADDR_DEST_ID_SHIFT = 12;
export const MSI_DATA_LEVEL_ASSERT = 1 << 14;
export const MSI_DATA_TRIGGER_LEVEL = 1 << 15;

/** Where the routing entries find the PIC pair and the IOAPIC (kvm->arch.vpic / vioapic). */
export interface X86Irqchips {
  readonly pic: KvmPic | null;
  readonly ioapic: KvmIoapic | null;
}

/** The LAPICs of a VM, indexed by vcpu_idx (null for a vCPU not created yet). */
export type LapicList = (KvmLapic | null)[];

/**
 * kvm_irq_delivery_to_apic(): deliver `irq` to every LAPIC the destination selects. Fixed and
 * other modes go to each match; lowest priority goes to the one matching, software-enabled
 * APIC with the lowest processor priority (arbitration priority breaking ties). Returns -1 if
 * no LAPIC matched, else the number that accepted the message.
 */
export function kvmIrqDeliveryToApic(apics: LapicList, src: KvmLapic | null, irq: KvmLapicIrq, destMap: KvmLapic[] | null = null): number {
  let r = -1;
  let lowest: KvmLapic | null = null;
  const lowestPrio = irq.deliveryMode === APIC_DM_LOWEST;
  for (let i = 0; i < apics.length; i++) {
    const apic = apics[i];
    if (apic === null || !apic.hwEnabled()) continue;
    if (!apic.matchDest(src, irq.shorthand, irq.destId, irq.destMode)) continue;
    if (!lowestPrio) {
      if (r < 0) r = 0;
      const ok = apic.acceptIrq(irq.deliveryMode, irq.vector, irq.level, irq.trigMode);
      if (ok && destMap) destMap.push(apic);
      r += ok;
    } else if (apic.swEnabled()) {
      if (lowest === null || compareLowestPrio(apic, lowest) < 0) lowest = apic;
    }
  }
  if (lowest !== null) {
    r = lowest.acceptIrq(irq.deliveryMode, irq.vector, irq.level, irq.trigMode);
    if (r && destMap) destMap.push(lowest);
  }
  return r;
}

/** kvm_apic_compare_prio(): processor priority first (SDM 11.6.2.4), then arbitration priority. */
function compareLowestPrio(a: KvmLapic, b: KvmLapic): number {
  const pa = a.getReg(0xa0) & 0xf0;
  const pb = b.getReg(0xa0) & 0xf0;
  if (pa !== pb) return pa - pb;
  return a.arbPrio - b.arbPrio;
}

/** kvm_set_msi_irq(): decode an MSI (address, data) into an interrupt message. */
export function kvmSetMsiIrq(addressLo: number, addressHi: number, data: number, out: KvmLapicIrq, x2apicFormat = false): void {
  out.destId = (addressLo >>> MSI_ADDR_DEST_ID_SHIFT) & 0xff;
  if (x2apicFormat) out.destId = (out.destId | (addressHi & 0xffffff00)) >>> 0;
  out.vector = data & 0xff;
  out.destMode = addressLo & MSI_ADDR_DEST_MODE_LOGICAL ? 1 : 0;
  out.trigMode = data & MSI_DATA_TRIGGER_LEVEL ? 1 : 0;
  out.deliveryMode = (data >> 8) & 7;
  out.msiRedirHint = (addressLo & MSI_ADDR_REDIRECTION_HINT) !== 0;
  out.level = 1;
  out.shorthand = APIC_DEST_NOSHORT;
}

/** kvm_setup_default_irq_routing(): GSI 0-15 to the PIC pin and the IOAPIC pin, 16-23 to the IOAPIC. */
export function defaultIrqRouting(): KvmIrqRoutingEntry[] {
  const entries: KvmIrqRoutingEntry[] = [];
  for (let gsi = 0; gsi < KVM_IOAPIC_NUM_PINS; gsi++) {
    entries.push({ gsi, type: KVM_IRQ_ROUTING_IRQCHIP, flags: 0, irqchip: { irqchip: KVM_IRQCHIP_IOAPIC, pin: gsi } });
    if (gsi < PIC_NUM_PINS) {
      const irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
      entries.push({ gsi, type: KVM_IRQ_ROUTING_IRQCHIP, flags: 0, irqchip: { irqchip, pin: gsi & 7 } });
    }
  }
  return entries;
}

/** The x86 side of the routing table: PIC / IOAPIC set functions and MSI delivery. */
export class X86IrqRoutingArch implements KvmIrqRoutingArch {
  private readonly msiIrq = newLapicIrq();
  readonly msiValidDevid = false;

  /** `chips` is kvm->arch: its pic and ioapic exist before the first route is set. */
  constructor(
    private readonly chips: X86Irqchips,
    private readonly apics: LapicList,
  ) {}

  /** kvm_set_pic_irq() */
  private readonly setPicIrq = (e: KvmKernelIrqRoutingEntry, irqSourceId: number, level: number): number =>
    this.chips.pic!.setIrq(e.pin, irqSourceId, level);

  /** kvm_set_ioapic_irq() */
  private readonly setIoapicIrq = (e: KvmKernelIrqRoutingEntry, irqSourceId: number, level: number, lineStatus: boolean): number =>
    this.chips.ioapic!.setIrq(e.pin, irqSourceId, level, lineStatus);

  /** kvm_set_msi(): an MSI is an edge; a deassert does nothing. */
  readonly setMsi = (e: KvmKernelIrqRoutingEntry, _irqSourceId: number, level: number): number => {
    if (!level) return -1;
    kvmSetMsiIrq(e.msiAddressLo, e.msiAddressHi, e.msiData, this.msiIrq);
    return kvmIrqDeliveryToApic(this.apics, null, this.msiIrq);
  };

  /** kvm_set_routing_entry() */
  setRoutingEntry(e: KvmKernelIrqRoutingEntry, ue: KvmIrqRoutingEntry): void {
    const ioctl = "KVM_SET_GSI_ROUTING";
    switch (ue.type) {
      case KVM_IRQ_ROUTING_IRQCHIP: {
        const chip = ue.irqchip?.irqchip ?? -1;
        const pin = (ue.irqchip?.pin ?? -1) >>> 0;
        if (chip === KVM_IRQCHIP_PIC_MASTER || chip === KVM_IRQCHIP_PIC_SLAVE) {
          if (pin >= PIC_NUM_PINS / 2) throw new KvmError(EINVAL, ioctl, `PIC pin ${pin}`);
          e.pin = chip === KVM_IRQCHIP_PIC_SLAVE ? pin + 8 : pin;
          e.set = this.setPicIrq;
        } else if (chip === KVM_IRQCHIP_IOAPIC) {
          if (pin >= KVM_IOAPIC_NUM_PINS) throw new KvmError(EINVAL, ioctl, `IOAPIC pin ${pin}`);
          e.pin = pin;
          e.set = this.setIoapicIrq;
        } else {
          throw new KvmError(EINVAL, ioctl, `irqchip ${chip}`);
        }
        e.irqchip = chip;
        return;
      }
      case KVM_IRQ_ROUTING_MSI: {
        const m = ue.msi;
        if (!m) throw new KvmError(EINVAL, ioctl, "MSI entry without address/data");
        e.msiAddressLo = m.addressLo >>> 0;
        e.msiAddressHi = m.addressHi >>> 0;
        e.msiData = m.data >>> 0;
        e.msiDevid = m.devid >>> 0;
        e.set = this.setMsi;
        return;
      }
      default:
        throw new KvmError(EINVAL, ioctl, `routing type ${ue.type}`);
    }
  }

  /** kvm_pic_clear_all() + kvm_ioapic_clear_all() for kvm_free_irq_source_id(). */
  clearIrqSource(irqSourceId: number): void {
    this.chips.pic?.clearAll(irqSourceId);
    this.chips.ioapic?.clearAll(irqSourceId);
  }
}
