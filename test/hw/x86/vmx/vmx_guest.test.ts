import { test } from "node:test";
import assert from "node:assert/strict";
import * as F from "../../../../src/hw/x86/vmx/vmcs.js";
import { VMX_SUCCEED } from "../../../../src/hw/x86/vmx/vmx.js";
import {
  EXIT_REASON_IO_INSTRUCTION, EXIT_REASON_HLT, EXIT_REASON_CPUID, EXIT_REASON_MSR_READ, EXIT_REASON_CR_ACCESS,
  EXIT_REASON_EPT_VIOLATION, EXIT_REASON_EXCEPTION_NMI, EXIT_REASON_INTERRUPT_WINDOW, EXIT_REASON_EXTERNAL_INTERRUPT,
  EXIT_REASON_PREEMPTION_TIMER, EXIT_REASON_MONITOR_TRAP_FLAG, EXIT_REASON_EPT_MISCONFIG, EXIT_REASON_PAUSE_INSTRUCTION,
} from "../../../../src/uapi/vmx.js";
import { Machine, MSR_BITMAP_HPA, GUEST_HPA } from "./harness.js";

test("first guest: OUT exits with the I/O qualification and length, then HLT, through EPT", () => {
  const m = new Machine();
  // mov $0x3f8,%dx; add %bl,%al; add $'0',%al; out %al,(%dx); mov $'\n',%al; out %al,(%dx); hlt
  m.poke(0x1000, [0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, 0x30, 0xee, 0xb0, 0x0a, 0xee, 0xf4]);
  m.setup();
  m.setGpr(0, 2); m.setGpr(3, 2);
  const out: number[] = [];
  assert.equal(m.vmx.vmlaunch(), VMX_SUCCEED);
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_IO_INSTRUCTION);
  assert.equal(m.r(F.EXIT_QUALIFICATION), 0x03f80000, "size 1, OUT, DX operand, port 0x3f8");
  assert.equal(m.r(F.VM_EXIT_INSTRUCTION_LEN), 1);
  assert.equal(m.r(F.GUEST_RIP), 0x1007);
  out.push(m.gpr(0) & 0xff);
  m.skip();
  assert.equal(m.vmx.vmresume(), VMX_SUCCEED);
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_IO_INSTRUCTION);
  assert.equal(m.r(F.GUEST_RIP), 0x100a);
  out.push(m.gpr(0) & 0xff);
  m.skip();
  assert.equal(m.vmx.vmresume(), VMX_SUCCEED);
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_HLT);
  assert.equal(m.r(F.VM_EXIT_INSTRUCTION_LEN), 1);
  assert.equal(m.r(F.GUEST_RIP), 0x100b);
  assert.equal(String.fromCharCode(...out), "4\n");
  // host state after the exit: 64-bit host RIP/RSP loaded
  assert.equal(m.cpu.state.rip, -0x7f000000);
  assert.equal(m.cpu.state.cr3, 0x5000);
});

test("CPUID always exits; RDMSR exits per the MSR bitmap", () => {
  const m = new Machine();
  // cpuid; rdmsr (ECX=0x10, bitmap bit clear); mov $0x1b,%cx; rdmsr (bitmap bit set)
  m.poke(0x1000, [0x0f, 0xa2, 0x0f, 0x32, 0x66, 0xb9, 0x1b, 0x00, 0x00, 0x00, 0x0f, 0x32]);
  m.setup({ proc: F.CPU_BASED_USE_MSR_BITMAPS });
  m.pm.write8(MSR_BITMAP_HPA + (0x1b >>> 3), 1 << (0x1b & 7));
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_CPUID);
  assert.equal(m.r(F.VM_EXIT_INSTRUCTION_LEN), 2);
  m.skip();
  m.setGpr(1, 0x10);
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_MSR_READ);
  assert.equal(m.r(F.GUEST_RIP), 0x100a, "RDMSR of 0x10 did not exit");
  assert.equal(m.gpr(1), 0x1b);
});

test("CR access qualification: MOV to CR0 of a host-owned bit, MOV from CR3 with store exiting", () => {
  const m = new Machine();
  // mov %eax,%cr0 ; mov %cr3,%ecx
  m.poke(0x1000, [0x0f, 0x22, 0xc0, 0x0f, 0x20, 0xd9]);
  m.setup({ proc: F.CPU_BASED_CR3_STORE_EXITING });
  m.w(F.CR0_GUEST_HOST_MASK, 0x80000001);
  m.setGpr(0, 0x31);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_CR_ACCESS);
  assert.equal(m.r(F.EXIT_QUALIFICATION), 0x000, "CR0, MOV to CR, RAX");
  assert.equal(m.r(F.VM_EXIT_INSTRUCTION_LEN), 3);
  m.skip();
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_CR_ACCESS);
  assert.equal(m.r(F.EXIT_QUALIFICATION), 0x113, "CR3, MOV from CR, RCX");
});

test("EPT violation: qualification, guest-physical and guest-linear address, RIP of the access", () => {
  const m = new Machine();
  // mov 0x8010,%al (A0 10 80)
  m.poke(0x1000, [0xa0, 0x10, 0x80]);
  m.eptPage(0x8000, 0);
  m.setup();
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EPT_VIOLATION);
  assert.equal(m.r(F.EXIT_QUALIFICATION), F.EPT_VIOLATION_ACC_READ | F.EPT_VIOLATION_GVA_IS_VALID | F.EPT_VIOLATION_GVA_TRANSLATED);
  assert.equal(m.r(F.GUEST_PHYSICAL_ADDRESS), 0x8010);
  assert.equal(m.r(F.GUEST_LINEAR_ADDRESS), 0x8010);
  assert.equal(m.r(F.GUEST_RIP), 0x1000);
  // KVM maps the page read-only and invalidates: the read completes, a write faults with R reported.
  m.eptPage(0x8000, 1);
  m.vmx.invept(F.VMX_EPT_EXTENT_GLOBAL, 0);
  m.poke(0x1003, [0xa2, 0x10, 0x80]); // mov %al,0x8010
  m.pm.write8(GUEST_HPA + 0x8010, 0x5a);
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EPT_VIOLATION);
  assert.equal(m.gpr(0) & 0xff, 0x5a);
  assert.equal(m.r(F.GUEST_RIP), 0x1003);
  assert.equal(m.r(F.EXIT_QUALIFICATION), F.EPT_VIOLATION_ACC_WRITE | F.EPT_VIOLATION_PROT_READ | F.EPT_VIOLATION_GVA_IS_VALID | F.EPT_VIOLATION_GVA_TRANSLATED);
  // W without R: misconfiguration
  m.eptPage(0x8000, 2);
  m.vmx.invept(F.VMX_EPT_EXTENT_GLOBAL, 0);
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EPT_MISCONFIG);
  assert.equal(m.r(F.GUEST_PHYSICAL_ADDRESS), 0x8010);
});

test("exception bitmap: #UD exits with interruption info; #PF mask/match inverts bit 14", () => {
  const m = new Machine();
  m.poke(0x1000, [0x0f, 0x0b]); // ud2
  m.setup();
  m.w(F.EXCEPTION_BITMAP, 1 << 6);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EXCEPTION_NMI);
  assert.equal(m.r(F.VM_EXIT_INTR_INFO), 0x80000306);
  assert.equal(m.r(F.GUEST_RIP), 0x1000);
  assert.equal(m.r(F.IDT_VECTORING_INFO_FIELD), 0);
});

test("event injection delivers through the guest IVT; interrupt-window exits when IF=1", () => {
  const m = new Machine();
  m.poke(0x1000, [0xf4]);
  m.poke(0x2000, [0x90, 0xf4]); // handler: nop; hlt
  m.poke(0x20 * 4, [0x00, 0x20, 0x00, 0x00]); // IVT[0x20] = 0000:2000
  m.setup();
  m.w(F.GUEST_RFLAGS, 0x202);
  m.w(F.VM_ENTRY_INTR_INFO_FIELD, 0x80000020);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_HLT);
  assert.equal(m.r(F.GUEST_RIP), 0x2001);
  assert.equal(m.r(F.GUEST_RSP), 0x7000 - 6);
  assert.equal(m.r(F.VM_ENTRY_INTR_INFO_FIELD) & F.INTR_INFO_VALID_MASK, 0, "valid bit cleared by the exit");
  assert.equal(m.r(F.GUEST_RFLAGS) & 0x200, 0, "IF cleared by delivery");
  // interrupt window: IF=1 and no blocking -> exit before the next instruction
  m.w(F.GUEST_RFLAGS, 0x202);
  m.w(F.CPU_BASED_VM_EXEC_CONTROL, m.r(F.CPU_BASED_VM_EXEC_CONTROL) | F.CPU_BASED_INTR_WINDOW_EXITING);
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_INTERRUPT_WINDOW);
  assert.equal(m.r(F.GUEST_RIP), 0x2001);
});

test("host time slice and kick become external-interrupt exits with the acknowledged vector", () => {
  const m = new Machine(1000);
  m.poke(0x1000, [0xeb, 0xfe]); // jmp .
  m.setup();
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EXTERNAL_INTERRUPT);
  assert.equal(m.r(F.VM_EXIT_INTR_INFO), 0x800000ec);
  Atomics.store(m.cpu.hostIrq, 0, 1);
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EXTERNAL_INTERRUPT);
  assert.equal(m.r(F.VM_EXIT_INTR_INFO), 0x800000fd);
  assert.equal(m.cpu.hostIrq[0], 0);
});

test("preemption timer of 0 exits before the first instruction; MTF exits after one", () => {
  const m = new Machine();
  m.poke(0x1000, [0x90, 0x90, 0xf4]);
  m.setup({ pin: F.PIN_BASED_VMX_PREEMPTION_TIMER, exit: F.VM_EXIT_SAVE_VMX_PREEMPTION_TIMER });
  m.w(F.VMX_PREEMPTION_TIMER_VALUE, 0);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_PREEMPTION_TIMER);
  assert.equal(m.r(F.GUEST_RIP), 0x1000);
  m.w(F.PIN_BASED_VM_EXEC_CONTROL, m.r(F.PIN_BASED_VM_EXEC_CONTROL) & ~F.PIN_BASED_VMX_PREEMPTION_TIMER);
  m.w(F.VM_EXIT_CONTROLS, m.r(F.VM_EXIT_CONTROLS) & ~F.VM_EXIT_SAVE_VMX_PREEMPTION_TIMER);
  m.w(F.CPU_BASED_VM_EXEC_CONTROL, m.r(F.CPU_BASED_VM_EXEC_CONTROL) | F.CPU_BASED_MONITOR_TRAP_FLAG);
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_MONITOR_TRAP_FLAG);
  assert.equal(m.r(F.GUEST_RIP), 0x1001);
});

test("an EPT violation while delivering an injected interrupt reports IDT-vectoring information", () => {
  const m = new Machine();
  m.poke(0x1000, [0x90]);
  m.eptPage(0, 0); // the IVT page
  m.setup();
  m.w(F.GUEST_RFLAGS, 0x202);
  m.w(F.VM_ENTRY_INTR_INFO_FIELD, 0x80000020);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EPT_VIOLATION);
  assert.equal(m.r(F.GUEST_PHYSICAL_ADDRESS), 0x80);
  assert.equal(m.r(F.IDT_VECTORING_INFO_FIELD), 0x80000020);
  assert.equal(m.r(F.GUEST_RIP), 0x1000);
  // KVM re-injects from the vectoring info after fixing EPT: the handler runs.
  m.eptPage(0, 7);
  m.vmx.invept(F.VMX_EPT_EXTENT_CONTEXT, 0x10000 | 6 | (3 << 3));
  m.poke(0x80, [0x00, 0x20, 0x00, 0x00]);
  m.poke(0x2000, [0xf4]);
  m.w(F.VM_ENTRY_INTR_INFO_FIELD, m.r(F.IDT_VECTORING_INFO_FIELD));
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_HLT);
  assert.equal(m.r(F.GUEST_RIP), 0x2000);
  assert.equal(m.r(F.IDT_VECTORING_INFO_FIELD), 0);
});

test("an injected #UD is not subject to the exception bitmap; a #UD raised by the guest is", () => {
  const m = new Machine();
  m.poke(0x1000, [0x90]);
  m.poke(0x2000, [0x0f, 0x0b]); // handler: ud2
  m.poke(6 * 4, [0x00, 0x20, 0x00, 0x00]);
  m.setup();
  m.w(F.EXCEPTION_BITMAP, 1 << 6);
  m.w(F.VM_ENTRY_INTR_INFO_FIELD, 0x80000306);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EXCEPTION_NMI);
  assert.equal(m.r(F.GUEST_RIP), 0x2000, "the injected #UD was delivered; the handler's ud2 exited");
});

test("preemption timer counts down with the TSC and saves its value on exit", () => {
  const m = new Machine(10_000_000);
  m.poke(0x1000, [0xeb, 0xfe]); // jmp .
  m.setup({ pin: F.PIN_BASED_VMX_PREEMPTION_TIMER, exit: F.VM_EXIT_SAVE_VMX_PREEMPTION_TIMER });
  m.w(F.VMX_PREEMPTION_TIMER_VALUE, 1000);
  m.clockStep = 1000; // 1 us per clock read: 2000 TSC ticks at 2 GHz = 62 timer ticks
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_PREEMPTION_TIMER);
  assert.equal(m.r(F.VMX_PREEMPTION_TIMER_VALUE), 0);
  // A host kick before the timer expires: the remaining count is saved.
  m.w(F.VMX_PREEMPTION_TIMER_VALUE, 1_000_000);
  Atomics.store(m.cpu.hostIrq, 0, 1);
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EXTERNAL_INTERRUPT);
  const left = m.r(F.VMX_PREEMPTION_TIMER_VALUE);
  assert.ok(left > 0 && left < 1_000_000, `remaining ${left}`);
});

test("PAUSE-loop exiting: PAUSEs closer than PLE_Gap for longer than PLE_Window exit; spaced-out PAUSEs do not", () => {
  // mov cx, 300 ; 1: pause ; loop 1b ; hlt       (real mode, CPL 0)
  const code = [0xb9, 0x2c, 0x01, 0xf3, 0x90, 0xe2, 0xfc, 0xf4];
  const run = (step: number, proc2: number): Machine => {
    const m = new Machine();
    m.poke(0x1000, code);
    m.setup({ proc2 });
    m.w(F.PLE_GAP, 128);
    m.w(F.PLE_WINDOW, 4096);
    m.clockStep = step; // ns per clock read; the TSC runs at 2 GHz, one read per PAUSE
    m.vmx.vmlaunch();
    return m;
  };
  const loop = run(10, F.SECONDARY_EXEC_PAUSE_LOOP_EXITING); // 20 TSC ticks between PAUSEs
  assert.equal(loop.r(F.VM_EXIT_REASON), EXIT_REASON_PAUSE_INSTRUCTION);
  assert.equal(loop.r(F.GUEST_RIP), 0x1003, "the PAUSE that ends the window");
  assert.equal(loop.r(F.VM_EXIT_INSTRUCTION_LEN), 2);
  const done = 300 - (loop.gpr(1) & 0xffff);
  assert.ok(done > 150 && done < 260, `${done} PAUSEs before the exit: window 4096 / 20 ticks each`);
  assert.equal(run(100, F.SECONDARY_EXEC_PAUSE_LOOP_EXITING).r(F.VM_EXIT_REASON), EXIT_REASON_HLT, "200 ticks apart: each PAUSE starts a new loop");
  assert.equal(run(10, 0).r(F.VM_EXIT_REASON), EXIT_REASON_HLT, "without the control PAUSE never exits");
});

test("I/O bitmaps: a port whose bit is set exits, others run on the host bus; a word access checks both ports", () => {
  const m = new Machine();
  // out %al,$0x80 ; mov $0x3f7,%dx ; out %ax,(%dx)
  m.poke(0x1000, [0xe6, 0x80, 0xba, 0xf7, 0x03, 0xef]); // (16-bit code: EF is a word OUT)
  m.setup({ proc: F.CPU_BASED_USE_IO_BITMAPS });
  m.pm.write8(0x15000 + (0x3f8 >>> 3), 1 << (0x3f8 & 7));
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_IO_INSTRUCTION);
  assert.equal(m.r(F.GUEST_RIP), 0x1005, "port 0x80 did not exit");
  assert.equal(m.r(F.EXIT_QUALIFICATION), (0x3f7 << 16) | 1, "2 bytes at 0x3f7 (reaches 0x3f8), OUT, DX");
  assert.equal(m.r(F.VM_EXIT_INSTRUCTION_LEN), 1);
});

test("pending debug exceptions are delivered as #DB at entry: an exit with the bits, or DR6 + the guest handler", () => {
  const m = new Machine();
  m.poke(0x1000, [0x90]);
  m.poke(0x2000, [0x0f, 0xa2]);
  m.poke(1 * 4, [0x00, 0x20, 0x00, 0x00]);
  m.setup();
  m.w(F.GUEST_PENDING_DBG_EXCEPTIONS, F.DEBUG_PENDING_BS);
  m.w(F.EXCEPTION_BITMAP, 1 << 1);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EXCEPTION_NMI);
  assert.equal(m.r(F.VM_EXIT_INTR_INFO), 0x80000301);
  assert.equal(m.r(F.EXIT_QUALIFICATION), F.DEBUG_PENDING_BS);
  assert.equal(m.r(F.GUEST_PENDING_DBG_EXCEPTIONS), 0);
  m.w(F.EXCEPTION_BITMAP, 0);
  m.w(F.GUEST_PENDING_DBG_EXCEPTIONS, F.DEBUG_PENDING_BS | 1);
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_CPUID);
  assert.equal(m.r(F.GUEST_RIP), 0x2000);
  assert.equal(m.cpu.state.dr[6] & 0x4001, 0x4001);
});

test("injecting #PF leaves CR2 as software set it (SDM 27.6.1)", () => {
  const m = new Machine();
  m.poke(0x2000, [0x0f, 0xa2]);
  m.poke(14 * 4, [0x00, 0x20, 0x00, 0x00]);
  m.setup();
  m.cpu.state.cr2 = 0xdead000;
  m.w(F.VM_ENTRY_INTR_INFO_FIELD, 0x80000b0e & ~F.INTR_INFO_DELIVER_CODE_MASK); // real mode: no error code
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_CPUID);
  assert.equal(m.r(F.GUEST_RIP), 0x2000);
  assert.equal(m.cpu.state.cr2, 0xdead000);
});

test("an EPT violation on POP m leaves RSP and memory as before the instruction (found by the prot32 differential cases)", () => {
  const m = new Machine();
  // push $5 ; pop (0x5000) ; cpuid
  m.poke(0x1000, [0x6a, 0x05, 0x8f, 0x06, 0x00, 0x50, 0x0f, 0xa2]);
  m.setup();
  m.eptPage(0x5000, 0);
  m.vmx.vmlaunch();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_EPT_VIOLATION);
  assert.equal(m.r(F.GUEST_RIP), 0x1002, "the POP is restarted");
  assert.equal(m.r(F.GUEST_RSP), 0x6ffe, "RSP as after the PUSH only");
  m.eptPage(0x5000, 7);
  m.vmx.vmresume();
  assert.equal(m.r(F.VM_EXIT_REASON), EXIT_REASON_CPUID);
  assert.equal(m.r(F.GUEST_RSP), 0x7000);
  assert.equal(m.pm.read32(GUEST_HPA + 0x5000) & 0xffff, 5);
});
