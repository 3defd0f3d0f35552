/**
 * Userspace PIO and MMIO dispatch (kvmtool's ioport.c / mmio.c role): devices register an
 * address range; an exit is routed to the device whose range holds the address. Ranges are
 * kept sorted by base and found by binary search (kvmtool uses an interval rb-tree; a sorted
 * array gives the same O(log n) lookup and registration is rare).
 */
import { VmmError } from "./error.js";

/** A device as the VMM's buses see it. `offset` is relative to the registered base. */
export interface IoDevice {
  readonly name: string;
  /** Fill `data[0..len)` for a guest read of `len` bytes at `offset`. */
  read(offset: number, data: Uint8Array, len: number): void;
  /** A guest write of `data[0..len)` at `offset`. */
  write(offset: number, data: Uint8Array, len: number): void;
}

export interface IoRegion {
  readonly base: number;
  readonly len: number;
  readonly dev: IoDevice;
}

export class IoBus {
  private regions: IoRegion[] = [];
  /** Accesses nobody claimed (reads float to all-ones, writes are dropped, as on a PC bus). */
  unclaimedReads = 0;
  unclaimedWrites = 0;

  constructor(readonly name: string) {}

  /** Register `dev` at [base, base+len). Overlapping an existing range is a VMM bug: refused. */
  register(base: number, len: number, dev: IoDevice): void {
    if (!(len > 0) || base < 0) throw new VmmError(`${this.name}: bad range 0x${base.toString(16)}+0x${len.toString(16)} for ${dev.name}`);
    const i = this.lowerBound(base);
    const prev = this.regions[i - 1];
    const next = this.regions[i];
    if ((prev && prev.base + prev.len > base) || (next && base + len > next.base)) {
      const other = prev && prev.base + prev.len > base ? prev : next!;
      throw new VmmError(`${this.name}: ${dev.name} at 0x${base.toString(16)}+0x${len.toString(16)} overlaps ${other.dev.name} at 0x${other.base.toString(16)}+0x${other.len.toString(16)}`);
    }
    this.regions.splice(i, 0, { base, len, dev });
  }

  /** Remove the range registered at `base`; returns whether there was one. */
  unregister(base: number): boolean {
    const i = this.lowerBound(base);
    if (this.regions[i]?.base !== base) return false;
    this.regions.splice(i, 1);
    return true;
  }

  /** The region holding `addr`, or null. */
  find(addr: number): IoRegion | null {
    let lo = 0;
    let hi = this.regions.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = this.regions[mid]!;
      if (addr < r.base) hi = mid - 1;
      else if (addr >= r.base + r.len) lo = mid + 1;
      else return r;
    }
    return null;
  }

  /** Route a read; returns false (and fills all-ones) when no device claims `addr`. */
  read(addr: number, data: Uint8Array, len: number): boolean {
    const r = this.find(addr);
    if (r === null) {
      data.fill(0xff, 0, len);
      this.unclaimedReads++;
      return false;
    }
    r.dev.read(addr - r.base, data, len);
    return true;
  }

  /** Route a write; returns false when no device claims `addr`. */
  write(addr: number, data: Uint8Array, len: number): boolean {
    const r = this.find(addr);
    if (r === null) {
      this.unclaimedWrites++;
      return false;
    }
    r.dev.write(addr - r.base, data, len);
    return true;
  }

  /** All regions in address order (for `info mtree`). */
  list(): readonly IoRegion[] {
    return this.regions;
  }

  private lowerBound(base: number): number {
    let lo = 0;
    let hi = this.regions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.regions[mid]!.base < base) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Little-endian value of `data[0..len)` for len 1, 2 or 4 (unsigned). */
export function leGet(data: Uint8Array, len: number): number {
  if (len === 1) return data[0]!;
  if (len === 2) return data[0]! | (data[1]! << 8);
  return (data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24)) >>> 0;
}

/** Store `value` little-endian into `data[0..len)`; lengths above 4 get zero upper bytes. */
export function lePut(data: Uint8Array, len: number, value: number): void {
  for (let i = 0; i < len; i++) data[i] = i < 4 ? (value >>> (8 * i)) & 0xff : 0;
}

/** Interrupt lines as devices see them (the machine routes them to KVM_IRQ_LINE). */
export interface IrqSink {
  setIrq(line: number, level: boolean): void;
}

/** What devices may ask of the machine (kvmtool's kvm__reboot / qemu_system_*_request roles). */
export interface MachineControl {
  /** The guest asked the process to end with this exit status (isa-debug-exit). */
  requestExit(status: number): void;
  /** A reset line was pulled (port 0xcf9, the 8042's 0xfe command, ACPI reset register). */
  requestReset(source: string): void;
  /** ACPI S5 (soft off) was entered. */
  requestPoweroff(source: string): void;
}
