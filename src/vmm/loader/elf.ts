/**
 * ELF32 / ELF64 executables (System V gABI, "ELF Header" and "Program Header"): parse the
 * header and program headers with bounds checks, load PT_LOAD segments at their physical
 * addresses (p_paddr, as QEMU's -kernel does) zero-filling p_memsz beyond p_filesz, and read
 * PT_NOTE notes. Every malformed field fails with a message naming it.
 */
import { VmmError } from "../error.js";
import type { GuestMemory } from "../guest_memory.js";

export const EM_386 = 3;
export const EM_X86_64 = 62;
export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const ET_EXEC = 2;
export const ET_DYN = 3;

export interface ElfPhdr {
  type: number;
  offset: number;
  vaddr: number;
  paddr: number;
  filesz: number;
  memsz: number;
  flags: number;
}

export interface ElfNote {
  name: string;
  type: number;
  desc: Uint8Array;
}

export interface ElfImage {
  bits: 32 | 64;
  machine: number;
  type: number;
  entry: number;
  phdrs: ElfPhdr[];
}

export function isElf(image: Uint8Array): boolean {
  return image.length >= 4 && image[0] === 0x7f && image[1] === 0x45 && image[2] === 0x4c && image[3] === 0x46;
}

function u64(dv: DataView, at: number, what: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new VmmError(`ELF: ${what} 0x${v.toString(16)} is out of range`);
  return Number(v);
}

export function parseElf(image: Uint8Array, name = "image"): ElfImage {
  if (!isElf(image)) throw new VmmError(`${name}: not an ELF file (bad magic)`);
  if (image.length < 52) throw new VmmError(`${name}: truncated ELF header`);
  const cls = image[4];
  if (cls !== 1 && cls !== 2) throw new VmmError(`${name}: unknown ELF class ${cls}`);
  if (image[5] !== 1) throw new VmmError(`${name}: not a little-endian ELF (EI_DATA ${image[5]})`);
  const bits = cls === 1 ? 32 : 64;
  if (bits === 64 && image.length < 64) throw new VmmError(`${name}: truncated ELF64 header`);
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_386 && machine !== EM_X86_64) throw new VmmError(`${name}: ELF machine ${machine} is not x86`);
  if (type !== ET_EXEC && type !== ET_DYN) throw new VmmError(`${name}: ELF type ${type} is not an executable`);
  // Entry and virtual addresses may be kernel-high (0xffffffff8...); they are kept approximately
  // and only used once checked against what the loader can enter.
  const entry = bits === 32 ? dv.getUint32(24, true) : Number(dv.getBigUint64(24, true));
  const phoff = bits === 32 ? dv.getUint32(28, true) : u64(dv, 32, "e_phoff");
  const phentsize = dv.getUint16(bits === 32 ? 42 : 54, true);
  const phnum = dv.getUint16(bits === 32 ? 44 : 56, true);
  const want = bits === 32 ? 32 : 56;
  if (phnum === 0) throw new VmmError(`${name}: ELF has no program headers`);
  if (phentsize < want) throw new VmmError(`${name}: ELF e_phentsize ${phentsize} is smaller than ${want}`);
  if (phoff + phnum * phentsize > image.length) throw new VmmError(`${name}: ELF program headers extend past the end of the file`);
  const phdrs: ElfPhdr[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const p: ElfPhdr = bits === 32
      ? {
        type: dv.getUint32(at, true), offset: dv.getUint32(at + 4, true), vaddr: dv.getUint32(at + 8, true),
        paddr: dv.getUint32(at + 12, true), filesz: dv.getUint32(at + 16, true), memsz: dv.getUint32(at + 20, true),
        flags: dv.getUint32(at + 24, true),
      }
      : {
        type: dv.getUint32(at, true), flags: dv.getUint32(at + 4, true), offset: u64(dv, at + 8, "p_offset"),
        vaddr: Number(dv.getBigUint64(at + 16, true)), paddr: u64(dv, at + 24, "p_paddr"), filesz: u64(dv, at + 32, "p_filesz"),
        memsz: u64(dv, at + 40, "p_memsz"),
      };
    if (p.type === PT_LOAD || p.type === PT_NOTE) {
      if (p.offset + p.filesz > image.length) throw new VmmError(`${name}: ELF segment ${i} data extends past the end of the file`);
      if (p.filesz > p.memsz && p.type === PT_LOAD) throw new VmmError(`${name}: ELF segment ${i} has p_filesz > p_memsz`);
    }
    phdrs.push(p);
  }
  if (!phdrs.some((p) => p.type === PT_LOAD)) throw new VmmError(`${name}: ELF has no PT_LOAD segment`);
  return { bits, machine, type, entry, phdrs };
}

/** Load every PT_LOAD segment at p_paddr; returns the lowest and highest physical addresses used. */
export function loadElfSegments(mem: GuestMemory, image: Uint8Array, elf: ElfImage): { low: number; high: number } {
  let low = Infinity, high = 0;
  for (const p of elf.phdrs) {
    if (p.type !== PT_LOAD || p.memsz === 0) continue;
    const seg = new Uint8Array(p.memsz);
    seg.set(image.subarray(p.offset, p.offset + p.filesz));
    mem.write(p.paddr, seg);
    low = Math.min(low, p.paddr);
    high = Math.max(high, p.paddr + p.memsz);
  }
  return { low, high };
}

/** Notes from every PT_NOTE segment (gABI "Note Section": namesz, descsz, type, name, desc; 4-byte aligned). */
export function elfNotes(image: Uint8Array, elf: ElfImage): ElfNote[] {
  const notes: ElfNote[] = [];
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  for (const p of elf.phdrs) {
    if (p.type !== PT_NOTE) continue;
    let at = p.offset;
    const end = p.offset + p.filesz;
    while (at + 12 <= end) {
      const namesz = dv.getUint32(at, true), descsz = dv.getUint32(at + 4, true), type = dv.getUint32(at + 8, true);
      const nameAt = at + 12;
      const descAt = nameAt + align4(namesz);
      if (descAt + descsz > end) throw new VmmError(`ELF: note at file offset 0x${at.toString(16)} overruns its segment`);
      const name = new TextDecoder().decode(image.subarray(nameAt, nameAt + Math.max(0, namesz - 1)));
      notes.push({ name, type, desc: image.slice(descAt, descAt + descsz) });
      at = descAt + align4(descsz);
    }
  }
  return notes;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
