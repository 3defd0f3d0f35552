// Random encodings in the MMX/SSE opcode space (0F, 0F 38, 0F 3A with every mandatory prefix,
// REX, random ModRM/SIB/displacement/immediates) never throw anything but guest exceptions.
import { rng } from "./fp/oracle.node.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { sseRun } from "./sse_rig.js";

/** mulberry32 */

test("random MMX/SSE encodings only raise guest exceptions", () => {
  const r = rng(0x55e);
  const PFX = [[], [0x66], [0xf3], [0xf2], [0x66, 0xf3], [0xf0]];
  for (let n = 0; n < 400; n++) {
    const bytes: number[] = [...PFX[r() % PFX.length]!];
    if (r() & 1) bytes.push(0x40 | (r() & 15));
    bytes.push(0x0f);
    const m = r() % 3;
    if (m === 1) bytes.push(0x38); else if (m === 2) bytes.push(0x3a);
    bytes.push(r() & 0xff);
    // ModRM with a small displacement off RSI so memory forms stay in RAM, then an imm8.
    const mod = r() % 4;
    bytes.push((mod === 3 ? 0xc0 : 0x40) | (r() & 0x38) | (mod === 3 ? r() & 7 : 6));
    if (mod !== 3) bytes.push(r() & 0x7f);
    bytes.push(r() & 0xff, 0x90, 0x90);
    assert.doesNotThrow(() => sseRun(bytes, (c) => { for (let i = 0; i < 64; i++) c.state.xmm[i] = r() | 0; }), `bytes ${bytes.map((b) => b.toString(16)).join(" ")}`);
  }
});
