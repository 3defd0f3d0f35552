/**
 * Memslot changes under a running 64-bit guest, after KVM's set_memory_region_test selftest: a
 * guest loops reading 8 bytes from a GPA in slot 1 and reports each value (OUT). Moving or
 * deleting slot 1 turns the read into KVM_EXIT_MMIO (len 8, the data userspace gives is what the
 * guest reads); moving it back serves the read from memory again; deleting slot 0 (code and page
 * tables) ends in SHUTDOWN or INTERNAL_ERROR, as the selftest accepts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { realModeGuest, type Guest } from "./guest_helpers.js";

const b = (...x: number[]): Uint8Array => Uint8Array.from(x);
const DATA_GPA = 0x100000;
const MOVED_GPA = 0x180000;
const MMIO_VAL = 0xbeefn;

/** A 64-bit guest (CPL 0) running `code` at 0x1000 in slot 0 [0, 64 KiB), with the first 2 MiB identity-mapped by one PDE. */
function longModeGuest(bytes: number[]): Guest {
  const g = realModeGuest({ code: Uint8Array.from(bytes), slotSize: 0x10000 });
  const le = (v: number): Uint8Array => b(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff, 0, 0, 0, 0);
  g.poke(0x2000, le(0x3003));
  g.poke(0x3000, le(0x4003));
  g.poke(0x4000, le(0x83));
  const s = g.vcpu.getSregs();
  const code = { base: 0n, limit: 0xffffffff, selector: 8, type: 0xb, present: 1, dpl: 0, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0, padding: 0 };
  const data = { ...code, selector: 0x10, type: 0x3, l: 0, db: 1 };
  Object.assign(s, { cs: code, ds: data, es: data, ss: data, fs: data, gs: data, cr3: 0x2000n, cr4: 0x20n, cr0: 0x80000011n, efer: 0x500n });
  g.vcpu.setSregs(s);
  return g;
}

/** l: mov rax, [DATA_GPA]; out 0x10, al; jmp l */
function loopGuest(): { g: Guest; data: number } {
  const g = longModeGuest([0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x10, 0x00, 0xe6, 0x10, 0xeb, 0xf4]);
  const hva = g.proc.mm.mmap(0, 0x1000, 3, 0x22, -1, 0);
  g.proc.mm.copyToUser(hva, b(1, 0, 0, 0, 0, 0, 0, 0));
  setSlot1(g, hva, DATA_GPA);
  return { g, data: hva };
}

function setSlot1(g: Guest, hva: number, gpa: number, size = 0x1000): void {
  g.vm.setUserMemoryRegion({ slot: 1, flags: 0, guest_phys_addr: BigInt(gpa), memory_size: BigInt(size), userspace_addr: BigInt(hva) });
}

/** Run to the guest's OUT and return the value it read. */
function readViaGuest(g: Guest): bigint {
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_IO, `exit ${g.run.exitReason}`);
  return g.vcpu.getRegs().rax;
}

/** Run to the MMIO read of the data GPA and answer it with MMIO_VAL. */
function expectMmioRead(g: Guest): void {
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_MMIO);
  assert.equal(g.run.mmioPhysAddr, DATA_GPA);
  assert.equal(g.run.mmioLen, 8);
  assert.equal(g.run.mmioIsWrite, 0);
  g.run.mmioData.set([0xef, 0xbe, 0, 0, 0, 0, 0, 0]);
}

test("moving a slot the guest reads: MMIO exits (len 8) while it is away, memory again once it is back", () => {
  const { g, data } = loopGuest();
  assert.equal(readViaGuest(g), 1n);
  setSlot1(g, data, MOVED_GPA);
  expectMmioRead(g);
  assert.equal(readViaGuest(g), MMIO_VAL);
  expectMmioRead(g);
  assert.equal(readViaGuest(g), MMIO_VAL);
  g.proc.mm.copyToUser(data, b(2));
  setSlot1(g, data, DATA_GPA);
  assert.equal(readViaGuest(g), 2n, "the moved-back slot serves the read, with the current memory contents");
});

test("deleting the slot the guest reads gives MMIO exits; deleting the code slot ends in SHUTDOWN or INTERNAL_ERROR", () => {
  const { g, data } = loopGuest();
  assert.equal(readViaGuest(g), 1n);
  setSlot1(g, data, DATA_GPA, 0);
  expectMmioRead(g);
  assert.equal(readViaGuest(g), MMIO_VAL);
  g.vm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: 0n, userspace_addr: BigInt(g.mem) });
  g.vcpu.run();
  assert.ok(g.run.exitReason === K.KVM_EXIT_SHUTDOWN || g.run.exitReason === K.KVM_EXIT_INTERNAL_ERROR, `exit ${g.run.exitReason}`);
});

test("a read-only slot under the 64-bit guest: reads come from memory, a write exits as MMIO and leaves memory alone", () => {
  // mov rax, [DATA_GPA]; mov [DATA_GPA + 8], rax; hlt
  const g = longModeGuest([0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x10, 0x00, 0x48, 0x89, 0x04, 0x25, 0x08, 0x00, 0x10, 0x00, 0xf4]);
  const hva = g.proc.mm.mmap(0, 0x1000, 3, 0x22, -1, 0);
  g.proc.mm.copyToUser(hva, b(0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88));
  g.vm.setUserMemoryRegion({ slot: 1, flags: K.KVM_MEM_READONLY, guest_phys_addr: BigInt(DATA_GPA), memory_size: 0x1000n, userspace_addr: BigInt(hva) });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_MMIO);
  assert.equal(g.run.mmioIsWrite, 1);
  assert.equal(g.run.mmioPhysAddr, DATA_GPA + 8);
  assert.equal(g.run.mmioLen, 8);
  assert.deepEqual([...g.run.mmioData], [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.deepEqual([...g.proc.mm.copyFromUser(hva + 8, 8)], [0, 0, 0, 0, 0, 0, 0, 0]);
});
