/**
 * Instruction decoder (SDM Vol. 2 ch. 2): legacy prefixes, REX, VEX (for BMI1/BMI2), the one-byte,
 * 0F, 0F38 and 0F3A opcode maps, ModRM/SIB/displacement (16/32/64-bit addressing, RIP-relative)
 * and immediates. The opcode table (opcodes.ts) gives, per opcode, the handler and the operand
 * format flags; this file turns bytes into the packed decoded form and caches it.
 *
 * Decoded form, packed into six words copied into the CPU (accessors on X86Cpu):
 *   w0: handler (11 bits) | length << 11 | osz << 15 | asz << 17 | rep << 19 | lock << 21
 *       | rex << 22 | 66 << 23 | opcode byte << 24
 *   w1: mod | reg << 2 | rm << 6 | base << 10 | index << 15 | scale << 20 | seg << 22
 *       | segOvr << 25 | VEX.L << 28 | VEX.W << 29
 *   w2: displacement   w3: immediate   w4: second immediate (imm64 high half, far selector, ENTER level)
 *   w5: VEX.vvvv
 * osz/asz: 1 = 16, 2 = 32, 3 = 64 bits. rep: 1 = F3, 2 = F2. base: 0-15, 16 = RIP, 31 = none.
 *
 * Decoded instructions are cached by host-physical address in a direct-mapped table (DCACHE_SIZE
 * entries); a frame holding cached code has its write TLB entries removed, so the first write to
 * it takes the slow path, which invalidates the frame's entries (mmu.ts).
 */
import type { X86Cpu } from "./cpu.js";
import { xlateFill, markCode, TLB_MASK } from "./mmu.js";
import { WALK_X } from "./paging.js";
import { FRAMES_PER_CHUNK_SHIFT, FRAMES_PER_CHUNK } from "../physmem.js";
import { GP_VECTOR, UD_VECTOR } from "./fault.js";

export const DCACHE_BITS = 16;
export const DCACHE_SIZE = 1 << DCACHE_BITS;
export const DCACHE_MASK = DCACHE_SIZE - 1;
/** Words per cache entry (6 decoded words, then the compiled-block index and generation: block_jit.ts). */
export const DW = 8;
const NMAPS_SPEC_BASE = 7 * 256;

// Operand-format flags per opcode.
export const F_MODRM = 1 << 0;
export const F_IB = 1 << 1;      // imm8 (sign-extended into imm)
export const F_IW = 1 << 2;      // imm16
export const F_IZ = 1 << 3;      // imm16/32 by operand size (32 sign-extended for 64-bit)
export const F_IV = 1 << 4;      // imm16/32/64 by operand size (MOV r, imm)
export const F_ENTER = 1 << 5;   // imm16 + imm8
export const F_FAR = 1 << 6;     // ptr16:16/32
export const F_MOFFS = 1 << 7;   // moffs of address size
export const F_D64 = 1 << 8;     // default operand size 64 in 64-bit mode
export const F_F64 = 1 << 9;     // operand size forced to 64 in 64-bit mode
export const F_I64 = 1 << 10;    // invalid in 64-bit mode
export const F_LOCK = 1 << 11;   // LOCK allowed with a memory destination
export const F_GRPIMM = 1 << 12; // F6/F7: imm only for /0 /1
export const F_REGONLY_OK = 1 << 13;
export const F_BYTE = 1 << 14;   // byte operation (for F_IZ-less groups: informational)
export const F_VEX = 1 << 15;    // valid only VEX-encoded (map 4+)

/** Handler indices above the opcode maps for specialized forms (see the end of decode()). */
export const SPEC_ALU_RR32 = NMAPS_SPEC_BASE;
export const SPEC_MOV_RR32 = NMAPS_SPEC_BASE + 1;
export const SPEC_ALU_RR64 = NMAPS_SPEC_BASE + 2;
export const SPEC_MOV_RR64 = NMAPS_SPEC_BASE + 3;
export const SPEC_INCDEC_R = NMAPS_SPEC_BASE + 4;
export const SPEC_MOV_RM = NMAPS_SPEC_BASE + 5;

/** Handler signature: executes the decoded instruction in c. */
export type Handler = (c: X86Cpu) => void;

/** Maps: 0 one-byte, 1 0F, 2 0F38, 3 0F3A, 4 VEX 0F, 5 VEX 0F38, 6 VEX 0F3A. */
export const NMAPS = 7;
export const OPF = new Uint32Array(NMAPS * 256);
/** Handlers by index: map * 256 + opcode, then the specialized forms from NMAPS_SPEC_BASE. */
export const HANDLERS: Handler[] = new Array<Handler>(NMAPS * 256 + 16);

function undefinedOpcode(c: X86Cpu): void {
  c.unimplemented(c.op);
}
HANDLERS.fill(undefinedOpcode);

/** Register the handler of a specialized form (index SPEC_*). */
export function defSpecial(index: number, h: Handler): void {
  HANDLERS[index] = h;
}

/** Register a handler for opcode `opc` of map `map` with format flags. */
export function def(map: number, opc: number, flags: number, h: Handler): void {
  OPF[map * 256 + opc] = flags;
  HANDLERS[map * 256 + opc] = h;
}

/** Opcodes (map*256+byte) whose group members decide LOCK legality: reg values allowed (bitmask). */
const LOCK_GROUP = new Map<number, number>([
  [0x80, 0x7f], [0x81, 0x7f], [0x82, 0x7f], [0x83, 0x7f],
  [0xf6, 0x0c], [0xf7, 0x0c], [0xfe, 0x03], [0xff, 0x03],
  [0x100 + 0xba, 0xe0], [0x100 + 0xc7, 0x02],
]);

function fetchByte(c: X86Cpu, la: number): number {
  const vpn = Math.floor(la / 4096);
  const i = vpn & TLB_MASK;
  if (c.tX[i] === vpn) return c.tM8[i][c.tOff[i] + (la & 4095)];
  const hpa = xlateFill(c, la, WALK_X);
  if (hpa < 0) return 0xff;
  const pfn = Math.floor(hpa / 4096);
  return c.physmem.chunks8[pfn >>> FRAMES_PER_CHUNK_SHIFT]![((pfn & (FRAMES_PER_CHUNK - 1)) << 12) + (hpa & 4095)];
}

/**
 * Decode the instruction at linear address `la` (host-physical `hpa`, -1 if unknown) into c.w0..w5;
 * store it in cache slot `ci` under `key` when it lies within one page.
 */
export function decode(c: X86Cpu, la: number, hpa: number, ci: number, key: number): void {
  const m64 = c.m64;
  let pos = la;
  let n = 0;
  let p66 = 0, p67 = 0, rep = 0, lock = 0, segOvr = 7, rex = 0;
  let b: number;
  // ---- prefixes ----
  for (;;) {
    if (n >= 15) c.raise(GP_VECTOR, 0);
    b = fetchByte(c, pos); pos = m64 ? pos + 1 : (pos + 1) >>> 0; n++;
    switch (b) {
      case 0x66: p66 = 1; rex = 0; continue;
      case 0x67: p67 = 1; rex = 0; continue;
      case 0xf2: rep = 2; rex = 0; continue;
      case 0xf3: rep = 1; rex = 0; continue;
      case 0xf0: lock = 1; rex = 0; continue;
      case 0x26: segOvr = 0; rex = 0; continue;
      case 0x2e: segOvr = 1; rex = 0; continue;
      case 0x36: segOvr = 2; rex = 0; continue;
      case 0x3e: segOvr = 3; rex = 0; continue;
      case 0x64: segOvr = 4; rex = 0; continue;
      case 0x65: segOvr = 5; rex = 0; continue;
    }
    if (m64 && (b & 0xf0) === 0x40) { rex = b; continue; }
    break;
  }
  // ---- opcode ----
  let map = 0;
  let vexV = 0, vexL = 0, vexW = 0;
  if (b === 0x0f) {
    if (n >= 15) c.raise(GP_VECTOR, 0);
    b = fetchByte(c, pos); pos = m64 ? pos + 1 : (pos + 1) >>> 0; n++;
    map = 1;
    if (b === 0x38 || b === 0x3a) {
      map = b === 0x38 ? 2 : 3;
      b = fetchByte(c, pos); pos = m64 ? pos + 1 : (pos + 1) >>> 0; n++;
    }
  } else if ((b === 0xc4 || b === 0xc5) && c.pe && !c.v86) {
    const b1 = fetchByte(c, pos);
    if (m64 || (b1 & 0xc0) === 0xc0) {
      // VEX (SDM 2.3.5): R X B inverted, mmmmm, W vvvv(inverted) L pp
      if (rex || p66 || rep || lock) c.raise(UD_VECTOR, -1);
      pos = m64 ? pos + 1 : (pos + 1) >>> 0; n++;
      let mmmmm = 1, pp: number, r: number;
      if (b === 0xc5) {
        r = ((b1 >> 7) & 1) ^ 1;
        vexV = (~b1 >> 3) & 15; vexL = (b1 >> 2) & 1; pp = b1 & 3;
        rex = 0x40 | (r << 2);
      } else {
        const b2 = fetchByte(c, pos); pos = m64 ? pos + 1 : (pos + 1) >>> 0; n++;
        mmmmm = b1 & 31;
        vexW = (b2 >> 7) & 1;
        vexV = (~b2 >> 3) & 15; vexL = (b2 >> 2) & 1; pp = b2 & 3;
        rex = 0x40 | ((((b1 >> 7) & 1) ^ 1) << 2) | ((((b1 >> 6) & 1) ^ 1) << 1) | (((b1 >> 5) & 1) ^ 1) | (vexW << 3);
        if (!m64) { rex &= ~7; vexV &= 7; }
      }
      if (!m64) { rex = 0; vexW = b === 0xc4 ? vexW : 0; }
      if (pp === 1) p66 = 1; else if (pp === 2) rep = 1; else if (pp === 3) rep = 2;
      if (mmmmm < 1 || mmmmm > 3) { c.lastUnimplemented = (4 << 8) | mmmmm; c.raise(UD_VECTOR, -1); }
      map = 3 + mmmmm;
      b = fetchByte(c, pos); pos = m64 ? pos + 1 : (pos + 1) >>> 0; n++;
    }
  }
  const idx = map * 256 + b;
  const f = OPF[idx];
  if (map >= 4 && f === 0) { c.lastUnimplemented = (map << 8) | b; c.raise(UD_VECTOR, -1); }
  if ((f & F_I64) && m64) c.raise(UD_VECTOR, -1);
  if (map < 4 && (f & F_VEX)) { c.lastUnimplemented = idx; c.raise(UD_VECTOR, -1); }

  // ---- operand and address size ----
  let osz: number, asz: number;
  if (m64) {
    if (f & F_F64) osz = 3;
    else if (rex & 8) osz = 3;
    else if (f & F_D64) osz = p66 ? 1 : 3;
    else osz = p66 ? 1 : 2;
    asz = p67 ? 2 : 3;
  } else {
    const d = c.csz === 2;
    osz = d !== (p66 === 1) ? 2 : 1;
    asz = d !== (p67 === 1) ? 2 : 1;
  }
  // VEX.pp is an opcode extension, not an operand-size prefix; VEX.W selects 64-bit in 64-bit mode.
  if (map >= 4) osz = m64 && vexW ? 3 : 2;

  // ---- ModRM / SIB / displacement ----
  let mod = 0, reg = 0, rm = 0, base = 31, index = 31, scale = 0, disp = 0;
  let seg = segOvr === 7 ? 3 : segOvr;
  if (!(f & F_MODRM)) rm = (rex & 1) << 3;
  else {
    const m = fetchByte(c, pos); pos = m64 ? pos + 1 : (pos + 1) >>> 0; n++;
    mod = m >> 6; reg = ((m >> 3) & 7) | ((rex & 4) << 1); rm = (m & 7) | ((rex & 1) << 3);
    if (mod !== 3) {
      if (asz === 1) {
        switch (m & 7) {
          case 0: base = 3; index = 6; break;
          case 1: base = 3; index = 7; break;
          case 2: base = 5; index = 6; break;
          case 3: base = 5; index = 7; break;
          case 4: base = 6; break;
          case 5: base = 7; break;
          case 6: base = mod === 0 ? 31 : 5; break;
          default: base = 3; break;
        }
        if (segOvr === 7 && base === 5) seg = 2;
        if (mod === 1) { disp = (fetchByte(c, pos) << 24) >> 24; pos = m64 ? pos + 1 : (pos + 1) >>> 0; n++; }
        else if (mod === 2 || (mod === 0 && (m & 7) === 6)) {
          disp = fetchByte(c, pos); pos = (pos + 1) >>> 0;
          disp |= fetchByte(c, pos) << 8; pos = (pos + 1) >>> 0; n += 2;
          if (mod === 2 || (mod === 0 && (m & 7) === 6)) disp = mod === 2 ? (disp << 16) >> 16 : disp;
        }
      } else {
        let rmlow = m & 7;
        if (rmlow === 4) {
          const sib = fetchByte(c, pos); pos = m64 ? pos + 1 : (pos + 1) >>> 0; n++;
          scale = sib >> 6;
          index = ((sib >> 3) & 7) | ((rex & 2) << 2);
          if (index === 4) index = 31;
          rmlow = sib & 7;
          base = rmlow | ((rex & 1) << 3);
          if (rmlow === 5 && mod === 0) {
            base = 31;
            disp = fetchDisp32(c, pos); pos = m64 ? pos + 4 : (pos + 4) >>> 0; n += 4;
          }
        } else if (rmlow === 5 && mod === 0) {
          base = m64 ? 16 : 31;
          disp = fetchDisp32(c, pos); pos = m64 ? pos + 4 : (pos + 4) >>> 0; n += 4;
        } else {
          base = rm;
        }
        if (mod === 1) { disp = (fetchByte(c, pos) << 24) >> 24; pos = m64 ? pos + 1 : (pos + 1) >>> 0; n++; }
        else if (mod === 2) { disp = fetchDisp32(c, pos); pos = m64 ? pos + 4 : (pos + 4) >>> 0; n += 4; }
        if (segOvr === 7 && (base === 4 || base === 5)) seg = 2;
      }
    }
  }

  // FF /2 /4 (near CALL/JMP Ev) are 64-bit in 64-bit mode and FF /6 (PUSH Ev) defaults to it;
  // the other members of group 5 keep the normal operand size (SDM Vol. 2 Table A-6 note).
  if (m64 && idx === 0xff) {
    const r = reg & 7;
    if (r === 2 || r === 4) osz = 3;
    else if (r === 6) osz = p66 ? 1 : 3;
  }

  // ---- LOCK legality (SDM Vol. 2 LOCK: #UD unless a listed RMW instruction with a memory destination) ----
  if (lock) {
    let ok = (f & F_LOCK) !== 0 && (f & F_MODRM) !== 0 && mod !== 3;
    const g = LOCK_GROUP.get(idx);
    if (ok && g !== undefined) ok = ((g >> (reg & 7)) & 1) === 1;
    if (!ok) c.raise(UD_VECTOR, -1);
  }

  // ---- immediates ----
  let imm = 0, imm2 = 0;
  let immKind = f & (F_IB | F_IW | F_IZ | F_IV | F_ENTER | F_FAR | F_MOFFS);
  if ((f & F_GRPIMM) && (reg & 7) > 1) immKind = 0;
  if (immKind) {
    if (immKind & F_IB) { imm = (fetchByte(c, pos) << 24) >> 24; pos = m64 ? pos + 1 : (pos + 1) >>> 0; n++; }
    else if (immKind & F_IW) { imm = fetchN(c, pos, 2); pos = m64 ? pos + 2 : (pos + 2) >>> 0; n += 2; }
    else if (immKind & F_IZ) {
      if (osz === 1) { imm = (fetchN(c, pos, 2) << 16) >> 16; pos = m64 ? pos + 2 : (pos + 2) >>> 0; n += 2; }
      else { imm = fetchDisp32(c, pos); pos = m64 ? pos + 4 : (pos + 4) >>> 0; n += 4; }
    } else if (immKind & F_IV) {
      if (osz === 1) { imm = fetchN(c, pos, 2); pos = m64 ? pos + 2 : (pos + 2) >>> 0; n += 2; }
      else { imm = fetchDisp32(c, pos); pos = m64 ? pos + 4 : (pos + 4) >>> 0; n += 4; }
      if (osz === 3) { imm2 = fetchDisp32(c, pos); pos += 4; n += 4; }
    } else if (immKind & F_ENTER) {
      imm = fetchN(c, pos, 2); pos = m64 ? pos + 2 : (pos + 2) >>> 0;
      imm2 = fetchByte(c, pos); pos = m64 ? pos + 1 : (pos + 1) >>> 0; n += 3;
    } else if (immKind & F_FAR) {
      if (osz === 1) { imm = fetchN(c, pos, 2); pos = (pos + 2) >>> 0; n += 2; }
      else { imm = fetchDisp32(c, pos); pos = (pos + 4) >>> 0; n += 4; }
      imm2 = fetchN(c, pos, 2); pos = (pos + 2) >>> 0; n += 2;
    } else if (immKind & F_MOFFS) {
      if (asz === 1) { disp = fetchN(c, pos, 2); pos = (pos + 2) >>> 0; n += 2; }
      else if (asz === 2) { disp = fetchDisp32(c, pos); pos = m64 ? pos + 4 : (pos + 4) >>> 0; n += 4; }
      else { disp = fetchDisp32(c, pos); imm2 = fetchDisp32(c, pos + 4); pos += 8; n += 8; }
    }
  }
  if (n > 15) c.raise(GP_VECTOR, 0);

  // Register-register forms of the hottest 32-bit instructions get dedicated handlers (the
  // opcode byte stays in w0 so the handlers and lastUnimplemented still see it).
  let h = idx;
  if (map === 0 && mod === 3 && osz >= 2 && !lock) {
    const w = osz === 3 ? 1 : 0;
    if (b < 0x40 && (b & 5) === 1) h = SPEC_ALU_RR32 + 2 * w;
    else if (b === 0x89 || b === 0x8b) h = SPEC_MOV_RR32 + 2 * w;
    else if (b === 0xff && (reg & 7) < 2) h = SPEC_INCDEC_R;
  } else if (map === 0 && mod !== 3 && osz >= 2 && !lock && (b === 0x89 || b === 0x8b)) {
    h = SPEC_MOV_RM;
  }

  c.w0 = h | (n << 11) | (osz << 15) | (asz << 17) | (rep << 19) | (lock << 21) | ((rex ? 1 : 0) << 22) | (p66 << 23) | (b << 24);
  c.w1 = mod | (reg << 2) | (rm << 6) | (base << 10) | (index << 15) | (scale << 20) | (seg << 22) | (segOvr << 25) | (vexL << 28) | (vexW << 29);

  // The words always go to a slot of dcW (c.wb points at them): the cache slot when the
  // instruction is cacheable, else the scratch slot past the cache, so a valid entry is never clobbered.
  const cacheable = hpa >= 0 && (la & 4095) + n <= 4096;
  const o = cacheable ? ci * DW : DCACHE_SIZE * DW;
  const w = c.dcW;
  w[o] = c.w0; w[o + 1] = c.w1; w[o + 2] = disp; w[o + 3] = imm; w[o + 4] = imm2; w[o + 5] = vexV;
  w[o + 6] = 0; w[o + 7] = 0; // no compiled block starts here yet (block_jit.ts)
  c.wb = o;
  if (cacheable) {
    // Replacing another frame's instruction changes a slot that compiled blocks may be built on.
    const old = c.dcTag[ci];
    if (old === old) c.blocks.invalidateRegion(ci);
    c.dcTag[ci] = key;
    markCode(c, Math.floor(hpa / 4096));
  }
}

function fetchN(c: X86Cpu, pos: number, nb: number): number {
  let v = 0;
  for (let k = 0; k < nb; k++) v |= fetchByte(c, c.m64 ? pos + k : (pos + k) >>> 0) << (8 * k);
  return v;
}

function fetchDisp32(c: X86Cpu, pos: number): number {
  return fetchN(c, pos, 4) | 0;
}
