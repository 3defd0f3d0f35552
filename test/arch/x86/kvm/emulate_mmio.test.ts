/**
 * The MMIO instruction emulator (emulate_mmio.ts): each instruction form reaches userspace as
 * the sequence of KVM_EXIT_MMIO reads and writes KVM produces (reads first, the instruction runs
 * again with the data, then one exit per write fragment), with the architectural result in
 * registers and flags.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { realModeGuest, type Guest } from "./guest_helpers.js";
import { kvmEmulatorSetWriteTracker } from "../../../../src/arch/x86/kvm/emulate_mmio.js";

const b = (...x: number[]): Uint8Array => Uint8Array.from(x);
const HLT = 0xf4;
const CF = 1n, ZF = 0x40n, SF = 0x80n;

/** Real-mode guest with RAM at [0, 0x3000): 0x3000 and up is MMIO. */
function guest(code: number[], regs = {}): Guest {
  return realModeGuest({ code: Uint8Array.from([...code, HLT]), slotSize: 0x3000, regs });
}

function expectRead(g: Guest, gpa: number, len: number, data: number[]): void {
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_MMIO, "read exit");
  assert.equal(g.run.mmioIsWrite, 0);
  assert.equal(g.run.mmioPhysAddr, gpa);
  assert.equal(g.run.mmioLen, len);
  g.run.mmioData.set(data);
}

function expectWrite(g: Guest, gpa: number, data: number[]): void {
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_MMIO, "write exit");
  assert.equal(g.run.mmioIsWrite, 1);
  assert.equal(g.run.mmioPhysAddr, gpa);
  assert.equal(g.run.mmioLen, data.length);
  assert.deepEqual([...g.run.mmioData.subarray(0, data.length)], data);
}

function expectHlt(g: Guest): void {
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
}

test("ADD [mmio], eax: read, then the sum is written; RIP after the instruction, CF from the carry", () => {
  const g = guest([0x66, 0x01, 0x06, 0x00, 0x30], { rax: 0xfffffff0n });
  expectRead(g, 0x3000, 4, [0x20, 0, 0, 0]);
  expectWrite(g, 0x3000, [0x10, 0, 0, 0]);
  expectHlt(g);
  const r = g.vcpu.getRegs();
  assert.equal(r.rip, 0x1006n);
  assert.equal(r.rflags & CF, CF);
  assert.equal(r.rflags & ZF, 0n);
  assert.equal(g.vcpu.stat.mmio_exits, 2);
});

test("CMP [mmio], imm8 only reads; flags from the comparison", () => {
  const g = guest([0x66, 0x83, 0x3e, 0x00, 0x30, 0x05]);
  expectRead(g, 0x3000, 4, [5, 0, 0, 0]);
  expectHlt(g);
  assert.equal(g.vcpu.getRegs().rflags & ZF, ZF);
  assert.equal(g.vcpu.stat.mmio_exits, 1);
});

test("TEST, AND, OR, XOR, SUB with memory destination and source", () => {
  // test byte [0x3000], 0x80; or al, [0x3001]; and [0x3002], al; xor [0x3003], al; sub al, [0x3004]
  const g = guest([0xf6, 0x06, 0x00, 0x30, 0x80, 0x0a, 0x06, 0x01, 0x30, 0x20, 0x06, 0x02, 0x30, 0x30, 0x06, 0x03, 0x30, 0x2a, 0x06, 0x04, 0x30], { rax: 0x01n });
  expectRead(g, 0x3000, 1, [0x80]);
  expectRead(g, 0x3001, 1, [0x10]); // al = 0x11
  expectRead(g, 0x3002, 1, [0x31]);
  expectWrite(g, 0x3002, [0x11]);
  expectRead(g, 0x3003, 1, [0x0f]);
  expectWrite(g, 0x3003, [0x1e]);
  expectRead(g, 0x3004, 1, [0x12]); // 0x11 - 0x12 = 0xff, CF SF
  expectHlt(g);
  const r = g.vcpu.getRegs();
  assert.equal(r.rax & 0xffn, 0xffn);
  assert.equal(r.rflags & (CF | SF), CF | SF);
});

test("XCHG [mmio], eax swaps through one read and one write", () => {
  const g = guest([0x66, 0x87, 0x06, 0x00, 0x30], { rax: 0x11223344n });
  expectRead(g, 0x3000, 4, [0xaa, 0xbb, 0xcc, 0xdd]);
  expectWrite(g, 0x3000, [0x44, 0x33, 0x22, 0x11]);
  expectHlt(g);
  assert.equal(g.vcpu.getRegs().rax, 0xddccbbaan);
});

test("INC, DEC, NOT, NEG on memory", () => {
  // inc byte [0x3000]; dec word [0x3002]; not byte [0x3004]; neg byte [0x3005]
  const g = guest([0xfe, 0x06, 0x00, 0x30, 0xff, 0x0e, 0x02, 0x30, 0xf6, 0x16, 0x04, 0x30, 0xf6, 0x1e, 0x05, 0x30]);
  expectRead(g, 0x3000, 1, [0xff]);
  expectWrite(g, 0x3000, [0x00]);
  expectRead(g, 0x3002, 2, [0x00, 0x01]);
  expectWrite(g, 0x3002, [0xff, 0x00]);
  expectRead(g, 0x3004, 1, [0x0f]);
  expectWrite(g, 0x3004, [0xf0]);
  expectRead(g, 0x3005, 1, [0x01]);
  expectWrite(g, 0x3005, [0xff]);
  expectHlt(g);
  assert.equal(g.vcpu.getRegs().rflags & CF, CF, "NEG of a non-zero value sets CF");
});

test("BT reads only; BTS reads and writes back with the bit set; CF is the old bit", () => {
  // bt word [0x3000], ax; bts word [0x3002], ax   (ax = 3)
  const g = guest([0x0f, 0xa3, 0x06, 0x00, 0x30, 0x0f, 0xab, 0x06, 0x02, 0x30], { rax: 3n });
  expectRead(g, 0x3000, 2, [0x08, 0]);
  expectRead(g, 0x3002, 2, [0x01, 0]);
  expectWrite(g, 0x3002, [0x09, 0]);
  expectHlt(g);
  assert.equal(g.vcpu.getRegs().rflags & CF, 0n);
});

test("PUSH m and POP m: the stack side is RAM, the operand side MMIO", () => {
  // push word [0x3000]; pop word [0x3002]    (sp = 0x2000)
  const g = guest([0xff, 0x36, 0x00, 0x30, 0x8f, 0x06, 0x02, 0x30], { rsp: 0x2000n });
  expectRead(g, 0x3000, 2, [0x34, 0x12]);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_MMIO);
  assert.equal(g.run.mmioIsWrite, 1);
  assert.equal(g.run.mmioPhysAddr, 0x3002);
  assert.deepEqual([...g.run.mmioData.subarray(0, 2)], [0x34, 0x12]);
  assert.deepEqual([...g.peek(0x1ffe, 2)], [0x34, 0x12], "PUSH stored in RAM");
  expectHlt(g);
  assert.equal(g.vcpu.getRegs().rsp, 0x2000n);
});

test("REP MOVSB from RAM to MMIO: one write exit per iteration, then RCX/RSI/RDI are final", () => {
  const g = guest([0xf3, 0xa4], { rsi: 0x2000n, rdi: 0x3000n, rcx: 3n });
  g.poke(0x2000, b(0xa1, 0xa2, 0xa3));
  expectWrite(g, 0x3000, [0xa1]);
  expectWrite(g, 0x3001, [0xa2]);
  expectWrite(g, 0x3002, [0xa3]);
  expectHlt(g);
  const r = g.vcpu.getRegs();
  assert.equal(r.rcx, 0n);
  assert.equal(r.rsi, 0x2003n);
  assert.equal(r.rdi, 0x3003n);
  assert.equal(r.rip, 0x1003n);
});

test("MOVSW from MMIO to MMIO: the read, then the write of the same data; MOVSB MMIO to RAM", () => {
  // movsw; movsb   (si 0x3000 -> di 0x3100, then si 0x3002 -> di 0x2000 after resetting di? no: di 0x3102)
  const g = guest([0xa5, 0xbf, 0x00, 0x20, 0xa4], { rsi: 0x3000n, rdi: 0x3100n });
  expectRead(g, 0x3000, 2, [0x5a, 0xa5]);
  expectWrite(g, 0x3100, [0x5a, 0xa5]);
  expectRead(g, 0x3002, 1, [0x77]);
  expectHlt(g);
  assert.equal(g.peek(0x2000, 1)[0], 0x77);
});

test("REP STOSW with DF=1 stores downwards", () => {
  // std; rep stosw
  const g = guest([0xfd, 0xf3, 0xab], { rdi: 0x3010n, rcx: 2n, rax: 0xbeefn });
  expectWrite(g, 0x3010, [0xef, 0xbe]);
  expectWrite(g, 0x300e, [0xef, 0xbe]);
  expectHlt(g);
  assert.equal(g.vcpu.getRegs().rdi, 0x300cn);
});

test("REPE CMPSB stops on the first difference", () => {
  const g = guest([0xf3, 0xa6], { rsi: 0x3000n, rdi: 0x2000n, rcx: 5n });
  g.poke(0x2000, b(1, 2, 3));
  expectRead(g, 0x3000, 1, [1]);
  expectRead(g, 0x3001, 1, [9]);
  expectHlt(g);
  const r = g.vcpu.getRegs();
  assert.equal(r.rcx, 3n);
  assert.equal(r.rsi, 0x3002n);
  assert.equal(r.rflags & ZF, 0n);
});

test("MOVSX / MOVZX sources, and MOV moffs", () => {
  // movsx eax, byte [0x3000]; movzx ebx, word [0x3002]; mov [0x3004], al
  const g = guest([0x66, 0x0f, 0xbe, 0x06, 0x00, 0x30, 0x66, 0x0f, 0xb7, 0x1e, 0x02, 0x30, 0xa2, 0x04, 0x30]);
  expectRead(g, 0x3000, 1, [0x80]);
  expectRead(g, 0x3002, 2, [0xff, 0xff]);
  expectWrite(g, 0x3004, [0x80]);
  expectHlt(g);
  const r = g.vcpu.getRegs();
  assert.equal(r.rax, 0xffffff80n);
  assert.equal(r.rbx, 0xffffn);
});

test("a store that straddles RAM and MMIO: the RAM half is written, the MMIO half exits", () => {
  // mov [0x2ffe], eax
  const g = guest([0x66, 0xa3, 0xfe, 0x2f], { rax: 0x44332211n });
  expectWrite(g, 0x3000, [0x33, 0x44]);
  assert.deepEqual([...g.peek(0x2ffe, 2)], [0x11, 0x22]);
  expectHlt(g);
});

test("a fault raised by the emulated instruction is injected: DIV by an MMIO zero -> #DE", () => {
  // div byte [0x3000]; the #DE handler at 0x1100: hlt
  const g = guest([0xf6, 0x36, 0x00, 0x30], { rsp: 0x2000n });
  g.poke(0x1100, b(HLT));
  g.poke(0, b(0x00, 0x11, 0x00, 0x00));
  expectRead(g, 0x3000, 1, [0]);
  expectHlt(g);
  assert.equal(g.vcpu.getRegs().rip, 0x1101n);
});

test("an instruction the emulator does not handle ends in INTERNAL_ERROR / EMULATION with its bytes", () => {
  // call word [0x3000]
  const g = guest([0xff, 0x16, 0x00, 0x30], { rsp: 0x2000n });
  g.poke(0x1100, b(HLT));
  g.poke(6 * 4, b(0x00, 0x11, 0x00, 0x00));
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_INTERNAL_ERROR);
  assert.equal(g.run.internalSuberror, K.KVM_INTERNAL_ERROR_EMULATION);
  assert.equal(g.run.internalNdata, 4);
  assert.equal(g.run.internalData(0), 1n);
  assert.equal(g.run.internalData(2) & 0xffffffffn, 0x300016ffn);
  assert.equal(g.vcpu.stat.insn_emulation_fail, 1);
  // handle_emulation_failure() also queued #UD: running again delivers it (CPL 0).
  expectHlt(g);
  assert.equal(g.vcpu.getRegs().rip, 0x1101n);
});

test("pending MMIO state is per vCPU: two vCPUs each complete their own read", () => {
  const g = guest([0x66, 0xa1, 0x00, 0x30]);
  const v2 = g.vm.createVcpu(1);
  const s = v2.getSregs();
  s.cs.base = 0n;
  s.cs.selector = 0;
  v2.setSregs(s);
  v2.setRegs({ ...g.vcpu.getRegs(), rip: 0x1800n });
  g.poke(0x1800, b(0xa0, 0x10, 0x30, HLT)); // mov al, [0x3010]
  g.vcpu.run();
  assert.equal(g.run.mmioPhysAddr, 0x3000);
  v2.run();
  assert.equal(v2.kvmRun.exitReason, K.KVM_EXIT_MMIO);
  assert.equal(v2.kvmRun.mmioPhysAddr, 0x3010);
  assert.equal(v2.kvmRun.mmioLen, 1);
  v2.kvmRun.mmioData.set([0x42]);
  g.run.mmioData.set([1, 2, 3, 4]);
  g.vcpu.run();
  v2.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(v2.kvmRun.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getRegs().rax & 0xffffffffn, 0x04030201n);
  assert.equal(v2.getRegs().rax & 0xffn, 0x42n);
});

test("an MMIO access made while delivering an event is not emulated: INTERNAL_ERROR / DELIVERY_EV", () => {
  // int 0x20 with SP = 0: the pushes go to 0xfffe..., which no slot backs
  const g = guest([0xcd, 0x20]);
  g.poke(0x20 * 4, b(0x00, 0x11, 0x00, 0x00));
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_INTERNAL_ERROR);
  assert.equal(g.run.internalSuberror, K.KVM_INTERNAL_ERROR_DELIVERY_EV);
  assert.equal(g.run.internalNdata, 5);
  assert.equal(g.run.internalData(0) & 0x800000ffn, 0x80000020n, "IDT-vectoring info: valid, vector 0x20");
  assert.equal(g.run.internalData(1), 48n, "EXIT_REASON_EPT_VIOLATION");
  assert.equal(g.run.internalData(3), 0xfffen);
});

test("immediate_exit still completes a pending MMIO read (api.rst): the data reaches the register, then EINTR", () => {
  const g = guest([0x66, 0xa1, 0x00, 0x30]);
  expectRead(g, 0x3000, 4, [0x78, 0x56, 0x34, 0x12]);
  g.run.immediateExit = 1;
  assert.throws(() => g.vcpu.run(), (e: unknown) => (e as { code?: string }).code === "EINTR");
  assert.equal(g.vcpu.getRegs().rax, 0x12345678n);
  assert.equal(g.vcpu.getRegs().rip, 0x1004n);
  g.run.immediateExit = 0;
  expectHlt(g);
});

/** A 64-bit guest at CPL 3 (no IDT) with user 2 MiB identity pages over the first 4 MiB; 0x300000 has no memslot. */
function cpl3Guest(bytes: number[], regs = {}): Guest {
  const g = realModeGuest({ code: Uint8Array.from(bytes), slotSize: 0x10000, regs });
  const le = (v: number): Uint8Array => b(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff, 0, 0, 0, 0);
  g.poke(0x2000, le(0x3007));
  g.poke(0x3000, le(0x4007));
  g.poke(0x4000, Uint8Array.from([...le(0x87), ...le(0x200087)]));
  const s = g.vcpu.getSregs();
  const code = { base: 0n, limit: 0xffffffff, selector: 0x2b, type: 0xb, present: 1, dpl: 3, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0, padding: 0 };
  const data = { ...code, selector: 0x23, type: 0x3, l: 0, db: 1 };
  Object.assign(s, { cs: code, ds: data, es: data, ss: data, fs: data, gs: data, cr3: 0x2000n, cr4: 0x20n, cr0: 0x80000011n, efer: 0x500n });
  s.idt.limit = 0;
  g.vcpu.setSregs(s);
  return g;
}

test("64-bit CPL 3 under 2 MiB guest pages: ADD to MMIO reads and writes 4 bytes; REP MOVSQ stores 8 bytes per exit", () => {
  // add [rcx], edx; mov rsi, 0x1800 (imm32); rep movsq (rdi = rcx + 0x100, rcx = 2); then spin
  const g = cpl3Guest(
    [0x01, 0x11, 0x48, 0x8d, 0xb9, 0x00, 0x01, 0x00, 0x00, 0x48, 0xc7, 0xc6, 0x00, 0x18, 0x00, 0x00, 0xb9, 0x02, 0x00, 0x00, 0x00, 0xf3, 0x48, 0xa5, 0xeb, 0xfe],
    { rcx: 0x300000n, rdx: 5n, rsp: 0x8000n },
  );
  g.poke(0x1800, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]));
  expectRead(g, 0x300000, 4, [10, 0, 0, 0]);
  expectWrite(g, 0x300000, [15, 0, 0, 0]);
  expectWrite(g, 0x300100, [1, 2, 3, 4, 5, 6, 7, 8]);
  expectWrite(g, 0x300108, [9, 10, 11, 12, 13, 14, 15, 16]);
  const r = g.vcpu.getRegs();
  assert.equal(r.rcx, 0n);
  assert.equal(r.rdi, 0x300110n);
  assert.equal(r.rsi, 0x1810n);
});

test("a store that straddles MMIO then RAM, and one that straddles two MMIO pages: each part with its own bytes", () => {
  // mov [0x3ffe], eax twice; slot 1 puts RAM at [0x4000, 0x5000) for the first store only
  const g = guest([0x66, 0xa3, 0xfe, 0x3f, 0x66, 0xa3, 0xfe, 0x3f], { rax: 0x44332211n });
  const hva = g.proc.mm.mmap(0, 0x1000, 3, 0x22, -1, 0);
  g.vm.setUserMemoryRegion({ slot: 1, flags: 0, guest_phys_addr: 0x4000n, memory_size: 0x1000n, userspace_addr: BigInt(hva) });
  expectWrite(g, 0x3ffe, [0x11, 0x22]);
  assert.deepEqual([...g.proc.mm.copyFromUser(hva, 2)], [0x33, 0x44]);
  g.vm.setUserMemoryRegion({ slot: 1, flags: 0, guest_phys_addr: 0x4000n, memory_size: 0n, userspace_addr: BigInt(hva) });
  expectWrite(g, 0x3ffe, [0x11, 0x22]);
  expectWrite(g, 0x4000, [0x33, 0x44]);
  expectHlt(g);
});

test("RAM writes made by the emulator reach the write tracker (kvm_page_track_write) with their bytes", () => {
  // movsb from MMIO 0x3000 to RAM 0x2000; push word [0x3002] (stack RAM at 0x1ffe)
  const seen: string[] = [];
  kvmEmulatorSetWriteTracker((_v, gpa, data) => seen.push(`${gpa.toString(16)}:${[...data].join(",")}`));
  try {
    const g = guest([0xa4, 0xff, 0x36, 0x02, 0x30], { rsi: 0x3000n, rdi: 0x2000n, rsp: 0x2000n });
    expectRead(g, 0x3000, 1, [7]);
    expectRead(g, 0x3002, 2, [8, 9]);
    expectHlt(g);
    assert.deepEqual(seen, ["2000:7", "1ffe:8,9"]);
  } finally {
    kvmEmulatorSetWriteTracker(null);
  }
});

test("an unemulated MMIO instruction at CPL 3: #UD for the guest, or INTERNAL_ERROR with KVM_CAP_EXIT_ON_EMULATION_FAILURE", () => {
  // call [rcx] with rcx = 0x300000 (no memslot); no IDT, so a #UD becomes a triple fault
  const plain = cpl3Guest([0xff, 0x11], { rcx: 0x300000n });
  plain.vcpu.run();
  assert.equal(plain.run.exitReason, K.KVM_EXIT_SHUTDOWN, "#UD injected (and escalated: no IDT), no exit for the failure");
  assert.equal(plain.vcpu.stat.insn_emulation_fail, 1);
  const withCap = cpl3Guest([0xff, 0x11], { rcx: 0x300000n });
  withCap.vm.enableCap({ cap: K.KVM_CAP_EXIT_ON_EMULATION_FAILURE, args: [1n] });
  withCap.vcpu.run();
  assert.equal(withCap.run.exitReason, K.KVM_EXIT_INTERNAL_ERROR);
  assert.equal(withCap.run.internalSuberror, K.KVM_INTERNAL_ERROR_EMULATION);
  assert.equal(withCap.run.internalData(2) & 0xffffn, 0x11ffn);
});
