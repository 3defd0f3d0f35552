import { test } from "node:test";
import assert from "node:assert/strict";
import { makeRig, writeBytes, realMode, flat32, getR, runToHlt } from "./helpers.js";
import { ActivityState } from "../../../src/hw/x86/state.js";

test("real mode: the first-guest program prints AL+BL and halts", () => {
  const { mem, cpu, io } = makeRig();
  // mov $0x3f8,%dx; add %bl,%al; add $'0',%al; out %al,(%dx); mov $'\n',%al; out %al,(%dx); hlt
  writeBytes(mem, 0x1000, [0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, 0x30, 0xee, 0xb0, 0x0a, 0xee, 0xf4]);
  realMode(cpu, 0x1000);
  cpu.state.gpr[0] = 2; cpu.state.gpr[6] = 3;
  const n = runToHlt(cpu);
  assert.equal(io.text(), "5\n");
  assert.equal(n, 7);
  assert.equal(cpu.state.activityState, ActivityState.HLT);
  assert.equal(cpu.state.rip, 0x100c);
  assert.equal(cpu.insnCount, 7);
});

test("protected mode: a counted loop with flags and a memory accumulator", () => {
  const { mem, cpu } = makeRig();
  // mov ecx,100; xor eax,eax; l: add eax,ecx; add [0x2000],ecx; dec ecx; jnz l; hlt
  writeBytes(mem, 0x1000, [0xb9, 100, 0, 0, 0, 0x31, 0xc0, 0x01, 0xc8, 0x01, 0x0d, 0x00, 0x20, 0x00, 0x00, 0x49, 0x75, 0xf5, 0xf4]);
  flat32(cpu, 0x1000);
  runToHlt(cpu);
  assert.equal(getR(cpu, 0), 5050n);
  assert.equal(mem.read32(0x2000), 5050);
  assert.equal(cpu.getRflags() & 0x40, 0x40); // ZF from the final DEC
});
