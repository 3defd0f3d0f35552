/**
 * Task switches (EXIT_REASON_TASK_SWITCH -> kvm_task_switch, SDM Vol. 3A 8.3): a 32-bit
 * protected-mode guest (paging off) switches by CALL, IRET, JMP, INT n through a task gate and
 * an exception with an error code through a task gate, to 32- and 16-bit TSSs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import type { KvmSegment } from "../../../../src/uapi/kvm_structs.js";
import { realModeGuest, type Guest } from "./guest_helpers.js";

const b = (...x: number[]): Uint8Array => Uint8Array.from(x);
const HLT = 0xf4;
const GDT = 0x500;
const IDT = 0x600;
const TSS_A = 0x2000, TSS_B = 0x2100, TSS_C = 0x2200, TSS_D = 0x2300;
const NT = 0x4000n;

function u32(v: number): Uint8Array {
  return b(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
}
function u16(v: number): Uint8Array {
  return b(v & 0xff, (v >>> 8) & 0xff);
}
function desc(lo: number, hi: number): Uint8Array {
  return Uint8Array.from([...u32(lo), ...u32(hi)]);
}
function tssDesc(base: number, limit: number, type: number): Uint8Array {
  return desc(((base & 0xffff) << 16) | limit, ((base >>> 16) & 0xff) | (type << 8) | 0x8000 | (base & 0xff000000));
}
function flat(selector: number, type: number): KvmSegment {
  return { base: 0n, limit: 0xffffffff, selector, type, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0, padding: 0 };
}

/**
 * GDT: 0x08 code, 0x10 data, 0x18 TSS A (32-bit, busy: the current task), 0x20 TSS B (32-bit),
 * 0x28 TSS C (16-bit), 0x30 TSS D (32-bit, limit too small). Task A runs `code` at 0x1000 with
 * ESP 0x2f00; task B starts at 0x1200 (out 0x10, al; iret), task C at 0x1300 (out 0x10, al).
 */
function taskGuest(code: number[]): Guest {
  const g = realModeGuest({ code: Uint8Array.from(code), slotSize: 0x10000, regs: { rax: 0xaaaan, rsp: 0x2f00n } });
  g.poke(GDT, Uint8Array.from([
    ...desc(0, 0), ...desc(0x0000ffff, 0x00cf9b00), ...desc(0x0000ffff, 0x00cf9300),
    ...tssDesc(TSS_A, 0x67, 0xb), ...tssDesc(TSS_B, 0x67, 0x9), ...tssDesc(TSS_C, 0x2b, 0x1), ...tssDesc(TSS_D, 0x20, 0x9),
  ]));
  // TSS B: EIP 0x1200, EFLAGS 2, EAX 0x1234, ESP 0x3000, selectors.
  g.poke(TSS_B + 0x20, u32(0x1200));
  g.poke(TSS_B + 0x24, u32(2));
  g.poke(TSS_B + 0x28, u32(0x1234));
  g.poke(TSS_B + 0x38, u32(0x3000));
  for (const [off, sel] of [[0x48, 0x10], [0x4c, 0x08], [0x50, 0x10], [0x54, 0x10], [0x58, 0x10], [0x5c, 0x10]]) g.poke(TSS_B + off, u32(sel));
  g.poke(0x1200, b(0xe6, 0x10, 0xcf));
  // TSS C (16-bit): IP 0x1300, FLAGS 2, AX 0x77, SP 0x2e00, ES CS SS DS.
  g.poke(TSS_C + 14, u16(0x1300));
  g.poke(TSS_C + 16, u16(2));
  g.poke(TSS_C + 18, u16(0x77));
  g.poke(TSS_C + 26, u16(0x2e00));
  for (const [off, sel] of [[34, 0x10], [36, 0x08], [38, 0x10], [40, 0x10]]) g.poke(TSS_C + off, u16(sel));
  g.poke(0x1300, b(0xe6, 0x10, HLT));
  const s = g.vcpu.getSregs();
  Object.assign(s, {
    cs: flat(0x08, 0xb), ds: flat(0x10, 0x3), es: flat(0x10, 0x3), fs: flat(0x10, 0x3), gs: flat(0x10, 0x3), ss: flat(0x10, 0x3),
    tr: { base: BigInt(TSS_A), limit: 0x67, selector: 0x18, type: 0xb, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0, padding: 0 },
    gdt: { base: BigInt(GDT), limit: 0x37, padding: [0, 0, 0] }, idt: { base: BigInt(IDT), limit: 0x7ff, padding: [0, 0, 0] },
    cr0: 0x11n,
  });
  g.vcpu.setSregs(s);
  return g;
}

const typeByte = (g: Guest, sel: number): number => g.peek(GDT + sel + 5, 1)[0];
const rd32 = (g: Guest, gpa: number): number => new DataView(g.peek(gpa, 4).buffer).getUint32(0, true);
const rd16 = (g: Guest, gpa: number): number => new DataView(g.peek(gpa, 2).buffer).getUint16(0, true);

/** IDT[vector]: a 32-bit interrupt gate to a HLT at 0x1400 (an exception handler that stops). */
function haltHandler(g: Guest, vector: number): void {
  g.poke(IDT + vector * 8, desc((0x08 << 16) | 0x1400, 0x8e00));
  g.poke(0x1400, b(HLT));
}

/** Run until the handler of haltHandler has halted; its registers. */
function runToHandler(g: Guest): ReturnType<Guest["vcpu"]["getRegs"]> {
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT, `exit ${g.run.exitReason}`);
  const r = g.vcpu.getRegs();
  assert.equal(r.rip, 0x1401n, "in the handler");
  return r;
}

function runToIo(g: Guest): void {
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_IO, `exit ${g.run.exitReason} (internal suberror ${g.run.internalSuberror})`);
}

test("CALL to a 32-bit TSS, then IRET back: back link, NT, busy bits, CR0.TS, saved and loaded state", () => {
  // call far 0x20:0; hlt
  const g = taskGuest([0x9a, 0, 0, 0, 0, 0x20, 0x00, HLT]);
  runToIo(g);
  let r = g.vcpu.getRegs();
  let s = g.vcpu.getSregs();
  assert.equal(s.tr.selector, 0x20);
  assert.equal(s.tr.base, BigInt(TSS_B));
  assert.equal(s.tr.type, 0xb, "TR holds the busy TSS");
  assert.equal(r.rip, 0x1200n, "at the OUT (completed on the next KVM_RUN)");
  assert.equal(r.rax, 0x1234n);
  assert.equal(r.rsp, 0x3000n);
  assert.equal(r.rflags & NT, NT, "CALL sets NT in the new task");
  assert.equal(s.cr0 & 8n, 8n, "CR0.TS");
  assert.equal(rd16(g, TSS_B), 0x18, "back link to task A");
  assert.equal(rd32(g, TSS_A + 0x20), 0x1007, "task A's EIP is after the CALL");
  assert.equal(rd32(g, TSS_A + 0x28), 0xaaaa, "task A's EAX");
  assert.equal(rd32(g, TSS_A + 0x38), 0x2f00, "task A's ESP");
  assert.equal(rd32(g, TSS_A + 0x4c), 0x08, "task A's CS");
  assert.equal(typeByte(g, 0x18), 0x8b, "CALL keeps the old task busy");
  assert.equal(typeByte(g, 0x20), 0x8b, "the new task is busy");
  g.vcpu.run(); // iret: back to task A
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  r = g.vcpu.getRegs();
  s = g.vcpu.getSregs();
  assert.equal(s.tr.selector, 0x18);
  assert.equal(r.rip, 0x1008n);
  assert.equal(r.rax, 0xaaaan);
  assert.equal(r.rsp, 0x2f00n);
  assert.equal(r.rflags & NT, 0n);
  assert.equal(typeByte(g, 0x20), 0x89, "IRET clears the busy bit of the task it leaves");
  assert.equal(rd32(g, TSS_B + 0x20), 0x1203, "task B's EIP saved after its IRET");
  assert.equal(rd32(g, TSS_B + 0x24) & 0x4000, 0, "task B's saved EFLAGS has NT clear");
});

test("JMP to a 16-bit TSS: no back link or NT, the old task is no longer busy, 16-bit registers zero-extended", () => {
  // jmp far 0x28:0
  const g = taskGuest([0xea, 0, 0, 0, 0, 0x28, 0x00]);
  runToIo(g);
  const r = g.vcpu.getRegs();
  const s = g.vcpu.getSregs();
  assert.equal(s.tr.selector, 0x28);
  assert.equal(s.tr.type, 0x3);
  assert.equal(r.rip, 0x1300n);
  assert.equal(r.rax, 0x77n);
  assert.equal(r.rsp, 0x2e00n);
  assert.equal(r.rflags & NT, 0n);
  assert.equal(rd16(g, TSS_C), 0, "no back link");
  assert.equal(typeByte(g, 0x18), 0x89, "JMP clears the old task's busy bit");
  assert.equal(typeByte(g, 0x28), 0x83);
  assert.equal(rd32(g, TSS_A + 0x20), 0x1007);
});

test("INT n through a task gate: the task's EIP is after the INT, back link and NT as for CALL", () => {
  // int 0x21; hlt      IDT[0x21]: task gate -> 0x20
  const g = taskGuest([0xcd, 0x21, HLT]);
  g.poke(IDT + 0x21 * 8, desc(0x20 << 16, 0x8500));
  runToIo(g);
  assert.equal(g.vcpu.getSregs().tr.selector, 0x20);
  assert.equal(g.vcpu.getRegs().rflags & NT, NT);
  assert.equal(rd16(g, TSS_B), 0x18);
  assert.equal(rd32(g, TSS_A + 0x20), 0x1002);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getRegs().rip, 0x1003n);
});

test("INT n through a task gate: a selector RPL above the gate DPL is #GP(vector * 8 + 2)", () => {
  // int 0x22 through a gate naming selector 0x23 (RPL 3 > gate DPL 0) -> #GP(0x22*8+2) through IDT[13]
  const g = taskGuest([0xcd, 0x22, HLT]);
  g.poke(IDT + 0x22 * 8, desc(0x23 << 16, 0x8500));
  haltHandler(g, 13);
  const r = runToHandler(g);
  assert.equal(rd32(g, Number(r.rsp)), 0x22 * 8 + 2, "#GP error code");
  assert.equal(g.vcpu.getSregs().tr.selector, 0x18, "no switch happened");
});

test("an exception with an error code through a task gate: the code is pushed on the new task's stack", () => {
  // mov ax, 0x43; mov ds, ax  (beyond the GDT limit: #GP(0x40))      IDT[13]: task gate -> 0x20
  const g = taskGuest([0x66, 0xb8, 0x43, 0x00, 0x8e, 0xd8, HLT]);
  g.poke(IDT + 13 * 8, desc(0x20 << 16, 0x8500));
  runToIo(g);
  const r = g.vcpu.getRegs();
  assert.equal(g.vcpu.getSregs().tr.selector, 0x20);
  assert.equal(r.rsp, 0x2ffcn);
  assert.equal(rd32(g, 0x2ffc), 0x40);
  assert.equal(rd32(g, TSS_A + 0x20), 0x1004, "the faulting instruction's EIP is saved");
  assert.equal(g.vcpu.getVcpuEvents().exception.injected, 0, "the #GP was consumed by the switch");
});

test("a TSS whose limit is too small: #TS(selector) instead of a switch", () => {
  // call far 0x30:0      IDT[10]: interrupt gate -> 0x1400 (hlt)
  const g = taskGuest([0x9a, 0, 0, 0, 0, 0x30, 0x00, HLT]);
  haltHandler(g, 10);
  const r = runToHandler(g);
  assert.equal(rd32(g, Number(r.rsp)), 0x30, "#TS error code is the TSS selector");
  assert.equal(g.vcpu.getSregs().tr.selector, 0x18);
  assert.equal(typeByte(g, 0x30), 0x89, "the TSS was not marked busy");
});

test("a 32-bit task switch loads the new task's CR3 (paging on) and its LDT, and DS from that LDT", () => {
  // call far 0x20:0; hlt       paging: 4 MiB identity PDEs in PD A (0x3000) and PD B (0x4000)
  const g = taskGuest([0x9a, 0, 0, 0, 0, 0x20, 0x00, HLT]);
  g.poke(0x3000, u32(0x83));
  g.poke(0x4000, u32(0x83));
  // GDT 0x38: an LDT at 0x2400 (limit 0xf) whose entry 1 is a data segment based at 0x5000.
  g.poke(GDT + 0x38, desc((0x2400 << 16) | 0x0f, 0x00008200));
  g.poke(0x2408, desc(0x5000ffff, 0x00cf9300));
  g.poke(TSS_A + 0x1c, u32(0x3000)); // task A's CR3, loaded when it is resumed
  g.poke(TSS_B + 0x1c, u32(0x4000));
  g.poke(TSS_B + 0x54, u32(0x0c)); // DS: LDT selector 1 (TI=1, RPL 0)
  g.poke(TSS_B + 0x60, u32(0x38));
  const s = g.vcpu.getSregs();
  s.gdt.limit = 0x3f;
  s.cr0 = 0x80000011n;
  s.cr3 = 0x3000n;
  s.cr4 = 0x10n;
  g.vcpu.setSregs(s);
  runToIo(g);
  const n = g.vcpu.getSregs();
  assert.equal(n.cr3, 0x4000n);
  assert.equal(n.ldt.selector, 0x38);
  assert.equal(n.ldt.base, 0x2400n);
  assert.equal(n.ds.selector, 0x0c);
  assert.equal(n.ds.base, 0x5000n);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  const back = g.vcpu.getSregs();
  assert.equal(back.cr3, 0x3000n);
  assert.equal(back.ldt.selector, 0);
  assert.equal(back.ds.selector, 0x10);
});

test("a task switch to a CR3 whose PAE PDPTEs have a reserved bit set is #GP(0) in the new task, CR3 unchanged", () => {
  // call far 0x20:0; hlt     PAE paging: PDPT A (0x3000) -> PD 0x6000 with a 2 MiB identity page;
  // task B's PDPT (0x4000) has PDPTE0 present with reserved bit 1.   IDT[13] -> 0x1400 (hlt)
  const g = taskGuest([0x9a, 0, 0, 0, 0, 0x20, 0x00, HLT]);
  g.poke(0x3000, u32(0x6001));
  g.poke(0x6000, u32(0x83));
  g.poke(0x4000, u32(0x6003));
  g.poke(TSS_B + 0x1c, u32(0x4000));
  haltHandler(g, 13);
  const s = g.vcpu.getSregs();
  s.cr0 = 0x80000011n;
  s.cr3 = 0x3000n;
  s.cr4 = 0x20n;
  g.vcpu.setSregs(s);
  const r = runToHandler(g);
  const n = g.vcpu.getSregs();
  assert.equal(n.tr.selector, 0x20, "the switch happened");
  assert.equal(n.cr3, 0x3000n, "CR3 kept");
  assert.equal(rd32(g, Number(r.rsp)), 0, "#GP(0)");
});

test("a bad segment in the new TSS faults in the new task: #TS(selector) after TR and EIP have switched", () => {
  // call far 0x20:0; hlt      task B's CS = 0x10 (a data segment)      IDT[10]: interrupt gate -> 0x1400 (hlt)
  const g = taskGuest([0x9a, 0, 0, 0, 0, 0x20, 0x00, HLT]);
  g.poke(TSS_B + 0x4c, u32(0x10));
  haltHandler(g, 10);
  const r = runToHandler(g);
  assert.equal(g.vcpu.getSregs().tr.selector, 0x20, "the switch happened");
  assert.equal(rd32(g, Number(r.rsp)), 0x10, "#TS error code: the CS selector");
  assert.equal(rd32(g, Number(r.rsp) + 4), 0x1200, "the fault is at task B's first instruction");
  assert.equal(r.rsp, 0x3000n - 16n, "on task B's stack");
});

test("an NMI through a task gate: the NMI is consumed by the switch and NMIs stay blocked in the new task", () => {
  // hlt (task A waits)      IDT[2]: task gate -> 0x20
  const g = taskGuest([HLT, HLT]);
  g.poke(IDT + 2 * 8, desc(0x20 << 16, 0x8500));
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  g.vcpu.nmi();
  runToIo(g);
  assert.equal(g.vcpu.getSregs().tr.selector, 0x20);
  assert.equal(rd16(g, TSS_B), 0x18, "back link: an NMI switches like a CALL");
  const ev = g.vcpu.getVcpuEvents();
  assert.equal(ev.nmi.injected, 0);
  assert.equal(ev.nmi.masked, 1);
  assert.equal(g.vcpu.stat.nmi_injections, 1);
});
