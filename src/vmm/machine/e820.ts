/**
 * The PC's physical memory map as firmware reports it (INT 15h E820: ACPI 6.5 §15): where RAM
 * is, what is reserved for firmware and devices. One source for boot_params.e820_table, the
 * multiboot memory map and fw_cfg's etc/e820.
 */
import { ByteWriter } from "../guest_memory.js";

export const E820_RAM = 1;
export const E820_RESERVED = 2;
export const E820_ACPI = 3;
export const E820_NVS = 4;

export interface E820Entry {
  addr: number;
  size: number;
  type: number;
}

/** The legacy low-memory layout every PC has. */
export const EBDA_START = 0x9fc00;
export const VGA_RAM_BEGIN = 0xa0000;
export const BIOS_BEGIN = 0xe0000;
export const BIOS_END = 0x100000;
export const HIMEM_START = 0x100000;
/** Start of the 32-bit PCI hole: RAM beyond this goes above 4 GiB (QEMU's i440FX split). */
export const PCI_HOLE_START = 0xc0000000;
export const FOUR_GIB = 0x100000000;

/** How `ramSize` bytes are split around the PCI hole. */
export function splitRam(ramSize: number): { below4g: number; above4g: number } {
  const below4g = Math.min(ramSize, PCI_HOLE_START);
  return { below4g, above4g: ramSize - below4g };
}

export function buildE820(ramSize: number): E820Entry[] {
  const { below4g, above4g } = splitRam(ramSize);
  const map: E820Entry[] = [];
  map.push({ addr: 0, size: Math.min(EBDA_START, below4g), type: E820_RAM });
  map.push({ addr: EBDA_START, size: VGA_RAM_BEGIN - EBDA_START, type: E820_RESERVED });
  map.push({ addr: BIOS_BEGIN, size: BIOS_END - BIOS_BEGIN, type: E820_RESERVED });
  if (below4g > HIMEM_START) map.push({ addr: HIMEM_START, size: below4g - HIMEM_START, type: E820_RAM });
  if (above4g > 0) map.push({ addr: FOUR_GIB, size: above4g, type: E820_RAM });
  return map;
}

/** struct boot_e820_entry / fw_cfg etc/e820 layout: {u64 addr; u64 size; u32 type}, 20 bytes, packed. */
export function encodeE820(map: readonly E820Entry[]): Uint8Array {
  const w = new ByteWriter(map.length * 20);
  map.forEach((e, i) => w.u64(i * 20, e.addr).u64(i * 20 + 8, e.size).u32(i * 20 + 16, e.type));
  return w.bytes;
}

/** Multiboot v1 memory map: {u32 size (=20); u64 base_addr; u64 length; u32 type} per entry. */
export function encodeMultibootMmap(map: readonly E820Entry[]): Uint8Array {
  const w = new ByteWriter(map.length * 24);
  map.forEach((e, i) => w.u32(i * 24, 20).u64(i * 24 + 4, e.addr).u64(i * 24 + 12, e.size).u32(i * 24 + 20, e.type));
  return w.bytes;
}

/** Top of usable RAM below 4 GiB. */
export function lowRamEnd(map: readonly E820Entry[]): number {
  let end = 0;
  for (const e of map) if (e.type === E820_RAM && e.addr < FOUR_GIB) end = Math.max(end, e.addr + e.size);
  return end;
}
