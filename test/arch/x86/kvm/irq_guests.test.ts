/**
 * The guests in guests/irq/ (self-checking programs that program the PIC, PIT, I/O APIC and
 * local APICs as an OS does) booted the way `tskvm run -kernel <guest> -smp N` boots them:
 * the PC machine with the in-kernel irqchip and PIT, Multiboot loading, N vCPUs on one thread.
 * Each guest prints one "ok"/"FAIL" line per check on COM1 and exits through port 0xf4 with 0.
 * The header's `smp=` names the vCPU count. Time is the host's real clock (the vCPUs take turns
 * in time slices, as in the CLI); nothing asserts on timing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
// @ts-expect-error plain .mjs script without type declarations
import * as build from "../../../../scripts/build-guests.mjs";
import { createHost } from "../../../../src/host/process.js";
import { openKvm } from "../../../../src/kvm.js";
import { PcMachine, type PcConfig } from "../../../../src/vmm/machine/pc.js";
import { VmRunner } from "../../../../src/vmm/vm_runner.js";

interface Manifest { name: string; area: string; bin: string }

function irqGuests(): { guests?: Manifest[]; why?: string } {
  try {
    return { guests: (build.buildGuests() as Manifest[]).filter((g) => g.area === "irq") };
  } catch (e) {
    const msg = (e as Error).message;
    if (msg.startsWith("toolchain missing")) return { why: msg };
    throw e;
  }
}

const { guests, why } = irqGuests();
const root = build.projectRoot as string;

async function boot(image: Uint8Array, smp: number): Promise<{ serial: string; kind: string; status: number; message: string }> {
  const proc = createHost({ memBytes: 256 << 20 }).createProcess("irq-guest");
  const kvm = openKvm(proc);
  const out: number[] = [];
  const cfg: PcConfig = {
    ramBytes: 32 << 20, nrCpus: smp, kernel: { name: "guest", data: image }, initrds: [], cmdline: "", flat: [],
    isaDebugExit: { iobase: 0xf4, iosize: 4 }, pcTestdev: false, pciTestdev: false,
  };
  const host = { serialOut: (b: number) => out.push(b), nowMs: () => Date.now(), warn: () => {} };
  const runner = new VmRunner(() => new PcMachine(kvm, proc, cfg, host), { noReboot: true, startPaused: false, sliceNs: 1_000_000, yieldToHost: async () => {} });
  const end = await runner.run();
  return { serial: String.fromCharCode(...out), kind: end.kind, status: end.status, message: end.message };
}

test("the irq guests build", (t) => {
  if (why) return t.skip(why);
  assert.ok(guests!.length >= 1);
});

for (const g of guests ?? []) {
  test(`irq guest ${g.name}: every check passes on tskvm`, async () => {
    const src = readFileSync(join(root, "guests", "irq", `${g.name.split("/")[1]!.replace(/-(32|64)$/, "")}.c`), "utf8");
    const smp = Number(build.parseGuestHeader(src, g.name).smp ?? 1);
    const r = await boot(new Uint8Array(readFileSync(join(root, g.bin))), smp);
    const lines = r.serial.split("\n").filter((l) => l.length > 0);
    const failed = lines.filter((l) => !l.startsWith("ok ") && l !== "result: PASS");
    assert.deepEqual(failed, [], r.serial);
    assert.equal(lines.at(-1), "result: PASS", r.serial);
    assert.ok(lines.length >= 10, r.serial);
    // isa-debug-exit: status (value << 1) | 1, so a guest returning 0 ends with status 1.
    assert.deepEqual([r.kind, r.status], ["exit", 1], `${r.message}\n${r.serial}`);
  });
}
