/**
 * In-kernel I/O buses (kvm_io_bus_* in kvm_main.c): the PIO and MMIO address ranges claimed by
 * in-kernel devices (PIC, PIT, IOAPIC, LAPIC, ioeventfds, coalesced MMIO). Ranges are kept
 * sorted by address and looked up by binary search. An access is offered to the devices whose
 * range contains it; a device may decline (return false) and the next device with the same
 * range is asked, which is how several ioeventfds with different datamatch values share an address.
 *
 * Registration rejects a range that partially overlaps an existing one (EEXIST); identical
 * ranges stack. NR_IOBUS_DEVS bounds the device count (ENOSPC).
 *
 * A zero-length registration (an ioeventfd with len 0, api.rst KVM_IOEVENTFD) claims only its
 * address: it is offered every access that starts there, whatever the access width, before the
 * sized ranges (as KVM's FAST_MMIO bus is consulted first). Such entries occupy no bytes, so
 * they never conflict with a sized range.
 */
import { EEXIST, EINVAL, ENOENT, ENOSPC } from "../../uapi/errno.js";
import { KvmError } from "./kvm_error.js";
import type { KvmIoDevice, KvmVcpuLike } from "./kvm_host.js";

export const NR_IOBUS_DEVS = 1000;

interface Range {
  addr: number;
  len: number;
  dev: KvmIoDevice;
}

export class KvmIoBus {
  /** Sorted by addr, then registration order. */
  private ranges: Range[] = [];
  private starts: number[] = [];
  /** Zero-length registrations (address-only), in registration order. */
  private points: Range[] = [];

  get devCount(): number {
    return this.ranges.length + this.points.length;
  }

  /** kvm_io_bus_register_dev() */
  register(addr: number, len: number, dev: KvmIoDevice): void {
    if (!(len >= 0) || !(addr >= 0)) throw new KvmError(EINVAL, "kvm_io_bus_register_dev", `range 0x${addr.toString(16)}+${len}`);
    if (this.devCount >= NR_IOBUS_DEVS) throw new KvmError(ENOSPC, "kvm_io_bus_register_dev", "bus full");
    if (len === 0) {
      this.points = [...this.points, { addr, len, dev }];
      return;
    }
    const end = addr + len;
    for (const r of this.ranges) {
      if (r.addr < end && addr < r.addr + r.len && !(r.addr === addr && r.len === len)) {
        throw new KvmError(EEXIST, "kvm_io_bus_register_dev", `0x${addr.toString(16)}+${len} overlaps 0x${r.addr.toString(16)}+${r.len}`);
      }
    }
    let i = this.ranges.length;
    while (i > 0 && this.ranges[i - 1].addr > addr) i--;
    const next = this.ranges.slice();
    next.splice(i, 0, { addr, len, dev });
    this.ranges = next;
    this.starts = next.map((r) => r.addr);
  }

  /** kvm_io_bus_unregister_dev(): removes every range of `dev`. */
  unregister(dev: KvmIoDevice): void {
    const next = this.ranges.filter((r) => r.dev !== dev);
    const points = this.points.filter((r) => r.dev !== dev);
    if (next.length === this.ranges.length && points.length === this.points.length) throw new KvmError(ENOENT, "kvm_io_bus_unregister_dev", "device not registered");
    this.points = points;
    this.ranges = next;
    this.starts = next.map((r) => r.addr);
    dev.destructor?.();
  }

  /** Index of the first range that could contain `addr` (the last range starting at or below it, then back to its first twin). */
  private find(addr: number, len: number): number {
    const s = this.starts;
    let lo = 0;
    let hi = s.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid] <= addr) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (best < 0) return -1;
    const r = this.ranges[best];
    if (addr + len > r.addr + r.len) return -1;
    while (best > 0 && s[best - 1] === r.addr && this.ranges[best - 1].len === r.len) best--;
    return best;
  }

  /** kvm_io_bus_write(): true if a device took the write. */
  write(vcpu: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean {
    const points = this.points;
    for (let j = 0; j < points.length; j++) {
      if (points[j].addr === addr && points[j].dev.write(vcpu, addr, len, data)) return true;
    }
    let i = this.find(addr, len);
    if (i < 0) return false;
    const ranges = this.ranges;
    const a = ranges[i].addr;
    const l = ranges[i].len;
    for (; i < ranges.length && ranges[i].addr === a && ranges[i].len === l; i++) {
      if (ranges[i].dev.write(vcpu, addr, len, data)) return true;
    }
    return false;
  }

  /** kvm_io_bus_read(): true if a device produced the data. */
  read(vcpu: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean {
    const points = this.points;
    for (let j = 0; j < points.length; j++) {
      if (points[j].addr === addr && points[j].dev.read(vcpu, addr, len, data)) return true;
    }
    let i = this.find(addr, len);
    if (i < 0) return false;
    const ranges = this.ranges;
    const a = ranges[i].addr;
    const l = ranges[i].len;
    for (; i < ranges.length && ranges[i].addr === a && ranges[i].len === l; i++) {
      if (ranges[i].dev.read(vcpu, addr, len, data)) return true;
    }
    return false;
  }

  /** Drop every device (VM destruction), calling destructors. */
  destroy(): void {
    const old = [...this.ranges, ...this.points];
    this.ranges = [];
    this.starts = [];
    this.points = [];
    for (const r of old) r.dev.destructor?.();
  }
}
