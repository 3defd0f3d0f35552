/**
 * One guest per VM-exit handler of kvmVmxExitHandlers that other test files do not already drive
 * (HLT, IO, CPUID, VMCALL, CR, MSR, MMIO/EPT violation, triple fault, interrupt window, #BP/#DB,
 * task switch, INVPCID, NMI have their own files): each guest makes the exit happen (checked
 * through the kvm_exit tracepoint) and the result KVM gives is checked.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import * as R from "../../../../src/uapi/vmx.js";
import * as V from "../../../../src/hw/x86/vmx/vmcs.js";
import { execControlsSetbit } from "../../../../src/arch/x86/kvm/vmx/vmx.js";
import { kvmVmxExitHandlers } from "../../../../src/arch/x86/kvm/vmx/vmx_exit.js";
import type { X86Vcpu } from "../../../../src/arch/x86/kvm/kvm_host.js";
import { realModeGuest, type Guest } from "./guest_helpers.js";
import { recordExits } from "./exit_helpers.js";
import { eventfd } from "../../../../src/host/eventfd.js";

const b = (...x: number[]): Uint8Array => Uint8Array.from(x);
const HLT = 0xf4;
const x86 = (g: Guest): X86Vcpu => g.vcpu as unknown as X86Vcpu;

/** A real-mode guest whose #UD (IVT 6) and #GP (IVT 13) handlers are `hlt` at 0x1100 / 0x1200. */
function guest(code: number[], regs = {}): Guest {
  const g = realModeGuest({ code: Uint8Array.from([...code, HLT]), regs });
  g.poke(0x1100, b(HLT));
  g.poke(0x1200, b(HLT));
  g.poke(6 * 4, b(0x00, 0x11, 0x00, 0x00));
  g.poke(13 * 4, b(0x00, 0x12, 0x00, 0x00));
  return g;
}

/** Run to the HLT; returns where it stopped (the HLT's address + 1). */
function runToHlt(g: Guest): bigint {
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT, `exit ${g.run.exitReason}`);
  return g.vcpu.getRegs().rip;
}

const UD_STOP = 0x1101n;
const GP_STOP = 0x1201n;

test("EXCEPTION_NMI / #UD: KVM reflects the intercepted #UD into the guest", () => {
  const g = guest([0x0f, 0x0b]);
  const exits = recordExits(g);
  assert.equal(runToHlt(g), UD_STOP);
  assert.ok(exits.includes(R.EXIT_REASON_EXCEPTION_NMI), exits.join());
});

test("INVD and WBINVD are skipped", () => {
  const g = guest([0x0f, 0x08, 0x0f, 0x09]);
  const exits = recordExits(g);
  assert.equal(runToHlt(g), 0x1005n);
  assert.ok(exits.includes(R.EXIT_REASON_INVD), exits.join());
  assert.ok(exits.includes(R.EXIT_REASON_WBINVD), exits.join());
});

test("INVLPG (with INVLPG exiting) is counted and skipped", () => {
  const g = guest([0x0f, 0x01, 0x3e, 0x00, 0x20]);
  execControlsSetbit(x86(g), V.CPU_BASED_INVLPG_EXITING);
  const exits = recordExits(g);
  assert.equal(runToHlt(g), 0x1006n);
  assert.ok(exits.includes(R.EXIT_REASON_INVLPG), exits.join());
  assert.equal(g.vcpu.stat.invlpg, 1);
});

test("RDPMC without a virtual PMU: #GP", () => {
  const g = guest([0x0f, 0x33]);
  const exits = recordExits(g);
  assert.equal(runToHlt(g), GP_STOP);
  assert.ok(exits.includes(R.EXIT_REASON_RDPMC), exits.join());
});

test("RDTSC and RDTSCP with RDTSC exiting: the guest TSC in EDX:EAX, TSC_AUX in ECX, and it moves forward", () => {
  // rdtsc; mov esi, eax; mov edi, edx; rdtscp
  const g = guest([0x0f, 0x31, 0x66, 0x89, 0xc6, 0x66, 0x89, 0xd7, 0x0f, 0x01, 0xf9]);
  g.vcpu.setCpuid2(g.kvm.getSupportedCpuid(256));
  assert.equal(g.vcpu.setMsrs({ nmsrs: 1, entries: [{ index: 0xc0000103, reserved: 0, data: 0x55n }] }), 1);
  execControlsSetbit(x86(g), V.CPU_BASED_RDTSC_EXITING);
  const exits = recordExits(g);
  assert.equal(runToHlt(g), 0x100cn);
  assert.ok(exits.includes(R.EXIT_REASON_RDTSC), exits.join());
  assert.ok(exits.includes(R.EXIT_REASON_RDTSCP), exits.join());
  const r = g.vcpu.getRegs();
  const t1 = (r.rdi << 32n) | r.rsi;
  const t2 = (r.rdx << 32n) | r.rax;
  assert.ok(t2 >= t1, `${t2} >= ${t1}`);
  assert.equal(r.rcx, 0x55n);
});

test("MOV to and from DR0 exit (MOV-DR exiting) and round-trip the value", () => {
  // mov dr0, eax; mov ebx, dr0
  const g = guest([0x0f, 0x23, 0xc0, 0x0f, 0x21, 0xc3], { rax: 0x12345678n });
  const exits = recordExits(g);
  assert.equal(runToHlt(g), 0x1007n);
  assert.ok(exits.includes(R.EXIT_REASON_DR_ACCESS), exits.join());
  assert.equal(g.vcpu.getRegs().rbx, 0x12345678n);
  assert.equal(g.vcpu.getDebugregs().db[0], 0x12345678n);
});

test("MONITOR and MWAIT: #UD (not advertised to the guest)", () => {
  for (const code of [[0x0f, 0x01, 0xc8], [0x0f, 0x01, 0xc9]]) {
    const g = guest(code);
    const exits = recordExits(g);
    assert.equal(runToHlt(g), UD_STOP);
    assert.ok(exits.includes(R.EXIT_REASON_MONITOR_INSTRUCTION) || exits.includes(R.EXIT_REASON_MWAIT_INSTRUCTION), exits.join());
  }
});

test("PAUSE with PAUSE exiting is skipped", () => {
  const g = guest([0xf3, 0x90]);
  execControlsSetbit(x86(g), V.CPU_BASED_PAUSE_EXITING);
  const exits = recordExits(g);
  assert.equal(runToHlt(g), 0x1003n);
  assert.ok(exits.includes(R.EXIT_REASON_PAUSE_INSTRUCTION), exits.join());
});

test("EPT misconfiguration: the second access to an MMIO page takes the MMIO-SPTE path and still exits as MMIO", () => {
  // mov al, [0x3000] twice (slot [0, 0x2000))
  const g = realModeGuest({ code: b(0xa0, 0x00, 0x30, 0xa0, 0x00, 0x30, HLT), slotSize: 0x2000 });
  const exits = recordExits(g);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_MMIO);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_MMIO);
  assert.equal(g.run.mmioPhysAddr, 0x3000);
  // The code page faults in first (an EPT violation on RAM), then the MMIO page twice.
  assert.deepEqual(exits, [R.EXIT_REASON_EPT_VIOLATION, R.EXIT_REASON_EPT_VIOLATION, R.EXIT_REASON_EPT_MISCONFIG]);
});

test("XSETBV loads XCR0; an invalid value is #GP", () => {
  // xsetbv (ecx 0, edx:eax = 3)
  const g = guest([0x0f, 0x01, 0xd1], { rax: 3n });
  g.vcpu.setCpuid2(g.kvm.getSupportedCpuid(256));
  const s = g.vcpu.getSregs();
  s.cr4 |= 1n << 18n;
  g.vcpu.setSregs(s);
  const exits = recordExits(g);
  assert.equal(runToHlt(g), 0x1004n);
  assert.ok(exits.includes(R.EXIT_REASON_XSETBV), exits.join());
  assert.equal(x86(g).arch.xcr0, 3);
  const bad = guest([0x0f, 0x01, 0xd1], { rax: 2n });
  bad.vcpu.setCpuid2(bad.kvm.getSupportedCpuid(256));
  bad.vcpu.setSregs(s);
  assert.equal(runToHlt(bad), GP_STOP, "XCR0 without x87 state");
});

test("the monitor trap flag exits after each instruction and KVM resumes the guest", () => {
  const g = guest([0x90, 0x90]);
  execControlsSetbit(x86(g), V.CPU_BASED_MONITOR_TRAP_FLAG);
  const exits = recordExits(g);
  assert.equal(runToHlt(g), 0x1003n);
  assert.ok(exits.filter((r) => r === R.EXIT_REASON_MONITOR_TRAP_FLAG).length >= 2, exits.join());
});

test("the NMI window exit delivers the second of two NMIs", () => {
  // NMI handler: iret
  const g = guest([]);
  g.poke(0x1300, b(0xcf));
  g.poke(2 * 4, b(0x00, 0x13, 0x00, 0x00));
  const exits = recordExits(g);
  g.vcpu.nmi();
  g.vcpu.nmi();
  assert.equal(runToHlt(g), 0x1001n);
  assert.ok(exits.includes(R.EXIT_REASON_NMI_WINDOW), exits.join());
  assert.equal(g.vcpu.stat.nmi_window_exits, 1);
});

test("VMX instructions in the guest (no nested VMX): #UD", () => {
  const g = guest([0x0f, 0x01, 0xc4]); // vmxoff
  const exits = recordExits(g);
  assert.equal(runToHlt(g), UD_STOP);
  assert.ok(exits.includes(R.EXIT_REASON_VMOFF), exits.join());
});

test("EXTERNAL_INTERRUPT: the host timer tick ends each time slice; KVM counts it and resumes the guest", () => {
  // mov cx, 3000; l: dec cx; jnz l; hlt      (6000 instructions, slices of 500)
  const g = realModeGuest({ code: b(0xb9, 0xb8, 0x0b, 0x49, 0x75, 0xfd, HLT), sliceInsns: 500 });
  const exits = recordExits(g);
  assert.equal(runToHlt(g), 0x1007n);
  const ext = exits.filter((r) => r === R.EXIT_REASON_EXTERNAL_INTERRUPT).length;
  assert.ok(ext >= 10, `external-interrupt exits: ${ext}`);
  assert.equal(g.vcpu.stat.irq_exits, ext);
});

test("every exit reason the processor model can produce has a handler (no unexpected-exit path)", () => {
  const produced = [
    R.EXIT_REASON_EXCEPTION_NMI, R.EXIT_REASON_EXTERNAL_INTERRUPT, R.EXIT_REASON_TRIPLE_FAULT, R.EXIT_REASON_INTERRUPT_WINDOW,
    R.EXIT_REASON_NMI_WINDOW, R.EXIT_REASON_TASK_SWITCH, R.EXIT_REASON_CPUID, R.EXIT_REASON_HLT, R.EXIT_REASON_INVD,
    R.EXIT_REASON_INVLPG, R.EXIT_REASON_RDPMC, R.EXIT_REASON_RDTSC, R.EXIT_REASON_VMCALL, R.EXIT_REASON_CR_ACCESS,
    R.EXIT_REASON_DR_ACCESS, R.EXIT_REASON_IO_INSTRUCTION, R.EXIT_REASON_MSR_READ, R.EXIT_REASON_MSR_WRITE,
    R.EXIT_REASON_MWAIT_INSTRUCTION, R.EXIT_REASON_MONITOR_TRAP_FLAG, R.EXIT_REASON_MONITOR_INSTRUCTION,
    R.EXIT_REASON_PAUSE_INSTRUCTION, R.EXIT_REASON_EPT_VIOLATION, R.EXIT_REASON_EPT_MISCONFIG, R.EXIT_REASON_RDTSCP,
    R.EXIT_REASON_PREEMPTION_TIMER, R.EXIT_REASON_WBINVD, R.EXIT_REASON_XSETBV, R.EXIT_REASON_RDRAND, R.EXIT_REASON_INVPCID,
    R.EXIT_REASON_RDSEED, R.EXIT_REASON_VMCLEAR, R.EXIT_REASON_VMLAUNCH, R.EXIT_REASON_VMPTRLD, R.EXIT_REASON_VMPTRST,
    R.EXIT_REASON_VMREAD, R.EXIT_REASON_VMRESUME, R.EXIT_REASON_VMWRITE, R.EXIT_REASON_VMOFF, R.EXIT_REASON_VMON,
    R.EXIT_REASON_INVEPT, R.EXIT_REASON_INVVPID, R.EXIT_REASON_VMFUNC,
  ];
  for (const r of produced) assert.equal(typeof kvmVmxExitHandlers[r], "function", `exit reason ${r}`);
});

test("EPT misconfiguration fast path: a length-0 ioeventfd takes MMIO writes without decoding them (KVM_FAST_MMIO_BUS)", () => {
  // mov [0x3000], al three times; hlt      (no memslot at 0x3000)
  const g = realModeGuest({ code: b(0xa2, 0x00, 0x30, 0xa2, 0x00, 0x30, 0x66, 0x89, 0x1e, 0x00, 0x30, HLT), slotSize: 0x2000 });
  const efd = eventfd(g.proc.files);
  g.vm.archIoctl(K.KVM_IOEVENTFD, { datamatch: 0n, addr: 0x3000n, len: 0, fd: efd.fd, flags: 0 });
  const exits = recordExits(g);
  const fast: number[] = [];
  g.kvm.subscribeTrace(["kvm_fast_mmio"], (e) => fast.push(Number(e.fields.gpa)));
  assert.equal(runToHlt(g), 0x100cn);
  assert.equal(efd.counter, 3n);
  assert.equal(g.vcpu.stat.mmio_exits, 0);
  assert.deepEqual(fast, [0x3000, 0x3000], "the first write creates the MMIO SPTE (EPT violation), the next two take the fast path");
  assert.equal(exits.filter((r) => r === R.EXIT_REASON_EPT_MISCONFIG).length, 2);
});
