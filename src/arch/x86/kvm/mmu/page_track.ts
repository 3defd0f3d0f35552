/**
 * arch/x86/kvm/mmu/page_track.c: write tracking of guest pages (KVM_PAGE_TRACK_WRITE). Each gfn
 * carries a count of the users that want to see every write to it; the shadow MMU counts one per
 * shadow page that shadows the guest page table in that gfn. While the count is non-zero no
 * shadow leaf maps the gfn writable, so a guest store to it faults into KVM, is emulated, and
 * the MMU learns what was written (kvm_page_track_write -> kvm_mmu_track_write).
 *
 * KVM keeps the counts in per-memslot arrays; a map serves here because a memslot change zaps
 * every shadow page (and with them every count) anyway.
 */

export class KvmPageTrack {
  private readonly count = new Map<number, number>();

  /** kvm_slot_page_track_add_page(KVM_PAGE_TRACK_WRITE). Returns true when the gfn was not tracked before (its writable mappings must go). */
  addPage(gfn: number): boolean {
    const n = this.count.get(gfn) ?? 0;
    this.count.set(gfn, n + 1);
    return n === 0;
  }

  /** kvm_slot_page_track_remove_page(KVM_PAGE_TRACK_WRITE) */
  removePage(gfn: number): void {
    const n = this.count.get(gfn);
    if (n === undefined) throw new Error(`kvm: page_track count underflow for gfn 0x${gfn.toString(16)}`);
    if (n <= 1) this.count.delete(gfn);
    else this.count.set(gfn, n - 1);
  }

  /** kvm_gfn_is_write_tracked() */
  isTracked(gfn: number): boolean {
    return this.count.has(gfn);
  }

  /** Number of tracked gfns. */
  get size(): number {
    return this.count.size;
  }
}
