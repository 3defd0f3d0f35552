import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { KvmError } from "../../../../src/virt/kvm/kvm_error.js";
import { realModeGuest } from "./guest_helpers.js";

const b = (...x: number[]): Uint8Array => Uint8Array.from(x);
const HLT = 0xf4;

test("triple fault (real mode, IDT limit 0) ends in KVM_EXIT_SHUTDOWN", () => {
  // lidt [0x1800]; int3     (the 6 bytes at 0x1800 are zero: limit 0)
  const g = realModeGuest({ code: b(0x0f, 0x01, 0x1e, 0x00, 0x18, 0xcc, HLT) });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_SHUTDOWN);
});

test("KVM_GUESTDBG_USE_SW_BP: INT3 exits with KVM_EXIT_DEBUG at the breakpoint", () => {
  const g = realModeGuest({ code: b(0x90, 0xcc, HLT) });
  g.vcpu.setGuestDebug({ control: K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_USE_SW_BP });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_DEBUG);
  assert.equal(g.run.debugException, 3);
  assert.equal(g.run.debugPc, 0x1001);
  assert.throws(() => g.vcpu.setGuestDebug({ control: 0x80000000 }), (e: unknown) => e instanceof KvmError && e.code === "EINVAL");
});

test("KVM_GUESTDBG_SINGLESTEP: one KVM_EXIT_DEBUG per instruction", () => {
  const g = realModeGuest({ code: b(0x90, 0x90, HLT) });
  g.vcpu.setGuestDebug({ control: K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_SINGLESTEP });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_DEBUG);
  assert.equal(g.run.debugException, 1);
  assert.equal(g.run.debugPc, 0x1001);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_DEBUG);
  assert.equal(g.run.debugPc, 0x1002);
  assert.equal(g.vcpu.getRegs().rflags & 0x100n, 0n, "TF set by KVM is hidden from KVM_GET_REGS");
});

test("a 64-bit guest set up through KVM_SET_SREGS: an 8-byte load from unbacked memory exits as MMIO len 8", () => {
  // mov rax, [0x100000]; hlt   (identity-mapped 2 MiB page; no memslot at 1 MiB)
  const g = realModeGuest({ code: b(0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x10, 0x00, HLT) });
  const le = (v: number): Uint8Array => b(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff, 0, 0, 0, 0);
  g.poke(0x2000, le(0x3003)); // PML4[0] -> PDPT
  g.poke(0x3000, le(0x4003)); // PDPT[0] -> PD
  g.poke(0x4000, le(0x83)); //   PD[0]: 2 MiB page at 0
  const s = g.vcpu.getSregs();
  const code = { base: 0n, limit: 0xffffffff, selector: 8, type: 0xb, present: 1, dpl: 0, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0, padding: 0 };
  const data = { ...code, selector: 0x10, type: 0x3, l: 0, db: 1 };
  Object.assign(s, { cs: code, ds: data, es: data, ss: data, fs: data, gs: data, cr3: 0x2000n, cr4: 0x20n, cr0: 0x80000011n, efer: 0x500n });
  g.vcpu.setSregs(s);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_MMIO);
  assert.equal(g.run.mmioPhysAddr, 0x100000);
  assert.equal(g.run.mmioLen, 8);
  g.run.mmioData.set([1, 2, 3, 4, 5, 6, 7, 0x88]);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getRegs().rax, 0x8807060504030201n);
  const t = g.vcpu.translate(0x1234n);
  assert.equal(t.valid, 1);
  assert.equal(t.physical_address, 0x1234n);
});

test("TDP MMU: a 2 MiB-aligned huge host mapping is mapped with a 2 MiB SPTE, a normal one with 4 KiB", () => {
  const huge = realModeGuest({ code: b(HLT), slotSize: 4 << 20, huge: true });
  huge.vcpu.run();
  assert.equal(huge.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(huge.vm.stat.pages_2m, 1);
  assert.equal(huge.vm.stat.pages_4k, 0);
  assert.equal(huge.vcpu.stat.pf_fixed, 1);
  const small = realModeGuest({ code: b(HLT), slotSize: 4 << 20 });
  small.vcpu.run();
  assert.equal(small.vm.stat.pages_2m, 0);
  assert.equal(small.vm.stat.pages_4k, 1);
});

test("dirty logging: only pages the guest wrote are in KVM_GET_DIRTY_LOG", () => {
  // mov [0x5000], al; mov [0x7ffe], al; hlt
  const g = realModeGuest({ code: b(0xa2, 0x00, 0x50, 0xa2, 0xfe, 0x7f, HLT), slotSize: 0x10000, slotFlags: K.KVM_MEM_LOG_DIRTY_PAGES, huge: true });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  const bm = g.vm.getDirtyLog(0);
  assert.equal(bm[0], 0xa0, "pages 5 and 7, not the code page 1");
  assert.equal(bm[1], 0);
  assert.equal(g.vm.stat.pages_2m, 0, "dirty-logged slots are mapped at 4 KiB");
});

test("a pending signal ends KVM_RUN of a looping guest with EINTR / KVM_EXIT_INTR", () => {
  const g = realModeGuest({ code: b(0xeb, 0xfe) }); // jmp $
  g.vcpu.task.alarmAt(0);
  g.vcpu.task.kill(14);
  assert.throws(() => g.vcpu.run(), (e: unknown) => e instanceof KvmError && e.code === "EINTR");
  assert.equal(g.run.exitReason, K.KVM_EXIT_INTR);
});

test("KVM_GET/SET_VCPU_EVENTS, DEBUGREGS and MP_STATE round trips", () => {
  const g = realModeGuest({ code: b(HLT) });
  const ev = g.vcpu.getVcpuEvents();
  ev.exception = { injected: 1, nr: 13, has_error_code: 1, pending: 0, error_code: 0x10 };
  ev.nmi = { injected: 0, pending: 1, masked: 1, pad: 0 };
  ev.flags = 0x1 | 0x4;
  g.vcpu.setVcpuEvents(ev);
  const back = g.vcpu.getVcpuEvents();
  assert.deepEqual(back.exception, ev.exception);
  assert.equal(back.nmi.pending, 1);
  assert.equal(back.nmi.masked, 1);
  const dr = g.vcpu.getDebugregs();
  dr.db = [0x1000n, 0x2000n, 0n, 0n];
  dr.dr7 = 0x401n;
  g.vcpu.setDebugregs(dr);
  const drb = g.vcpu.getDebugregs();
  assert.deepEqual(drb.db, dr.db);
  assert.equal(drb.dr7, 0x401n);
  assert.throws(() => g.vcpu.setDebugregs({ ...dr, dr7: 1n << 32n }), (e: unknown) => e instanceof KvmError && e.code === "EINVAL");
  assert.equal(g.vcpu.getMpState().mp_state, K.KVM_MP_STATE_RUNNABLE);
  assert.throws(() => g.vcpu.setMpState({ mp_state: K.KVM_MP_STATE_HALTED }), (e: unknown) => e instanceof KvmError && e.code === "EINVAL");
});

test("an MMIO SPTE made before a memslot appeared is recognized as stale: the access then hits RAM", () => {
  // mov al, [0x3000]; hlt; jmp back
  const g = realModeGuest({ code: b(0xa0, 0x00, 0x30, HLT, 0xeb, 0xfa), slotSize: 0x2000 });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_MMIO);
  g.run.mmioData[0] = 1;
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  const page = g.proc.mm.mmap(0, 0x1000, 3, 0x22, -1, 0);
  g.proc.mm.copyToUser(page, b(0x42));
  g.vm.setUserMemoryRegion({ slot: 1, flags: 0, guest_phys_addr: 0x3000n, memory_size: 0x1000n, userspace_addr: BigInt(page) });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getRegs().rax & 0xffn, 0x42n);
});

test("unmapping the memory behind a slot (mmu notifier) makes the next access fail with EFAULT", () => {
  // mov al, [0x3000]; hlt; jmp back
  const g = realModeGuest({ code: b(0xa0, 0x00, 0x30, HLT, 0xeb, 0xfa), slotSize: 0x2000 });
  const page = g.proc.mm.mmap(0, 0x1000, 3, 0x22, -1, 0);
  g.vm.setUserMemoryRegion({ slot: 1, flags: 0, guest_phys_addr: 0x3000n, memory_size: 0x1000n, userspace_addr: BigInt(page) });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  g.proc.mm.munmap(page, 0x1000);
  assert.throws(() => g.vcpu.run(), (e: unknown) => e instanceof KvmError && e.code === "EFAULT");
});

test("KVM_GET/SET_SREGS2: PAE paging carries the PDPTRs; flags are checked", () => {
  // A 32-bit PAE guest: PDPT at 0x2000 -> PD at 0x3000 with a 2 MiB page at 0; mov eax, [0x1800]; hlt
  const g = realModeGuest({ code: b(0xa1, 0x00, 0x18, 0x00, 0x00, HLT) });
  g.poke(0x2000, b(0x01, 0x30, 0, 0, 0, 0, 0, 0));
  g.poke(0x3000, b(0x83, 0, 0, 0, 0, 0, 0, 0));
  g.poke(0x1800, b(0x78, 0x56, 0x34, 0x12));
  const s = g.vcpu.getSregs();
  const code = { base: 0n, limit: 0xffffffff, selector: 8, type: 0xb, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0, padding: 0 };
  const data = { ...code, selector: 0x10, type: 0x3 };
  Object.assign(s, { cs: code, ds: data, es: data, ss: data, fs: data, gs: data, cr3: 0x2000n, cr4: 0x20n, cr0: 0x80000011n });
  g.vcpu.setSregs(s);
  assert.equal(g.kvm.checkExtension(K.KVM_CAP_SREGS2), 1);
  const s2 = g.vcpu.archIoctl(K.KVM_GET_SREGS2, 0) as Uint8Array;
  assert.equal(s2.byteLength, 320);
  const dv = new DataView(s2.buffer);
  assert.equal(dv.getUint32(280, true), 1, "KVM_SREGS2_FLAGS_PDPTRS_VALID");
  assert.equal(dv.getUint32(288, true), 0x3001, "PDPTE 0 as loaded from CR3");
  dv.setUint32(280, 2, true);
  assert.throws(() => g.vcpu.archIoctl(K.KVM_SET_SREGS2, s2), (e: unknown) => e instanceof KvmError && e.code === "EINVAL");
  dv.setUint32(280, 1, true);
  g.vcpu.archIoctl(K.KVM_SET_SREGS2, s2);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getRegs().rax, 0x12345678n);
});
