/**
 * Host physical memory: the machine's DRAM.
 *
 * Page frames are 4 KiB. They live in chunks of CHUNK_SIZE bytes, each one SharedArrayBuffer
 * (so vCPU worker threads can share guest RAM). A chunk is created only when a frame inside it
 * is first handed out by the page allocator (`host/page_alloc.ts`), so physical memory costs
 * what has been allocated, not what is addressable.
 *
 * Addresses here are host physical addresses (hpa) as plain numbers (< 2^52, exact in a double)
 * and page frame numbers (pfn = hpa / 4096). Hot paths (the CPU's TLB, the EPT walker) do not
 * call the slow accessors below: they cache `chunk(pfn)` and `frameOffset(pfn)` and index the
 * typed arrays directly.
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
export const PAGE_MASK = PAGE_SIZE - 1;

/** 2 MiB chunks: one chunk can back one 2 MiB huge page. */
export const CHUNK_SHIFT = 21;
export const CHUNK_SIZE = 1 << CHUNK_SHIFT;
export const FRAMES_PER_CHUNK_SHIFT = CHUNK_SHIFT - PAGE_SHIFT;
export const FRAMES_PER_CHUNK = 1 << FRAMES_PER_CHUNK_SHIFT;

/** A processor with a decoded-instruction cache (X86Cpu), kept coherent through PhysMem. */
export interface CodeWatcher {
  /** Drop the instructions decoded from frame `pfn`. */
  invalidateCode(pfn: number): void;
  /** Remove write permission for frame `pfn` from the TLB. */
  dropCodeWrites(pfn: number): void;
}

export class PhysMem {
  /** Number of page frames the machine has (its installed DRAM). */
  readonly nrFrames: number;
  /** Byte view of each chunk; `undefined` until the chunk is populated. */
  readonly chunks8: (Uint8Array | undefined)[];
  /** 32-bit view of each chunk (little-endian host assumed, as on every JS engine in use). */
  readonly chunks32: (Int32Array | undefined)[];
  /** Bytes of chunk memory created so far. */
  populatedBytes = 0;
  /**
   * Frames some processor holds decoded instructions of. Instruction fetch is coherent with
   * every store on x86 (SDM Vol. 3A 11.6, self- and cross-modifying code), so a store to such a
   * frame from anywhere (any processor, DMA, the host) must reach codeWritten().
   */
  readonly codeFrames: Uint8Array;
  private readonly codeWatchers: CodeWatcher[] = [];

  constructor(bytes: number) {
    if (bytes <= 0 || bytes % CHUNK_SIZE !== 0) throw new RangeError(`physical memory size must be a multiple of ${CHUNK_SIZE}`);
    this.nrFrames = bytes / PAGE_SIZE;
    const n = bytes / CHUNK_SIZE;
    this.chunks8 = new Array<Uint8Array | undefined>(n).fill(undefined);
    this.chunks32 = new Array<Int32Array | undefined>(n).fill(undefined);
    this.codeFrames = new Uint8Array(this.nrFrames);
  }

  /**
   * `w` now caches code of frame `pfn`: every processor stops writing the frame through its TLB,
   * so the next store to it anywhere takes a slow path that calls codeWritten().
   */
  markCode(pfn: number, w: CodeWatcher): void {
    if (!this.codeWatchers.includes(w)) this.codeWatchers.push(w);
    if (this.codeFrames[pfn]) return;
    this.codeFrames[pfn] = 1;
    for (const x of this.codeWatchers) x.dropCodeWrites(pfn);
  }

  /** Frame `pfn` was written: every processor drops the code it decoded from it. */
  codeWritten(pfn: number): void {
    if (!this.codeFrames[pfn]) return;
    this.codeFrames[pfn] = 0;
    for (const x of this.codeWatchers) x.invalidateCode(pfn);
  }

  /** A processor going away (a freed vCPU) stops taking part. */
  removeCodeWatcher(w: CodeWatcher): void {
    const i = this.codeWatchers.indexOf(w);
    if (i >= 0) this.codeWatchers.splice(i, 1);
  }

  /** Make the chunk holding `pfn` exist (called by the page allocator when it hands the frame out). */
  populate(pfn: number): void {
    const c = pfn >>> FRAMES_PER_CHUNK_SHIFT;
    if (this.chunks8[c] !== undefined) return;
    if (pfn >= this.nrFrames) throw new RangeError(`pfn 0x${pfn.toString(16)} beyond physical memory`);
    const sab = new SharedArrayBuffer(CHUNK_SIZE);
    this.chunks8[c] = new Uint8Array(sab);
    this.chunks32[c] = new Int32Array(sab);
    this.populatedBytes += CHUNK_SIZE;
  }

  /** Byte array holding frame `pfn`. Throws if the frame was never allocated (a host bug, not a guest error). */
  chunk(pfn: number): Uint8Array {
    const a = this.chunks8[pfn >>> FRAMES_PER_CHUNK_SHIFT];
    if (a === undefined) throw new Error(`pfn 0x${pfn.toString(16)} is not populated`);
    return a;
  }

  chunk32(pfn: number): Int32Array {
    const a = this.chunks32[pfn >>> FRAMES_PER_CHUNK_SHIFT];
    if (a === undefined) throw new Error(`pfn 0x${pfn.toString(16)} is not populated`);
    return a;
  }

  /** Byte offset of frame `pfn` inside its chunk. */
  frameOffset(pfn: number): number {
    return (pfn & (FRAMES_PER_CHUNK - 1)) << PAGE_SHIFT;
  }

  /** A view of one whole frame (allocation: not for hot paths). */
  frame(pfn: number): Uint8Array {
    const off = this.frameOffset(pfn);
    return this.chunk(pfn).subarray(off, off + PAGE_SIZE);
  }

  zeroFrame(pfn: number): void {
    if (this.codeFrames[pfn]) this.codeWritten(pfn);
    const off = this.frameOffset(pfn);
    this.chunk(pfn).fill(0, off, off + PAGE_SIZE);
  }

  // Slow-path accessors by hpa. Accesses must not cross a page (callers split them).
  read8(hpa: number): number {
    const pfn = Math.floor(hpa / PAGE_SIZE);
    return this.chunk(pfn)[this.frameOffset(pfn) + (hpa & PAGE_MASK)];
  }

  write8(hpa: number, v: number): void {
    const pfn = Math.floor(hpa / PAGE_SIZE);
    if (this.codeFrames[pfn]) this.codeWritten(pfn);
    this.chunk(pfn)[this.frameOffset(pfn) + (hpa & PAGE_MASK)] = v;
  }

  /** Little-endian 32-bit read; `hpa` must be 4-byte aligned. Returns an unsigned value. */
  read32(hpa: number): number {
    const pfn = Math.floor(hpa / PAGE_SIZE);
    return this.chunk32(pfn)[(this.frameOffset(pfn) + (hpa & PAGE_MASK)) >>> 2] >>> 0;
  }

  write32(hpa: number, v: number): void {
    const pfn = Math.floor(hpa / PAGE_SIZE);
    if (this.codeFrames[pfn]) this.codeWritten(pfn);
    this.chunk32(pfn)[(this.frameOffset(pfn) + (hpa & PAGE_MASK)) >>> 2] = v | 0;
  }
}
