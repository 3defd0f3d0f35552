/**
 * Every protected-mode guest in guests/ run on tskvm with kvm_intel.ept=0 (shadow paging) must
 * give exactly the result it gives with EPT (its .expected file). Real-mode guests cannot run
 * without unrestricted guest: KVM_RUN must refuse them with KVM_EXIT_INTERNAL_ERROR instead.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { tskvmUnavailable } from "../diff/tskvm.js";
import { buildAllGuests, guestOnTskvm, guestPath } from "./manifest.js";

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
    const { r, got, want } = await guestOnTskvm(g, { ept: false }, 400000);
    if (g.mode === "real16") {
      assert.equal(r.stop, "unhandled");
      assert.equal(r.exits.at(-1)?.internal?.suberror, 1, "real mode with ept=0: KVM_EXIT_INTERNAL_ERROR (emulation)");
      return;
    }
    assert.equal(got, want);
  });
}
