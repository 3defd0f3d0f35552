/**
 * Coalesced MMIO/PIO (virt/kvm/coalesced_mmio.c, api.rst KVM_REGISTER_COALESCED_MMIO): writes
 * to a registered zone do not exit to userspace; they are appended to a ring shared with the
 * VMM (one ring per VM, seen at page KVM_COALESCED_MMIO_PAGE_OFFSET of every vCPU), which
 * the VMM drains at its next exit. Reads from a zone still exit. When the ring is full the
 * write exits to userspace as usual.
 *
 * Ring page: struct kvm_coalesced_mmio_ring { u32 first, last; entries[] } with entries
 * struct kvm_coalesced_mmio { u64 phys_addr; u32 len; u32 pio; u8 data[8]; } (24 bytes).
 * KVM appends at `last`, userspace consumes from `first`.
 */
import { PAGE_SIZE } from "../../hw/physmem.js";
import { EINVAL } from "../../uapi/errno.js";
import { KvmError } from "./kvm_error.js";
import type { KvmIoDevice, KvmVcpuLike } from "./kvm_host.js";

export const KVM_COALESCED_MMIO_ENTRY_SIZE = 24;
export const KVM_COALESCED_MMIO_RING_HEADER = 8;
/** Entries per ring page: (PAGE_SIZE - sizeof(ring)) / sizeof(entry) = 170. */
export const KVM_COALESCED_MMIO_MAX = Math.floor((PAGE_SIZE - KVM_COALESCED_MMIO_RING_HEADER) / KVM_COALESCED_MMIO_ENTRY_SIZE);

export interface CoalescedZone {
  addr: number;
  size: number;
  /** 0 MMIO, 1 PIO */
  pio: number;
}

/**
 * The ring. Linux has one page per VM that appears at page 2 of every vCPU's mapping; here each
 * vCPU's run area is its own buffer, so the ring is kept in `page` and mirrored into every
 * vCPU's page 2: entries and `last` are written to every copy, and `first` (which the VMM
 * advances in whichever mapping it drains) is reconciled by syncFirst() before each append and
 * on every KVM_RUN entry, taking the copy that consumed the most.
 */
export class KvmCoalescedMmioRing {
  readonly page = new Uint8Array(new SharedArrayBuffer(PAGE_SIZE));
  private readonly copies: Uint8Array[] = [this.page];
  private readonly u32s: Uint32Array[] = [new Uint32Array(this.page.buffer, this.page.byteOffset, 2)];

  /** Mirror the ring into a vCPU's page KVM_COALESCED_MMIO_PAGE_OFFSET. */
  addMirror(page: Uint8Array): void {
    page.set(this.page);
    this.copies.push(page);
    this.u32s.push(new Uint32Array(page.buffer, page.byteOffset, 2));
  }

  get first(): number {
    return Atomics.load(this.u32s[0], 0);
  }
  get last(): number {
    return Atomics.load(this.u32s[0], 1);
  }

  /** Reconcile `first` across the copies: the one with the fewest pending entries wins. */
  syncFirst(): void {
    const last = this.last;
    let best = this.first;
    let bestPending = (((last - best) % KVM_COALESCED_MMIO_MAX) + KVM_COALESCED_MMIO_MAX) % KVM_COALESCED_MMIO_MAX;
    for (const u of this.u32s) {
      const f = Atomics.load(u, 0);
      if (f >= KVM_COALESCED_MMIO_MAX) continue;
      const pending = (((last - f) % KVM_COALESCED_MMIO_MAX) + KVM_COALESCED_MMIO_MAX) % KVM_COALESCED_MMIO_MAX;
      if (pending < bestPending) {
        best = f;
        bestPending = pending;
      }
    }
    for (const u of this.u32s) Atomics.store(u, 0, best);
  }

  /** Append one write; false when the ring is full (coalesced_mmio_has_room). */
  push(addr: number, len: number, data: Uint8Array, pio: number): boolean {
    this.syncFirst();
    const insert = this.last;
    if (insert >= KVM_COALESCED_MMIO_MAX) return false;
    // Free slots between last and first, keeping one empty so that full and empty differ.
    const avail = (((this.first - insert - 1) % KVM_COALESCED_MMIO_MAX) + KVM_COALESCED_MMIO_MAX) % KVM_COALESCED_MMIO_MAX;
    if (avail === 0) return false;
    const o = KVM_COALESCED_MMIO_RING_HEADER + insert * KVM_COALESCED_MMIO_ENTRY_SIZE;
    const p = this.page;
    const dv = new DataView(p.buffer, p.byteOffset, PAGE_SIZE);
    dv.setBigUint64(o, BigInt(addr), true);
    dv.setUint32(o + 8, len, true);
    dv.setUint32(o + 12, pio, true);
    p.fill(0, o + 16, o + 24);
    p.set(data.subarray(0, Math.min(len, 8)), o + 16);
    const entry = p.subarray(o, o + KVM_COALESCED_MMIO_ENTRY_SIZE);
    const next = (insert + 1) % KVM_COALESCED_MMIO_MAX;
    for (let i = 0; i < this.copies.length; i++) {
      if (i > 0) this.copies[i].set(entry, o);
      // Publish after the entry is written (smp_wmb in C).
      Atomics.store(this.u32s[i], 1, next);
    }
    return true;
  }
}

function inRange(zone: CoalescedZone, addr: number, len: number): boolean {
  return len >= 0 && addr >= zone.addr && addr + len <= zone.addr + zone.size;
}

/** struct kvm_coalesced_mmio_dev: an io-bus device over one zone. */
export class CoalescedMmioDev implements KvmIoDevice {
  constructor(
    readonly zone: CoalescedZone,
    private readonly ring: KvmCoalescedMmioRing,
  ) {}

  read(): boolean {
    return false;
  }

  write(_vcpu: KvmVcpuLike | null, addr: number, len: number, data: Uint8Array): boolean {
    if (!inRange(this.zone, addr, len)) return false;
    return this.ring.push(addr, len, data, this.zone.pio);
  }

  /** True if [addr, addr + size) lies within this zone (for unregistration). */
  covers(addr: number, size: number): boolean {
    return inRange(this.zone, addr, size);
  }
}

export function checkZone(zone: CoalescedZone, name: string): void {
  if (zone.pio !== 0 && zone.pio !== 1) throw new KvmError(EINVAL, name, `pio ${zone.pio}`);
}
