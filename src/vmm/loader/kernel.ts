/**
 * -kernel: pick the loader by what the image is, in QEMU's order: a multiboot header first,
 * then an ELF with a PVH entry note, a Linux bzImage, and finally any ELF executable (entered
 * in protected mode for ELF32, long mode with identity paging for ELF64). A flat binary has no
 * header to recognise, so it needs an explicit load address (`loadFlat`).
 */
import { VmmError } from "../error.js";
import type { GuestMemory } from "../guest_memory.js";
import { checkClearOfBootArea, entryState, type BootState, type CpuMode } from "./boot_state.js";
import { isBzImage, loadBzImage } from "./bzimage.js";
import { isElf, loadElfSegments, parseElf, PT_LOAD } from "./elf.js";
import { findMultibootHeader, loadMultiboot } from "./multiboot.js";
import type { BootFile, KernelLoadOptions } from "./options.js";
import { loadPvh, pvhEntry } from "./pvh.js";

export type KernelFormat = "multiboot" | "pvh" | "bzimage" | "elf32" | "elf64";

export function loadKernel(mem: GuestMemory, opts: KernelLoadOptions): { format: KernelFormat; state: BootState } {
  const image = opts.kernel.data;
  const name = opts.kernel.name;
  const mb = findMultibootHeader(image);
  if (mb) return { format: "multiboot", state: loadMultiboot(mem, opts, mb) };
  if (isElf(image)) {
    const elf = parseElf(image, name);
    const pvh = pvhEntry(image, elf);
    if (pvh !== null) return { format: "pvh", state: loadPvh(mem, opts, elf, pvh) };
    if (opts.initrds.length) throw new VmmError(`${name}: -initrd needs a multiboot, PVH or bzImage kernel`);
    const mode: CpuMode = elf.bits === 64 ? "long" : "protected";
    if (elf.entry >= 0x100000000) throw new VmmError(`${name}: entry point 0x${elf.entry.toString(16)} is outside the identity-mapped 4 GiB (a vmlinux needs its PVH note)`);
    for (const p of elf.phdrs) if (p.type === PT_LOAD) checkClearOfBootArea(name, p.paddr, p.paddr + p.memsz, mode);
    loadElfSegments(mem, image, elf);
    return { format: elf.bits === 64 ? "elf64" : "elf32", state: entryState(mem, mode, elf.entry) };
  }
  if (isBzImage(image)) return { format: "bzimage", state: loadBzImage(mem, opts) };
  throw new VmmError(`${name}: unrecognised kernel format (not multiboot, ELF or bzImage); for a flat binary use -device loader,file=${name},addr=<gpa>[,cpu-mode=real|protected|long]`);
}

/** A flat binary copied to `addr` and entered there in `mode`. */
export function loadFlat(mem: GuestMemory, file: BootFile, addr: number, mode: CpuMode): BootState {
  if (file.data.length === 0) throw new VmmError(`${file.name}: empty image`);
  checkClearOfBootArea(file.name, addr, addr + file.data.length, mode);
  if (addr + file.data.length > mem.ramSize && addr < 0x100000000) throw new VmmError(`${file.name}: 0x${file.data.length.toString(16)} bytes at 0x${addr.toString(16)} do not fit in guest RAM`);
  mem.write(addr, file.data);
  return entryState(mem, mode, addr);
}
