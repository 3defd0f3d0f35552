/**
 * Guest-physical memory as the VMM's loaders and table builders see it: byte copies in and
 * out at guest-physical addresses. The machine implements it over its memslots (each slot's
 * userspace_addr in the process's mm, the way a C VMM writes through its mmap'ed pointer);
 * tests implement it over a flat array.
 */
export interface GuestMemory {
  /** Bytes of RAM the guest has, for bound checks in messages. */
  readonly ramSize: number;
  /** Copy `bytes` to guest-physical `gpa`; throws VmmError if any byte is outside RAM. */
  write(gpa: number, bytes: Uint8Array): void;
  /** Copy `len` bytes from guest-physical `gpa`; throws VmmError if any byte is outside RAM. */
  read(gpa: number, len: number): Uint8Array;
}

/** Little helpers for building structures in a byte array. */
export class ByteWriter {
  readonly bytes: Uint8Array;
  readonly dv: DataView;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.dv = new DataView(this.bytes.buffer);
  }

  u8(at: number, v: number): this { this.bytes[at] = v & 0xff; return this; }
  u16(at: number, v: number): this { this.dv.setUint16(at, v & 0xffff, true); return this; }
  u32(at: number, v: number): this { this.dv.setUint32(at, v >>> 0, true); return this; }
  u64(at: number, v: number | bigint): this { this.dv.setBigUint64(at, BigInt(v), true); return this; }
  str(at: number, s: string, width = s.length, pad = 0): this {
    for (let i = 0; i < width; i++) this.bytes[at + i] = i < s.length ? s.charCodeAt(i) & 0xff : pad;
    return this;
  }
}

/** Value that makes the byte sum of `bytes[from, to)` zero modulo 256, stored at `at`. */
export function setChecksum(bytes: Uint8Array, at: number, from = 0, to = bytes.length): void {
  bytes[at] = 0;
  let sum = 0;
  for (let i = from; i < to; i++) sum = (sum + bytes[i]!) & 0xff;
  bytes[at] = (256 - sum) & 0xff;
}

export function byteSum(bytes: Uint8Array, from = 0, to = bytes.length): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum = (sum + bytes[i]!) & 0xff;
  return sum;
}
