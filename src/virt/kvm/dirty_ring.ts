/**
 * The per-vCPU dirty ring (virt/kvm/dirty_ring.c, api.rst KVM_CAP_DIRTY_LOG_RING): an array of
 * struct kvm_dirty_gfn {u32 flags; u32 slot; u64 offset} shared with userspace (mmap'ed at page
 * KVM_DIRTY_LOG_PAGE_OFFSET of the vCPU). KVM publishes an entry by setting DIRTY; userspace
 * harvests it and sets RESET; KVM_RESET_DIRTY_RINGS recycles RESET entries and write-protects
 * those pages again. When the ring is within the reserved margin of full, the vCPU exits with
 * KVM_EXIT_DIRTY_RING_FULL before entering the guest again.
 */
import { KVM_DIRTY_GFN_F_DIRTY, KVM_DIRTY_GFN_F_RESET } from "../../uapi/kvm.js";

/** KVM_DIRTY_RING_RSVD_ENTRIES: headroom kept for pages dirtied after the soft limit. */
export const KVM_DIRTY_RING_RSVD_ENTRIES = 64;
export const KVM_DIRTY_RING_MAX_ENTRIES = 65536;
export const KVM_DIRTY_GFN_SIZE = 16;

export class KvmDirtyRing {
  /** The shared entries (size * 16 bytes, on a SharedArrayBuffer). */
  readonly bytes: Uint8Array;
  private readonly dv: DataView;
  /** Number of entries (power of two). */
  readonly size: number;
  readonly softLimit: number;
  dirtyIndex = 0;
  resetIndex = 0;
  /** Entries dropped because the ring was completely full (the vCPU should have exited first). */
  overflows = 0;

  constructor(bytesSize: number) {
    this.size = bytesSize / KVM_DIRTY_GFN_SIZE;
    this.softLimit = this.size - KVM_DIRTY_RING_RSVD_ENTRIES;
    this.bytes = new Uint8Array(new SharedArrayBuffer(bytesSize));
    this.dv = new DataView(this.bytes.buffer);
  }

  get used(): number {
    return this.dirtyIndex - this.resetIndex;
  }

  /** kvm_dirty_ring_soft_full() */
  softFull(): boolean {
    return this.used >= this.softLimit;
  }

  /** kvm_dirty_ring_push(): returns false (and counts an overflow) when every entry is in use. */
  push(slot: number, offset: number): boolean {
    if (this.used >= this.size) {
      this.overflows++;
      return false;
    }
    const o = (this.dirtyIndex & (this.size - 1)) * KVM_DIRTY_GFN_SIZE;
    this.dv.setUint32(o + 4, slot, true);
    this.dv.setBigUint64(o + 8, BigInt(offset), true);
    // Publish last: userspace polls flags (smp_store_release in C).
    Atomics.store(new Uint32Array(this.bytes.buffer, o, 1), 0, KVM_DIRTY_GFN_F_DIRTY);
    this.dirtyIndex++;
    return true;
  }

  /**
   * kvm_dirty_ring_reset(): recycle harvested (RESET) entries from reset_index on, coalescing
   * runs in the same slot into 32-page masks for `reprotect(slot, offset, mask)`.
   * Returns the number of entries recycled.
   */
  reset(reprotect: (slot: number, offset: number, mask: number) => void): number {
    let count = 0;
    let curSlot = -1;
    let curOffset = 0;
    let mask = 0;
    while (this.resetIndex < this.dirtyIndex) {
      const o = (this.resetIndex & (this.size - 1)) * KVM_DIRTY_GFN_SIZE;
      const flags = this.dv.getUint32(o, true);
      if (!(flags & KVM_DIRTY_GFN_F_RESET)) break;
      const slot = this.dv.getUint32(o + 4, true);
      const offset = Number(this.dv.getBigUint64(o + 8, true));
      this.dv.setUint32(o, 0, true);
      this.resetIndex++;
      count++;
      if (mask !== 0 && slot === curSlot && offset >= curOffset && offset < curOffset + 32) {
        mask |= 1 << (offset - curOffset);
        continue;
      }
      if (mask !== 0 && slot === curSlot && offset < curOffset && offset + 32 > curOffset && (mask >>> (32 - (curOffset - offset))) === 0) {
        // Backwards within reach: shift the window down, as dirty_ring.c does.
        mask = (mask << (curOffset - offset)) | 1;
        curOffset = offset;
        continue;
      }
      if (mask !== 0) reprotect(curSlot, curOffset, mask >>> 0);
      curSlot = slot;
      curOffset = offset;
      mask = 1;
    }
    if (mask !== 0) reprotect(curSlot, curOffset, mask >>> 0);
    return count;
  }
}
