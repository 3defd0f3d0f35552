/**
 * The Linux/x86 boot protocol (Documentation/arch/x86/boot.rst) for a bzImage, entered through
 * its 64-bit entry point: the protected-mode kernel (after the setup sectors) is loaded at its
 * preferred address, a zero page (struct boot_params) gets the image's setup header plus what
 * the loader fills (type_of_loader, cmd_line_ptr, ramdisk, e820 table, acpi_rsdp_addr), and
 * the CPU starts in long mode with identity paging at load address + 0x200 with RSI -> the
 * zero page ("64-bit BOOT PROTOCOL").
 */
import { VmmError } from "../error.js";
import type { GuestMemory } from "../guest_memory.js";
import { encodeE820, lowRamEnd } from "../machine/e820.js";
import { BOOT_CMDLINE, BOOT_CMDLINE_MAX, BOOT_INFO, setupProtectedOrLong, type BootState } from "./boot_state.js";
import type { KernelLoadOptions } from "./options.js";

// Offsets in struct boot_params / the setup header (boot.rst "THE REAL-MODE KERNEL HEADER", zero-page.rst).
const BP_ACPI_RSDP_ADDR = 0x070;
const BP_EXT_RAMDISK_IMAGE = 0x0c0, BP_EXT_RAMDISK_SIZE = 0x0c4, BP_EXT_CMD_LINE_PTR = 0x0c8;
const BP_E820_ENTRIES = 0x1e8;
const HDR_START = 0x1f1;
const HDR_SETUP_SECTS = 0x1f1, HDR_BOOT_FLAG = 0x1fe, HDR_JUMP = 0x200, HDR_HEADER = 0x202, HDR_VERSION = 0x206;
const HDR_TYPE_OF_LOADER = 0x210, HDR_LOADFLAGS = 0x211, HDR_RAMDISK_IMAGE = 0x218, HDR_RAMDISK_SIZE = 0x21c;
const HDR_HEAP_END_PTR = 0x224, HDR_CMD_LINE_PTR = 0x228, HDR_INITRD_ADDR_MAX = 0x22c, HDR_KERNEL_ALIGNMENT = 0x230;
const HDR_RELOCATABLE = 0x234, HDR_XLOADFLAGS = 0x236, HDR_CMDLINE_SIZE = 0x238, HDR_PREF_ADDRESS = 0x258, HDR_INIT_SIZE = 0x260;
const BP_E820_TABLE = 0x2d0;
const E820_MAX_ENTRIES_ZEROPAGE = 128;
const LOADED_HIGH = 0x01, CAN_USE_HEAP = 0x80;
const XLF_KERNEL_64 = 0x01;
const BZIMAGE_64_ENTRY_OFFSET = 0x200;

export function isBzImage(image: Uint8Array): boolean {
  return image.length >= 0x210 && image[HDR_BOOT_FLAG] === 0x55 && image[HDR_BOOT_FLAG + 1] === 0xaa &&
    new TextDecoder().decode(image.subarray(HDR_HEADER, HDR_HEADER + 4)) === "HdrS";
}

export function loadBzImage(mem: GuestMemory, opts: KernelLoadOptions): BootState {
  const name = opts.kernel.name;
  const image = opts.kernel.data;
  if (!isBzImage(image)) throw new VmmError(`${name}: not a Linux bzImage (no "HdrS" setup header)`);
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const version = dv.getUint16(HDR_VERSION, true);
  if (version < 0x20c) throw new VmmError(`${name}: boot protocol ${version >> 8}.${version & 0xff} has no 64-bit entry (need 2.12+)`);
  if (image.length < 0x268) throw new VmmError(`${name}: truncated setup header`);
  if (!(image[HDR_XLOADFLAGS]! & XLF_KERNEL_64)) throw new VmmError(`${name}: kernel has no 64-bit entry point (XLF_KERNEL_64 clear)`);
  let setupSects = image[HDR_SETUP_SECTS]!;
  if (setupSects === 0) setupSects = 4;
  const kernelOff = (setupSects + 1) * 512;
  if (kernelOff >= image.length) throw new VmmError(`${name}: setup_sects (${setupSects}) runs past the end of the file`);
  const kernel = image.subarray(kernelOff);
  const prefAddress = Number(dv.getBigUint64(HDR_PREF_ADDRESS, true));
  const initSize = dv.getUint32(HDR_INIT_SIZE, true);
  const align = dv.getUint32(HDR_KERNEL_ALIGNMENT, true) || 0x200000;
  const relocatable = image[HDR_RELOCATABLE] !== 0;
  const loadAddr = relocatable ? Math.ceil(Math.max(prefAddress, 0x100000) / align) * align : prefAddress;
  const ramTop = lowRamEnd(opts.e820);
  if (loadAddr + Math.max(initSize, kernel.length) > ramTop) {
    throw new VmmError(`${name}: needs 0x${Math.max(initSize, kernel.length).toString(16)} bytes at 0x${loadAddr.toString(16)}, more than the guest's RAM (try a larger -m)`);
  }
  mem.write(loadAddr, kernel);

  const zp = new Uint8Array(4096);
  const zdv = new DataView(zp.buffer);
  // Copy the setup header as the image has it: from 0x1f1 to the end of the header (0x202 + jump byte).
  const hdrEnd = Math.min(HDR_JUMP + 2 + image[HDR_JUMP + 1]!, 0x290, image.length);
  zp.set(image.subarray(HDR_START, hdrEnd), HDR_START);
  zp[HDR_TYPE_OF_LOADER] = 0xff; // "undefined" loader id
  zp[HDR_LOADFLAGS] = (zp[HDR_LOADFLAGS]! | LOADED_HIGH | CAN_USE_HEAP) & 0xff;
  zdv.setUint16(HDR_HEAP_END_PTR, 0xfe00, true);

  const cmdMax = version >= 0x206 ? dv.getUint32(HDR_CMDLINE_SIZE, true) : 255;
  const cmd = new TextEncoder().encode(opts.cmdline + "\0");
  if (cmd.length - 1 > cmdMax || cmd.length > BOOT_CMDLINE_MAX) throw new VmmError(`${name}: command line longer than the kernel's cmdline_size (${cmdMax})`);
  mem.write(BOOT_CMDLINE, cmd);
  zdv.setUint32(HDR_CMD_LINE_PTR, BOOT_CMDLINE, true);
  zdv.setUint32(BP_EXT_CMD_LINE_PTR, 0, true);

  if (opts.initrds.length) {
    const total = opts.initrds.reduce((n, f) => n + f.data.length, 0);
    const maxAddr = Math.min(dv.getUint32(HDR_INITRD_ADDR_MAX, true), ramTop - 1);
    // The initrd goes as high as allowed, page aligned, above the kernel's footprint (boot.rst "Loading the rest").
    const at = Math.floor((maxAddr + 1 - total) / 4096) * 4096;
    if (at < loadAddr + Math.max(initSize, kernel.length)) throw new VmmError(`initrd (${total} bytes) does not fit between the kernel and 0x${maxAddr.toString(16)}`);
    let p = at;
    for (const f of opts.initrds) {
      mem.write(p, f.data);
      p += f.data.length;
    }
    zdv.setUint32(HDR_RAMDISK_IMAGE, at, true);
    zdv.setUint32(HDR_RAMDISK_SIZE, total, true);
    zdv.setUint32(BP_EXT_RAMDISK_IMAGE, 0, true);
    zdv.setUint32(BP_EXT_RAMDISK_SIZE, 0, true);
  }

  const e820 = opts.e820.slice(0, E820_MAX_ENTRIES_ZEROPAGE);
  zp[BP_E820_ENTRIES] = e820.length;
  zp.set(encodeE820(e820), BP_E820_TABLE);
  zdv.setBigUint64(BP_ACPI_RSDP_ADDR, BigInt(opts.rsdp), true);
  mem.write(BOOT_INFO, zp);

  const st = setupProtectedOrLong(mem, "long", loadAddr + BZIMAGE_64_ENTRY_OFFSET);
  st.gprs.rsi = BOOT_INFO;
  return st;
}
