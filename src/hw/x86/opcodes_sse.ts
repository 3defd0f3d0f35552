/**
 * Opcode table entries of MMX, SSE, SSE2, SSE3, SSSE3, SSE4.1 and SSE4.2 (legacy encodings,
 * SDM Vol. 2 Appendix A Tables ). Every opcode byte has one handler that selects the
 * form by its mandatory prefix (none, 66, F3, F2; ops/sse.ts pfx()). VEX forms stay undefined.
 */
import { def, F_MODRM as M, F_IB as IB } from "./decode.js";
import { SSE_ADD, SSE_SUB, SSE_MUL, SSE_DIV, SSE_MIN, SSE_MAX, SSE_SQRT } from "./fp/sse_float.js";
import { LOGIC_AND, LOGIC_ANDN, LOGIC_OR, LOGIC_XOR, SHIFT_LL, SHIFT_RL, SHIFT_RA } from "./fp/simd_int.js";
import * as si from "./ops/sse_int.js";
import * as sf from "./ops/sse_fp.js";
import * as sm from "./ops/sse_mov.js";

const O = si.OPS;
const { MM_LANE: L, MM_COMBINE: C, MM_HIGH: H } = si;

// ---- 0F map: moves ----
def(1, 0x10, M, sm.mov10); def(1, 0x11, M, sm.mov11);
def(1, 0x12, M, sm.mov12); def(1, 0x13, M, sm.movHalfStore(false));
def(1, 0x16, M, sm.mov16); def(1, 0x17, M, sm.movHalfStore(true));
def(1, 0x28, M, sm.mov28); def(1, 0x29, M, sm.mov29); def(1, 0x2b, M, sm.movnt2b);
def(1, 0x6e, M, sm.movdTo); def(1, 0x7e, M, sm.movdFrom);
def(1, 0x6f, M, sm.mov6f); def(1, 0x7f, M, sm.mov7f);
def(1, 0xd6, M, sm.movD6); def(1, 0xe7, M, sm.movntE7);
def(1, 0xf0, M, sm.lddqu); def(1, 0xf7, M, sm.maskmov);
def(1, 0xc3, M, sm.movnti);
def(1, 0x77, 0, sm.emms);

// ---- 0F map: floating point ----
def(1, 0x14, M, sf.unpckInsn(false)); def(1, 0x15, M, sf.unpckInsn(true));
def(1, 0x2a, M, sf.cvt2a); def(1, 0x2c, M, sf.cvtToInt(true)); def(1, 0x2d, M, sf.cvtToInt(false));
def(1, 0x2e, M, sf.comisInsn(true)); def(1, 0x2f, M, sf.comisInsn(false));
def(1, 0x50, M, sf.movmsk);
def(1, 0x51, M, sf.fpArith(SSE_SQRT));
def(1, 0x52, M, sf.approxInsn(true)); def(1, 0x53, M, sf.approxInsn(false));
def(1, 0x54, M, sf.fpLogic(LOGIC_AND)); def(1, 0x55, M, sf.fpLogic(LOGIC_ANDN));
def(1, 0x56, M, sf.fpLogic(LOGIC_OR)); def(1, 0x57, M, sf.fpLogic(LOGIC_XOR));
def(1, 0x58, M, sf.fpArith(SSE_ADD)); def(1, 0x59, M, sf.fpArith(SSE_MUL));
def(1, 0x5a, M, sf.cvt5a); def(1, 0x5b, M, sf.cvt5b);
def(1, 0x5c, M, sf.fpArith(SSE_SUB)); def(1, 0x5d, M, sf.fpArith(SSE_MIN));
def(1, 0x5e, M, sf.fpArith(SSE_DIV)); def(1, 0x5f, M, sf.fpArith(SSE_MAX));
def(1, 0x7c, M, sf.haddInsn(false)); def(1, 0x7d, M, sf.haddInsn(true));
def(1, 0xc2, M | IB, sf.cmpInsn);
def(1, 0xc6, M | IB, sf.shufInsn);
def(1, 0xd0, M, sf.addsubInsn);
def(1, 0xe6, M, sf.cvtE6);

// ---- 0F map: integer (MMX and 66 XMM forms) ----
def(1, 0x60, M, si.intBoth(O.punpcklbw, L)); def(1, 0x61, M, si.intBoth(O.punpcklwd, L)); def(1, 0x62, M, si.intBoth(O.punpckldq, L));
def(1, 0x63, M, si.intBoth(O.packsswb, C));
def(1, 0x64, M, si.intBoth(O.pcmpgtb, L)); def(1, 0x65, M, si.intBoth(O.pcmpgtw, L)); def(1, 0x66, M, si.intBoth(O.pcmpgtd, L));
def(1, 0x67, M, si.intBoth(O.packuswb, C));
def(1, 0x68, M, si.intBinary(O.punpckhbw, O.punpcklbw, H));
def(1, 0x69, M, si.intBinary(O.punpckhwd, O.punpcklwd, H));
def(1, 0x6a, M, si.intBinary(O.punpckhdq, O.punpckldq, H));
def(1, 0x6b, M, si.intBoth(O.packssdw, C));
def(1, 0x6c, M, si.int66(O.punpcklqdq)); def(1, 0x6d, M, si.int66(O.punpckhqdq));
def(1, 0x70, M | IB, si.pshuf);
def(1, 0x71, M | IB, si.shiftGroup(2)); def(1, 0x72, M | IB, si.shiftGroup(4)); def(1, 0x73, M | IB, si.shiftGroup(8));
def(1, 0x74, M, si.intBoth(O.pcmpeqb, L)); def(1, 0x75, M, si.intBoth(O.pcmpeqw, L)); def(1, 0x76, M, si.intBoth(O.pcmpeqd, L));
def(1, 0xc4, M | IB, si.pinsrw); def(1, 0xc5, M | IB, si.pextrwReg);
def(1, 0xd1, M, si.shiftByReg(2, SHIFT_RL)); def(1, 0xd2, M, si.shiftByReg(4, SHIFT_RL)); def(1, 0xd3, M, si.shiftByReg(8, SHIFT_RL));
def(1, 0xd4, M, si.intBoth(O.paddq, L)); def(1, 0xd5, M, si.intBoth(O.pmullw, L));
def(1, 0xd7, M, si.pmovmskbInsn);
def(1, 0xd8, M, si.intBoth(O.psubusb, L)); def(1, 0xd9, M, si.intBoth(O.psubusw, L));
def(1, 0xda, M, si.intBoth(O.pminub, L)); def(1, 0xdb, M, si.intBoth(O.pand, L));
def(1, 0xdc, M, si.intBoth(O.paddusb, L)); def(1, 0xdd, M, si.intBoth(O.paddusw, L));
def(1, 0xde, M, si.intBoth(O.pmaxub, L)); def(1, 0xdf, M, si.intBoth(O.pandn, L));
def(1, 0xe0, M, si.intBoth(O.pavgb, L));
def(1, 0xe1, M, si.shiftByReg(2, SHIFT_RA)); def(1, 0xe2, M, si.shiftByReg(4, SHIFT_RA));
def(1, 0xe3, M, si.intBoth(O.pavgw, L)); def(1, 0xe4, M, si.intBoth(O.pmulhuw, L)); def(1, 0xe5, M, si.intBoth(O.pmulhw, L));
def(1, 0xe8, M, si.intBoth(O.psubsb, L)); def(1, 0xe9, M, si.intBoth(O.psubsw, L));
def(1, 0xea, M, si.intBoth(O.pminsw, L)); def(1, 0xeb, M, si.intBoth(O.por, L));
def(1, 0xec, M, si.intBoth(O.paddsb, L)); def(1, 0xed, M, si.intBoth(O.paddsw, L));
def(1, 0xee, M, si.intBoth(O.pmaxsw, L)); def(1, 0xef, M, si.intBoth(O.pxor, L));
def(1, 0xf1, M, si.shiftByReg(2, SHIFT_LL)); def(1, 0xf2, M, si.shiftByReg(4, SHIFT_LL)); def(1, 0xf3, M, si.shiftByReg(8, SHIFT_LL));
def(1, 0xf4, M, si.intBoth(O.pmuludq, L)); def(1, 0xf5, M, si.intBoth(O.pmaddwd, L)); def(1, 0xf6, M, si.intBoth(O.psadbw, L));
def(1, 0xf8, M, si.intBoth(O.psubb, L)); def(1, 0xf9, M, si.intBoth(O.psubw, L));
def(1, 0xfa, M, si.intBoth(O.psubd, L)); def(1, 0xfb, M, si.intBoth(O.psubq, L));
def(1, 0xfc, M, si.intBoth(O.paddb, L)); def(1, 0xfd, M, si.intBoth(O.paddw, L)); def(1, 0xfe, M, si.intBoth(O.paddd, L));

// ---- 0F 38 map: SSSE3 (MMX and 66 forms), SSE4.1, SSE4.2 (66 only) ----
def(2, 0x00, M, si.intBinary(O.pshufb, O.pshufbMm, L));
def(2, 0x01, M, si.intBoth(O.phaddw, C)); def(2, 0x02, M, si.intBoth(O.phaddd, C)); def(2, 0x03, M, si.intBoth(O.phaddsw, C));
def(2, 0x04, M, si.intBoth(O.pmaddubsw, L));
def(2, 0x05, M, si.intBoth(O.phsubw, C)); def(2, 0x06, M, si.intBoth(O.phsubd, C)); def(2, 0x07, M, si.intBoth(O.phsubsw, C));
def(2, 0x08, M, si.intBoth(O.psignb, L)); def(2, 0x09, M, si.intBoth(O.psignw, L)); def(2, 0x0a, M, si.intBoth(O.psignd, L));
def(2, 0x0b, M, si.intBoth(O.pmulhrsw, L));
def(2, 0x10, M, si.int66(O.pblendvb)); def(2, 0x14, M, si.int66(O.blendvps)); def(2, 0x15, M, si.int66(O.blendvpd));
def(2, 0x17, M, si.ptestInsn);
def(2, 0x1c, M, si.intBoth(O.pabsb, L)); def(2, 0x1d, M, si.intBoth(O.pabsw, L)); def(2, 0x1e, M, si.intBoth(O.pabsd, L));
const PMOV: [number, number][] = [[1, 2], [1, 4], [1, 8], [2, 4], [2, 8], [4, 8]];
for (let i = 0; i < 6; i++) {
  def(2, 0x20 + i, M, si.pmovxInsn(PMOV[i]![0], PMOV[i]![1], true));
  def(2, 0x30 + i, M, si.pmovxInsn(PMOV[i]![0], PMOV[i]![1], false));
}
def(2, 0x28, M, si.int66(O.pmuldq)); def(2, 0x29, M, si.int66(O.pcmpeqq));
def(2, 0x2a, M, sm.movntdqa); def(2, 0x2b, M, si.int66(O.packusdw));
def(2, 0x37, M, si.int66(O.pcmpgtq));
def(2, 0x38, M, si.int66(O.pminsb)); def(2, 0x39, M, si.int66(O.pminsd)); def(2, 0x3a, M, si.int66(O.pminuw)); def(2, 0x3b, M, si.int66(O.pminud));
def(2, 0x3c, M, si.int66(O.pmaxsb)); def(2, 0x3d, M, si.int66(O.pmaxsd)); def(2, 0x3e, M, si.int66(O.pmaxuw)); def(2, 0x3f, M, si.int66(O.pmaxud));
def(2, 0x40, M, si.int66(O.pmulld)); def(2, 0x41, M, si.int66(O.phminposuw));

// ---- 0F 3A map (all with imm8) ----
def(3, 0x08, M | IB, sf.roundInsn(0)); def(3, 0x09, M | IB, sf.roundInsn(1));
def(3, 0x0a, M | IB, sf.roundInsn(2)); def(3, 0x0b, M | IB, sf.roundInsn(3));
def(3, 0x0c, M | IB, sf.blendInsn(false)); def(3, 0x0d, M | IB, sf.blendInsn(true));
def(3, 0x0e, M | IB, si.pblendwInsn); def(3, 0x0f, M | IB, si.palignrInsn);
def(3, 0x14, M | IB, sm.pextrInsn(1)); def(3, 0x15, M | IB, sm.pextrInsn(2)); def(3, 0x16, M | IB, sm.pextrInsn(4));
def(3, 0x17, M | IB, sf.extractps);
def(3, 0x20, M | IB, sm.pinsrInsn(1)); def(3, 0x21, M | IB, sf.insertps); def(3, 0x22, M | IB, sm.pinsrInsn(4));
def(3, 0x40, M | IB, sf.dpInsn(false)); def(3, 0x41, M | IB, sf.dpInsn(true));
def(3, 0x42, M | IB, si.mpsadbwInsn);
def(3, 0x60, M | IB, sm.pcmpstrInsn(true, true)); def(3, 0x61, M | IB, sm.pcmpstrInsn(true, false));
def(3, 0x62, M | IB, sm.pcmpstrInsn(false, true)); def(3, 0x63, M | IB, sm.pcmpstrInsn(false, false));
