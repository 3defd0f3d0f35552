/**
 * Instruction fetch is coherent with every store (SDM Vol. 3A 11.6): code the vCPU has already
 * decoded and cached must be re-read after the VMM writes guest memory between two KVM_RUNs,
 * after another processor writes it, and after the frame is freed and reused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { realModeGuest } from "./guest_helpers.js";
import { KVM_EXIT_IO } from "../../../../src/uapi/kvm.js";
import { PhysMem } from "../../../../src/hw/physmem.js";
import { X86Cpu } from "../../../../src/hw/x86/cpu.js";

test("a VMM write to guest code between runs replaces the instructions the vCPU had decoded", () => {
  // 0x1000: mov $1, %al ; out %al, $0x10 ; jmp 0x1000
  const g = realModeGuest({ code: Uint8Array.of(0xb0, 0x01, 0xe6, 0x10, 0xeb, 0xfa) });
  const outs: number[] = [];
  for (let i = 0; i < 4; i++) {
    g.vcpu.run();
    assert.equal(g.run.exitReason, KVM_EXIT_IO);
    outs.push(g.run.ioData()[0]!);
    g.poke(0x1001, Uint8Array.of(i + 2)); // the immediate of the MOV the vCPU just executed
  }
  assert.deepEqual(outs, [1, 2, 3, 4]);
});

test("a store by one processor invalidates code another processor has decoded (cross-modifying code)", () => {
  const pm = new PhysMem(2 << 20);
  pm.populate(0);
  const a = new X86Cpu(pm), b = new X86Cpu(pm);
  // A: real mode at 0x1000: mov $1, %al ; hlt.  B: real mode at 0x2000: movb $7, (0x1001) ; hlt
  [0xb0, 0x01, 0xf4].forEach((v, i) => pm.write8(0x1000 + i, v));
  [0xc6, 0x06, 0x01, 0x10, 0x07, 0xf4].forEach((v, i) => pm.write8(0x2000 + i, v));
  const start = (c: X86Cpu, ip: number): void => {
    c.state.segSel[1] = 0; c.state.segBase[1] = 0; // CS = 0 (power-on CS has base 0xffff0000)
    c.state.rip = ip; c.state.activityState = 0; c.stateChanged();
  };
  start(a, 0x1000);
  a.run(10);
  assert.equal(a.state.gpr[0]! & 0xff, 1);
  start(b, 0x2000);
  b.run(10);
  start(a, 0x1000);
  a.run(10);
  assert.equal(a.state.gpr[0]! & 0xff, 7, "A runs the byte B stored, not its decoded copy");
  a.release();
  b.release();
});
