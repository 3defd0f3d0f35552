/**
 * The in-kernel irqchip part of the ABI (include/uapi/linux/kvm.h, arch/x86/include/uapi/asm/kvm.h):
 * chip ids, routing entry layout, and codecs for struct kvm_irqchip (kvm_pic_state /
 * kvm_ioapic_state), struct kvm_pit_state2 and the small argument structs of KVM_IRQFD,
 * KVM_IOEVENTFD, KVM_SIGNAL_MSI, KVM_IRQ_LINE(_STATUS) and KVM_SET_GSI_ROUTING.
 * All multi-byte fields are little-endian, as on x86.
 */
import { IO, IOR, IOWR } from "./ioctl.js";
import { KVMIO } from "./kvm.js";

export const KVM_IRQCHIP_PIC_MASTER = 0;
export const KVM_IRQCHIP_PIC_SLAVE = 1;
export const KVM_IRQCHIP_IOAPIC = 2;
export const KVM_NR_IRQCHIPS = 3;
export const KVM_IOAPIC_NUM_PINS = 24;
/** PIC_NUM_PINS: both 8259As together. */
export const PIC_NUM_PINS = 16;
export const KVM_IOAPIC_DEFAULT_BASE_ADDRESS = 0xfec00000;
export const KVM_APIC_DEFAULT_BASE = 0xfee00000;

/** include/linux/kvm_host.h: largest number of routing entries and of GSIs. */
export const KVM_MAX_IRQ_ROUTES = 4096;
/** Reserved irq_source_ids (arch/x86/include/asm/kvm_host.h). */
export const KVM_USERSPACE_IRQ_SOURCE_ID = 0;
export const KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID = 1;

/** kvm_irq_routing_entry.flags */
export const KVM_MSI_VALID_DEVID = 1 << 0;

/** struct kvm_pit_state2.flags and kvm_pit_config.flags */
export const KVM_PIT_FLAGS_HPET_LEGACY = 0x00000001;
export const KVM_PIT_FLAGS_SPEAKER_DATA_ON = 0x00000002;
export const KVM_PIT_SPEAKER_DUMMY = 1;

/** Legacy PIT ioctls that are not in uapi/kvm.ts. */
export const KVM_CREATE_PIT = IO(KVMIO, 0x64);
export const KVM_GET_PIT = IOWR(KVMIO, 0x65, 72);
export const KVM_SET_PIT = IOR(KVMIO, 0x66, 72);
export const KVM_REINJECT_CONTROL = IO(KVMIO, 0x71);

export const SZ_KVM_IRQCHIP = 520;
export const SZ_KVM_PIC_STATE = 16;
export const SZ_KVM_IOAPIC_STATE = 216;
export const SZ_KVM_LAPIC_STATE = 1024;
export const SZ_KVM_PIT_STATE2 = 112;
export const SZ_KVM_IRQ_ROUTING_ENTRY = 48;

/** struct kvm_pic_state: sixteen u8 fields, in this order. */
export interface KvmPicState {
  lastIrr: number;
  irr: number;
  imr: number;
  isr: number;
  priorityAdd: number;
  irqBase: number;
  readRegSelect: number;
  poll: number;
  specialMask: number;
  initState: number;
  autoEoi: number;
  rotateOnAutoEoi: number;
  specialFullyNestedMode: number;
  init4: number;
  elcr: number;
  elcrMask: number;
}
export const KVM_PIC_STATE_FIELDS: readonly (keyof KvmPicState)[] = [
  "lastIrr", "irr", "imr", "isr", "priorityAdd", "irqBase", "readRegSelect", "poll",
  "specialMask", "initState", "autoEoi", "rotateOnAutoEoi", "specialFullyNestedMode", "init4",
  "elcr", "elcrMask",
];

/** struct kvm_ioapic_state: redirtbl entries are u64, kept as bigint at this API surface. */
export interface KvmIoapicState {
  baseAddress: bigint;
  ioregsel: number;
  id: number;
  irr: number;
  redirtbl: bigint[];
}

/** struct kvm_irqchip: chip_id selects which union member `chip` is. */
export type KvmIrqchip =
  | { chipId: typeof KVM_IRQCHIP_PIC_MASTER | typeof KVM_IRQCHIP_PIC_SLAVE; pic: KvmPicState }
  | { chipId: typeof KVM_IRQCHIP_IOAPIC; ioapic: KvmIoapicState };

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export function encodePicState(s: KvmPicState, out: Uint8Array, off = 0): void {
  for (let i = 0; i < 16; i++) out[off + i] = s[KVM_PIC_STATE_FIELDS[i]] & 0xff;
}
export function decodePicState(b: Uint8Array, off = 0): KvmPicState {
  const s = {} as KvmPicState;
  for (let i = 0; i < 16; i++) s[KVM_PIC_STATE_FIELDS[i]] = b[off + i];
  return s;
}

export function encodeIoapicState(s: KvmIoapicState, out: Uint8Array, off = 0): void {
  const v = view(out);
  v.setBigUint64(off, s.baseAddress, true);
  v.setUint32(off + 8, s.ioregsel >>> 0, true);
  v.setUint32(off + 12, s.id >>> 0, true);
  v.setUint32(off + 16, s.irr >>> 0, true);
  v.setUint32(off + 20, 0, true);
  for (let i = 0; i < KVM_IOAPIC_NUM_PINS; i++) v.setBigUint64(off + 24 + 8 * i, s.redirtbl[i] ?? 0n, true);
}
export function decodeIoapicState(b: Uint8Array, off = 0): KvmIoapicState {
  const v = view(b);
  const redirtbl: bigint[] = [];
  for (let i = 0; i < KVM_IOAPIC_NUM_PINS; i++) redirtbl.push(v.getBigUint64(off + 24 + 8 * i, true));
  return {
    baseAddress: v.getBigUint64(off, true),
    ioregsel: v.getUint32(off + 8, true),
    id: v.getUint32(off + 12, true),
    irr: v.getUint32(off + 16, true),
    redirtbl,
  };
}

/** struct kvm_irqchip as the 520 bytes KVM_GET_IRQCHIP copies out. */
export function encodeIrqchip(c: KvmIrqchip): Uint8Array {
  const out = new Uint8Array(SZ_KVM_IRQCHIP);
  view(out).setUint32(0, c.chipId, true);
  if (c.chipId === KVM_IRQCHIP_IOAPIC) encodeIoapicState(c.ioapic, out, 8);
  else encodePicState(c.pic, out, 8);
  return out;
}
/** struct kvm_irqchip from bytes; an unknown chip_id is returned as-is for the ioctl to reject. */
export function decodeIrqchip(b: Uint8Array): KvmIrqchip | { chipId: number } {
  const chipId = view(b).getUint32(0, true);
  if (chipId === KVM_IRQCHIP_IOAPIC) return { chipId, ioapic: decodeIoapicState(b, 8) };
  if (chipId === KVM_IRQCHIP_PIC_MASTER || chipId === KVM_IRQCHIP_PIC_SLAVE) return { chipId, pic: decodePicState(b, 8) };
  return { chipId };
}

/** struct kvm_pit_channel_state (24 bytes). count_load_time is in the VM clock's ns. */
export interface KvmPitChannelState {
  count: number;
  latchedCount: number;
  countLatched: number;
  statusLatched: number;
  status: number;
  readState: number;
  writeState: number;
  writeLatch: number;
  rwMode: number;
  mode: number;
  bcd: number;
  gate: number;
  countLoadTime: bigint;
}
/** struct kvm_pit_state2 (112 bytes). */
export interface KvmPitState2 {
  channels: KvmPitChannelState[];
  flags: number;
}

export function encodePitState2(s: KvmPitState2): Uint8Array {
  const out = new Uint8Array(SZ_KVM_PIT_STATE2);
  const v = view(out);
  for (let i = 0; i < 3; i++) {
    const c = s.channels[i];
    const o = 24 * i;
    v.setUint32(o, c.count >>> 0, true);
    v.setUint16(o + 4, c.latchedCount & 0xffff, true);
    const bytes = [c.countLatched, c.statusLatched, c.status, c.readState, c.writeState, c.writeLatch, c.rwMode, c.mode, c.bcd, c.gate];
    for (let j = 0; j < bytes.length; j++) out[o + 6 + j] = bytes[j] & 0xff;
    v.setBigInt64(o + 16, c.countLoadTime, true);
  }
  v.setUint32(72, s.flags >>> 0, true);
  return out;
}
/** struct kvm_pit_state (KVM_GET_PIT / KVM_SET_PIT, 72 bytes): the channels of kvm_pit_state2 without flags. */
export const SZ_KVM_PIT_STATE = 72;
export function encodePitState(channels: KvmPitChannelState[]): Uint8Array {
  return encodePitState2({ channels, flags: 0 }).slice(0, SZ_KVM_PIT_STATE);
}
export function decodePitState(b: Uint8Array): KvmPitChannelState[] {
  const full = new Uint8Array(SZ_KVM_PIT_STATE2);
  full.set(b.subarray(0, SZ_KVM_PIT_STATE));
  return decodePitState2(full).channels;
}

export function decodePitState2(b: Uint8Array): KvmPitState2 {
  const v = view(b);
  const channels: KvmPitChannelState[] = [];
  for (let i = 0; i < 3; i++) {
    const o = 24 * i;
    channels.push({
      count: v.getUint32(o, true),
      latchedCount: v.getUint16(o + 4, true),
      countLatched: b[o + 6],
      statusLatched: b[o + 7],
      status: b[o + 8],
      readState: b[o + 9],
      writeState: b[o + 10],
      writeLatch: b[o + 11],
      rwMode: b[o + 12],
      mode: b[o + 13],
      bcd: b[o + 14],
      gate: b[o + 15],
      countLoadTime: v.getBigInt64(o + 16, true),
    });
  }
  return { channels, flags: v.getUint32(72, true) };
}

/** struct kvm_irq_routing_entry, decoded (union u by type). */
export interface KvmIrqRoutingEntry {
  gsi: number;
  type: number;
  flags: number;
  /** type KVM_IRQ_ROUTING_IRQCHIP */
  irqchip?: { irqchip: number; pin: number };
  /** type KVM_IRQ_ROUTING_MSI */
  msi?: { addressLo: number; addressHi: number; data: number; devid: number };
}

/** struct kvm_irq_routing { u32 nr; u32 flags; entries[nr] } from bytes. */
export function decodeIrqRouting(b: Uint8Array): { flags: number; entries: KvmIrqRoutingEntry[] } {
  const v = view(b);
  const nr = v.getUint32(0, true);
  const flags = v.getUint32(4, true);
  const entries: KvmIrqRoutingEntry[] = [];
  for (let i = 0; i < nr && 8 + 48 * (i + 1) <= b.byteLength; i++) {
    const o = 8 + 48 * i;
    const e: KvmIrqRoutingEntry = { gsi: v.getUint32(o, true), type: v.getUint32(o + 4, true), flags: v.getUint32(o + 8, true) };
    e.irqchip = { irqchip: v.getUint32(o + 16, true), pin: v.getUint32(o + 20, true) };
    e.msi = { addressLo: v.getUint32(o + 16, true), addressHi: v.getUint32(o + 20, true), data: v.getUint32(o + 24, true), devid: v.getUint32(o + 28, true) };
    entries.push(e);
  }
  return { flags, entries };
}

/** struct kvm_irq_routing for KVM_SET_GSI_ROUTING: irqchip entries (type KVM_IRQ_ROUTING_IRQCHIP) and MSI entries. */
export function encodeIrqRouting(entries: readonly KvmIrqRoutingEntry[], flags = 0): Uint8Array {
  const b = new Uint8Array(8 + 48 * entries.length);
  const v = view(b);
  v.setUint32(0, entries.length, true);
  v.setUint32(4, flags, true);
  entries.forEach((e, i) => {
    const o = 8 + 48 * i;
    v.setUint32(o, e.gsi, true);
    v.setUint32(o + 4, e.type, true);
    v.setUint32(o + 8, e.flags, true);
    if (e.irqchip) {
      v.setUint32(o + 16, e.irqchip.irqchip, true);
      v.setUint32(o + 20, e.irqchip.pin, true);
    } else if (e.msi) {
      v.setUint32(o + 16, e.msi.addressLo, true);
      v.setUint32(o + 20, e.msi.addressHi, true);
      v.setUint32(o + 24, e.msi.data, true);
      v.setUint32(o + 28, e.msi.devid, true);
    }
  });
  return b;
}

/** struct kvm_msi (KVM_SIGNAL_MSI). */
export interface KvmMsi {
  addressLo: number;
  addressHi: number;
  data: number;
  flags: number;
  devid: number;
}

/** struct kvm_irqfd: fd and resamplefd are eventfd descriptors of the host fd table. */
export interface KvmIrqfdArgs {
  fd: number;
  gsi: number;
  flags: number;
  resamplefd: number;
}

/** struct kvm_ioeventfd */
export interface KvmIoeventfdArgs {
  datamatch: bigint;
  addr: bigint;
  len: number;
  fd: number;
  flags: number;
}
