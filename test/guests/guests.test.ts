/**
 * Builds every guest in guests/ and checks each run against its .expected file:
 * (a) on the real /dev/kvm, for guests whose expectation came from it (header `expect=kvm`);
 * (b) on tskvm, for every guest, once tskvm's x86 run path exists; where the real KVM can run
 *     the guest too, the two runs are also compared exit by exit (exit, port, data, RIP, CS,
 *     control registers: general registers and memory are left out, since the guests keep
 *     undefined flag values, e.g. PUSHF after AND, in registers and on their stacks by design).
 * Skips (with the reason) what this machine cannot run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
// @ts-expect-error plain .mjs script without type declarations
import * as build from "../../scripts/build-guests.mjs";
import { realKvmUnavailable, runRealKvm } from "../diff/harness.js";
import { compareRuns } from "../diff/compare.js";
import { tskvmUnavailable } from "../diff/tskvm.js";
import { buildAllGuests, guestOnTskvm, guestPath, initFor } from "./manifest.js";

const { guests, why: noToolchain } = buildAllGuests();
const abs = guestPath;


test("every guest builds", (t) => {
  if (noToolchain) return t.skip(noToolchain);
  assert.ok(guests!.length >= 3);
  for (const g of guests!) assert.ok(existsSync(abs(g.bin)), g.bin);
});

for (const g of guests ?? []) {
  const expectedPath = abs(g.expected);
  test(`guest ${g.name} on the real KVM`, (t) => {
    if (!existsSync(expectedPath)) return t.skip(`no ${expectedPath}`);
    if (g.expect === "sdm") return t.skip("expectation from the SDM (a self-checking guest that neither kvm_pvm nor QEMU TCG can judge, see its header)");
    if (g.expect !== "kvm") return t.skip("expectation from QEMU TCG: kvm_pvm cannot run this guest (tools/kvm-runner/README.md)");
    const why = realKvmUnavailable();
    if (why) return t.skip(why);
    const want = build.expectedBody(readFileSync(expectedPath, "utf8"));
    assert.equal(build.runGuestOnKvm(g), want);
  });

  test(`guest ${g.name} on tskvm`, async (t) => {
    if (!existsSync(expectedPath)) return t.skip(`no ${expectedPath}`);
    const why = await tskvmUnavailable();
    if (why) return t.skip(why);
    const { r, got, want } = await guestOnTskvm(g);
    assert.equal(got, want);
    if (g.expect !== "kvm" || realKvmUnavailable()) return;
    // Exit-by-exit against the real KVM, as a subtest of its own.
    await t.test("same state as the real KVM at every exit", () => {
      const real = runRealKvm(new Uint8Array(readFileSync(abs(g.bin))), initFor(g));
      const d = compareRuns(real, r, { memory: false, regs: ["rip"] });
      assert.equal(d, undefined, d && `exit ${d.index} differs from the real KVM: ${d.diffs.join("; ")}`);
    });
  });
}
