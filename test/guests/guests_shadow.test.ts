/**
 * Every protected-mode guest in guests/ run on tskvm with kvm_intel.ept=0 (shadow paging) must
 * give exactly the result it gives with EPT (its .expected file). Real-mode guests cannot run
 * without unrestricted guest: KVM_RUN must refuse them with KVM_EXIT_INTERNAL_ERROR instead.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
// @ts-expect-error plain .mjs script without type declarations
import * as build from "../../scripts/build-guests.mjs";
import { runTskvm, tskvmUnavailable } from "../diff/tskvm.js";
import { buildAllGuests, guestPath, initFor } from "./manifest.js";

const { guests, why: noToolchain } = buildAllGuests();
const abs = guestPath;
const only = process.env.SHADOW_GUESTS?.split(",").filter((s) => s !== "");

test("guests build (shadow MMU runs)", (t) => {
  if (noToolchain) return t.skip(noToolchain);
  assert.ok(guests!.length >= 3);
});

for (const g of guests ?? []) {
  if (only && !only.some((o) => g.name.includes(o))) continue;
  const expectedPath = abs(g.expected);
  test(`guest ${g.name} on tskvm with ept=0`, async (t) => {
    if (!existsSync(expectedPath)) return t.skip(`no ${expectedPath}`);
    const why = await tskvmUnavailable();
    if (why) return t.skip(why);
    const r = await runTskvm(new Uint8Array(readFileSync(abs(g.bin))), initFor(g, 400000), { ept: false });
    const last = r.exits.at(-1);
    if (g.mode === "real16") {
      assert.equal(r.stop, "unhandled");
      assert.equal(last?.internal?.suberror, 1, "real mode with ept=0: KVM_EXIT_INTERNAL_ERROR (emulation)");
      return;
    }
    const value = r.stop === "exit-port" && last?.io ? parseInt(last.io.data.slice(0, 2), 16) : 0;
    const want = build.expectedBody(readFileSync(expectedPath, "utf8"));
    assert.equal(build.formatGuestResult(r.serial, r.stop, value), want);
  });
}
