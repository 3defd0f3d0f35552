/**
 * SSE2/SSSE3/SSE4.1/SSE4.2 integer and shuffle operations on 128-bit XMM registers (SDM Vol. 1
 * ch. 11-12, Vol. 2 instruction pages). The register file is one Int32Array, register n at
 * words [n*4, n*4+4); SimdRegs holds typed views of every lane width over it (little-endian, as
 * x86 and every JS host are). Operations take register numbers: `dst = dst op src`. A memory
 * operand is first loaded into a spare register slot (the file may be longer than 16 registers).
 * Every operation computes into a scratch register first, so dst === src is fine.
 */

/** EFLAGS bits produced by PTEST and PCMPxSTRx. */
export const EFL_CF = 0x001;
export const EFL_PF = 0x004;
export const EFL_AF = 0x010;
export const EFL_ZF = 0x040;
export const EFL_SF = 0x080;
export const EFL_OF = 0x800;

/** Typed views over the XMM register file, plus one scratch register. */
export class SimdRegs {
  readonly i32: Int32Array;
  readonly u32: Uint32Array;
  readonly i16: Int16Array;
  readonly u16: Uint16Array;
  readonly i8: Int8Array;
  readonly u8: Uint8Array;

  constructor(readonly xmm: Int32Array) {
    const b = xmm.buffer, o = xmm.byteOffset, n = xmm.length;
    this.i32 = xmm;
    this.u32 = new Uint32Array(b, o, n);
    this.i16 = new Int16Array(b, o, n * 2);
    this.u16 = new Uint16Array(b, o, n * 2);
    this.i8 = new Int8Array(b, o, n * 4);
    this.u8 = new Uint8Array(b, o, n * 4);
  }
}

// Scratch result register.
const T32 = new Int32Array(4);
const TU32 = new Uint32Array(T32.buffer);
const T16 = new Int16Array(T32.buffer);
const TU16 = new Uint16Array(T32.buffer);
const T8 = new Int8Array(T32.buffer);
const TU8 = new Uint8Array(T32.buffer);

function commit(r: SimdRegs, d: number): void {
  const o = d * 4;
  r.i32[o] = T32[0]!;
  r.i32[o + 1] = T32[1]!;
  r.i32[o + 2] = T32[2]!;
  r.i32[o + 3] = T32[3]!;
}

const sat8 = (v: number) => (v > 127 ? 127 : v < -128 ? -128 : v);
const satU8 = (v: number) => (v > 255 ? 255 : v < 0 ? 0 : v);
const sat16 = (v: number) => (v > 32767 ? 32767 : v < -32768 ? -32768 : v);
const satU16 = (v: number) => (v > 65535 ? 65535 : v < 0 ? 0 : v);

// ---------------------------------------------------------------------------------------------
// Add / subtract (wrapping and saturating)

/** PADDB/PADDW/PADDD/PADDQ and PSUBB/W/D/Q: width in bytes (1, 2, 4, 8), sub for subtraction. */
export function padd(r: SimdRegs, d: number, s: number, width: number, sub: boolean): void {
  const sg = sub ? -1 : 1;
  if (width === 1) {
    for (let i = 0, a = d * 16, b = s * 16; i < 16; i++) TU8[i] = r.u8[a + i]! + sg * r.u8[b + i]!;
  } else if (width === 2) {
    for (let i = 0, a = d * 8, b = s * 8; i < 8; i++) TU16[i] = r.u16[a + i]! + sg * r.u16[b + i]!;
  } else if (width === 4) {
    for (let i = 0, a = d * 4, b = s * 4; i < 4; i++) T32[i] = sub ? r.i32[a + i]! - r.i32[b + i]! : r.i32[a + i]! + r.i32[b + i]!;
  } else {
    for (let i = 0, a = d * 4, b = s * 4; i < 4; i += 2) {
      const al = r.u32[a + i]!, bl = r.u32[b + i]!;
      let lo = sub ? al - bl : al + bl;
      let c = 0;
      if (lo > 0xffffffff) { lo -= 0x100000000; c = 1; } else if (lo < 0) { lo += 0x100000000; c = -1; }
      TU32[i] = lo;
      T32[i + 1] = (sub ? r.i32[a + i + 1]! - r.i32[b + i + 1]! : r.i32[a + i + 1]! + r.i32[b + i + 1]!) + c;
    }
  }
  commit(r, d);
}

/** PADDSB/PADDSW/PSUBSB/PSUBSW (signed saturation) and PADDUSB/W, PSUBUSB/W (unsigned): width 1 or 2. */
export function paddSat(r: SimdRegs, d: number, s: number, width: number, sub: boolean, unsigned: boolean): void {
  const sg = sub ? -1 : 1;
  if (width === 1) {
    const a = d * 16, b = s * 16;
    if (unsigned) for (let i = 0; i < 16; i++) TU8[i] = satU8(r.u8[a + i]! + sg * r.u8[b + i]!);
    else for (let i = 0; i < 16; i++) T8[i] = sat8(r.i8[a + i]! + sg * r.i8[b + i]!);
  } else {
    const a = d * 8, b = s * 8;
    if (unsigned) for (let i = 0; i < 8; i++) TU16[i] = satU16(r.u16[a + i]! + sg * r.u16[b + i]!);
    else for (let i = 0; i < 8; i++) T16[i] = sat16(r.i16[a + i]! + sg * r.i16[b + i]!);
  }
  commit(r, d);
}

// ---------------------------------------------------------------------------------------------
// Multiply

/** PMULLW (high=false) / PMULHW (high, signed) / PMULHUW (high, unsigned). */
export function pmulw(r: SimdRegs, d: number, s: number, high: boolean, unsigned: boolean): void {
  const a = d * 8, b = s * 8;
  for (let i = 0; i < 8; i++) {
    const p = unsigned ? r.u16[a + i]! * r.u16[b + i]! : r.i16[a + i]! * r.i16[b + i]!;
    TU16[i] = high ? Math.floor(p / 65536) : p;
  }
  commit(r, d);
}

/** PMULHRSW (SSSE3): rounded high half of the scaled signed product. */
export function pmulhrsw(r: SimdRegs, d: number, s: number): void {
  const a = d * 8, b = s * 8;
  for (let i = 0; i < 8; i++) TU16[i] = (((r.i16[a + i]! * r.i16[b + i]!) >> 14) + 1) >> 1;
  commit(r, d);
}

/** PMULLD (SSE4.1): low 32 bits of signed dword products. */
export function pmulld(r: SimdRegs, d: number, s: number): void {
  for (let i = 0, a = d * 4, b = s * 4; i < 4; i++) T32[i] = Math.imul(r.i32[a + i]!, r.i32[b + i]!);
  commit(r, d);
}

/** 32x32 -> 64 multiply of magnitudes into T32[k], T32[k+1]. */
function mul32x32(x: number, y: number, k: number): void {
  const xl = x & 0xffff, xh = x >>> 16, yl = y & 0xffff, yh = y >>> 16;
  const ll = xl * yl, mid = xh * yl + xl * yh, hh = xh * yh;
  const lo = ll + (mid % 65536) * 65536;
  const carry = Math.floor(lo / 0x100000000);
  TU32[k] = lo >>> 0;
  TU32[k + 1] = (hh + Math.floor(mid / 65536) + carry) >>> 0;
}

/** PMULUDQ (unsigned) / PMULDQ (SSE4.1, signed): even dwords multiplied to 64-bit products. */
export function pmuldq(r: SimdRegs, d: number, s: number, signed: boolean): void {
  for (let k = 0; k < 4; k += 2) {
    const x = r.i32[d * 4 + k]!, y = r.i32[s * 4 + k]!;
    const neg = signed && (x < 0) !== (y < 0);
    mul32x32(signed ? Math.abs(x) : x >>> 0, signed ? Math.abs(y) : y >>> 0, k);
    if (neg) {
      const lo = (~TU32[k]! + 1) >>> 0;
      TU32[k + 1] = (~TU32[k + 1]! + (lo === 0 ? 1 : 0)) >>> 0;
      TU32[k] = lo;
    }
  }
  commit(r, d);
}

/** PMADDWD: signed word products summed pairwise into dwords. */
export function pmaddwd(r: SimdRegs, d: number, s: number): void {
  const a = d * 8, b = s * 8;
  for (let i = 0; i < 4; i++) {
    T32[i] = (r.i16[a + 2 * i]! * r.i16[b + 2 * i]! + r.i16[a + 2 * i + 1]! * r.i16[b + 2 * i + 1]!) | 0;
  }
  commit(r, d);
}

/** PMADDUBSW (SSSE3): unsigned dst bytes times signed src bytes, pairs summed with signed saturation. */
export function pmaddubsw(r: SimdRegs, d: number, s: number): void {
  const a = d * 16, b = s * 16;
  for (let i = 0; i < 8; i++) T16[i] = sat16(r.u8[a + 2 * i]! * r.i8[b + 2 * i]! + r.u8[a + 2 * i + 1]! * r.i8[b + 2 * i + 1]!);
  commit(r, d);
}

// ---------------------------------------------------------------------------------------------
// Averages, sums of absolute differences, min/max, abs, sign

/** PAVGB / PAVGW: rounded unsigned average. */
export function pavg(r: SimdRegs, d: number, s: number, width: number): void {
  if (width === 1) for (let i = 0, a = d * 16, b = s * 16; i < 16; i++) TU8[i] = (r.u8[a + i]! + r.u8[b + i]! + 1) >> 1;
  else for (let i = 0, a = d * 8, b = s * 8; i < 8; i++) TU16[i] = (r.u16[a + i]! + r.u16[b + i]! + 1) >> 1;
  commit(r, d);
}

/** PSADBW: per quadword, the sum of absolute byte differences in the low word. */
export function psadbw(r: SimdRegs, d: number, s: number): void {
  const a = d * 16, b = s * 16;
  T32.fill(0);
  for (let h = 0; h < 2; h++) {
    let sum = 0;
    for (let i = 0; i < 8; i++) sum += Math.abs(r.u8[a + h * 8 + i]! - r.u8[b + h * 8 + i]!);
    T32[h * 2] = sum;
  }
  commit(r, d);
}

/** PMINUB/PMINSB/PMINUW/PMINSW/PMINUD/PMINSD and the PMAX forms: width 1, 2, 4. */
export function pminmax(r: SimdRegs, d: number, s: number, width: number, signed: boolean, max: boolean): void {
  const v = width === 1 ? (signed ? r.i8 : r.u8) : width === 2 ? (signed ? r.i16 : r.u16) : signed ? r.i32 : r.u32;
  const t = width === 1 ? TU8 : width === 2 ? TU16 : TU32;
  const n = 16 / width, a = d * n, b = s * n;
  for (let i = 0; i < n; i++) {
    const x = v[a + i]!, y = v[b + i]!;
    t[i] = max ? (x > y ? x : y) : x < y ? x : y;
  }
  commit(r, d);
}

/** PABSB/PABSW/PABSD (SSSE3): dst = |src| (the most negative value stays as its unsigned magnitude). */
export function pabs(r: SimdRegs, d: number, s: number, width: number): void {
  if (width === 1) for (let i = 0, b = s * 16; i < 16; i++) TU8[i] = Math.abs(r.i8[b + i]!);
  else if (width === 2) for (let i = 0, b = s * 8; i < 8; i++) TU16[i] = Math.abs(r.i16[b + i]!);
  else for (let i = 0, b = s * 4; i < 4; i++) TU32[i] = Math.abs(r.i32[b + i]!);
  commit(r, d);
}

/** PSIGNB/PSIGNW/PSIGND (SSSE3): negate, zero or keep dst by the sign of src. */
export function psign(r: SimdRegs, d: number, s: number, width: number): void {
  const v = width === 1 ? r.i8 : width === 2 ? r.i16 : r.i32;
  const t = width === 1 ? T8 : width === 2 ? T16 : T32;
  const n = 16 / width, a = d * n, b = s * n;
  for (let i = 0; i < n; i++) {
    const y = v[b + i]!;
    t[i] = y < 0 ? -v[a + i]! : y === 0 ? 0 : v[a + i]!;
  }
  commit(r, d);
}

// ---------------------------------------------------------------------------------------------
// Compares and logic

/** PCMPEQB/W/D/Q and PCMPGTB/W/D/Q (signed): all-ones where true. */
export function pcmp(r: SimdRegs, d: number, s: number, width: number, gt: boolean): void {
  if (width === 8) {
    for (let k = 0; k < 4; k += 2) {
      const ah = r.i32[d * 4 + k + 1]!, bh = r.i32[s * 4 + k + 1]!, al = r.u32[d * 4 + k]!, bl = r.u32[s * 4 + k]!;
      const t = gt ? ah > bh || (ah === bh && al > bl) : ah === bh && al === bl;
      T32[k] = T32[k + 1] = t ? -1 : 0;
    }
  } else {
    const v = width === 1 ? r.i8 : width === 2 ? r.i16 : r.i32;
    const t = width === 1 ? T8 : width === 2 ? T16 : T32;
    const n = 16 / width, a = d * n, b = s * n;
    for (let i = 0; i < n; i++) t[i] = (gt ? v[a + i]! > v[b + i]! : v[a + i] === v[b + i]) ? -1 : 0;
  }
  commit(r, d);
}

export const LOGIC_AND = 0;
export const LOGIC_ANDN = 1;
export const LOGIC_OR = 2;
export const LOGIC_XOR = 3;

/** PAND / PANDN (dst = ~dst & src) / POR / PXOR (also ANDPS, ORPD, …). */
export function plogic(r: SimdRegs, d: number, s: number, op: number): void {
  const a = d * 4, b = s * 4, x = r.i32;
  for (let i = 0; i < 4; i++) {
    const p = x[a + i]!, q = x[b + i]!;
    x[a + i] = op === LOGIC_AND ? p & q : op === LOGIC_ANDN ? ~p & q : op === LOGIC_OR ? p | q : p ^ q;
  }
}

/** PTEST (SSE4.1): returns EFLAGS ZF = (dst & src) == 0, CF = (~dst & src) == 0; others clear. */
export function ptest(r: SimdRegs, d: number, s: number): number {
  let and = 0, andn = 0;
  for (let i = 0; i < 4; i++) {
    and |= r.i32[d * 4 + i]! & r.i32[s * 4 + i]!;
    andn |= ~r.i32[d * 4 + i]! & r.i32[s * 4 + i]!;
  }
  return (and === 0 ? EFL_ZF : 0) | (andn === 0 ? EFL_CF : 0);
}

/** PMOVMSKB: the byte sign bits of a register as a 16-bit mask. */
export function pmovmskb(r: SimdRegs, s: number): number {
  let m = 0;
  for (let i = 0; i < 16; i++) m |= (r.u8[s * 16 + i]! >>> 7) << i;
  return m;
}

// ---------------------------------------------------------------------------------------------
// Shifts

/** Shift count from the low quadword of src (PSLLW xmm, xmm/m128 forms); 64 stands for "too big". */
export function shiftCountFromReg(r: SimdRegs, s: number): number {
  return r.u32[s * 4 + 1]! !== 0 || r.u32[s * 4]! > 63 ? 64 : r.u32[s * 4]!;
}

export const SHIFT_LL = 0;
export const SHIFT_RL = 1;
export const SHIFT_RA = 2;

/** PSLLW/D/Q, PSRLW/D/Q, PSRAW/D by count (imm8 or shiftCountFromReg). */
export function pshift(r: SimdRegs, d: number, width: number, kind: number, count: number): void {
  const bits = width * 8;
  if (width === 8) {
    for (let k = 0; k < 4; k += 2) {
      const lo = r.u32[d * 4 + k]!, hi = r.u32[d * 4 + k + 1]!;
      let nl = 0, nh = 0;
      if (count < 64) {
        if (kind === SHIFT_LL) {
          if (count >= 32) { nh = lo << (count - 32); nl = 0; }
          else if (count > 0) { nh = (hi << count) | (lo >>> (32 - count)); nl = lo << count; }
          else { nh = hi; nl = lo; }
        } else {
          if (count >= 32) { nl = hi >>> (count - 32); nh = 0; }
          else if (count > 0) { nl = (lo >>> count) | (hi << (32 - count)); nh = hi >>> count; }
          else { nh = hi; nl = lo; }
        }
      }
      TU32[k] = nl;
      TU32[k + 1] = nh;
    }
  } else if (width === 4) {
    for (let i = 0; i < 4; i++) {
      const v = r.i32[d * 4 + i]!;
      if (kind === SHIFT_RA) T32[i] = v >> (count > 31 ? 31 : count);
      else if (count > 31) T32[i] = 0;
      else T32[i] = kind === SHIFT_LL ? v << count : v >>> count;
    }
  } else {
    for (let i = 0; i < 8; i++) {
      const v = r.i16[d * 8 + i]!;
      if (kind === SHIFT_RA) T16[i] = v >> (count > 15 ? 15 : count);
      else if (count >= bits) T16[i] = 0;
      else TU16[i] = kind === SHIFT_LL ? v << count : (v & 0xffff) >>> count;
    }
  }
  commit(r, d);
}

/** PSLLDQ (left=true) / PSRLDQ: byte shift of the whole register by imm8 (>15 clears). */
export function pshiftBytes(r: SimdRegs, d: number, count: number, left: boolean): void {
  const a = d * 16;
  for (let i = 0; i < 16; i++) {
    const j = left ? i - count : i + count;
    TU8[i] = j >= 0 && j < 16 ? r.u8[a + j]! : 0;
  }
  commit(r, d);
}

// ---------------------------------------------------------------------------------------------
// Pack / unpack / shuffle / align / blend

/** PACKSSWB (width 2 signed), PACKUSWB (width 2 unsigned), PACKSSDW (4 signed), PACKUSDW (4 unsigned, SSE4.1). */
export function pack(r: SimdRegs, d: number, s: number, width: number, unsigned: boolean): void {
  if (width === 2) {
    for (let i = 0; i < 8; i++) {
      const x = r.i16[d * 8 + i]!, y = r.i16[s * 8 + i]!;
      if (unsigned) { TU8[i] = satU8(x); TU8[i + 8] = satU8(y); }
      else { T8[i] = sat8(x); T8[i + 8] = sat8(y); }
    }
  } else {
    for (let i = 0; i < 4; i++) {
      const x = r.i32[d * 4 + i]!, y = r.i32[s * 4 + i]!;
      if (unsigned) { TU16[i] = satU16(x); TU16[i + 4] = satU16(y); }
      else { T16[i] = sat16(x); T16[i + 4] = sat16(y); }
    }
  }
  commit(r, d);
}

/** PUNPCKL/PUNPCKH BW, WD, DQ, QDQ: interleave the low (high=false) or high halves; width 1, 2, 4, 8. */
export function punpck(r: SimdRegs, d: number, s: number, width: number, high: boolean): void {
  const n = 8 / width; // elements taken from each source
  const base = high ? 8 : 0;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < width; k++) {
      TU8[2 * i * width + k] = r.u8[d * 16 + base + i * width + k]!;
      TU8[(2 * i + 1) * width + k] = r.u8[s * 16 + base + i * width + k]!;
    }
  }
  commit(r, d);
}

/** PSHUFD: dword i of dst = dword imm[2i+1:2i] of src. */
export function pshufd(r: SimdRegs, d: number, s: number, imm: number): void {
  for (let i = 0; i < 4; i++) T32[i] = r.i32[s * 4 + ((imm >>> (2 * i)) & 3)]!;
  commit(r, d);
}

/** PSHUFLW (high=false) / PSHUFHW: shuffle the words of one half, copy the other half. */
export function pshufw(r: SimdRegs, d: number, s: number, imm: number, high: boolean): void {
  const b = s * 8, h = high ? 4 : 0, o = high ? 0 : 4;
  for (let i = 0; i < 4; i++) {
    TU16[h + i] = r.u16[b + h + ((imm >>> (2 * i)) & 3)]!;
    TU16[o + i] = r.u16[b + o + i]!;
  }
  commit(r, d);
}

/** PSHUFB (SSSE3): byte i = bit 7 of src[i] ? 0 : dst[src[i] & 15]. */
export function pshufb(r: SimdRegs, d: number, s: number): void {
  for (let i = 0; i < 16; i++) {
    const c = r.u8[s * 16 + i]!;
    TU8[i] = c & 0x80 ? 0 : r.u8[d * 16 + (c & 15)]!;
  }
  commit(r, d);
}

/** PALIGNR (SSSE3): dst = low 16 bytes of (dst:src) >> (imm*8). */
export function palignr(r: SimdRegs, d: number, s: number, imm: number): void {
  for (let i = 0; i < 16; i++) {
    const j = i + imm;
    TU8[i] = j < 16 ? r.u8[s * 16 + j]! : j < 32 ? r.u8[d * 16 + j - 16]! : 0;
  }
  commit(r, d);
}

/** PBLENDW (SSE4.1): word i from src where imm bit i is set. */
export function pblendw(r: SimdRegs, d: number, s: number, imm: number): void {
  for (let i = 0; i < 8; i++) TU16[i] = (imm >>> i) & 1 ? r.u16[s * 8 + i]! : r.u16[d * 8 + i]!;
  commit(r, d);
}

/** BLENDPS (width 4) / BLENDPD (width 8): element i from src where imm bit i is set. */
export function blendImm(r: SimdRegs, d: number, s: number, imm: number, width: number): void {
  for (let i = 0; i < 4; i++) T32[i] = (imm >>> (width === 8 ? i >> 1 : i)) & 1 ? r.i32[s * 4 + i]! : r.i32[d * 4 + i]!;
  commit(r, d);
}

/** PBLENDVB (width 1) / BLENDVPS (4) / BLENDVPD (8): element from src where the mask element's top bit is set (mask = XMM0 for the legacy forms). */
export function blendv(r: SimdRegs, d: number, s: number, mask: number, width: number): void {
  for (let i = 0; i < 16; i++) {
    const top = r.u8[mask * 16 + (i - (i % width)) + width - 1]! & 0x80;
    TU8[i] = top ? r.u8[s * 16 + i]! : r.u8[d * 16 + i]!;
  }
  commit(r, d);
}

/** PMOVSXBW/BD/BQ/WD/WQ/DQ and PMOVZX…: widen the low elements of src from `from` to `to` bytes. */
export function pmovx(r: SimdRegs, d: number, s: number, from: number, to: number, signed: boolean): void {
  const n = 16 / to;
  for (let i = 0; i < n; i++) {
    const v = from === 1 ? (signed ? r.i8[s * 16 + i]! : r.u8[s * 16 + i]!) : from === 2 ? (signed ? r.i16[s * 8 + i]! : r.u16[s * 8 + i]!) : signed ? r.i32[s * 4 + i]! : r.u32[s * 4 + i]!;
    if (to === 2) T16[i] = v;
    else if (to === 4) T32[i] = v;
    else {
      TU32[2 * i] = v >>> 0;
      T32[2 * i + 1] = signed && v < 0 ? -1 : 0;
    }
  }
  commit(r, d);
}

/** PINSRB/W/D (width 1, 2, 4): insert a value into element imm (masked to the element count). */
export function pinsr(r: SimdRegs, d: number, value: number, imm: number, width: number): void {
  if (width === 1) r.u8[d * 16 + (imm & 15)] = value;
  else if (width === 2) r.u16[d * 8 + (imm & 7)] = value;
  else r.i32[d * 4 + (imm & 3)] = value;
}

/** PEXTRB/W/D (width 1, 2, 4): the element zero-extended (PEXTRQ: two PEXTRD). */
export function pextr(r: SimdRegs, s: number, imm: number, width: number): number {
  if (width === 1) return r.u8[s * 16 + (imm & 15)]!;
  if (width === 2) return r.u16[s * 8 + (imm & 7)]!;
  return r.u32[s * 4 + (imm & 3)]!;
}

// ---------------------------------------------------------------------------------------------
// Horizontal operations

/** PHADDW/PHADDD/PHSUBW/PHSUBD (SSSE3, wrapping) and PHADDSW/PHSUBSW (sat, width 2). */
export function phaddsub(r: SimdRegs, d: number, s: number, width: number, sub: boolean, sat: boolean): void {
  const n = 16 / width, half = n / 2;
  for (let i = 0; i < n; i++) {
    const src = i < half ? d : s, k = (i % half) * 2;
    if (width === 2) {
      const x = r.i16[src * 8 + k]!, y = r.i16[src * 8 + k + 1]!;
      const v = sub ? x - y : x + y;
      T16[i] = sat ? sat16(v) : v;
    } else {
      const x = r.i32[src * 4 + k]!, y = r.i32[src * 4 + k + 1]!;
      T32[i] = sub ? x - y : x + y;
    }
  }
  commit(r, d);
}

/** PHMINPOSUW (SSE4.1): minimum unsigned word in bits 15:0, its index in bits 18:16, rest zero. */
export function phminposuw(r: SimdRegs, d: number, s: number): void {
  let m = r.u16[s * 8]!, idx = 0;
  for (let i = 1; i < 8; i++) {
    const v = r.u16[s * 8 + i]!;
    if (v < m) { m = v; idx = i; }
  }
  T32.fill(0);
  T32[0] = m | (idx << 16);
  commit(r, d);
}

/** MPSADBW (SSE4.1): eight sums of absolute differences of 4-byte groups (imm[2]: dst offset 4; imm[1:0]: src block). */
export function mpsadbw(r: SimdRegs, d: number, s: number, imm: number): void {
  const da = d * 16 + ((imm >>> 2) & 1) * 4, sb = s * 16 + (imm & 3) * 4;
  for (let i = 0; i < 8; i++) {
    let sum = 0;
    for (let k = 0; k < 4; k++) sum += Math.abs(r.u8[da + i + k]! - r.u8[sb + k]!);
    TU16[i] = sum;
  }
  commit(r, d);
}

// ---------------------------------------------------------------------------------------------
// SSE4.2 string compares (SDM Vol.1 12.10.2, Vol.2 4.1 "Imm8 control byte")

/** ECX result of the last PCMPESTRI/PCMPISTRI. */
export const strResult = { ecx: 0 };

function strElem(r: SimdRegs, reg: number, i: number, fmt: number): number {
  switch (fmt) {
    case 0: return r.u8[reg * 16 + i]!;
    case 1: return r.u16[reg * 8 + i]!;
    case 2: return r.i8[reg * 16 + i]!;
    default: return r.i16[reg * 8 + i]!;
  }
}

function implicitLength(r: SimdRegs, reg: number, fmt: number): number {
  const n = fmt & 1 ? 8 : 16;
  for (let i = 0; i < n; i++) if (strElem(r, reg, i, fmt) === 0) return i;
  return n;
}

/** Explicit length from EAX/EDX (RAX/RDX with REX.W: pass the low 32 bits as signed, saturated by the caller). */
function explicitLength(v: number, n: number): number {
  const a = Math.abs(v | 0);
  return a > n ? n : a;
}

/**
 * PCMPESTRI/PCMPESTRM (explicit: len1 = EAX, len2 = EDX) and PCMPISTRI/PCMPISTRM (implicit,
 * null-terminated): src1 = register d, src2 = register s. Index forms set strResult.ecx; mask
 * forms write XMM register `maskReg` (0 for the legacy encodings). Returns EFLAGS (CF ZF SF OF;
 * AF PF clear).
 */
export function pcmpstr(r: SimdRegs, d: number, s: number, imm: number, explicit: boolean, eax: number, edx: number, mask: boolean, maskReg = 0): number {
  const fmt = imm & 3, n = fmt & 1 ? 8 : 16;
  const agg = (imm >>> 2) & 3, pol = (imm >>> 4) & 3;
  const len1 = explicit ? explicitLength(eax, n) : implicitLength(r, d, fmt);
  const len2 = explicit ? explicitLength(edx, n) : implicitLength(r, s, fmt);
  let res = 0;
  for (let j = 0; j < n; j++) {
    let bit = 0;
    if (agg === 0) {
      // Equal any: src2[j] is one of the src1 characters.
      if (j < len2) {
        const v = strElem(r, s, j, fmt);
        for (let i = 0; i < len1; i++) if (strElem(r, d, i, fmt) === v) { bit = 1; break; }
      }
    } else if (agg === 1) {
      // Ranges: src1 holds [lo, hi] pairs.
      if (j < len2) {
        const v = strElem(r, s, j, fmt);
        for (let i = 0; i + 1 < len1; i += 2) if (strElem(r, d, i, fmt) <= v && v <= strElem(r, d, i + 1, fmt)) { bit = 1; break; }
      }
    } else if (agg === 2) {
      // Equal each: invalid in both compares true, in one compares false.
      if (j < len1 && j < len2) bit = strElem(r, d, j, fmt) === strElem(r, s, j, fmt) ? 1 : 0;
      else bit = j >= len1 && j >= len2 ? 1 : 0;
    } else {
      // Equal ordered: src1 (needle) matches src2 starting at j; running off the end matches.
      bit = 1;
      for (let k = 0; k < len1 && j + k < n; k++) {
        if (j + k >= len2 || strElem(r, d, k, fmt) !== strElem(r, s, j + k, fmt)) { bit = 0; break; }
      }
    }
    res |= bit << j;
  }
  const all = (1 << n) - 1;
  if (pol === 1) res ^= all;
  else if (pol === 3) res ^= (1 << len2) - 1;
  let flags = 0;
  if (res !== 0) flags |= EFL_CF;
  if (len2 < n) flags |= EFL_ZF;
  if (len1 < n) flags |= EFL_SF;
  if (res & 1) flags |= EFL_OF;
  if (mask) {
    T32.fill(0);
    if (imm & 0x40) {
      for (let i = 0; i < n; i++) {
        const v = (res >>> i) & 1 ? -1 : 0;
        if (n === 16) T8[i] = v;
        else T16[i] = v;
      }
    } else {
      T32[0] = res;
    }
    commit(r, maskReg);
  } else {
    strResult.ecx = res === 0 ? n : imm & 0x40 ? 31 - Math.clz32(res) : 31 - Math.clz32(res & -res);
  }
  return flags;
}
