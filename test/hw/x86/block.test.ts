// Hazards of block execution in the run loop (cpu.ts loop): a block must stay exact about
// self-modifying code, faults in its middle, the instruction budget, TF and the VMX boundary checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeRig, writeBytes, write32, flat32, realMode } from "./helpers.js";
import type { VmxNonRoot } from "../../../src/hw/x86/vmx/hooks.js";
import * as F from "../../../src/hw/x86/vmx/vmcs.js";
import { EXIT_REASON_INTERRUPT_WINDOW } from "../../../src/uapi/vmx.js";
import { Machine } from "./vmx/harness.js";

test("block: a store that rewrites the next instruction of its own (cached) block takes effect at once", () => {
  const { cpu, mem } = makeRig();
  // 1000: mov [0x1007], cl ; 1006: mov eax, imm32 ; 100b: add ebx, eax ; 100d: inc ecx
  // 100e: cmp ecx, 3 ; 1011: jne 1000 ; 1013: hlt
  writeBytes(mem, 0x1000, [0x88, 0x0d, 0x07, 0x10, 0, 0, 0xb8, 0x55, 0, 0, 0, 0x01, 0xc3, 0x41, 0x83, 0xf9, 0x03, 0x75, 0xed, 0xf4]);
  flat32(cpu, 0x1000);
  const n = cpu.run(1000);
  // eax takes 0, 1, 2 (the value just stored), never the stale 0x55 or the previous pass's value
  assert.equal(cpu.state.gpr[2 * 3], 0 + 1 + 2);
  assert.equal(cpu.state.gpr[0], 2);
  assert.equal(n, 3 * 6 + 1);
  assert.equal(cpu.state.rip, 0x1014);
});

test("block: a store into a later instruction of the same straight-line block, executed twice, is seen each time", () => {
  const { cpu, mem } = makeRig();
  // 1000: inc byte [0x100b] ; 1006: nop ; 1007: nop ; 1008: nop ; 1009: nop ; 100a: mov al, imm8 ; 100c: add bl, al
  // 100e: dec ecx ; 100f: jnz 1000 ; 1011: hlt   (the imm8 at 0x100b starts at 0x10)
  writeBytes(mem, 0x1000, [0xfe, 0x05, 0x0b, 0x10, 0, 0, 0x90, 0x90, 0x90, 0x90, 0xb0, 0x10, 0x00, 0xc3, 0x49, 0x75, 0xef, 0xf4]);
  flat32(cpu, 0x1000);
  cpu.state.gpr[2] = 4;
  cpu.run(1000);
  assert.equal(cpu.state.gpr[2 * 3] & 0xff, 0x11 + 0x12 + 0x13 + 0x14);
});

test("block: a fault in the middle of a block reports its own IP and does not count as retired", () => {
  const { cpu, mem } = makeRig();
  write32(mem, 0, 0x2000); // IVT[0] (#DE) -> 0000:2000
  writeBytes(mem, 0x2000, [0xf4]);
  // 1000: inc bx ; 1001: xor dx, dx ; 1003: xor cx, cx ; 1005: div cx (#DE) ; 1007: inc bx ; 1008: hlt
  writeBytes(mem, 0x1000, [0x43, 0x31, 0xd2, 0x31, 0xc9, 0xf7, 0xf1, 0x43, 0xf4]);
  realMode(cpu, 0x1000);
  const n = cpu.run(100);
  assert.equal(n, 3 + 1); // three before DIV, then the handler's HLT
  assert.equal(cpu.insnCount, 4);
  assert.equal(cpu.state.gpr[2 * 3] & 0xffff, 1);
  assert.equal(mem.read8(0x7ffa) | (mem.read8(0x7ffb) << 8), 0x1005); // the pushed IP is the DIV
  assert.equal(cpu.state.rip, 0x2001);
});

test("block: the instruction budget ends a run in the middle of a straight-line block, and the next run resumes there", () => {
  const { cpu, mem } = makeRig();
  writeBytes(mem, 0x1000, [...new Array<number>(10).fill(0x40), 0xf4]); // 10 x inc eax ; hlt
  flat32(cpu, 0x1000);
  assert.equal(cpu.run(5), 5);
  assert.equal(cpu.state.gpr[0], 5);
  assert.equal(cpu.state.rip, 0x1005);
  assert.equal(cpu.run(3), 3);
  assert.equal(cpu.state.gpr[0], 8);
  assert.equal(cpu.run(100), 3);
  assert.equal(cpu.state.gpr[0], 10);
  assert.equal(cpu.state.rip, 0x100b);
});

test("block: TF set by POPF inside a block traps after the next instruction", () => {
  const { cpu, mem } = makeRig();
  write32(mem, 4, 0x2000); // IVT[1] (#DB) -> 0000:2000
  writeBytes(mem, 0x2000, [0xf4]);
  // 1000: pushf ; 1001: pop ax ; 1002: or ax, 0x100 ; 1005: push ax ; 1006: popf ; 1007: inc bx ; 1008: inc bx ; 1009: hlt
  writeBytes(mem, 0x1000, [0x9c, 0x58, 0x0d, 0x00, 0x01, 0x50, 0x9d, 0x43, 0x43, 0xf4]);
  realMode(cpu, 0x1000);
  cpu.run(100);
  assert.equal(cpu.state.gpr[2 * 3] & 0xffff, 1); // the single-step trap came after the first INC
  assert.equal(mem.read8(0x7ffa) | (mem.read8(0x7ffb) << 8), 0x1008);
  assert.ok((mem.read8(0x7ffe) | (mem.read8(0x7fff) << 8)) & 0x100, "the pushed FLAGS has TF");
  assert.equal(cpu.getRflags() & 0x100, 0);
  assert.equal(cpu.state.rip, 0x2001);
});

test("block: HLT in the middle of a block stops the run there", () => {
  const { cpu, mem } = makeRig();
  writeBytes(mem, 0x1000, [0x40, 0xf4, 0x40, 0x40]); // inc eax ; hlt ; inc eax ; inc eax
  flat32(cpu, 0x1000);
  assert.equal(cpu.run(100), 2);
  assert.equal(cpu.state.gpr[0], 1);
  assert.equal(cpu.state.rip, 0x1002);
});

test("block: the VMX boundary check runs before the first instruction after an STI shadow and after each taken branch", () => {
  const { cpu, mem } = makeRig();
  // 1000: cli ; 1001: nop ; 1002: sti ; 1003: nop (shadow) ; 1004: nop ; 1005: nop ; 1006: jmp 1008 ; 1008: nop ; 1009: hlt
  writeBytes(mem, 0x1000, [0xfa, 0x90, 0xfb, 0x90, 0x90, 0x90, 0xeb, 0x00, 0x90, 0xf4]);
  flat32(cpu, 0x1000);
  const seen: number[] = [];
  // Only the boundary and HLT hooks are reached by this code (no other exiting instruction, no event).
  const hooks = { instructionBoundary(): void { seen.push(cpu.state.rip); }, hlt(): void { /* HLT exiting off */ } };
  cpu.vmx = hooks as unknown as VmxNonRoot;
  cpu.run(100);
  cpu.vmx = null;
  assert.equal(cpu.state.rip, 0x100a);
  // The interrupt window opens at 0x1004 (after the shadowed NOP): a check must happen exactly there,
  // and one after the taken JMP (0x1008).
  assert.ok(seen.includes(0x1004), `boundary checks at ${seen.map((x) => x.toString(16)).join(",")}`);
  assert.ok(seen.includes(0x1008), `boundary checks at ${seen.map((x) => x.toString(16)).join(",")}`);
  assert.ok(seen.includes(0x1003), "checked before the shadowed instruction too (where the window is still blocked)");
});

test("block: straight-line code reaches the VMX boundary check at least every 64 instructions", () => {
  const { cpu, mem } = makeRig();
  writeBytes(mem, 0x1000, [...new Array<number>(300).fill(0x90), 0xf4]); // 300 x nop ; hlt
  flat32(cpu, 0x1000);
  const seen: number[] = [];
  const hooks = { instructionBoundary(): void { seen.push(cpu.insnCount); }, hlt(): void { /* HLT exiting off */ } };
  cpu.vmx = hooks as unknown as VmxNonRoot;
  cpu.run(1000);
  cpu.vmx = null;
  assert.equal(cpu.insnCount, 301);
  for (let k = 1; k < seen.length; k++) assert.ok(seen[k]! - seen[k - 1]! <= 64, `checks at ${seen.join(",")}`);
  assert.ok(seen[seen.length - 1]! >= 300 - 64);
});

test("block (VMX): an armed interrupt-window exit happens at exactly the boundary where IF opens, mid-block", () => {
  const m = new Machine();
  // real-mode guest, IF=0: 1000: nop x3 ; 1003: sti ; 1004: nop (STI shadow) ; 1005: nop ; 1006: nop ; 1007: hlt
  m.poke(0x1000, [0x90, 0x90, 0x90, 0xfb, 0x90, 0x90, 0x90, 0xf4]);
  m.setup();
  m.w(F.GUEST_RFLAGS, 0x2);
  m.w(F.CPU_BASED_VM_EXEC_CONTROL, m.r(F.CPU_BASED_VM_EXEC_CONTROL) | F.CPU_BASED_INTR_WINDOW_EXITING);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_INTERRUPT_WINDOW);
  assert.equal(m.r(F.GUEST_RIP), 0x1005, "after the instruction in the STI shadow, not later");
  // POPF opening IF (no shadow): the exit comes right after it.
  // 1010: push word 0x202 ; 1013: popf ; 1014: nop ; 1015: hlt
  m.poke(0x1010, [0x68, 0x02, 0x02, 0x9d, 0x90, 0xf4]);
  m.w(F.GUEST_RIP, 0x1010);
  m.w(F.GUEST_RFLAGS, 0x2);
  m.w(F.GUEST_INTERRUPTIBILITY_INFO, 0);
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_INTERRUPT_WINDOW);
  assert.equal(m.r(F.GUEST_RIP), 0x1014);
});
