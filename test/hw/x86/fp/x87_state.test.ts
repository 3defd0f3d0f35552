// x87 register stack and FSAVE/FSTENV/FXSAVE images: unit tests, and the image layouts compared
// with what the host CPU stores (pointer fields, which hold host addresses, are masked).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  X87State, TAG_EMPTY, TAG_VALID, TAG_ZERO, TAG_SPECIAL, SW_SF, SW_C1, ENV_PM32, ENV_PM16, ENV_RM32, ENV_RM16, FXSAVE_32, FXSAVE_64,
  encodeEnv, encodeFsave, decodeFsave, encodeFxsave, decodeFxsave, envSize, classifyTag,
} from "../../../../src/hw/x86/fp/x87_state.js";
import { FpEnv, Packed, FP_IE } from "../../../../src/hw/x86/fp/softfloat.js";
import { f80Add, setX87Control } from "../../../../src/hw/x86/fp/f80.js";
import { oracleSkipReason, runOracle, rng, hex } from "./oracle.node.js";
import { genF80, type F80 } from "./operands.js";

test("push/pop move TOP and tags; overflow and underflow set IE, SF and C1 as the SDM says", () => {
  const s = new X87State();
  s.init();
  assert.equal(s.push(0x3fff, 0x80000000, 0), true);
  assert.equal(s.top, 7);
  assert.equal(s.tagOf(7), TAG_VALID);
  s.push(0, 0, 0);
  assert.equal(s.tagOf(6), TAG_ZERO);
  s.push(0x7fff, 0x80000000, 0);
  assert.equal(s.tagOf(5), TAG_SPECIAL);
  assert.equal(s.stSe(2), 0x3fff);
  for (let i = 0; i < 5; i++) s.push(0x4000, 0x80000000, 0);
  assert.equal(s.sw & (FP_IE | SW_SF), 0);
  // Ninth push: masked stack overflow pushes the indefinite, C1=1.
  assert.equal(s.push(0x4001, 0x80000000, 0), true);
  assert.equal(s.sw & (FP_IE | SW_SF | SW_C1), FP_IE | SW_SF | SW_C1);
  assert.deepEqual([s.stSe(0), s.stHi(0), s.stLo(0)], [0xffff, 0xc0000000, 0]);
  // Unmasked: nothing is pushed, ES and B are set.
  s.cw = 0x037e;
  const top = s.top;
  assert.equal(s.push(0x4001, 0x80000000, 0), false);
  assert.equal(s.top, top);
  assert.equal(s.statusWord() & 0x8080, 0x8080);
  s.init();
  assert.equal(s.isEmpty(0), true);
  assert.equal(s.stackUnderflow(), true);
  assert.equal(s.sw & (FP_IE | SW_SF | SW_C1), FP_IE | SW_SF);
  s.push(0x3fff, 0x80000000, 0);
  s.pop();
  assert.equal(s.top, 0);
  assert.equal(s.tag, 0xffff);
});

test("tag classification: unnormals, pseudo-denormals, NaNs and infinities are special", () => {
  assert.equal(classifyTag(0x3fff, 0x40000000, 0), TAG_SPECIAL);
  assert.equal(classifyTag(0x0000, 0x80000000, 0), TAG_SPECIAL);
  assert.equal(classifyTag(0x8000, 0, 0), TAG_ZERO);
  assert.equal(classifyTag(0xffff, 0xc0000000, 0), TAG_SPECIAL);
  assert.equal(classifyTag(0xc000, 0x80000000, 1), TAG_VALID);
});

function sample(): X87State {
  const s = new X87State();
  s.init();
  s.cw = 0x027f;
  s.push(0x3fff, 0x80000000, 0);
  s.push(0x0000, 0x12345678, 0x9abcdef0);
  s.push(0x4001, 0xc0000000, 0x00000001);
  s.sw |= 0x4121;
  s.fip = 0x12345678;
  s.fipHi = 0x9abc;
  s.fcs = 0x0023;
  s.fop = 0x5d9;
  s.fdp = 0x0badf00d;
  s.fdpHi = 0x7;
  s.fds = 0x002b;
  return s;
}

test("FSTENV/FLDENV and FSAVE/FRSTOR round-trip in all four formats", () => {
  for (const fmt of [ENV_PM32, ENV_PM16, ENV_RM32, ENV_RM16]) {
    const s = sample();
    if (fmt === ENV_RM16) { s.fip &= 0xffff; s.fdp &= 0xffff; s.fcs = 0x1000; s.fds = 0x2000; }
    if (fmt === ENV_PM16) { s.fip &= 0xffff; s.fdp &= 0xffff; }
    const m = new Uint8Array(envSize(fmt) + 80);
    encodeFsave(s, m, 0, fmt);
    const t = new X87State();
    decodeFsave(t, m, 0, fmt);
    assert.equal(t.cw, s.cw);
    assert.equal(t.statusWord(), s.statusWord());
    assert.equal(t.tag, s.fullTagWord());
    assert.deepEqual(Array.from(t.regs), Array.from(s.regs));
    if (fmt === ENV_PM32 || fmt === ENV_PM16) {
      assert.deepEqual([t.fip, t.fcs, t.fdp, t.fds], [s.fip, s.fcs, s.fdp, s.fds]);
      if (fmt === ENV_PM32) assert.equal(t.fop, s.fop);
    } else {
      // Real mode stores linear addresses: selector*16 + offset.
      const lin = (sel: number, off: number) => (sel * 16 + off) & (fmt === ENV_RM16 ? 0xfffff : 0xffffffff);
      assert.deepEqual([t.fip, t.fdp, t.fop], [lin(s.fcs, s.fip) >>> 0, lin(s.fds, s.fdp) >>> 0, s.fop]);
    }
  }
});

test("FXSAVE/FXRSTOR round-trip (64-bit and 32-bit forms), abridged tag and XMM registers", () => {
  for (const form of [FXSAVE_64, FXSAVE_32]) {
    const s = sample();
    const xmm = new Int32Array(64);
    for (let i = 0; i < 64; i++) xmm[i] = Math.imul(i + 1, 0x9e3779b1);
    const m = new Uint8Array(512);
    encodeFxsave(s, 0x1fa0, 0xffff, xmm, 16, m, 0, form);
    assert.equal(m[4], 0xe0);
    const t = new X87State();
    const x2 = new Int32Array(64);
    assert.equal(decodeFxsave(t, x2, 16, m, 0, form), 0x1fa0);
    assert.deepEqual(Array.from(x2), Array.from(xmm));
    assert.equal(t.tag, s.fullTagWord());
    assert.deepEqual(Array.from(t.regs), Array.from(s.regs));
    assert.deepEqual([t.cw, t.statusWord(), t.fop, t.fip, t.fdp], [s.cw, s.statusWord(), s.fop, s.fip, s.fdp]);
    if (form === FXSAVE_64) assert.deepEqual([t.fipHi, t.fdpHi], [s.fipHi, s.fdpHi]);
    else assert.deepEqual([t.fcs, t.fds], [s.fcs, s.fds]);
  }
});

const skip = oracleSkipReason();
const bytesHex = (m: Uint8Array) => Array.from(m, (b) => hex(b, 2)).join("");
function maskRanges(h: string, ranges: [number, number][]): string {
  const a = h.split("");
  for (const [from, to] of ranges) for (let i = from * 2; i < to * 2; i++) a[i] = "x";
  return a.join("");
}

test("FXSAVE, FXSAVE64, FNSTENV (32/16-bit) and FNSAVE images match the host CPU", { skip: skip ?? false }, () => {
  const r = rng(0xb000);
  const env = new FpEnv();
  const res = new Packed();
  const inputs: string[] = [], ours: string[] = [];
  for (let n = 0; n < 300; n++) {
    const k = r() % 9, cw = 0x7f | ([0, 2, 3][r() % 3]! << 8) | ((r() % 4) << 10);
    let ops = r() % 8;
    if (k < 3) ops &= ~2;
    if (k < 2) ops &= ~1;
    const vals: F80[] = [];
    for (let i = 0; i < k; i++) vals.push(genF80(r));
    inputs.push(`x87img ${hex(cw, 4)} ${ops} ${k} ${vals.map((v) => `${hex(v[0], 4)} ${hex(v[1], 8)}${hex(v[2], 8)}`).join(" ")}`);
    const s = new X87State();
    s.init();
    s.cw = cw;
    for (const v of vals) s.push(v[0], v[1], v[2]);
    if (ops & 1) {
      setX87Control(env, cw);
      f80Add(env, res, s.stSe(0), s.stHi(0), s.stLo(0), s.stSe(1), s.stHi(1), s.stLo(1));
      s.setSt(0, res.se, res.hi, res.lo);
      s.raise(env.flags);
      if (env.flags & 0x20 && env.roundedUp) s.sw |= SW_C1;
    }
    if (ops & 2) {
      // FFREE leaves C0-C3 undefined; this CPU clears C1.
      s.setTag(s.phys(2), TAG_EMPTY);
      s.sw &= ~SW_C1;
    }
    if (ops & 4) {
      // FINCSTP clears C1.
      s.top = (s.top + 1) & 7;
      s.sw &= ~SW_C1;
    }
    const xmm = new Int32Array(64);
    const fx = new Uint8Array(512), fx64 = new Uint8Array(512), e32 = new Uint8Array(28), e16 = new Uint8Array(14), sav = new Uint8Array(108);
    encodeFxsave(s, 0, 0, xmm, 16, fx, 0, FXSAVE_32);
    encodeFxsave(s, 0, 0, xmm, 16, fx64, 0, FXSAVE_64);
    encodeEnv(s, e32, 0, ENV_PM32);
    encodeEnv(s, e16, 0, ENV_PM16);
    encodeFsave(s, sav, 0, ENV_PM32);
    ours.push([bytesHex(fx), bytesHex(fx64), bytesHex(e32), bytesHex(e16), bytesHex(sav)].join(" "));
  }
  const hw = runOracle(inputs);
  const masks: [number, number][][] = [[[8, 12], [24, 32], [160, 416]], [[8, 16], [24, 32], [160, 416]], [[12, 16]], [[6, 8]], [[12, 16]]];
  const norm = (line: string) => line.trim().split(" ").map((h, i) => maskRanges(h, masks[i]!)).join(" ");
  const bad: string[] = [];
  for (let i = 0; i < inputs.length && bad.length < 5; i++) {
    if (norm(hw[i]!) !== norm(ours[i]!)) bad.push(`${inputs[i]}\n hw   ${norm(hw[i]!)}\n ours ${norm(ours[i]!)}`);
  }
  assert.deepEqual(bad, [], bad.join("\n"));
});
