import { test } from "node:test";
import assert from "node:assert/strict";
import * as F from "../../../../src/hw/x86/vmx/vmcs.js";
import {
  EXIT_REASON_CR_ACCESS, EXIT_REASON_DR_ACCESS, EXIT_REASON_INVLPG, EXIT_REASON_CPUID, EXIT_REASON_EXCEPTION_NMI,
  EXIT_REASON_EXTERNAL_INTERRUPT, EXIT_REASON_HLT, EXIT_REASON_RDTSC,
} from "../../../../src/uapi/vmx.js";
import { Machine } from "./harness.js";

function run(m: Machine, launch = false): number {
  if (launch) m.vmx.vmlaunch(); else m.vmx.vmresume();
  return m.r(F.VM_EXIT_REASON);
}

test("CR0 reads see the read shadow for host-owned bits; CLTS and LMSW qualifications", () => {
  const m = new Machine();
  // mov %cr0,%eax ; cpuid ; clts ; lmsw %ax
  m.poke(0x1000, [0x0f, 0x20, 0xc0, 0x0f, 0xa2, 0x0f, 0x06, 0x0f, 0x01, 0xf0]);
  m.setup();
  m.w(F.GUEST_CR0, 0x38); // NE, ET, TS
  m.w(F.CR0_GUEST_HOST_MASK, 0x29); // NE, TS, PE host-owned
  m.w(F.CR0_READ_SHADOW, 0x08);     // guest believes NE=0, TS=1, PE=0
  assert.equal(run(m, true), EXIT_REASON_CPUID);
  assert.equal(m.gpr(0), 0x18, "ET from CR0, NE and TS from the shadow");
  m.skip();
  assert.equal(run(m), EXIT_REASON_CR_ACCESS);
  assert.equal(m.r(F.EXIT_QUALIFICATION), F.CR_ACCESS_TYPE_CLTS << 4);
  assert.equal(m.r(F.VM_EXIT_INSTRUCTION_LEN), 2);
  m.skip();
  m.setGpr(0, 0x9); // LMSW sets PE (and keeps TS): PE is host-owned and 0 in the shadow
  assert.equal(run(m), EXIT_REASON_CR_ACCESS);
  assert.equal(m.r(F.EXIT_QUALIFICATION), (0x9 << 16) | (F.CR_ACCESS_TYPE_LMSW << 4));
});

test("MOV DR exits with direction and register; INVLPG exits with the linear address", () => {
  const m = new Machine();
  // mov %eax,%dr7 ; mov %dr6,%ecx ; invlpg (%bx)
  m.poke(0x1000, [0x0f, 0x23, 0xf8, 0x0f, 0x21, 0xf1, 0x0f, 0x01, 0x3f]);
  m.setup({ proc: F.CPU_BASED_MOV_DR_EXITING | F.CPU_BASED_INVLPG_EXITING });
  assert.equal(run(m, true), EXIT_REASON_DR_ACCESS);
  assert.equal(m.r(F.EXIT_QUALIFICATION), 7);
  m.skip();
  assert.equal(run(m), EXIT_REASON_DR_ACCESS);
  assert.equal(m.r(F.EXIT_QUALIFICATION), 6 | F.TYPE_MOV_FROM_DR | (1 << 8));
  m.skip();
  m.setGpr(3, 0x4321);
  assert.equal(run(m), EXIT_REASON_INVLPG);
  assert.equal(m.r(F.EXIT_QUALIFICATION), 0x4321);
  assert.equal(m.r(F.VM_EXIT_INSTRUCTION_LEN), 3);
});

test("RDTSC adds the TSC offset; RDTSC exiting; RDTSCP is #UD unless enabled", () => {
  const m = new Machine();
  // rdtsc ; cpuid ; rdtsc ; rdtscp
  m.poke(0x1000, [0x0f, 0x31, 0x0f, 0xa2, 0x0f, 0x31, 0x0f, 0x01, 0xf9]);
  m.setup({ proc: F.CPU_BASED_USE_TSC_OFFSETTING });
  m.vmx.vmwrite64(F.TSC_OFFSET, 5, 1);
  m.w(F.EXCEPTION_BITMAP, 1 << 6);
  assert.equal(run(m, true), EXIT_REASON_CPUID);
  assert.deepEqual([m.gpr(2), m.gpr(0)], [1, 5], "clock at 0: TSC = offset");
  m.skip();
  m.w(F.CPU_BASED_VM_EXEC_CONTROL, m.r(F.CPU_BASED_VM_EXEC_CONTROL) | F.CPU_BASED_RDTSC_EXITING);
  assert.equal(run(m), EXIT_REASON_RDTSC);
  assert.equal(m.r(F.VM_EXIT_INSTRUCTION_LEN), 2);
  m.skip();
  assert.equal(run(m), EXIT_REASON_EXCEPTION_NMI);
  assert.equal(m.r(F.VM_EXIT_INTR_INFO), 0x80000306);
  assert.equal(m.r(F.GUEST_RIP), 0x1006);
});

test("HLT without HLT exiting: the guest waits in the HLT state until an injected interrupt", () => {
  const m = new Machine();
  m.poke(0x1000, [0xf4, 0x90]);
  m.poke(0x2000, [0x0f, 0xa2, 0xf4]);
  m.poke(0x30 * 4, [0x00, 0x20, 0x00, 0x00]);
  m.setup();
  m.w(F.CPU_BASED_VM_EXEC_CONTROL, m.r(F.CPU_BASED_VM_EXEC_CONTROL) & ~F.CPU_BASED_HLT_EXITING);
  m.w(F.GUEST_RFLAGS, 0x202);
  assert.equal(run(m, true), EXIT_REASON_EXTERNAL_INTERRUPT);
  assert.equal(m.r(F.VM_EXIT_INTR_INFO), 0x800000ec);
  assert.equal(m.r(F.GUEST_ACTIVITY_STATE), F.GUEST_ACTIVITY_HLT);
  assert.equal(m.r(F.GUEST_RIP), 0x1001);
  assert.equal(run(m), EXIT_REASON_EXTERNAL_INTERRUPT, "still halted");
  m.w(F.VM_ENTRY_INTR_INFO_FIELD, 0x80000030);
  assert.equal(run(m), EXIT_REASON_CPUID);
  assert.equal(m.r(F.GUEST_RIP), 0x2000);
  assert.equal(m.r(F.GUEST_ACTIVITY_STATE), F.GUEST_ACTIVITY_ACTIVE);
  // HLT exiting again: the exit is the instruction's, before it takes effect.
  m.w(F.CPU_BASED_VM_EXEC_CONTROL, m.r(F.CPU_BASED_VM_EXEC_CONTROL) | F.CPU_BASED_HLT_EXITING);
  m.skip();
  assert.equal(run(m), EXIT_REASON_HLT);
  assert.equal(m.r(F.GUEST_RIP), 0x2002);
  assert.equal(m.r(F.GUEST_ACTIVITY_STATE), F.GUEST_ACTIVITY_ACTIVE);
});

test("with VPID the guest's TLB survives VM exits until INVVPID; without VPID every entry flushes", () => {
  for (const vpid of [true, false]) {
    const m = new Machine();
    // 32-bit protected mode with paging: linear 0x400000 -> gpa 0x8000 through a 4 MiB-less PT.
    m.setup(vpid ? { proc2: F.SECONDARY_EXEC_ENABLE_VPID } : {});
    if (vpid) m.w(F.VIRTUAL_PROCESSOR_ID, 5);
    m.poke(0x3000, [0x07, 0x40, 0, 0]);            // PDE[0] -> PT at 0x4000 (identity low 4 MiB below)
    for (let i = 0; i < 16; i++) m.poke(0x4000 + i * 4, [0x07, i << 4, 0, 0]);
    m.poke(0x3004, [0x07, 0x50, 0, 0]);            // PDE[1] -> PT at 0x5000
    m.poke(0x5000, [0x07, 0x80, 0, 0]);            // 0x400000 -> gpa 0x8000
    m.poke(0x8000, [0x11, 0, 0, 0]);
    m.poke(0x9000, [0x22, 0, 0, 0]);
    // mov 0x400000,%eax ; cpuid ; mov 0x400000,%eax ; cpuid
    m.poke(0x1000, [0xa1, 0, 0, 0x40, 0, 0x0f, 0xa2, 0xa1, 0, 0, 0x40, 0, 0x0f, 0xa2]);
    m.w(F.GUEST_CR0, 0x80000031);
    m.w(F.GUEST_CR3, 0x3000);
    for (let s = 0; s < 6; s++) {
      m.w(F.GUEST_SEG_SELECTOR_BASE + 2 * s, s === 1 ? 8 : 0x10);
      m.w(F.GUEST_SEG_LIMIT_BASE + 2 * s, 0xffffffff);
      m.w(F.GUEST_SEG_AR_BASE + 2 * s, s === 1 ? 0xc09b : 0xc093);
    }
    assert.equal(run(m, true), EXIT_REASON_CPUID);
    assert.equal(m.gpr(0), 0x11);
    m.poke(0x5000, [0x07, 0x90, 0, 0]); // the guest's PTE changes without INVLPG
    m.skip();
    assert.equal(run(m), EXIT_REASON_CPUID);
    assert.equal(m.gpr(0), vpid ? 0x11 : 0x22, vpid ? "tagged TLB entry survives" : "entry flushed the TLB");
    if (vpid) {
      m.vmx.invvpid(F.VMX_VPID_EXTENT_SINGLE_CONTEXT, 5, 0);
      m.w(F.GUEST_RIP, 0x1007);
      assert.equal(run(m), EXIT_REASON_CPUID);
      assert.equal(m.gpr(0), 0x22);
    }
  }
});

test("crWriteValue keeps host-owned CR0/CR4 bits for writes that do not exit (SDM 26.3)", () => {
  const m = new Machine();
  m.setup();
  m.w(F.CR4_GUEST_HOST_MASK, 0x2020); // VMXE, PAE host-owned
  m.w(F.CR0_GUEST_HOST_MASK, 0x20);   // NE host-owned
  const nr = m.vmx.nonRoot;
  nr.begin(); // decode the controls as VM entry does
  assert.equal(nr.crWriteValue(4, 0x80, 0x2020), 0x20a0, "guest sets PGE; VMXE and PAE stay");
  assert.equal(nr.crWriteValue(0, 0x11, 0x31), 0x31, "guest clears NE (host-owned): it stays set");
});

test("MOV to CR4/CR0, CLTS and LMSW that do not exit keep host-owned bits (the next entry still passes)", () => {
  const m = new Machine();
  // mov %cr4,%eax ; xor $0x80,%eax ; mov %eax,%cr4 ; clts ; lmsw %cx ; mov %cr4,%ebx ; cpuid
  m.poke(0x1000, [0x0f, 0x20, 0xe0, 0x35, 0x80, 0, 0, 0, 0x0f, 0x22, 0xe0, 0x0f, 0x06, 0x0f, 0x01, 0xf1, 0x0f, 0x20, 0xe3, 0x0f, 0xa2]);
  m.setup();
  m.w(F.CR4_GUEST_HOST_MASK, 0x2000); // VMXE host-owned, shadow 0
  m.w(F.CR0_GUEST_HOST_MASK, 0x20);   // NE host-owned
  m.w(F.CR0_READ_SHADOW, 0x20);
  m.w(F.GUEST_CR0, m.r(F.GUEST_CR0) | 0x28); // NE, TS
  m.setGpr(1, 0x0);                         // LMSW with 0: MP/EM/TS clear, PE stays
  assert.equal(run(m, true), EXIT_REASON_CPUID);
  assert.equal(m.gpr(3), 0x80, "the guest sees PGE set and VMXE clear (shadow)");
  assert.equal(m.r(F.GUEST_CR4) & 0x2080, 0x2080, "VMXE survived the guest's write");
  assert.equal(m.r(F.GUEST_CR0) & 0x28, 0x20, "CLTS cleared TS; NE survived");
  m.skip();
  m.poke(0x1015, [0x0f, 0xa2]);
  assert.equal(run(m), EXIT_REASON_CPUID, "VM entry with the resulting CR0/CR4 passes its checks");
});
