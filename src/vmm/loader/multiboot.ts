/**
 * Multiboot specification 0.6.96 boot, the way QEMU's -kernel does it: find the header in the
 * first 8 KiB, load the image (by the header's address fields when flag 16 is set, else as an
 * ELF32), place each -initrd file as a page-aligned module after the kernel, and enter in
 * 32-bit protected mode with paging off, EAX = 0x2BADB002 and EBX -> the multiboot info
 * (§3.2 "Machine state", §3.3 "Boot information format").
 */
import { VmmError } from "../error.js";
import { ByteWriter, type GuestMemory } from "../guest_memory.js";
import { E820_RAM, encodeMultibootMmap, HIMEM_START, lowRamEnd } from "../machine/e820.js";
import { BOOT_CMDLINE, BOOT_CMDLINE_MAX, BOOT_INFO, BOOT_INFO_EXTRA, checkClearOfBootArea, setupProtectedOrLong, type BootState } from "./boot_state.js";
import { isElf, loadElfSegments, parseElf } from "./elf.js";
import type { KernelLoadOptions } from "./options.js";

export const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
export const MULTIBOOT_SEARCH = 8192;
export const MULTIBOOT_PAGE_ALIGN = 1 << 0;
export const MULTIBOOT_MEMORY_INFO = 1 << 1;
export const MULTIBOOT_VIDEO_MODE = 1 << 2;
export const MULTIBOOT_AOUT_KLUDGE = 1 << 16;

export const MULTIBOOT_INFO_MEMORY = 1 << 0;
export const MULTIBOOT_INFO_CMDLINE = 1 << 2;
export const MULTIBOOT_INFO_MODS = 1 << 3;
export const MULTIBOOT_INFO_MEM_MAP = 1 << 6;
export const MULTIBOOT_INFO_BOOT_LOADER_NAME = 1 << 9;

export interface MultibootHeader {
  offset: number;
  flags: number;
  headerAddr: number;
  loadAddr: number;
  loadEndAddr: number;
  bssEndAddr: number;
  entryAddr: number;
}

/** The multiboot header, or null if the image has none. A header with a bad checksum is no header (§3.1.1). */
export function findMultibootHeader(image: Uint8Array): MultibootHeader | null {
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const limit = Math.min(image.length, MULTIBOOT_SEARCH) - 12;
  for (let at = 0; at <= limit; at += 4) {
    if (dv.getUint32(at, true) !== MULTIBOOT_HEADER_MAGIC) continue;
    const flags = dv.getUint32(at + 4, true);
    if (((MULTIBOOT_HEADER_MAGIC + flags + dv.getUint32(at + 8, true)) >>> 0) !== 0) continue;
    const h: MultibootHeader = { offset: at, flags, headerAddr: 0, loadAddr: 0, loadEndAddr: 0, bssEndAddr: 0, entryAddr: 0 };
    if (flags & MULTIBOOT_AOUT_KLUDGE) {
      if (at + 32 > image.length) throw new VmmError("multiboot: header address fields are truncated");
      h.headerAddr = dv.getUint32(at + 12, true);
      h.loadAddr = dv.getUint32(at + 16, true);
      h.loadEndAddr = dv.getUint32(at + 20, true);
      h.bssEndAddr = dv.getUint32(at + 24, true);
      h.entryAddr = dv.getUint32(at + 28, true);
    }
    return h;
  }
  return null;
}

export function loadMultiboot(mem: GuestMemory, opts: KernelLoadOptions, hdr: MultibootHeader): BootState {
  const name = opts.kernel.name;
  const image = opts.kernel.data;
  // Bits 0-15 are requirements: refuse what we cannot honour rather than boot wrongly.
  const unknownRequired = hdr.flags & 0xffff & ~(MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO | MULTIBOOT_VIDEO_MODE);
  if (unknownRequired) throw new VmmError(`${name}: multiboot header requires unsupported features (flags 0x${unknownRequired.toString(16)})`);
  let entry: number, kernelEnd: number;
  if (hdr.flags & MULTIBOOT_AOUT_KLUDGE) {
    if (hdr.headerAddr < hdr.loadAddr) throw new VmmError(`${name}: multiboot header_addr is below load_addr`);
    const fileStart = hdr.offset - (hdr.headerAddr - hdr.loadAddr);
    if (fileStart < 0) throw new VmmError(`${name}: multiboot load_addr lies before the start of the file`);
    const loadEnd = hdr.loadEndAddr === 0 ? hdr.loadAddr + (image.length - fileStart) : hdr.loadEndAddr;
    if (loadEnd < hdr.loadAddr || fileStart + (loadEnd - hdr.loadAddr) > image.length) throw new VmmError(`${name}: multiboot load_end_addr is outside the file`);
    const bssEnd = hdr.bssEndAddr === 0 ? loadEnd : hdr.bssEndAddr;
    if (bssEnd < loadEnd) throw new VmmError(`${name}: multiboot bss_end_addr is below load_end_addr`);
    checkClearOfBootArea(name, hdr.loadAddr, bssEnd, "protected");
    const seg = new Uint8Array(bssEnd - hdr.loadAddr);
    seg.set(image.subarray(fileStart, fileStart + (loadEnd - hdr.loadAddr)));
    mem.write(hdr.loadAddr, seg);
    entry = hdr.entryAddr;
    kernelEnd = bssEnd;
  } else {
    if (!isElf(image)) throw new VmmError(`${name}: multiboot image without address fields must be an ELF file`);
    const elf = parseElf(image, name);
    if (elf.bits !== 32) throw new VmmError(`${name}: multiboot ELF must be 32-bit (got ELF64); use a PVH or bzImage kernel for 64-bit`);
    for (const p of elf.phdrs) if (p.type === 1) checkClearOfBootArea(name, p.paddr, p.paddr + p.memsz, "protected");
    kernelEnd = loadElfSegments(mem, image, elf).high;
    entry = elf.entry;
  }

  // Modules: page aligned, after the kernel (§3.3: "mods_addr ... each module structure").
  let at = align(kernelEnd, 4096);
  const modEntries = new ByteWriter(opts.initrds.length * 16);
  let strings = BOOT_CMDLINE;
  const putString = (s: string): number => {
    const bytes = new TextEncoder().encode(s + "\0");
    if (strings + bytes.length > BOOT_CMDLINE + BOOT_CMDLINE_MAX) throw new VmmError("multiboot: command lines too long");
    mem.write(strings, bytes);
    const where = strings;
    strings += bytes.length;
    return where;
  };
  // QEMU passes the kernel's file name as the first word of the command line.
  const cmdline = putString(opts.cmdline ? `${name} ${opts.cmdline}` : name);
  opts.initrds.forEach((m, i) => {
    if (at + m.data.length > lowRamEnd(opts.e820)) throw new VmmError(`multiboot: module ${m.name} does not fit in RAM below 4 GiB`);
    mem.write(at, m.data);
    modEntries.u32(i * 16, at).u32(i * 16 + 4, at + m.data.length).u32(i * 16 + 8, putString(m.name));
    at = align(at + m.data.length, 4096);
  });
  const loaderName = putString("tskvm");

  const mmap = encodeMultibootMmap(opts.e820);
  const mmapAddr = BOOT_INFO_EXTRA;
  const modsAddr = mmapAddr + align(mmap.length, 16);
  mem.write(mmapAddr, mmap);
  if (opts.initrds.length) mem.write(modsAddr, modEntries.bytes);

  const { lower, upper } = memLowerUpper(opts);
  const info = new ByteWriter(88);
  let flags = MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_CMDLINE | MULTIBOOT_INFO_MEM_MAP | MULTIBOOT_INFO_BOOT_LOADER_NAME;
  if (opts.initrds.length) flags |= MULTIBOOT_INFO_MODS;
  info.u32(0, flags).u32(4, lower).u32(8, upper).u32(16, cmdline);
  info.u32(20, opts.initrds.length).u32(24, opts.initrds.length ? modsAddr : 0);
  info.u32(44, mmap.length).u32(48, mmapAddr).u32(64, loaderName);
  mem.write(BOOT_INFO, info.bytes);

  const st = setupProtectedOrLong(mem, "protected", entry);
  st.gprs.rax = MULTIBOOT_BOOTLOADER_MAGIC;
  st.gprs.rbx = BOOT_INFO;
  return st;
}

/** mem_lower: KiB of conventional memory; mem_upper: KiB of RAM from 1 MiB to the first hole. */
export function memLowerUpper(opts: Pick<KernelLoadOptions, "e820">): { lower: number; upper: number } {
  let lower = 0, upper = 0;
  for (const e of opts.e820) {
    if (e.type !== E820_RAM) continue;
    if (e.addr === 0) lower = Math.floor(Math.min(e.size, 0xa0000) / 1024);
    if (e.addr === HIMEM_START) upper = Math.floor(e.size / 1024);
  }
  return { lower, upper };
}

function align(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}
