/**
 * One address space's memslots (struct kvm_memslots): slots sorted by base gfn for the
 * gfn -> slot lookup (binary search, behind a one-entry last-hit cache, the role of
 * kvm_memslots.last_used_slot), and an id -> slot map (id_to_memslot).
 */
import type { KvmMemorySlot } from "./kvm_host.js";

export class KvmMemslots {
  /** Sorted by baseGfn; never overlapping. Replaced (not mutated) on every change. */
  private sorted: KvmMemorySlot[] = [];
  private readonly byId = new Map<number, KvmMemorySlot>();
  private last: KvmMemorySlot | null = null;
  /** Bumped on every change (kvm_memslots.generation), for caches keyed on the memslot layout. */
  generation = 0;
  /** Sum of npages over the slots (kvm->nr_memslot_pages, per address space here). */
  nrPages = 0;

  constructor(readonly asId: number) {}

  get size(): number {
    return this.sorted.length;
  }

  /** Slots in gfn order. */
  get slots(): readonly KvmMemorySlot[] {
    return this.sorted;
  }

  /** id_to_memslot(): `id` is the u16 slot number. */
  byNumber(id: number): KvmMemorySlot | null {
    return this.byId.get(id) ?? null;
  }

  /** search_memslots() with the last-used cache. */
  lookup(gfn: number): KvmMemorySlot | null {
    const l = this.last;
    if (l !== null && gfn >= l.baseGfn && gfn < l.baseGfn + l.npages) return l;
    const s = this.sorted;
    let lo = 0;
    let hi = s.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const m = s[mid];
      if (gfn < m.baseGfn) hi = mid - 1;
      else if (gfn >= m.baseGfn + m.npages) lo = mid + 1;
      else {
        this.last = m;
        return m;
      }
    }
    return null;
  }

  /** First slot overlapping [baseGfn, baseGfn + npages) other than the one numbered `exceptId`. */
  findOverlap(baseGfn: number, npages: number, exceptId: number): KvmMemorySlot | null {
    const end = baseGfn + npages;
    for (const s of this.sorted) {
      if (s.id === exceptId) continue;
      if (s.baseGfn < end && baseGfn < s.baseGfn + s.npages) return s;
    }
    return null;
  }

  /** kvm_replace_memslot(): remove `old` (if any), insert `next` (if any). */
  replace(old: KvmMemorySlot | null, next: KvmMemorySlot | null): void {
    let arr = this.sorted;
    if (old) {
      arr = arr.filter((s) => s !== old);
      this.byId.delete(old.id & 0xffff);
      this.nrPages -= old.npages;
    }
    if (next) {
      arr = arr.slice();
      let i = arr.length;
      while (i > 0 && arr[i - 1].baseGfn > next.baseGfn) i--;
      arr.splice(i, 0, next);
      this.byId.set(next.id & 0xffff, next);
      this.nrPages += next.npages;
    }
    this.sorted = arr;
    this.last = null;
    this.generation++;
  }
}
