/**
 * Every guest in guests/ on tskvm with each block start compiled on its second entry
 * (block_jit.ts, blockJit.hot = 1) instead of after a thousand: the guests' 64-bit code then
 * runs almost entirely as generated code, and must give exactly its .expected result.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { tskvmUnavailable } from "../diff/tskvm.js";
import { blockJit } from "../../src/hw/x86/block_jit.js";
import { buildAllGuests, guestOnTskvm, guestPath } from "./manifest.js";

const { guests, why: noToolchain } = buildAllGuests();

test("guests build (compiled-block runs)", (t) => {
  if (noToolchain) return t.skip(noToolchain);
  assert.ok(guests!.length >= 3);
});

for (const g of guests ?? []) {
  test(`guest ${g.name} on tskvm with every block compiled`, async (t) => {
    if (!existsSync(guestPath(g.expected))) return t.skip(`no ${g.expected}`);
    const why = await tskvmUnavailable();
    if (why) return t.skip(why);
    const saved = blockJit.hot;
    blockJit.hot = 1;
    try {
      const { got, want } = await guestOnTskvm(g);
      assert.equal(got, want);
    } finally {
      blockJit.hot = saved;
    }
  });
}

test("the guests' code ran compiled", (t) => {
  if (noToolchain) return t.skip(noToolchain);
  assert.ok(blockJit.compiled > 100, `${blockJit.compiled} blocks compiled`);
});

