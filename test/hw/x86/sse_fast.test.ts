// The host-arithmetic fast path of ADD/SUB/MUL/DIV/SQRT (ops/sse_fp.ts) against the exact
// softfloat path (fp/sse_float.ts): same result bits and MXCSR for operands around every class
// boundary, with MXCSR round-to-nearest and PE set (the fast path's condition) and otherwise.
import { rng } from "./fp/oracle.node.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { sseRun } from "./sse_rig.js";
import { FpEnv, Packed } from "../../../src/hw/x86/fp/softfloat.js";
import { SSE_ADD, SSE_SUB, SSE_MUL, SSE_DIV, SSE_SQRT, f32Op, f64Op, setMxcsr, sseFinish } from "../../../src/hw/x86/fp/sse_float.js";

const OPS = [SSE_ADD, SSE_SUB, SSE_MUL, SSE_DIV, SSE_SQRT];
const OPC = [0x58, 0x5c, 0x59, 0x5e, 0x51];

/** Single bits near class boundaries: zeros, smallest/largest normals, denormals, inf, NaN, ordinary. */
function f32Bits(r: () => number): number {
  const sign = (r() & 1) << 31;
  switch (r() % 7) {
    case 0: return (sign | (r() % 3 === 0 ? 0 : 0x00800000 + (r() & 0xfffff))) >>> 0;
    case 1: return (sign | 0x7f000000 | (r() & 0x7fffff)) >>> 0;
    case 2: return (sign | (r() & 0x7fffff)) >>> 0;
    case 3: return (sign | [0x7f800000, 0x7fc00000, 0x7f800001][r() % 3]!) >>> 0;
    case 4: return (sign | (((r() % 40) + 1) << 23) | (r() & 0x7fffff)) >>> 0;
    default: return (sign | (((r() % 60) + 97) << 23) | (r() & 0x7fffff)) >>> 0;
  }
}
function f64Bits(r: () => number): [number, number] {
  const sign = (r() & 1) << 31;
  switch (r() % 7) {
    case 0: return r() % 3 === 0 ? [0, sign >>> 0] : [r(), (sign | 0x00100000 | (r() & 0xffff)) >>> 0];
    case 1: return [r(), (sign | 0x7fe00000 | (r() & 0xfffff)) >>> 0];
    case 2: return [r(), (sign | (r() & 0xfffff)) >>> 0];
    case 3: return [r() & 1, (sign | [0x7ff00000, 0x7ff80000][r() % 2]!) >>> 0];
    case 4: return [r(), (sign | (((r() % 60) + 1) << 20) | (r() & 0xfffff)) >>> 0];
    default: return [r(), (sign | (((r() % 200) + 923) << 20) | (r() & 0xfffff)) >>> 0];
  }
}

test("fast path and exact path agree bit for bit (result and MXCSR), 2000 random scalar operations", () => {
  // Code: op k (SD forms at 0x1000 + 16k, SS forms at 0x1100 + 16k), each followed by HLT.
  const rig = sseRun([0x90]);
  const { cpu, mem } = rig;
  for (let k = 0; k < 5; k++) {
    for (let i = 0; i < 4; i++) mem.write8(0x1000 + 16 * k + i, [0xf2, 0x0f, OPC[k]!, 0xc1][i]!);
    mem.write8(0x1000 + 16 * k + 4, 0xf4);
    for (let i = 0; i < 4; i++) mem.write8(0x1100 + 16 * k + i, [0xf3, 0x0f, OPC[k]!, 0xc1][i]!);
    mem.write8(0x1100 + 16 * k + 4, 0xf4);
  }
  cpu.invalidateCode(1);
  const r = rng(0xfa57);
  const env = new FpEnv();
  const res = new Packed();
  const x = cpu.state.xmm;
  for (let n = 0; n < 2000; n++) {
    const k = r() % 5, single = (r() & 1) === 1;
    const mx = r() % 4 === 0 ? (0x1f80 | (r() & 0xe07f)) : (0x1fa0 | (r() & 0x801f) | (r() % 3 === 0 ? 0x40 : 0));
    let want: number[];
    setMxcsr(env, mx);
    if (single) {
      const a = f32Bits(r), b = f32Bits(r);
      x[0] = a; x[4] = b;
      const v = f32Op(env, OPS[k]!, a, b);
      want = [sseFinish(env) ? v : a, 0];
    } else {
      const [al, ah] = f64Bits(r), [bl, bh] = f64Bits(r);
      x[0] = al; x[1] = ah; x[4] = bl; x[5] = bh;
      f64Op(env, OPS[k]!, res, al, ah, bl, bh);
      want = sseFinish(env) ? [res.lo, res.hi] : [al, ah];
    }
    const wantMx = mx | (env.flags & 0x3f);
    cpu.state.mxcsr = mx;
    cpu.state.rip = (single ? 0x1100 : 0x1000) + 16 * k;
    cpu.state.activityState = 0;
    cpu.stateChanged();
    cpu.run(1);
    const got = single ? [x[0]! >>> 0, 0] : [x[0]! >>> 0, x[1]! >>> 0];
    const ctx = `op ${k} ${single ? "ss" : "sd"} mxcsr ${mx.toString(16)}`;
    assert.deepEqual(got, want.map((v) => v >>> 0), ctx);
    assert.equal(cpu.state.mxcsr, wantMx, ctx);
  }
});
