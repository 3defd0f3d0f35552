/**
 * The KVM_GET_STATS_FD file (virt/kvm/binary_stats.c, api.rst "KVM_GET_STATS_FD"):
 *   header {u32 flags, name_size, num_desc, id_offset, desc_offset, data_offset} (24 bytes),
 *   the id string ("kvm-<pid>" or "kvm-<pid>/vcpu-<id>", name_size bytes),
 *   num_desc descriptors {u32 flags; s16 exponent; u16 size; u32 offset; u32 bucket_size;
 *   char name[name_size]}, then the data block of u64 values (offsets relative to its start).
 * Header, id and descriptors never change; the data block is read live at read() time.
 */
import type { HostFile } from "../../host/file.js";
import type { KvmStatDesc } from "./kvm_host.js";
import { KVM_STATS_NAME_SIZE, type KvmStats } from "./stats.js";

export const KVM_STATS_HEADER_SIZE = 24;
export const KVM_STATS_DESC_SIZE = 16 + KVM_STATS_NAME_SIZE;

const enc = new TextEncoder();

export class KvmStatsFd implements HostFile {
  readonly fileKind = "kvm-stats";
  /** Header + id + descriptors. */
  private readonly head: Uint8Array;
  readonly dataOffset: number;
  readonly dataSize: number;
  /** u64 offset (in values) of each descriptor inside the data block. */
  private readonly valueIndex: number[] = [];

  constructor(
    readonly id: string,
    private readonly stats: KvmStats,
  ) {
    const descs = stats.descs;
    const idOffset = KVM_STATS_HEADER_SIZE;
    const descOffset = idOffset + KVM_STATS_NAME_SIZE;
    this.dataOffset = descOffset + descs.length * KVM_STATS_DESC_SIZE;
    const head = new Uint8Array(this.dataOffset);
    const dv = new DataView(head.buffer);
    dv.setUint32(0, 0, true); // flags
    dv.setUint32(4, KVM_STATS_NAME_SIZE, true);
    dv.setUint32(8, descs.length, true);
    dv.setUint32(12, idOffset, true);
    dv.setUint32(16, descOffset, true);
    dv.setUint32(20, this.dataOffset, true);
    writeName(head, idOffset, id);
    let values = 0;
    descs.forEach((d: KvmStatDesc, i) => {
      const o = descOffset + i * KVM_STATS_DESC_SIZE;
      dv.setUint32(o, d.flags, true);
      dv.setInt16(o + 4, d.exponent, true);
      dv.setUint16(o + 6, d.size, true);
      dv.setUint32(o + 8, values * 8, true);
      dv.setUint32(o + 12, d.bucketSize, true);
      writeName(head, o + 16, d.name);
      this.valueIndex.push(values);
      values += d.size;
    });
    this.head = head;
    this.dataSize = values * 8;
  }

  /** Total file size. */
  get size(): number {
    return this.dataOffset + this.dataSize;
  }

  /** pread(fd, buf, len, offset): bytes [offset, offset+len) clipped to the file. */
  read(offset: number, len: number): Uint8Array {
    const all = this.bytes();
    const start = Math.max(0, Math.min(offset, all.length));
    return all.slice(start, Math.min(all.length, start + Math.max(0, len)));
  }

  /** The whole file with the current values. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    out.set(this.head, 0);
    const dv = new DataView(out.buffer);
    this.stats.descs.forEach((d, i) => {
      const v = this.stats.values(d);
      const base = this.dataOffset + this.valueIndex[i] * 8;
      for (let j = 0; j < d.size; j++) dv.setBigUint64(base + 8 * j, BigInt(Math.max(0, Math.floor(v[j] ?? 0))), true);
    });
    return out;
  }
}

function writeName(buf: Uint8Array, off: number, s: string): void {
  const b = enc.encode(s);
  if (b.length >= KVM_STATS_NAME_SIZE) throw new Error(`stats name too long: ${s}`);
  buf.set(b, off);
}

/** Parse a stats file (what a reader such as kvm_stat does); used by tests and tools. */
export function parseStatsFd(bytes: Uint8Array): { id: string; stats: { name: string; flags: number; exponent: number; values: bigint[] }[] } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nameSize = dv.getUint32(4, true);
  const n = dv.getUint32(8, true);
  const idOff = dv.getUint32(12, true);
  const descOff = dv.getUint32(16, true);
  const dataOff = dv.getUint32(20, true);
  const dec = new TextDecoder();
  const str = (o: number): string => {
    const raw = bytes.subarray(o, o + nameSize);
    const z = raw.indexOf(0);
    return dec.decode(z < 0 ? raw : raw.subarray(0, z));
  };
  const stats = [];
  for (let i = 0; i < n; i++) {
    const o = descOff + i * (16 + nameSize);
    const size = dv.getUint16(o + 6, true);
    const off = dv.getUint32(o + 8, true);
    const values: bigint[] = [];
    for (let j = 0; j < size; j++) values.push(dv.getBigUint64(dataOff + off + 8 * j, true));
    stats.push({ name: str(o + 16), flags: dv.getUint32(o, true), exponent: dv.getInt16(o + 4, true), values });
  }
  return { id: str(idOff), stats };
}
