/**
 * The CPU state a loader hands over at its entry point, in plain numbers (the VMM turns it
 * into KVM_SET_REGS / KVM_SET_SREGS), and the scaffolding protected and long mode need in
 * guest memory: a flat GDT (Linux boot protocol selectors: __BOOT_CS 0x10, __BOOT_DS 0x18)
 * and, for long mode, identity page tables mapping the first 4 GiB with 2 MiB pages
 * (SDM Vol 3A §4.5; boot protocol "64-bit BOOT PROTOCOL").
 */
import { VmmError } from "../error.js";
import { ByteWriter, type GuestMemory } from "../guest_memory.js";

export type CpuMode = "real" | "protected" | "long";

/** A segment register as kvm_segment describes it. */
export interface BootSegment {
  selector: number;
  base: number;
  limit: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
}

export interface BootState {
  mode: CpuMode;
  rip: number;
  rsp: number;
  rflags: number;
  /** General-purpose registers by name (rax, rbx, rcx, rdx, rsi, rdi, rbp). */
  gprs: Partial<Record<"rax" | "rbx" | "rcx" | "rdx" | "rsi" | "rdi" | "rbp", number>>;
  /** Absent in real mode: the VMM keeps KVM's reset values and sets only CS. */
  cs: BootSegment;
  ds: BootSegment;
  gdt: { base: number; limit: number } | null;
  cr0: number;
  cr3: number;
  cr4: number;
  efer: number;
}

/** Where loaders keep boot-time structures: below the EBDA, out of the way of kernels at >= 1 MiB. */
export const BOOT_CMDLINE = 0x20000;
export const BOOT_CMDLINE_MAX = 0x10000;
export const BOOT_INFO = 0x90000; // zero page / multiboot info / hvm_start_info (one page)
export const BOOT_INFO_EXTRA = 0x91000; // memory maps, module lists (up to 0x97000)
export const BOOT_GDT = 0x98000;
export const BOOT_PML4 = 0x99000;
export const BOOT_PDPT = 0x9a000;
export const BOOT_PD = 0x9b000; // four pages: 0x9b000-0x9efff
export const BOOT_STACK_TOP = 0x8fff0;
export const BOOT_AREA_START = 0x20000;
export const BOOT_AREA_END = 0x9f000;

export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;

const X86_CR0_PE = 1 << 0, X86_CR0_MP = 1 << 1, X86_CR0_ET = 1 << 4, X86_CR0_NE = 1 << 5, X86_CR0_WP = 1 << 16;
const X86_CR0_PG = 0x80000000;
const X86_CR4_PAE = 1 << 5;
const EFER_LME = 1 << 8, EFER_LMA = 1 << 10;

function flatSeg(selector: number, code: boolean, long: boolean): BootSegment {
  return {
    selector, base: 0, limit: 0xffffffff, type: code ? 0xb : 0x3, present: 1, dpl: 0,
    db: long && code ? 0 : 1, s: 1, l: long && code ? 1 : 0, g: 1,
  };
}

function realSeg(selector: number, code: boolean): BootSegment {
  return { selector, base: selector * 16, limit: 0xffff, type: code ? 0xb : 0x3, present: 1, dpl: 0, db: 0, s: 1, l: 0, g: 0 };
}

/** Real-mode entry at linear `addr`: CS:IP = 0:addr below 64 KiB, else (addr >> 4):(addr & 15). */
export function realModeState(addr: number): BootState {
  if (addr >= 0x100000) throw new VmmError(`real-mode entry 0x${addr.toString(16)} is above 1 MiB`);
  const cs = addr < 0x10000 ? 0 : addr >>> 4;
  return {
    mode: "real", rip: addr - cs * 16, rsp: 0, rflags: 2, gprs: {},
    cs: realSeg(cs, true), ds: realSeg(0, false), gdt: null, cr0: 0x60000010, cr3: 0, cr4: 0, efer: 0,
  };
}

/**
 * Write the GDT (and for long mode the identity page tables) and return the entry state for
 * `mode` at `rip`: protected mode flat 4 GiB segments, paging off; long mode with CR0.PG,
 * CR4.PAE, EFER.LME/LMA and a 64-bit code segment.
 */
export function setupProtectedOrLong(mem: GuestMemory, mode: "protected" | "long", rip: number): BootState {
  const long = mode === "long";
  const gdt = new ByteWriter(4 * 8);
  // Flat descriptors: limit 0xfffff with G, access P|S|type, flags G|D (32-bit) or G|L (64-bit).
  gdt.u64(2 * 8, long ? 0x00af9b000000ffffn : 0x00cf9b000000ffffn);
  gdt.u64(3 * 8, 0x00cf93000000ffffn);
  mem.write(BOOT_GDT, gdt.bytes);
  let cr0 = X86_CR0_PE | X86_CR0_ET;
  let cr3 = 0, cr4 = 0, efer = 0;
  if (long) {
    writeIdentityPageTables(mem);
    cr0 |= X86_CR0_MP | X86_CR0_NE | X86_CR0_WP | X86_CR0_PG;
    cr3 = BOOT_PML4;
    cr4 = X86_CR4_PAE;
    efer = EFER_LME | EFER_LMA;
  }
  return {
    mode, rip, rsp: BOOT_STACK_TOP, rflags: 2, gprs: {},
    cs: flatSeg(BOOT_CS, true, long), ds: flatSeg(BOOT_DS, false, long),
    gdt: { base: BOOT_GDT, limit: 4 * 8 - 1 }, cr0: cr0 >>> 0, cr3, cr4, efer,
  };
}

/** PML4[0] -> PDPT; PDPT[0..3] -> four PDs of 512 x 2 MiB pages: VA == PA for [0, 4 GiB). */
export function writeIdentityPageTables(mem: GuestMemory): void {
  const P = 1, RW = 2, PS = 0x80;
  const pml4 = new ByteWriter(4096);
  pml4.u64(0, BOOT_PDPT | P | RW);
  const pdpt = new ByteWriter(4096);
  for (let i = 0; i < 4; i++) pdpt.u64(i * 8, BOOT_PD + i * 4096 + (P | RW));
  const pd = new ByteWriter(4 * 4096);
  for (let i = 0; i < 4 * 512; i++) pd.u64(i * 8, i * 0x200000 + (P | RW | PS));
  mem.write(BOOT_PML4, pml4.bytes);
  mem.write(BOOT_PDPT, pdpt.bytes);
  mem.write(BOOT_PD, pd.bytes);
}

/** Entry state for `mode` at `rip`, writing whatever scaffolding that mode needs. */
export function entryState(mem: GuestMemory, mode: CpuMode, rip: number): BootState {
  return mode === "real" ? realModeState(rip) : setupProtectedOrLong(mem, mode, rip);
}

/** Refuse an image range that would be overwritten by the loader's own structures. */
export function checkClearOfBootArea(what: string, start: number, end: number, mode: CpuMode): void {
  if (mode === "real") return;
  if (start < BOOT_AREA_END && end > BOOT_AREA_START) {
    throw new VmmError(`${what} at 0x${start.toString(16)}-0x${end.toString(16)} overlaps the boot structures at 0x${BOOT_AREA_START.toString(16)}-0x${BOOT_AREA_END.toString(16)}`);
  }
}
