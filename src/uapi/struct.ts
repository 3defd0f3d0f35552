/**
 * A small declarative codec for the C structs of the KVM ABI: each struct is a table of
 * {field -> (offset, type)} at its x86-64 offsets, and one generic routine reads or writes it.
 * Keeping the layout as data means every offset appears exactly once, and the tests pin them.
 *
 * Conventions: u8/u16/u32 (and signed forms) decode to `number`; u64/s64 decode to `bigint`
 * (struct fields at the ioctl surface are not hot). Fixed arrays decode to arrays, nested structs
 * to objects. Little-endian, as on x86-64.
 */

export type ScalarType = "u8" | "s8" | "u16" | "s16" | "u32" | "s32" | "u64" | "s64";

export type FieldSpec =
  | readonly [offset: number, type: ScalarType]
  | readonly [offset: number, type: ScalarType, count: number]
  | readonly [offset: number, codec: StructCodec<object>]
  | readonly [offset: number, codec: StructCodec<object>, count: number];

const SCALAR_SIZE: Record<ScalarType, number> = { u8: 1, s8: 1, u16: 2, s16: 2, u32: 4, s32: 4, u64: 8, s64: 8 };

function readScalar(dv: DataView, off: number, t: ScalarType): number | bigint {
  switch (t) {
    case "u8": return dv.getUint8(off);
    case "s8": return dv.getInt8(off);
    case "u16": return dv.getUint16(off, true);
    case "s16": return dv.getInt16(off, true);
    case "u32": return dv.getUint32(off, true);
    case "s32": return dv.getInt32(off, true);
    case "u64": return dv.getBigUint64(off, true);
    case "s64": return dv.getBigInt64(off, true);
  }
}

function writeScalar(dv: DataView, off: number, t: ScalarType, v: number | bigint): void {
  switch (t) {
    case "u8": case "s8": dv.setUint8(off, Number(v) & 0xff); return;
    case "u16": case "s16": dv.setUint16(off, Number(v) & 0xffff, true); return;
    case "u32": case "s32": dv.setUint32(off, Number(v) >>> 0, true); return;
    // BigInt.asUintN lets callers pass negative (sign-extended) values for u64 fields.
    case "u64": case "s64": dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), true); return;
  }
}

export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Encoder/decoder of one C struct. `T` is the decoded shape. */
export class StructCodec<T extends object> {
  constructor(
    readonly name: string,
    readonly size: number,
    readonly fields: { readonly [K in keyof T]-?: FieldSpec },
  ) {
    for (const [k, spec] of Object.entries(fields) as [string, FieldSpec][]) {
      const elem = typeof spec[1] === "string" ? SCALAR_SIZE[spec[1]] : spec[1].size;
      const end = spec[0] + elem * (spec[2] ?? 1);
      if (end > size) throw new Error(`${name}.${k} ends at ${end}, beyond size ${size}`);
    }
  }

  /** Decode from `bytes` at `off` (bytes must hold `size` bytes from there). */
  decode(bytes: Uint8Array, off = 0): T {
    return this.decodeView(viewOf(bytes), off);
  }

  decodeView(dv: DataView, off: number): T {
    const out: Record<string, unknown> = {};
    for (const k in this.fields) {
      const spec = this.fields[k] as FieldSpec;
      const at = off + spec[0];
      const t = spec[1];
      const n = spec[2];
      if (typeof t === "string") {
        if (n === undefined) out[k] = readScalar(dv, at, t);
        else {
          const a: (number | bigint)[] = new Array(n);
          for (let i = 0; i < n; i++) a[i] = readScalar(dv, at + i * SCALAR_SIZE[t], t);
          out[k] = a;
        }
      } else if (n === undefined) out[k] = t.decodeView(dv, at);
      else {
        const a: object[] = new Array(n);
        for (let i = 0; i < n; i++) a[i] = t.decodeView(dv, at + i * t.size);
        out[k] = a;
      }
    }
    return out as T;
  }

  /** Encode `v` into `bytes` at `off` (a new zeroed buffer of `size` when omitted). Missing fields encode as 0. */
  encode(v: Partial<T>, bytes: Uint8Array = new Uint8Array(this.size), off = 0): Uint8Array {
    this.encodeView(v, viewOf(bytes), off);
    return bytes;
  }

  encodeView(v: Partial<T>, dv: DataView, off: number): void {
    const src = v as Record<string, unknown>;
    for (const k in this.fields) {
      const spec = this.fields[k] as FieldSpec;
      const at = off + spec[0];
      const t = spec[1];
      const n = spec[2];
      const val = src[k];
      if (typeof t === "string") {
        if (n === undefined) writeScalar(dv, at, t, (val as number | bigint | undefined) ?? 0);
        else {
          const a = (val as (number | bigint)[] | undefined) ?? [];
          for (let i = 0; i < n; i++) writeScalar(dv, at + i * SCALAR_SIZE[t], t, a[i] ?? 0);
        }
      } else if (n === undefined) t.encodeView((val as object | undefined) ?? {}, dv, at);
      else {
        const a = (val as object[] | undefined) ?? [];
        for (let i = 0; i < n; i++) t.encodeView(a[i] ?? {}, dv, at + i * t.size);
      }
    }
  }

  /** A value with every field zero (what decoding `size` zero bytes gives). */
  zero(): T {
    return this.decode(new Uint8Array(this.size));
  }
}
