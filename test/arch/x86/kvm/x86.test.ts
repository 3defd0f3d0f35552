import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../../src/uapi/kvm.js";
import { KvmError } from "../../../../src/virt/kvm/kvm_error.js";
import { realModeGuest, ZERO_REGS } from "./guest_helpers.js";

const b = (...x: number[]): Uint8Array => Uint8Array.from(x);
const HLT = 0xf4;

test("KVM_EXIT_HLT leaves RIP after the HLT", () => {
  const g = realModeGuest({ code: b(0x90, HLT) });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getRegs().rip, 0x1002n);
  assert.equal(g.vcpu.stat.halt_exits, 1);
});

test("IN exits with direction IN and the data userspace supplies lands in AL on the next run", () => {
  // mov dx, 0x3f8; in al, dx; hlt
  const g = realModeGuest({ code: b(0xba, 0xf8, 0x03, 0xec, HLT), regs: { rax: 0x1234n } });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_IO);
  assert.equal(g.run.ioDirection, K.KVM_EXIT_IO_IN);
  assert.equal(g.run.ioPort, 0x3f8);
  assert.equal(g.run.ioSize, 1);
  assert.equal(g.run.ioCount, 1);
  assert.equal(g.run.ioDataOffset, 4096);
  assert.equal(g.vcpu.getRegs().rip, 0x1003n, "RIP stays on the IN until it completes");
  g.vcpu.runBytes[4096] = 0x41;
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getRegs().rax, 0x1241n, "IN AL keeps the upper bits of RAX");
});

test("REP OUTSB reaches userspace as one exit with count > 1", () => {
  // rep outsb; hlt   (DS:SI = 0x1100, CX = 5, DX = 0x3f8)
  const g = realModeGuest({ code: b(0xf3, 0x6e, HLT), regs: { rsi: 0x1100n, rcx: 5n, rdx: 0x3f8n } });
  g.poke(0x1100, new TextEncoder().encode("hello"));
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_IO);
  assert.equal(g.run.ioDirection, K.KVM_EXIT_IO_OUT);
  assert.equal(g.run.ioCount, 5);
  assert.equal(new TextDecoder().decode(g.vcpu.runBytes.subarray(4096, 4101)), "hello");
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  const r = g.vcpu.getRegs();
  assert.equal(r.rcx, 0n);
  assert.equal(r.rsi, 0x1105n);
  assert.equal(r.rip, 0x1003n);
});

test("REP INSB writes the userspace data to ES:DI", () => {
  const g = realModeGuest({ code: b(0xf3, 0x6c, HLT), regs: { rdi: 0x1200n, rcx: 3n, rdx: 0x60n } });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_IO);
  assert.equal(g.run.ioDirection, K.KVM_EXIT_IO_IN);
  assert.equal(g.run.ioCount, 3);
  g.vcpu.runBytes.set(new TextEncoder().encode("abc"), 4096);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(new TextDecoder().decode(g.peek(0x1200, 3)), "abc");
  assert.equal(g.vcpu.getRegs().rdi, 0x1203n);
});

test("CPUID is answered from the vCPU's table, including KVM's signature leaf", () => {
  // mov eax, 0x40000000; cpuid; hlt
  const g = realModeGuest({ code: b(0x66, 0xb8, 0x00, 0x00, 0x00, 0x40, 0x0f, 0xa2, HLT) });
  assert.throws(() => g.kvm.getSupportedCpuid(1), (e: unknown) => e instanceof KvmError && e.code === "E2BIG");
  const sup = g.kvm.getSupportedCpuid(100);
  const sig = sup.entries.find((e) => e.function === 0x40000000);
  assert.ok(sig);
  assert.ok(!sup.entries.some((e) => e.function === 1 && (e.ecx & (1 << 5)) !== 0), "no VMX for the guest (no nested)");
  g.vcpu.setCpuid2(sup);
  assert.equal(g.vcpu.getCpuid2(100).nent, sup.nent);
  assert.throws(() => g.vcpu.getCpuid2(1), (e: unknown) => e instanceof KvmError && e.code === "E2BIG");
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  const r = g.vcpu.getRegs();
  assert.equal(r.rax, 0x40000001n);
  assert.equal(r.rbx, 0x4b4d564bn);
  assert.equal(r.rcx, 0x564b4d56n);
  assert.equal(r.rdx, 0x4dn);
});

test("VMCALL: unknown hypercall returns -KVM_ENOSYS (32-bit outside 64-bit mode)", () => {
  const g = realModeGuest({ code: b(0x0f, 0x01, 0xc1, HLT), regs: { rax: 99n } });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getRegs().rax, 0xfffffc18n);
  assert.equal(g.vcpu.stat.hypercalls, 1);
});

test("MOV to CR0 exits and KVM updates the guest's CR0 (PE set by the guest)", () => {
  // mov eax, cr0; or eax, 1; mov cr0, eax; hlt
  const g = realModeGuest({ code: b(0x0f, 0x20, 0xc0, 0x66, 0x83, 0xc8, 0x01, 0x0f, 0x22, 0xc0, HLT) });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getSregs().cr0 & 1n, 1n);
  assert.equal(g.vcpu.getRegs().rax & 0xffffffffn, 0x60000011n);
});

test("KVM_GET_REGS / KVM_SET_REGS round trip", () => {
  const g = realModeGuest({ code: b(HLT) });
  const regs = { ...ZERO_REGS, rax: 0x1122334455667788n, rbx: 2n, rcx: 3n, rdx: 4n, rsi: 5n, rdi: 6n, rsp: 0xfff0n, rbp: 8n, r8: 9n, r15: 0xffffffffffffffffn, rip: 0x1000n, rflags: 0x202n };
  g.vcpu.setRegs(regs);
  assert.deepEqual(g.vcpu.getRegs(), regs);
  // RFLAGS bit 1 is always set.
  g.vcpu.setRegs({ ...regs, rflags: 0n });
  assert.equal(g.vcpu.getRegs().rflags, 2n);
});

test("KVM_GET_SREGS / KVM_SET_SREGS round trip and invalid combinations", () => {
  const g = realModeGuest({ code: b(HLT) });
  const s = g.vcpu.getSregs();
  assert.equal(s.cr0, 0x60000010n);
  assert.equal(s.cs.base, 0n);
  s.gdt = { base: 0x5000n, limit: 0x27, padding: [0, 0, 0] };
  s.idt = { base: 0x6000n, limit: 0x7ff, padding: [0, 0, 0] };
  s.ds = { ...s.ds, base: 0x12340n, selector: 0x1234, limit: 0xffff };
  s.cr2 = 0xdead000n;
  s.cr3 = 0x9000n;
  s.cr8 = 5n;
  g.vcpu.setSregs(s);
  assert.deepEqual(g.vcpu.getSregs(), s);
  // EFER.LMA without paging is invalid (kvm_is_valid_sregs).
  assert.throws(() => g.vcpu.setSregs({ ...s, efer: 0x500n }), (e: unknown) => e instanceof KvmError && e.code === "EINVAL");
  // CR4.VMXE: no nested VMX.
  assert.throws(() => g.vcpu.setSregs({ ...s, cr4: 0x2000n }), (e: unknown) => e instanceof KvmError && e.code === "EINVAL");
});

test("KVM_GET/SET_MSRS: processed count stops at the first failure; values round trip", () => {
  const g = realModeGuest({ code: b(HLT) });
  const set = { nmsrs: 3, entries: [
    { index: 0x174, reserved: 0, data: 0x10n },
    { index: 0x277, reserved: 0, data: 0x0007040600070406n },
    { index: 0x12345, reserved: 0, data: 1n },
  ] };
  assert.equal(g.vcpu.setMsrs(set), 2);
  const get = { nmsrs: 2, entries: [{ index: 0x174, reserved: 0, data: 0n }, { index: 0x277, reserved: 0, data: 0n }] };
  assert.equal(g.vcpu.getMsrs(get), 2);
  assert.equal(get.entries[0].data, 0x10n);
  assert.equal(get.entries[1].data, 0x0007040600070406n);
  // A PAT entry with a reserved memory type (2) is refused.
  assert.equal(g.vcpu.setMsrs({ nmsrs: 1, entries: [{ index: 0x277, reserved: 0, data: 0x02n }] }), 0);
  const list = g.kvm.getMsrIndexList(200);
  assert.ok(list.indices.includes(0xc0000080));
  assert.throws(() => g.kvm.getMsrIndexList(1), (e: unknown) => e instanceof KvmError && e.code === "E2BIG");
});

test("RDMSR of an unknown MSR exits to userspace with KVM_CAP_X86_USER_SPACE_MSR", () => {
  // mov ecx, 0x12345678; rdmsr; hlt
  const g = realModeGuest({ code: b(0x66, 0xb9, 0x78, 0x56, 0x34, 0x12, 0x0f, 0x32, HLT) });
  assert.equal(g.kvm.checkExtension(K.KVM_CAP_X86_USER_SPACE_MSR), 1);
  g.vm.enableCap({ cap: K.KVM_CAP_X86_USER_SPACE_MSR, args: [BigInt(K.KVM_MSR_EXIT_REASON_UNKNOWN), 0n, 0n, 0n] });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_X86_RDMSR);
  assert.equal(g.run.msrIndex, 0x12345678);
  assert.equal(g.run.msrReason, K.KVM_MSR_EXIT_REASON_UNKNOWN);
  g.run.msrDataBig = 0xaabbccdd11223344n;
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  const r = g.vcpu.getRegs();
  assert.equal(r.rax, 0x11223344n);
  assert.equal(r.rdx, 0xaabbccddn);
});

test("MMIO: read and write of an address without a memslot exit as KVM_EXIT_MMIO", () => {
  // mov al, [0x3000]... slot covers [0, 0x2000) only.
  // a0 00 30: mov al, [0x3000]; a2 08 30: mov [0x3008], al; 66 a1 10 30: mov eax, [0x3010]; hlt
  const g = realModeGuest({ code: b(0xa0, 0x00, 0x30, 0xa2, 0x08, 0x30, 0x66, 0xa1, 0x10, 0x30, HLT), slotSize: 0x2000 });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_MMIO);
  assert.equal(g.run.mmioPhysAddr, 0x3000);
  assert.equal(g.run.mmioLen, 1);
  assert.equal(g.run.mmioIsWrite, 0);
  g.run.mmioData[0] = 0x5a;
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_MMIO);
  assert.equal(g.run.mmioPhysAddr, 0x3008);
  assert.equal(g.run.mmioIsWrite, 1);
  assert.equal(g.run.mmioData[0], 0x5a, "the value read by the first access is written back");
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_MMIO);
  assert.equal(g.run.mmioLen, 4);
  g.run.mmioData.set([1, 2, 3, 4]);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getRegs().rax & 0xffffffffn, 0x04030201n);
  assert.equal(g.vcpu.stat.mmio_exits, 3);
  assert.ok(g.vcpu.stat.pf_mmio_spte_created >= 1);
});

test("a write to a KVM_MEM_READONLY slot becomes KVM_EXIT_MMIO; reads are served from memory", () => {
  // mov al, [0x1800]; mov [0x1804], al; hlt   (slot 0 read-only)
  const g = realModeGuest({ code: b(0xa0, 0x00, 0x18, 0xa2, 0x04, 0x18, HLT), slotSize: 0x2000, slotFlags: K.KVM_MEM_READONLY });
  g.poke(0x1800, b(0x77));
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_MMIO);
  assert.equal(g.run.mmioPhysAddr, 0x1804);
  assert.equal(g.run.mmioIsWrite, 1);
  assert.equal(g.run.mmioData[0], 0x77);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.peek(0x1804, 1)[0], 0, "memory behind a read-only slot is unchanged");
});

test("reading a deleted slot exits as MMIO; deleting the code slot ends in an internal error", () => {
  // mov ax, [0x20000] through DS = 0x2000; hlt; jmp back
  const g = realModeGuest({ code: b(0x66, 0xa1, 0x00, 0x00, HLT, 0xeb, 0xf9), slotSize: 0x2000, regs: {} });
  const s = g.vcpu.getSregs();
  s.ds = { ...s.ds, base: 0x20000n, selector: 0x2000 };
  g.vcpu.setSregs(s);
  const data = g.proc.mm.mmap(0, 0x1000, 3, 0x22, -1, 0);
  g.vm.setUserMemoryRegion({ slot: 1, flags: 0, guest_phys_addr: 0x20000n, memory_size: 0x1000n, userspace_addr: BigInt(data) });
  g.proc.mm.copyToUser(data, b(0xef, 0xbe, 0xad, 0xde));
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.vcpu.getRegs().rax & 0xffffffffn, 0xdeadbeefn);
  g.vm.setUserMemoryRegion({ slot: 1, flags: 0, guest_phys_addr: 0x20000n, memory_size: 0n, userspace_addr: BigInt(data) });
  g.vcpu.run(); // jmp back to the load
  assert.equal(g.run.exitReason, K.KVM_EXIT_MMIO);
  assert.equal(g.run.mmioPhysAddr, 0x20000);
  assert.equal(g.run.mmioLen, 4);
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  g.vm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: 0n, userspace_addr: BigInt(g.mem) });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_INTERNAL_ERROR);
  assert.equal(g.run.internalSuberror, K.KVM_INTERNAL_ERROR_EMULATION);
});

test("KVM_RUN with no memslots: KVM_EXIT_INTERNAL_ERROR", () => {
  const g = realModeGuest({ code: b(HLT), noSlot: true });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_INTERNAL_ERROR);
  assert.equal(g.run.internalSuberror, K.KVM_INTERNAL_ERROR_EMULATION);
});

test("KVM_INTERRUPT injects through the real-mode IVT after HLT", () => {
  // main: sti; hlt; hlt      handler at 0x1100: mov al, 'I'; out 0x10, al; hlt
  const g = realModeGuest({ code: b(0xfb, HLT, HLT) });
  g.poke(0x1100, b(0xb0, 0x49, 0xe6, 0x10, HLT));
  g.poke(0x20 * 4, b(0x00, 0x11, 0x00, 0x00));
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  assert.equal(g.run.ifFlag, 1);
  assert.equal(g.run.readyForInterruptInjection, 1);
  g.vcpu.interrupt(0x20);
  assert.throws(() => g.vcpu.interrupt(0x21), (e: unknown) => e instanceof KvmError && e.code === "EEXIST");
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_IO);
  assert.equal(g.run.ioPort, 0x10);
  assert.equal(g.vcpu.runBytes[4096], 0x49);
  assert.equal(g.vcpu.stat.irq_injections, 1);
});

test("request_interrupt_window: KVM_EXIT_IRQ_WINDOW_OPEN once the guest sets IF", () => {
  // cli; out 0x10, al; sti; nop; hlt
  const g = realModeGuest({ code: b(0xfa, 0xe6, 0x10, 0xfb, 0x90, HLT) });
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_IO);
  assert.equal(g.run.readyForInterruptInjection, 0);
  g.run.requestInterruptWindow = 1;
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_IRQ_WINDOW_OPEN);
  assert.equal(g.run.readyForInterruptInjection, 1);
  assert.equal(g.run.ifFlag, 1);
});

test("an unknown exit reason goes to the unexpected-exit path", async () => {
  const { vmxHandleExit } = await import("../../../../src/arch/x86/kvm/vmx/vmx_exit.js");
  const g = realModeGuest({ code: b(HLT) });
  const v = g.vcpu as unknown as Parameters<typeof vmxHandleExit>[0];
  (v.arch.vendor as { exitReason: number }).exitReason = 60; // ENCLS
  assert.equal(vmxHandleExit(v, 0), 0);
  assert.equal(g.run.exitReason, K.KVM_EXIT_INTERNAL_ERROR);
  assert.equal(g.run.internalSuberror, K.KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON);
  assert.equal(g.run.internalData(0), 60n);
});

test("x86 VM ioctls: machine type, KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR, x86 stats names", () => {
  const g = realModeGuest({ code: b(HLT) });
  assert.throws(() => g.kvm.createVm(1), (e: unknown) => e instanceof KvmError && e.code === "EINVAL");
  assert.equal(g.vm.archIoctl(K.KVM_SET_TSS_ADDR, 0xfffbd000), 0);
  assert.throws(() => g.vm.archIoctl(K.KVM_SET_TSS_ADDR, 0xfffff000), (e: unknown) => e instanceof KvmError && e.code === "EINVAL");
  // Once a vCPU exists the identity-map page can no longer move.
  assert.throws(() => g.vm.archIoctl(K.KVM_SET_IDENTITY_MAP_ADDR, { addr: 0xfeffc000n }), (e: unknown) => e instanceof KvmError && e.code === "EINVAL");
  const fresh = g.kvm.createVm(0);
  assert.equal(fresh.archIoctl(K.KVM_SET_IDENTITY_MAP_ADDR, { addr: 0xfeffc000n }), 0);
  assert.equal(g.kvm.checkExtension(K.KVM_CAP_SET_TSS_ADDR), 1);
  assert.equal(g.kvm.checkExtension(K.KVM_CAP_VCPU_EVENTS), 1);
  for (const name of ["exits", "io_exits", "mmio_exits", "halt_exits", "irq_window_exits", "insn_emulation", "pf_fixed"]) assert.ok(name in g.vcpu.stat, name);
  for (const name of ["pages_4k", "pages_2m", "pages_1g"]) assert.ok(name in g.vm.stat, name);
  // x86 kvm_arch_vcpu_ioctl() answers unknown requests with EINVAL.
  assert.throws(() => g.vcpu.archIoctl(0xaeff, 0), (e: unknown) => e instanceof KvmError && e.code === "EINVAL");
});

test("KVM_NMI is delivered through vector 2 even with interrupts disabled", () => {
  // main: cli; hlt; hlt     NMI handler at 0x1100: mov al, 'N'; out 0x10, al; hlt
  const g = realModeGuest({ code: b(0xfa, HLT, HLT) });
  g.poke(0x1100, b(0xb0, 0x4e, 0xe6, 0x10, HLT));
  g.poke(2 * 4, b(0x00, 0x11, 0x00, 0x00));
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_HLT);
  g.vcpu.nmi();
  g.vcpu.run();
  assert.equal(g.run.exitReason, K.KVM_EXIT_IO);
  assert.equal(g.vcpu.runBytes[4096], 0x4e);
  assert.equal(g.vcpu.stat.nmi_injections, 1);
  assert.equal(g.vcpu.getVcpuEvents().nmi.masked, 1, "NMIs stay blocked until IRET");
});
