/**
 * The page allocator (mm/page_alloc.c's role) over host physical memory: a binary buddy
 * allocator with orders 0..MAX_ORDER (order 9 = one 2 MiB chunk, the unit a huge page needs),
 * per-frame reference counts (get_page/put_page; a multi-page block is a compound page whose
 * count lives in its head frame) and pages zeroed on allocation (__GFP_ZERO).
 *
 * Chunks of PhysMem are populated only when the free lists run dry, lowest chunk first, so the
 * frames handed out are dense: touching 1 MiB costs one 2 MiB chunk, not the machine's size.
 */
import { FRAMES_PER_CHUNK, FRAMES_PER_CHUNK_SHIFT, PhysMem } from "../hw/physmem.js";

/** Largest block: a whole chunk (2 MiB). */
export const MAX_ORDER = FRAMES_PER_CHUNK_SHIFT;
/** Order of a 2 MiB huge page. */
export const HPAGE_PMD_ORDER = 9;

// Per-frame state byte. A block's head carries its order in the low nibble; tails carry 0.
const FREE_HEAD = 0x40;
const ALLOC_HEAD = 0x20;
const ORDER_MASK = 0x0f;

export class PageAllocator {
  /** Per chunk: state byte of each frame (undefined while the chunk is unpopulated). */
  private readonly state: (Uint8Array | undefined)[];
  /** Per chunk: reference count of each head frame. */
  private readonly refs: (Uint32Array | undefined)[];
  /** free_area[order]: heads of free blocks. */
  private readonly freeArea: Set<number>[] = [];
  private nextChunk = 0;

  /** Frames currently handed out (sum of 2^order over allocated blocks). */
  allocatedFrames = 0;
  /** Frames sitting in the free lists (populated but unused). */
  freeFrames = 0;
  /** Total allocations and frees, for statistics. */
  allocCount = 0;
  freeCount = 0;

  constructor(readonly physmem: PhysMem) {
    const nChunks = physmem.chunks8.length;
    this.state = new Array<Uint8Array | undefined>(nChunks).fill(undefined);
    this.refs = new Array<Uint32Array | undefined>(nChunks).fill(undefined);
    for (let o = 0; o <= MAX_ORDER; o++) this.freeArea.push(new Set());
  }

  /** Frames the machine has in total. */
  get totalFrames(): number {
    return this.physmem.nrFrames;
  }

  /** alloc_page(GFP_KERNEL | __GFP_ZERO): one zeroed frame, or -1 when memory is exhausted. */
  allocPage(): number {
    return this.allocPages(0);
  }

  /**
   * alloc_pages(order): 2^order contiguous zeroed frames aligned to their size, reference
   * count 1 on the head. Returns the head pfn, or -1 when no block is left (ENOMEM).
   */
  allocPages(order: number): number {
    if (!(order >= 0 && order <= MAX_ORDER && Number.isInteger(order))) throw new RangeError(`page order ${order} outside [0, ${MAX_ORDER}]`);
    let k = order;
    while (k <= MAX_ORDER && this.freeArea[k].size === 0) k++;
    if (k > MAX_ORDER) {
      if (!this.growOneChunk()) return -1;
      k = MAX_ORDER;
    }
    const list = this.freeArea[k];
    const head = list.values().next().value as number;
    list.delete(head);
    // Split down to the requested order (expand()): the upper halves go back to the free lists.
    while (k > order) {
      k--;
      const buddy = head + (1 << k);
      this.setState(buddy, FREE_HEAD | k);
      this.freeArea[k].add(buddy);
    }
    this.setState(head, ALLOC_HEAD | order);
    this.refs[head >>> FRAMES_PER_CHUNK_SHIFT]![head & (FRAMES_PER_CHUNK - 1)] = 1;
    const n = 1 << order;
    this.freeFrames -= n;
    this.allocatedFrames += n;
    this.allocCount++;
    this.zero(head, n);
    return head;
  }

  /** get_page(): take a reference on the page (on its compound head). */
  getPage(pfn: number): void {
    const head = this.compoundHead(pfn);
    this.refs[head >>> FRAMES_PER_CHUNK_SHIFT]![head & (FRAMES_PER_CHUNK - 1)]++;
  }

  /** put_page(): drop a reference; the block returns to the free lists when the count reaches 0. */
  putPage(pfn: number): void {
    const head = this.compoundHead(pfn);
    const r = this.refs[head >>> FRAMES_PER_CHUNK_SHIFT]!;
    const i = head & (FRAMES_PER_CHUNK - 1);
    if (r[i] === 0) throw new Error(`put_page on free pfn 0x${pfn.toString(16)}`);
    if (--r[i] === 0) this.freeBlock(head);
  }

  /** page_count() */
  pageCount(pfn: number): number {
    const head = this.compoundHead(pfn);
    return this.refs[head >>> FRAMES_PER_CHUNK_SHIFT]![head & (FRAMES_PER_CHUNK - 1)];
  }

  /** Order of the allocated block containing `pfn` (compound_order). */
  compoundOrder(pfn: number): number {
    return this.stateOf(this.compoundHead(pfn)) & ORDER_MASK;
  }

  /** True if `pfn` lies inside an allocated block. */
  isAllocated(pfn: number): boolean {
    return this.findHead(pfn) >= 0;
  }

  /** compound_head(): the head frame of the allocated block holding `pfn`. Throws on a free frame (a host bug). */
  compoundHead(pfn: number): number {
    const h = this.findHead(pfn);
    if (h < 0) throw new Error(`pfn 0x${pfn.toString(16)} is not an allocated page`);
    return h;
  }

  private findHead(pfn: number): number {
    if (!(pfn >= 0 && pfn < this.physmem.nrFrames)) return -1;
    const st = this.state[pfn >>> FRAMES_PER_CHUNK_SHIFT];
    if (st === undefined) return -1;
    const base = pfn & ~(FRAMES_PER_CHUNK - 1);
    for (let k = 0; k <= MAX_ORDER; k++) {
      const h = pfn & ~((1 << k) - 1);
      const s = st[h - base];
      if (s & FREE_HEAD && (s & ORDER_MASK) >= k) return -1;
      if (s & ALLOC_HEAD && (s & ORDER_MASK) >= k) return h;
    }
    return -1;
  }

  private freeBlock(head: number): void {
    let order = this.stateOf(head) & ORDER_MASK;
    const n = 1 << order;
    this.setState(head, 0);
    this.allocatedFrames -= n;
    this.freeFrames += n;
    this.freeCount++;
    // Merge with free buddies (__free_one_page).
    while (order < MAX_ORDER) {
      const buddy = head ^ (1 << order);
      if (this.stateOf(buddy) !== (FREE_HEAD | order)) break;
      this.freeArea[order].delete(buddy);
      this.setState(buddy, 0);
      head = Math.min(head, buddy);
      order++;
    }
    this.setState(head, FREE_HEAD | order);
    this.freeArea[order].add(head);
  }

  /** Populate the next chunk of physical memory and give it to the free lists as one max-order block. */
  private growOneChunk(): boolean {
    const c = this.nextChunk;
    if (c >= this.state.length) return false;
    this.nextChunk++;
    const head = c << FRAMES_PER_CHUNK_SHIFT;
    this.physmem.populate(head);
    this.state[c] = new Uint8Array(FRAMES_PER_CHUNK);
    this.refs[c] = new Uint32Array(FRAMES_PER_CHUNK);
    this.setState(head, FREE_HEAD | MAX_ORDER);
    this.freeArea[MAX_ORDER].add(head);
    this.freeFrames += FRAMES_PER_CHUNK;
    return true;
  }

  private stateOf(pfn: number): number {
    return this.state[pfn >>> FRAMES_PER_CHUNK_SHIFT]![pfn & (FRAMES_PER_CHUNK - 1)];
  }

  private setState(pfn: number, v: number): void {
    this.state[pfn >>> FRAMES_PER_CHUNK_SHIFT]![pfn & (FRAMES_PER_CHUNK - 1)] = v;
  }

  private zero(head: number, n: number): void {
    for (let i = 0; i < n; i++) if (this.physmem.codeFrames[head + i]) this.physmem.codeWritten(head + i);
    const off = this.physmem.frameOffset(head);
    this.physmem.chunk(head).fill(0, off, off + n * 4096);
  }
}
