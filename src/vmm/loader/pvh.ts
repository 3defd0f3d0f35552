/**
 * The PVH boot entry of a vmlinux (Xen's HVM direct boot ABI, also used by QEMU and
 * Firecracker): the kernel's ELF carries a XEN_ELFNOTE_PHYS32_ENTRY note with the physical
 * address of a 32-bit entry point, entered in protected mode with paging off and EBX -> struct
 * hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h: magic, version 1, module
 * list, command line, RSDP and the memory map).
 */
import { VmmError } from "../error.js";
import { ByteWriter, type GuestMemory } from "../guest_memory.js";
import { lowRamEnd } from "../machine/e820.js";
import { BOOT_CMDLINE, BOOT_CMDLINE_MAX, BOOT_INFO, BOOT_INFO_EXTRA, checkClearOfBootArea, setupProtectedOrLong, type BootState } from "./boot_state.js";
import { elfNotes, loadElfSegments, PT_LOAD, type ElfImage } from "./elf.js";
import type { KernelLoadOptions } from "./options.js";

export const XEN_ELFNOTE_PHYS32_ENTRY = 18;
export const XEN_HVM_START_MAGIC_VALUE = 0x336ec578;

/** The PVH entry address from the ELF's notes, or null. */
export function pvhEntry(image: Uint8Array, elf: ElfImage): number | null {
  for (const n of elfNotes(image, elf)) {
    if (n.name !== "Xen" || n.type !== XEN_ELFNOTE_PHYS32_ENTRY) continue;
    const dv = new DataView(n.desc.buffer, n.desc.byteOffset, n.desc.byteLength);
    if (n.desc.length >= 8) return Number(dv.getBigUint64(0, true) & 0xffffffffn);
    if (n.desc.length >= 4) return dv.getUint32(0, true);
    throw new VmmError("PVH: XEN_ELFNOTE_PHYS32_ENTRY note is too short");
  }
  return null;
}

export function loadPvh(mem: GuestMemory, opts: KernelLoadOptions, elf: ElfImage, entry: number): BootState {
  const name = opts.kernel.name;
  for (const p of elf.phdrs) if (p.type === PT_LOAD) checkClearOfBootArea(name, p.paddr, p.paddr + p.memsz, "protected");
  const { high } = loadElfSegments(mem, opts.kernel.data, elf);

  const cmd = new TextEncoder().encode(opts.cmdline + "\0");
  if (cmd.length > BOOT_CMDLINE_MAX) throw new VmmError("PVH: command line too long");
  mem.write(BOOT_CMDLINE, cmd);

  // Memory map: hvm_memmap_table_entry {u64 addr; u64 size; u32 type; u32 reserved}.
  const mmap = new ByteWriter(opts.e820.length * 24);
  opts.e820.forEach((e, i) => mmap.u64(i * 24, e.addr).u64(i * 24 + 8, e.size).u32(i * 24 + 16, e.type));
  const mmapAddr = BOOT_INFO_EXTRA;
  mem.write(mmapAddr, mmap.bytes);

  // Modules (hvm_modlist_entry {u64 paddr; u64 size; u64 cmdline_paddr; u64 reserved}) placed after the kernel.
  const mods = new ByteWriter(opts.initrds.length * 32);
  let at = Math.ceil(high / 4096) * 4096;
  opts.initrds.forEach((m, i) => {
    if (at + m.data.length > lowRamEnd(opts.e820)) throw new VmmError(`PVH: module ${m.name} does not fit in RAM below 4 GiB`);
    mem.write(at, m.data);
    mods.u64(i * 32, at).u64(i * 32 + 8, m.data.length);
    at = Math.ceil((at + m.data.length) / 4096) * 4096;
  });
  const modsAddr = mmapAddr + Math.ceil(mmap.bytes.length / 32) * 32;
  if (opts.initrds.length) mem.write(modsAddr, mods.bytes);

  const si = new ByteWriter(56);
  si.u32(0, XEN_HVM_START_MAGIC_VALUE).u32(4, 1).u32(8, 0).u32(12, opts.initrds.length);
  si.u64(16, opts.initrds.length ? modsAddr : 0).u64(24, BOOT_CMDLINE).u64(32, opts.rsdp);
  si.u64(40, mmapAddr).u32(48, opts.e820.length);
  mem.write(BOOT_INFO, si.bytes);

  const st = setupProtectedOrLong(mem, "protected", entry);
  st.gprs.rbx = BOOT_INFO;
  return st;
}
