/**
 * PCI configuration mechanism #1 and a bus of conventional PCI devices (kvmtool pci.c,
 * QEMU hw/pci/pci.c roles; PCI Local Bus Spec 3.0 §3.2.2.3.2, §6.1-§6.2.5).
 *
 * CONFIG_ADDRESS is the dword at 0xcf8 (only dword accesses reach it: byte accesses to
 * 0xcf8-0xcfb belong to other PIIX registers such as 0xcf9 reset control); CONFIG_DATA is
 * 0xcfc-0xcff. Devices have 256 bytes of config space with a per-byte writable mask; BARs
 * are sized by the guest writing all ones, and mapped on the VMM's PIO or MMIO bus while
 * the matching command-register enable bit is set.
 */
import { VmmError } from "../error.js";
import { leGet, lePut, type IoBus, type IoDevice } from "../io_bus.js";

export const PCI_CONFIG_ADDRESS = 0xcf8;
export const PCI_CONFIG_DATA = 0xcfc;

export const PCI_VENDOR_ID = 0x00, PCI_DEVICE_ID = 0x02, PCI_COMMAND = 0x04, PCI_STATUS = 0x06;
export const PCI_REVISION_ID = 0x08, PCI_CLASS_PROG = 0x09, PCI_CLASS_DEVICE = 0x0a, PCI_HEADER_TYPE = 0x0e;
export const PCI_BASE_ADDRESS_0 = 0x10, PCI_SUBSYSTEM_VENDOR_ID = 0x2c, PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_INTERRUPT_LINE = 0x3c, PCI_INTERRUPT_PIN = 0x3d;
export const PCI_COMMAND_IO = 0x1, PCI_COMMAND_MEMORY = 0x2, PCI_COMMAND_MASTER = 0x4;
export const PCI_BASE_ADDRESS_SPACE_IO = 0x1;
export const PCI_NUM_BARS = 6;

export interface PciBar {
  readonly size: number;
  readonly io: boolean;
  readonly dev: IoDevice;
  /** Where the BAR is currently mapped on its bus, or null. */
  mapped: number | null;
}

/** A PCI function's config space and BARs. Subclasses add behaviour. */
export class PciDevice {
  readonly config = new Uint8Array(256);
  readonly wmask = new Uint8Array(256);
  readonly bars: (PciBar | null)[] = new Array<PciBar | null>(PCI_NUM_BARS).fill(null);

  constructor(
    readonly name: string,
    vendor: number,
    device: number,
    classCode: number,
    revision = 0,
  ) {
    const c = this.config;
    put16(c, PCI_VENDOR_ID, vendor);
    put16(c, PCI_DEVICE_ID, device);
    c[PCI_REVISION_ID] = revision;
    c[PCI_CLASS_PROG] = classCode & 0xff;
    put16(c, PCI_CLASS_DEVICE, classCode >>> 8);
    c[PCI_HEADER_TYPE] = 0;
    // Command: I/O, memory, bus master enables and interrupt disable (bit 10) are writable.
    this.wmask[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    this.wmask[PCI_COMMAND + 1] = 0x04;
    this.wmask[PCI_INTERRUPT_LINE] = 0xff;
  }

  /** pci_register_bar(): a power-of-two sized I/O or 32-bit memory BAR served by `dev`. */
  addBar(index: number, size: number, io: boolean, dev: IoDevice): void {
    if (index < 0 || index >= PCI_NUM_BARS || this.bars[index]) throw new VmmError(`${this.name}: bad or duplicate BAR ${index}`);
    if (size < (io ? 4 : 16) || (size & (size - 1)) !== 0) throw new VmmError(`${this.name}: BAR ${index} size 0x${size.toString(16)} is not a power of two`);
    this.bars[index] = { size, io, dev, mapped: null };
    const at = PCI_BASE_ADDRESS_0 + index * 4;
    const addrMask = (~(size - 1) >>> 0) & (io ? 0xfffffffc : 0xfffffff0);
    put32(this.config, at, io ? PCI_BASE_ADDRESS_SPACE_IO : 0);
    put32(this.wmask, at, addrMask);
  }

  /** The address BAR `index` decodes, or null when it should not be mapped (QEMU's pci_bar_address rules). */
  barAddress(index: number): number | null {
    const bar = this.bars[index];
    if (!bar) return null;
    const cmd = this.config[PCI_COMMAND]!;
    if (!(cmd & (bar.io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY))) return null;
    const raw = get32(this.config, PCI_BASE_ADDRESS_0 + index * 4);
    const addr = (raw & ~(bar.size - 1)) >>> 0;
    const last = addr + bar.size - 1;
    if (addr === 0 || last >= (bar.io ? 0x10000 : 0xffffffff)) return null;
    return addr;
  }

  configRead(offset: number, len: number): number {
    let v = 0;
    for (let i = len - 1; i >= 0; i--) v = (v << 8) | (offset + i < 256 ? this.config[offset + i]! : 0);
    return v >>> 0;
  }

  configWrite(offset: number, len: number, value: number): void {
    for (let i = 0; i < len && offset + i < 256; i++) {
      const m = this.wmask[offset + i]!;
      const b = (value >>> (8 * i)) & 0xff;
      this.config[offset + i] = (this.config[offset + i]! & ~m) | (b & m);
    }
  }
}

/** The i440FX host bridge at 00:00.0 (Intel 82441FX PMC, 8086:1237). */
export class I440fxHostBridge extends PciDevice {
  constructor() {
    super("i440fx-host-bridge", 0x8086, 0x1237, 0x060000, 0x02);
  }
}

/** Bus 0 behind configuration mechanism #1; maps BARs on the machine's buses. */
export class PciBus {
  private readonly slots: (PciDevice | null)[] = new Array<PciDevice | null>(32).fill(null);
  private configAddress = 0;
  /** BAR placements the buses refused (overlaps): reported, never silently used. */
  readonly mapErrors: string[] = [];
  readonly addressPort: IoDevice;
  readonly dataPort: IoDevice;

  constructor(
    private readonly pio: IoBus,
    private readonly mmio: IoBus,
  ) {
    this.addressPort = {
      name: "pci-config-address",
      read: (_offset, data, len) => {
        if (len === 4) lePut(data, 4, this.configAddress);
        else data.fill(0xff, 0, len);
      },
      write: (_offset, data, len) => {
        if (len === 4) this.configAddress = leGet(data, 4) & 0x80fffffc;
      },
    };
    this.dataPort = {
      name: "pci-config-data",
      read: (offset, data, len) => lePut(data, len, this.dataRead(offset, len)),
      write: (offset, data, len) => this.dataWrite(offset, len, leGet(data, Math.min(len, 4))),
    };
  }

  /** Plug `dev` into `slot` (or the first free one); returns the slot number. */
  add(dev: PciDevice, slot?: number): number {
    const s = slot ?? this.slots.indexOf(null);
    if (s < 0 || s >= 32) throw new VmmError(`pci: no free slot for ${dev.name}`);
    if (this.slots[s]) throw new VmmError(`pci: slot ${s} already holds ${this.slots[s]!.name}`);
    this.slots[s] = dev;
    return s;
  }

  device(slot: number): PciDevice | null {
    return this.slots[slot] ?? null;
  }

  devices(): { slot: number; dev: PciDevice }[] {
    const out: { slot: number; dev: PciDevice }[] = [];
    this.slots.forEach((dev, slot) => { if (dev) out.push({ slot, dev }); });
    return out;
  }

  /** Firmware's job done by the VMM: give every BAR an address and enable decoding. */
  assignBars(nextIo: number, nextMem: number): void {
    for (const { dev } of this.devices()) {
      let cmd = 0;
      dev.bars.forEach((bar, i) => {
        if (!bar) return;
        let addr: number;
        if (bar.io) {
          addr = align(nextIo, bar.size);
          nextIo = addr + bar.size;
          cmd |= PCI_COMMAND_IO;
        } else {
          addr = align(nextMem, bar.size);
          nextMem = addr + bar.size;
          cmd |= PCI_COMMAND_MEMORY;
        }
        put32(dev.config, PCI_BASE_ADDRESS_0 + i * 4, (addr | (bar.io ? PCI_BASE_ADDRESS_SPACE_IO : 0)) >>> 0);
      });
      dev.config[PCI_COMMAND] = dev.config[PCI_COMMAND]! | cmd;
      this.remap(dev);
    }
  }

  /** Decode CONFIG_ADDRESS into the target device and register offset, or null (bus 0 only, function 0 only). */
  private target(offset: number): { dev: PciDevice; reg: number } | null {
    const a = this.configAddress;
    if (!(a & 0x80000000)) return null;
    const bus = (a >>> 16) & 0xff, slot = (a >>> 11) & 0x1f, fn = (a >>> 8) & 7;
    if (bus !== 0 || fn !== 0) return null;
    const dev = this.slots[slot];
    return dev ? { dev, reg: (a & 0xfc) + offset } : null;
  }

  dataRead(offset: number, len: number): number {
    const t = this.target(offset);
    if (t === null) return len === 4 ? 0xffffffff : (1 << (len * 8)) - 1; // no device: master abort reads all ones
    return t.dev.configRead(t.reg, len);
  }

  dataWrite(offset: number, len: number, value: number): void {
    const t = this.target(offset);
    if (t === null) return;
    t.dev.configWrite(t.reg, len, value);
    const end = t.reg + len;
    const touchesCommand = t.reg <= PCI_COMMAND && end > PCI_COMMAND;
    const touchesBars = t.reg < PCI_BASE_ADDRESS_0 + 4 * PCI_NUM_BARS && end > PCI_BASE_ADDRESS_0;
    if (touchesCommand || touchesBars) this.remap(t.dev);
  }

  /** pci_update_mappings(): move BAR regions on the buses to where config space says. */
  remap(dev: PciDevice): void {
    dev.bars.forEach((bar, i) => {
      if (!bar) return;
      const want = dev.barAddress(i);
      if (want === bar.mapped) return;
      const bus = bar.io ? this.pio : this.mmio;
      if (bar.mapped !== null) bus.unregister(bar.mapped);
      bar.mapped = null;
      if (want === null) return;
      try {
        bus.register(want, bar.size, bar.dev);
        bar.mapped = want;
      } catch (e) {
        this.mapErrors.push(e instanceof Error ? e.message : String(e));
      }
    });
  }
}

function align(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
}

function put32(b: Uint8Array, at: number, v: number): void {
  for (let i = 0; i < 4; i++) b[at + i] = (v >>> (8 * i)) & 0xff;
}

function get32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}
