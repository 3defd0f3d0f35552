/**
 * The bench guests build, carry the scale marker bench/run.ts patches, and the smallest one
 * (boot) runs on tskvm through bench/peers/tskvm.ts with the serial protocol the harness parses.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
// @ts-expect-error plain .mjs script without type declarations
import * as build from "../../scripts/build-guests.mjs";
import { runOnTskvm } from "../../bench/peers/tskvm.js";

interface Manifest { name: string; bin: string; mem: number }

function guests(): { list?: Manifest[]; why?: string } {
  try {
    return { list: build.buildGuests({ filter: "bench/" }) as Manifest[] };
  } catch (e) {
    const msg = (e as Error).message;
    if (msg.startsWith("toolchain missing")) return { why: msg };
    throw e;
  }
}

const { list, why } = guests();
const abs = (p: string): string => join(build.projectRoot as string, p);

test("every bench workload's guest builds with the BNCHSCAL scale marker", (t) => {
  if (why) return t.skip(why);
  const names = list!.map((g) => g.name).sort();
  for (const w of ["boot", "branchy", "exits", "fp", "int", "mem", "pagefault"]) assert.ok(names.includes(`bench/${w}-64`), w);
  for (const g of list!) {
    const bytes = Buffer.from(readFileSync(abs(g.bin)));
    const at = bytes.indexOf(Buffer.from("BNCHSCAL", "latin1"));
    assert.ok(at >= 0, g.name);
    assert.equal(bytes.readUInt32LE(at + 8), 1, `${g.name}: default scale`);
  }
});

test("the boot guest runs on tskvm and prints its line", (t) => {
  if (why) return t.skip(why);
  const g = list!.find((x) => x.name === "bench/boot-64")!;
  const r = runOnTskvm(new Uint8Array(readFileSync(abs(g.bin))), g.mem, 60_000);
  assert.equal(r.stop, "exit-port", r.detail);
  assert.equal(r.lines[0]?.text, "@boot");
  assert.ok(r.firstByteNs > 0);
  assert.ok(r.hasInsns);
  assert.ok(r.lines[0]!.startInsns! > 100, "the retired-instruction counter moved during boot");
});
