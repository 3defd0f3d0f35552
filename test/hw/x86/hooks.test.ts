// The CPU core's side of the VMX non-root boundary (src/hw/x86/vmx/hooks.ts), checked with a
// recording stand-in for VmxNonRoot: each hook sees RIP at the instruction start and the right
// length/qualification, exits unwind with VMEXIT, and EPT sees every guest-physical access.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeRig, writeBytes, realMode, long64, write64, getR } from "./helpers.js";
import { VMEXIT, type VmxNonRoot } from "../../../src/hw/x86/vmx/hooks.js";
import type { X86Cpu } from "../../../src/hw/x86/cpu.js";

type Call = [string, ...number[]];

function recorder(cpu: X86Cpu, exitOn: Set<string>, ept = false): { vmx: VmxNonRoot; calls: Call[]; rips: number[]; eptCalls: [number, number, boolean][] } {
  const calls: Call[] = [];
  const rips: number[] = [];
  const eptCalls: [number, number, boolean][] = [];
  const hook = (name: string) => (...args: number[]): void => {
    calls.push([name, ...args]);
    rips.push(cpu.state.rip);
    if (exitOn.has(name)) throw VMEXIT;
  };
  const vmx = {
    cpuid: hook("cpuid"), hlt: hook("hlt"), invlpg: hook("invlpg"), invpcid: hook("invpcid"), rdpmc: hook("rdpmc"),
    rdtsc: hook("rdtsc"), tscOffsetLo: () => 5, tscOffsetHi: () => 0, rdmsr: hook("rdmsr"), wrmsr: hook("wrmsr"),
    mwait: hook("mwait"), monitor: hook("monitor"), pause: hook("pause"), wbinvd: hook("wbinvd"), invd: hook("invd"),
    xsetbv: hook("xsetbv"), rdrand: hook("rdrand"), rdseed: hook("rdseed"), vmxInstruction: hook("vmx"),
    descriptorTable: hook("dt"), io: hook("io"), movToCr: hook("movToCr"), movFromCr: hook("movFromCr"),
    crReadShadow: (_cr: number, actual: number) => actual | 0x20, clts: hook("clts"), lmsw: hook("lmsw"), movDr: hook("movDr"),
    exception: hook("exception"), tripleFault: () => { calls.push(["tripleFault"]); throw VMEXIT; }, taskSwitch: hook("taskSwitch"),
    beginEventDelivery: hook("begin"), endEventDelivery: hook("end"), instructionBoundary: () => undefined,
    eptTranslate: (gpa: number, access: number, _la: number, _lv: boolean, isWalk: boolean) => { eptCalls.push([gpa, access, isWalk]); return gpa; },
    eptEnabled: ept, unrestrictedGuest: true,
  } as unknown as VmxNonRoot;
  return { vmx, calls, rips, eptCalls };
}

test("CPUID and OUT exit with RIP at the instruction and Table 28-5 qualification", () => {
  const { cpu, mem } = makeRig();
  writeBytes(mem, 0x1000, [0x90, 0x0f, 0xa2, 0xe6, 0x80, 0xf4]);
  realMode(cpu, 0x1000);
  const r = recorder(cpu, new Set(["cpuid"]));
  cpu.vmx = r.vmx;
  assert.throws(() => cpu.run(100), (e) => e === VMEXIT);
  assert.deepEqual(r.calls[0], ["cpuid", 2]);
  assert.equal(r.rips[0], 0x1001);
  assert.equal(cpu.state.rip, 0x1001, "state left at the exiting instruction");
  r.calls.length = 0; r.rips.length = 0;
  cpu.vmx = recorder(cpu, new Set(["io"])).vmx;
  const r2 = recorder(cpu, new Set(["io"]));
  cpu.vmx = r2.vmx;
  cpu.state.rip = 0x1003;
  assert.throws(() => cpu.run(100), (e) => e === VMEXIT);
  // OUT imm8, AL: size 1 -> bits 2:0 = 0, direction out, immediate operand bit 6, port in 31:16
  assert.deepEqual(r2.calls[0], ["io", 0x80, 1, (1 << 6) | (0x80 << 16), 2, 0]);
  assert.equal(r2.rips[0], 0x1003);
});

test("exception hook runs before CR2 is written; triple fault goes to vmx.tripleFault", () => {
  const { cpu, mem } = makeRig(8);
  writeBytes(mem, 0x1000, [0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x40]); // mov eax, [0x40000000] -> #PF
  long64(cpu, 0x1000);
  cpu.state.cr2 = 0x1234;
  const r = recorder(cpu, new Set(["exception"]));
  cpu.vmx = r.vmx;
  assert.throws(() => cpu.run(10), (e) => e === VMEXIT);
  assert.deepEqual(r.calls[0], ["exception", 14, 0, 0x40000000, 0]);
  assert.equal(cpu.state.cr2, 0x1234, "CR2 untouched when the exception exits");
  const r2 = recorder(cpu, new Set());
  cpu.vmx = r2.vmx;
  cpu.state.rip = 0x1000;
  cpu.state.idtrLimit = 0; // #PF, its delivery faults (#GP: IDT limit) -> #DF, whose delivery faults -> triple fault
  assert.throws(() => cpu.run(10), (e) => e === VMEXIT);
  // In non-root operation the exception bitmap is consulted for an exception raised during
  // delivery before it folds into #DF or a triple fault (SDM Vol. 3C 26.2, 28.2.4): #PF, the #GP
  // of its delivery, the #DF, the #GP of that delivery, then the triple fault.
  const seen = r2.calls.filter((c) => c[0] === "exception" || c[0] === "tripleFault").map((c) => (c[0] === "exception" ? c[1] : c[0]));
  assert.deepEqual(seen, [14, 13, 8, 13, "tripleFault"]);
  assert.equal(cpu.state.cr2, 0x40000000);
});

test("MOV CR/RDMSR/HLT hooks, CR0 read shadow, TSC offset", () => {
  const { cpu, mem } = makeRig(8);
  // mov rax, cr0; rdtsc; wrmsr; mov cr3, rbx; hlt
  writeBytes(mem, 0x1000, [0x0f, 0x20, 0xc0, 0x0f, 0x31, 0x0f, 0x22, 0xdb, 0xf4]);
  long64(cpu, 0x1000);
  const r = recorder(cpu, new Set(["hlt"]));
  cpu.vmx = r.vmx;
  cpu.state.gpr[6] = 0x10000;
  assert.throws(() => cpu.run(10), (e) => e === VMEXIT);
  assert.equal(getR(cpu, 0) & 0xffffffffn, 1000n + 5n, "RDTSC adds the TSC offset");
  assert.deepEqual(r.calls.map((c) => c[0]), ["rdtsc", "movToCr", "hlt"]);
  assert.deepEqual(r.calls[1], ["movToCr", 3, 3, 0x10000, 3]);
  assert.equal(r.rips[2], 0x1008);
});

test("with EPT every paging-structure read and the final access are translated", () => {
  const { cpu, mem } = makeRig(8);
  writeBytes(mem, 0x1000, [0x8b, 0x04, 0x25, 0x00, 0x30, 0x00, 0x00, 0xf4]); // mov eax, [0x3000]
  long64(cpu, 0x1000);
  write64(mem, 0x3000, 0xabcdef, 0);
  const r = recorder(cpu, new Set(["hlt"]), true);
  cpu.vmx = r.vmx;
  cpu.tlbFlushAll();
  assert.throws(() => cpu.run(10), (e) => e === VMEXIT);
  assert.equal(cpu.state.gpr[0], 0xabcdef);
  const walks = r.eptCalls.filter((c) => c[2]).map((c) => c[0]);
  assert.ok(walks.includes(0x10000) && walks.includes(0x11000) && walks.includes(0x12000), "PML4E, PDPTE, PDE reads");
  assert.ok(r.eptCalls.some((c) => !c[2] && c[0] === 0x3000 && c[1] === 1), "final read of 0x3000");
  assert.ok(r.eptCalls.some((c) => !c[2] && c[0] === 0x1000 && c[1] === 4), "instruction fetch");
});
