// Test helpers: a flat guest memory and tiny ELF / multiboot image builders.
import { VmmError } from "../../src/vmm/error.js";
import type { GuestMemory } from "../../src/vmm/guest_memory.js";

export class FlatMemory implements GuestMemory {
  readonly bytes: Uint8Array;
  constructor(readonly ramSize: number) {
    this.bytes = new Uint8Array(ramSize);
  }
  write(gpa: number, b: Uint8Array): void {
    if (gpa < 0 || gpa + b.length > this.ramSize) throw new VmmError(`write 0x${gpa.toString(16)}+${b.length} outside RAM`);
    this.bytes.set(b, gpa);
  }
  read(gpa: number, len: number): Uint8Array {
    if (gpa < 0 || gpa + len > this.ramSize) throw new VmmError(`read 0x${gpa.toString(16)}+${len} outside RAM`);
    return this.bytes.slice(gpa, gpa + len);
  }
  u32(gpa: number): number {
    return new DataView(this.bytes.buffer).getUint32(gpa, true);
  }
  u64(gpa: number): number {
    return Number(new DataView(this.bytes.buffer).getBigUint64(gpa, true));
  }
  cstr(gpa: number): string {
    let s = "";
    while (this.bytes[gpa]) s += String.fromCharCode(this.bytes[gpa++]!);
    return s;
  }
}

export interface Seg { paddr: number; data: Uint8Array; memsz?: number; note?: boolean }

/** Build a minimal ELF executable with one program header per segment. */
export function buildElf(bits: 32 | 64, entry: number, segs: Seg[], machine = bits === 64 ? 62 : 3): Uint8Array {
  const ehsz = bits === 32 ? 52 : 64, phsz = bits === 32 ? 32 : 56;
  let off = ehsz + phsz * segs.length;
  const offs = segs.map((s) => { const o = off; off += s.data.length; return o; });
  const out = new Uint8Array(off);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, bits === 32 ? 1 : 2, 1, 1]);
  dv.setUint16(16, 2, true);
  dv.setUint16(18, machine, true);
  dv.setUint32(20, 1, true);
  if (bits === 32) {
    dv.setUint32(24, entry, true); dv.setUint32(28, ehsz, true);
    dv.setUint16(40, ehsz, true); dv.setUint16(42, phsz, true); dv.setUint16(44, segs.length, true);
  } else {
    dv.setBigUint64(24, BigInt(entry), true); dv.setBigUint64(32, BigInt(ehsz), true);
    dv.setUint16(52, ehsz, true); dv.setUint16(54, phsz, true); dv.setUint16(56, segs.length, true);
  }
  segs.forEach((s, i) => {
    const at = ehsz + i * phsz;
    const type = s.note ? 4 : 1;
    const memsz = s.memsz ?? s.data.length;
    if (bits === 32) {
      dv.setUint32(at, type, true); dv.setUint32(at + 4, offs[i]!, true); dv.setUint32(at + 8, s.paddr, true);
      dv.setUint32(at + 12, s.paddr, true); dv.setUint32(at + 16, s.data.length, true); dv.setUint32(at + 20, memsz, true);
      dv.setUint32(at + 24, 5, true);
    } else {
      dv.setUint32(at, type, true); dv.setUint32(at + 4, 5, true); dv.setBigUint64(at + 8, BigInt(offs[i]!), true);
      dv.setBigUint64(at + 16, BigInt(s.paddr), true); dv.setBigUint64(at + 24, BigInt(s.paddr), true);
      dv.setBigUint64(at + 32, BigInt(s.data.length), true); dv.setBigUint64(at + 40, BigInt(memsz), true);
    }
    out.set(s.data, offs[i]!);
  });
  return out;
}

/** An ELF note {namesz, descsz, type, name\0 pad4, desc pad4}. */
export function note(name: string, type: number, desc: Uint8Array): Uint8Array {
  const n = name.length + 1;
  const pn = (n + 3) & ~3, pd = (desc.length + 3) & ~3;
  const out = new Uint8Array(12 + pn + pd);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, n, true); dv.setUint32(4, desc.length, true); dv.setUint32(8, type, true);
  for (let i = 0; i < name.length; i++) out[12 + i] = name.charCodeAt(i);
  out.set(desc, 12 + pn);
  return out;
}
