import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { hello } from "../../examples/hello.js";

test("examples/hello.ts prints 4 through two KVM_EXIT_IO exits and stops at KVM_EXIT_HLT", () => {
  let out = "";
  let err = "";
  const status = hello({ trace: true, stats: true, out: (s) => (out += s), err: (s) => (err += s) });
  assert.equal(status, 0);
  assert.equal(out, "4\n");
  const lines = err.split("\n");
  // ftrace lines of the run: the IO exits, the PIO values and the userspace exits.
  const pio = lines.filter((l) => l.includes("kvm_pio:"));
  assert.equal(pio.length, 2);
  assert.match(pio[0], /kvm_pio: pio_write at 0x3f8 size 1 count 1 val 0x34/);
  assert.match(pio[1], /kvm_pio: pio_write at 0x3f8 size 1 count 1 val 0xa/);
  assert.ok(lines.some((l) => /kvm_exit: vcpu 0 reason IO_INSTRUCTION rip 0x1007/.test(l)));
  assert.ok(lines.some((l) => /kvm_exit: vcpu 0 reason HLT rip 0x100b/.test(l)));
  assert.ok(lines.some((l) => /kvm_entry: vcpu 0, rip 0x1000/.test(l)));
  assert.equal(lines.filter((l) => l.includes("kvm_userspace_exit: reason IO (2)")).length, 2);
  assert.ok(lines.some((l) => l.includes("kvm_userspace_exit: reason HLT (5)")));
  assert.ok(lines.includes("io_exits=2"));
  assert.ok(lines.includes("halt_exits=1"));
});

test("npx tsx examples/hello.ts writes 4 to stdout", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", "examples/hello.ts"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "4\n");
});
