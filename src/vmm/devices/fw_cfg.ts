/**
 * QEMU's firmware configuration interface (docs/specs/fw_cfg.rst), the traditional I/O port
 * form: a 16-bit selector at 0x510 picks an item and resets its read offset; each 8-bit read
 * of 0x511 returns the item's next byte, 0 past its end. Numbers are little-endian except the
 * file directory, which is big-endian. The DMA interface is not offered (FW_CFG_ID bit 1 clear).
 */
import { VmmError } from "../error.js";
import type { IoDevice } from "../io_bus.js";

export const FW_CFG_PORT_SEL = 0x510;
export const FW_CFG_PORT_DATA = 0x511;

export const FW_CFG_SIGNATURE = 0x00;
export const FW_CFG_ID = 0x01;
export const FW_CFG_UUID = 0x02;
export const FW_CFG_RAM_SIZE = 0x03;
export const FW_CFG_NOGRAPHIC = 0x04;
export const FW_CFG_NB_CPUS = 0x05;
export const FW_CFG_MACHINE_ID = 0x06;
export const FW_CFG_MAX_CPUS = 0x0f;
/** kvm-unit-tests' key for the highest usable RAM address (lib/x86/fwcfg.h). */
export const FW_CFG_MAX_RAM = 0x10;
export const FW_CFG_CMDLINE_SIZE = 0x14;
export const FW_CFG_CMDLINE_DATA = 0x15;
export const FW_CFG_FILE_DIR = 0x19;
export const FW_CFG_FILE_FIRST = 0x20;
export const FW_CFG_E820_TABLE = 0x8003;

export const FW_CFG_VERSION = 0x01;
const FILE_NAME_LEN = 56;

export class FwCfg implements IoDevice {
  readonly name = "fw_cfg";
  private readonly items = new Map<number, Uint8Array>();
  private readonly files: { name: string; select: number }[] = [];
  private selector = 0;
  private offset = 0;

  constructor() {
    this.items.set(FW_CFG_SIGNATURE, new TextEncoder().encode("QEMU"));
    this.items.set(FW_CFG_ID, le(FW_CFG_VERSION, 4));
    this.rebuildDir();
  }

  /** Set a numbered item. */
  setItem(key: number, data: Uint8Array): void {
    this.items.set(key & 0xffff, data);
  }

  setU16(key: number, v: number): void { this.setItem(key, le(v, 2)); }
  setU32(key: number, v: number): void { this.setItem(key, le(v, 4)); }
  setU64(key: number, v: number): void { this.setItem(key, le(v, 8)); }

  /** Add a named file (e.g. "etc/e820"); it gets the next selector from FW_CFG_FILE_FIRST. */
  addFile(name: string, data: Uint8Array): number {
    if (name.length >= FILE_NAME_LEN) throw new VmmError(`fw_cfg: file name too long: ${name}`);
    if (this.files.some((f) => f.name === name)) throw new VmmError(`fw_cfg: duplicate file ${name}`);
    const select = FW_CFG_FILE_FIRST + this.files.length;
    this.files.push({ name, select });
    this.items.set(select, data);
    this.rebuildDir();
    return select;
  }

  item(key: number): Uint8Array | undefined {
    return this.items.get(key);
  }

  read(offset: number, data: Uint8Array, len: number): void {
    if (offset !== 1) {
      data.fill(0, 0, len); // the selector register is write-only
      return;
    }
    const item = this.items.get(this.selector);
    for (let i = 0; i < len; i++) {
      data[i] = item !== undefined && this.offset < item.length ? item[this.offset]! : 0;
      if (item !== undefined && this.offset < item.length) this.offset++;
    }
  }

  write(offset: number, data: Uint8Array, len: number): void {
    if (offset === 0 && len >= 2) {
      this.selector = data[0]! | (data[1]! << 8);
      this.offset = 0;
    }
    // Writes to the data register are ignored since QEMU 2.4 (fw_cfg.rst "Data Register").
  }

  private rebuildDir(): void {
    const dir = new Uint8Array(4 + this.files.length * 64);
    const dv = new DataView(dir.buffer);
    dv.setUint32(0, this.files.length, false);
    this.files.forEach((f, i) => {
      const at = 4 + i * 64;
      dv.setUint32(at, this.items.get(f.select)!.length, false);
      dv.setUint16(at + 4, f.select, false);
      dir.set(new TextEncoder().encode(f.name), at + 8);
    });
    this.items.set(FW_CFG_FILE_DIR, dir);
  }
}

function le(v: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(v / 2 ** (8 * i)) & 0xff;
  return b;
}
