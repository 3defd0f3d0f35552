/**
 * A process address space (struct mm_struct): VMAs created by mmap(), demand-paged anonymous
 * memory backed by frames from the page allocator, a page table hva -> pfn, get_user_pages,
 * copy_{to,from}_user, and mmu notifiers (the hook KVM uses to drop its gpa -> hpa mappings when
 * the host mapping changes).
 *
 * Host virtual addresses (hva) are plain numbers in [0, TASK_SIZE). mmap() picks addresses
 * top-down from MMAP_BASE, deterministically. The page table is a map from 2 MiB region number to
 * a 512-entry leaf, with a one-entry cache of the last leaf, so a lookup never scans the VMAs.
 */
import { PAGE_SIZE } from "../hw/physmem.js";
import { EBADF, EEXIST, EFAULT, EINVAL, ENOMEM } from "../uapi/errno.js";
import {
  MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_HUGETLB, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED,
  MAP_SHARED_VALIDATE, MAP_TYPE, PROT_EXEC, PROT_READ, PROT_WRITE,
} from "../uapi/mman.js";
import { HostError } from "./errors.js";
import { HPAGE_PMD_ORDER, type PageAllocator } from "./page_alloc.js";

/** x86-64 user address space limit (47-bit, 4-level paging). */
export const TASK_SIZE = 0x7ffffffff000;
/** Top of the mmap area; mappings grow down from here. */
export const MMAP_BASE = 0x7f0000000000;
/** Lowest address mmap hands out without MAP_FIXED (vm.mmap_min_addr). */
export const MMAP_MIN_ADDR = 0x10000;
export const HPAGE_SIZE = 2 * 1024 * 1024;

const PTES_PER_LEAF = 512;
const LEAF_SPAN = PTES_PER_LEAF * PAGE_SIZE; // 2 MiB

// PTE flag bits (the subset of x86 PTE meaning this page table needs).
const PTE_PRESENT = 1;
const PTE_READ = 2;
const PTE_WRITE = 4;

/** struct vm_area_struct: [start, end) with protection and mmap flags. */
export interface Vma {
  start: number;
  end: number;
  prot: number;
  flags: number;
}

/** struct mmu_notifier_ops (the subset KVM registers). Ranges are [start, end) in hva. */
export interface MmuNotifier {
  invalidateRangeStart(start: number, end: number): void;
  invalidateRangeEnd(start: number, end: number): void;
  /** change_pte: the page at `hva` now maps `pfn` (page migration / KSM). */
  changePte?(hva: number, pfn: number): void;
  /** The address space is being torn down. */
  release?(): void;
}

class PteLeaf {
  readonly pfn = new Int32Array(PTES_PER_LEAF).fill(-1);
  readonly flags = new Uint8Array(PTES_PER_LEAF);
  present = 0;
}

const isPageAligned = (x: number): boolean => x % PAGE_SIZE === 0;
const alignUp = (x: number, a: number): number => Math.ceil(x / a) * a;
const alignDown = (x: number, a: number): number => Math.floor(x / a) * a;

function pteFlagsFor(prot: number): number {
  let f = PTE_PRESENT;
  if (prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) f |= PTE_READ;
  if (prot & PROT_WRITE) f |= PTE_WRITE;
  return f;
}

export class MmStruct {
  /** Sorted by start, non-overlapping. */
  private readonly vmas: Vma[] = [];
  private readonly leaves = new Map<number, PteLeaf>();
  private lastKey = -1;
  private lastLeaf: PteLeaf | null = null;
  private readonly notifiers: MmuNotifier[] = [];

  /** Resident pages (RSS, in frames). */
  rssPages = 0;
  /** Page faults served (demand paging). */
  faults = 0;

  constructor(readonly pageAlloc: PageAllocator) {}

  get vmaList(): readonly Readonly<Vma>[] {
    return this.vmas;
  }

  // ------------------------------------------------------------------ system calls

  /**
   * mmap(addr, len, prot, flags, fd, offset): anonymous memory only (fd must be -1 with
   * MAP_ANONYMOUS; file mappings fail with EBADF as for a bad descriptor). MAP_HUGETLB backs the
   * mapping with 2 MiB pages and aligns it to 2 MiB. Returns the hva or throws HostError.
   */
  mmap(addr: number, len: number, prot: number, flags: number, fd = -1, offset = 0): number {
    const type = flags & MAP_TYPE;
    if (type !== MAP_PRIVATE && type !== MAP_SHARED && type !== MAP_SHARED_VALIDATE) throw new HostError(EINVAL, "mmap", "MAP_PRIVATE or MAP_SHARED required");
    if (!(len > 0) || !Number.isInteger(len)) throw new HostError(EINVAL, "mmap", `length ${len}`);
    if (!(flags & MAP_ANONYMOUS)) throw new HostError(EBADF, "mmap", `fd ${fd}: only anonymous mappings exist here`);
    if (offset !== 0 && !isPageAligned(offset)) throw new HostError(EINVAL, "mmap", "offset not page aligned");
    const huge = (flags & MAP_HUGETLB) !== 0;
    const align = huge ? HPAGE_SIZE : PAGE_SIZE;
    len = alignUp(len, align);
    if (len > TASK_SIZE) throw new HostError(ENOMEM, "mmap", "length beyond the address space");

    let start: number;
    if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
      if (addr % align !== 0) throw new HostError(EINVAL, "mmap", `fixed address 0x${addr.toString(16)} not aligned`);
      if (addr < 0 || addr + len > TASK_SIZE) throw new HostError(ENOMEM, "mmap", "fixed range outside the address space");
      if (flags & MAP_FIXED_NOREPLACE && this.overlaps(addr, addr + len)) throw new HostError(EEXIST, "mmap", "MAP_FIXED_NOREPLACE over an existing mapping");
      if (this.overlaps(addr, addr + len)) this.doMunmap(addr, addr + len);
      start = addr;
    } else if (addr !== 0 && addr % align === 0 && addr >= MMAP_MIN_ADDR && addr + len <= TASK_SIZE && !this.overlaps(addr, addr + len)) {
      start = addr; // the hint is free: honour it, as get_unmapped_area does
    } else {
      start = this.getUnmappedArea(len, align);
    }
    this.insertVma({ start, end: start + len, prot, flags });
    if (flags & MAP_POPULATE) this.populate(start, start + len, prot);
    return start;
  }

  /** munmap(addr, len): EINVAL for an unaligned address or zero length; unmapped holes are fine. */
  munmap(addr: number, len: number): void {
    if (!isPageAligned(addr) || !(len > 0)) throw new HostError(EINVAL, "munmap", `addr 0x${addr.toString(16)} len ${len}`);
    const end = alignUp(addr + len, PAGE_SIZE);
    if (addr < 0 || end > TASK_SIZE) throw new HostError(EINVAL, "munmap", "range outside the address space");
    this.doMunmap(addr, end);
  }

  /** mprotect(addr, len, prot): EINVAL unaligned; ENOMEM if part of the range is unmapped. */
  mprotect(addr: number, len: number, prot: number): void {
    if (!isPageAligned(addr)) throw new HostError(EINVAL, "mprotect", "address not page aligned");
    if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) throw new HostError(EINVAL, "mprotect", `prot 0x${prot.toString(16)}`);
    const end = alignUp(addr + len, PAGE_SIZE);
    if (end === addr) return;
    // The whole range must be mapped.
    let cur = addr;
    for (const v of this.vmas) {
      if (v.end <= cur) continue;
      if (v.start > cur) break;
      cur = v.end;
      if (cur >= end) break;
    }
    if (cur < end) throw new HostError(ENOMEM, "mprotect", "range not fully mapped");
    this.notifyStart(addr, end);
    this.splitAt(addr);
    this.splitAt(end);
    for (const v of this.vmas) if (v.start >= addr && v.end <= end) v.prot = prot;
    const f = pteFlagsFor(prot);
    this.forEachPte(addr, end, (leaf, i) => {
      leaf.flags[i] = f;
    });
    this.notifyEnd(addr, end);
  }

  /** The VMA containing `hva`, or null (find_vma + range check). */
  findVma(hva: number): Vma | null {
    const v = this.vmas;
    let lo = 0;
    let hi = v.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (v[mid].end <= hva) lo = mid + 1;
      else if (v[mid].start > hva) hi = mid - 1;
      else return v[mid];
    }
    return null;
  }

  /** Tear the address space down (exit_mmap): notifiers' release, then every page is put. */
  destroy(): void {
    for (const n of this.notifiers.slice()) n.release?.();
    if (this.vmas.length) this.doMunmap(0, TASK_SIZE);
    this.notifiers.length = 0;
  }

  // ------------------------------------------------------------------ mmu notifiers

  /** mmu_notifier_register(): returns the unregister function. */
  registerMmuNotifier(n: MmuNotifier): () => void {
    this.notifiers.push(n);
    return () => {
      const i = this.notifiers.indexOf(n);
      if (i >= 0) this.notifiers.splice(i, 1);
    };
  }

  // ------------------------------------------------------------------ get_user_pages

  /**
   * get_user_pages role for one page: the pfn backing `hva`, faulting it in if needed, or a
   * negative errno: -EFAULT when nothing is mapped there or the access is not permitted (write to
   * a read-only mapping, any access to PROT_NONE), -ENOMEM when no frame is left.
   * No reference is taken: the mapping holds one until munmap, and KVM learns of that through
   * the mmu notifier (the "no struct page refcount" discipline of KVM's MMU).
   */
  getUserPage(hva: number, write: boolean): number {
    const key = Math.floor(hva / LEAF_SPAN);
    const leaf: PteLeaf | null | undefined = key === this.lastKey ? this.lastLeaf : this.leaves.get(key);
    const i = Math.floor(hva / PAGE_SIZE) & (PTES_PER_LEAF - 1);
    if (leaf) {
      this.lastKey = key;
      this.lastLeaf = leaf;
      const f = leaf.flags[i];
      if (f !== 0) {
        if (write ? (f & PTE_WRITE) !== 0 : (f & PTE_READ) !== 0) return leaf.pfn[i];
        return -EFAULT;
      }
    }
    return this.handleMmFault(hva, write);
  }

  /** True if `hva` is inside a mapping that permits the access (access_ok + vma check, no fault). */
  accessOk(hva: number, len: number, write: boolean): boolean {
    let cur = hva;
    const end = hva + len;
    while (cur < end) {
      const v = this.findVma(cur);
      if (!v || !(v.prot & (write ? PROT_WRITE : PROT_READ))) return false;
      cur = v.end;
    }
    return true;
  }

  /** handle_mm_fault(): allocate and map the page (or the whole huge page) for `hva`. */
  private handleMmFault(hva: number, write: boolean): number {
    if (!(hva >= 0 && hva < TASK_SIZE)) return -EFAULT;
    const vma = this.findVma(hva);
    if (!vma) return -EFAULT;
    if (!(vma.prot & (write ? PROT_WRITE : PROT_READ | PROT_EXEC))) return -EFAULT;
    this.faults++;
    const f = pteFlagsFor(vma.prot);
    if (vma.flags & MAP_HUGETLB) {
      const base = alignDown(hva, HPAGE_SIZE);
      const head = this.pageAlloc.allocPages(HPAGE_PMD_ORDER);
      if (head < 0) return -ENOMEM;
      const leaf = this.leafFor(base, true)!;
      for (let j = 0; j < PTES_PER_LEAF; j++) {
        // One reference per mapped PTE, so partial unmaps put exactly what they drop.
        if (j) this.pageAlloc.getPage(head);
        leaf.pfn[j] = head + j;
        leaf.flags[j] = f;
      }
      leaf.present += PTES_PER_LEAF;
      this.rssPages += PTES_PER_LEAF;
      return head + (Math.floor(hva / PAGE_SIZE) & (PTES_PER_LEAF - 1));
    }
    const pfn = this.pageAlloc.allocPage();
    if (pfn < 0) return -ENOMEM;
    const leaf = this.leafFor(hva, true)!;
    const i = Math.floor(hva / PAGE_SIZE) & (PTES_PER_LEAF - 1);
    leaf.pfn[i] = pfn;
    leaf.flags[i] = f;
    leaf.present++;
    this.rssPages++;
    return pfn;
  }

  // ------------------------------------------------------------------ user copies

  /**
   * Copy between a kernel buffer and user memory, faulting pages in (the copy_{to,from}_user
   * role). Returns the number of bytes NOT copied (0 on success), like the kernel functions.
   */
  accessUser(hva: number, buf: Uint8Array, write: boolean): number {
    const phys = this.pageAlloc.physmem;
    let done = 0;
    const n = buf.length;
    while (done < n) {
      const a = hva + done;
      const pfn = this.getUserPage(a, write);
      if (pfn < 0) return n - done;
      const inPage = a % PAGE_SIZE;
      const take = Math.min(n - done, PAGE_SIZE - inPage);
      const chunk = phys.chunk(pfn);
      const off = phys.frameOffset(pfn) + inPage;
      if (write) {
        if (phys.codeFrames[pfn]) phys.codeWritten(pfn);
        chunk.set(buf.subarray(done, done + take), off);
      }
      else buf.set(chunk.subarray(off, off + take), done);
      done += take;
    }
    return 0;
  }

  /** copy_to_user for the VMM: throws HostError(EFAULT) if any byte can't be written. */
  copyToUser(hva: number, bytes: Uint8Array): void {
    if (this.accessUser(hva, bytes, true) !== 0) throw new HostError(EFAULT, "copy_to_user", `0x${hva.toString(16)}+${bytes.length}`);
  }

  /** copy_from_user for the VMM: a new buffer of `len` bytes, or fills `into`. Throws HostError(EFAULT). */
  copyFromUser(hva: number, lenOrInto: number | Uint8Array): Uint8Array {
    const buf = typeof lenOrInto === "number" ? new Uint8Array(lenOrInto) : lenOrInto;
    if (this.accessUser(hva, buf, false) !== 0) throw new HostError(EFAULT, "copy_from_user", `0x${hva.toString(16)}+${buf.length}`);
    return buf;
  }

  // Scalar accessors, the way a C VMM dereferences its own pointers (little-endian).
  private scratch = new Uint8Array(8);
  private scratchView = new DataView(this.scratch.buffer);

  private bytePtr(hva: number, write: boolean): number {
    const pfn = this.getUserPage(hva, write);
    if (pfn < 0) throw new HostError(pfn === -EFAULT ? EFAULT : -pfn, write ? "store" : "load", `address 0x${hva.toString(16)}`);
    return pfn;
  }

  readU8(hva: number): number {
    const pfn = this.bytePtr(hva, false);
    const phys = this.pageAlloc.physmem;
    return phys.chunk(pfn)[phys.frameOffset(pfn) + (hva % PAGE_SIZE)];
  }
  writeU8(hva: number, v: number): void {
    const pfn = this.bytePtr(hva, true);
    const phys = this.pageAlloc.physmem;
    if (phys.codeFrames[pfn]) phys.codeWritten(pfn);
    phys.chunk(pfn)[phys.frameOffset(pfn) + (hva % PAGE_SIZE)] = v;
  }
  private load(hva: number, n: number): DataView {
    const b = this.scratch.subarray(0, n);
    if (this.accessUser(hva, b, false) !== 0) throw new HostError(EFAULT, "load", `address 0x${hva.toString(16)}`);
    return this.scratchView;
  }
  private store(hva: number, n: number): void {
    if (this.accessUser(hva, this.scratch.subarray(0, n), true) !== 0) throw new HostError(EFAULT, "store", `address 0x${hva.toString(16)}`);
  }
  readU16(hva: number): number { return this.load(hva, 2).getUint16(0, true); }
  readU32(hva: number): number { return this.load(hva, 4).getUint32(0, true); }
  readU64(hva: number): bigint { return this.load(hva, 8).getBigUint64(0, true); }
  writeU16(hva: number, v: number): void { this.scratchView.setUint16(0, v, true); this.store(hva, 2); }
  writeU32(hva: number, v: number): void { this.scratchView.setUint32(0, v >>> 0, true); this.store(hva, 4); }
  writeU64(hva: number, v: bigint | number): void {
    this.scratchView.setBigUint64(0, BigInt.asUintN(64, BigInt(v)), true);
    this.store(hva, 8);
  }

  // ------------------------------------------------------------------ internals

  private overlaps(start: number, end: number): boolean {
    for (const v of this.vmas) if (v.start < end && v.end > start) return true;
    return false;
  }

  /** Top-down search for a free, aligned range of `len` bytes below MMAP_BASE. */
  private getUnmappedArea(len: number, align: number): number {
    let end = MMAP_BASE;
    for (let i = this.vmas.length - 1; i >= 0; i--) {
      const v = this.vmas[i];
      if (v.start >= end) continue;
      const cand = alignDown(end - len, align);
      if (cand >= v.end) return cand;
      end = Math.min(end, v.start);
    }
    const cand = alignDown(end - len, align);
    if (cand >= MMAP_MIN_ADDR) return cand;
    throw new HostError(ENOMEM, "mmap", "no free range of that size");
  }

  private insertVma(vma: Vma): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i].start < vma.start) i++;
    this.vmas.splice(i, 0, vma);
  }

  /** Split the VMA containing `addr` so that a VMA boundary falls at `addr` (split_vma). */
  private splitAt(addr: number): void {
    const i = this.vmas.findIndex((v) => v.start < addr && v.end > addr);
    if (i < 0) return;
    const v = this.vmas[i];
    if (v.flags & MAP_HUGETLB && addr % HPAGE_SIZE !== 0) throw new HostError(EINVAL, "split_vma", "hugetlb mapping split off a 2 MiB boundary");
    this.vmas.splice(i + 1, 0, { start: addr, end: v.end, prot: v.prot, flags: v.flags });
    v.end = addr;
  }

  private doMunmap(start: number, end: number): void {
    this.notifyStart(start, end);
    this.splitAt(start);
    this.splitAt(end);
    for (let i = this.vmas.length - 1; i >= 0; i--) {
      const v = this.vmas[i];
      if (v.start >= start && v.end <= end) this.vmas.splice(i, 1);
    }
    this.forEachPte(start, end, (leaf, i) => {
      this.pageAlloc.putPage(leaf.pfn[i]);
      leaf.pfn[i] = -1;
      leaf.flags[i] = 0;
      leaf.present--;
      this.rssPages--;
    });
    for (const [k, leaf] of this.leaves) {
      if (leaf.present === 0) this.leaves.delete(k);
    }
    this.lastKey = -1;
    this.lastLeaf = null;
    this.notifyEnd(start, end);
  }

  /** Visit present PTEs in [start, end), leaf by leaf, skipping absent leaves. */
  private forEachPte(start: number, end: number, fn: (leaf: PteLeaf, i: number) => void): void {
    if (this.leaves.size === 0) return;
    const firstKey = Math.floor(start / LEAF_SPAN);
    const lastKey = Math.floor((end - 1) / LEAF_SPAN);
    const visit = (key: number, leaf: PteLeaf): void => {
      const base = key * LEAF_SPAN;
      const lo = Math.max(0, (start - base) / PAGE_SIZE);
      const hi = Math.min(PTES_PER_LEAF, (end - base) / PAGE_SIZE);
      for (let i = lo; i < hi; i++) if (leaf.flags[i] !== 0) fn(leaf, i);
    };
    if (lastKey - firstKey + 1 > this.leaves.size) {
      for (const [key, leaf] of [...this.leaves]) if (key >= firstKey && key <= lastKey) visit(key, leaf);
    } else {
      for (let key = firstKey; key <= lastKey; key++) {
        const leaf = this.leaves.get(key);
        if (leaf) visit(key, leaf);
      }
    }
  }

  private leafFor(hva: number, create: boolean): PteLeaf | null {
    const key = Math.floor(hva / LEAF_SPAN);
    let leaf = this.leaves.get(key) ?? null;
    if (!leaf && create) {
      leaf = new PteLeaf();
      this.leaves.set(key, leaf);
    }
    return leaf;
  }

  private populate(start: number, end: number, prot: number): void {
    const write = (prot & PROT_WRITE) !== 0;
    for (let a = start; a < end; a += PAGE_SIZE) {
      const r = this.getUserPage(a, write);
      if (r < 0) throw new HostError(-r, "mmap", "MAP_POPULATE could not fault the range in");
    }
  }

  private notifyStart(start: number, end: number): void {
    for (const n of this.notifiers) n.invalidateRangeStart(start, end);
  }

  private notifyEnd(start: number, end: number): void {
    for (const n of this.notifiers) n.invalidateRangeEnd(start, end);
  }
}
