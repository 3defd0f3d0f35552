import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../src/uapi/kvm.js";
import * as S from "../../src/uapi/kvm_structs.js";
import type { StructCodec } from "../../src/uapi/struct.js";

// Request numbers from the digest's table (reference/kvm-api.md §1), i.e. the values the C
// headers produce on x86-64.
const IOCTLS: [keyof typeof K, number][] = [
  ["KVM_GET_API_VERSION", 0xae00], ["KVM_CREATE_VM", 0xae01], ["KVM_GET_MSR_INDEX_LIST", 0xc004ae02],
  ["KVM_CHECK_EXTENSION", 0xae03], ["KVM_GET_VCPU_MMAP_SIZE", 0xae04], ["KVM_GET_SUPPORTED_CPUID", 0xc008ae05],
  ["KVM_CREATE_VCPU", 0xae41], ["KVM_GET_DIRTY_LOG", 0x4010ae42], ["KVM_SET_USER_MEMORY_REGION", 0x4020ae46],
  ["KVM_SET_TSS_ADDR", 0xae47], ["KVM_SET_IDENTITY_MAP_ADDR", 0x4008ae48], ["KVM_SET_USER_MEMORY_REGION2", 0x40a0ae49],
  ["KVM_CREATE_IRQCHIP", 0xae60], ["KVM_IRQ_LINE", 0x4008ae61], ["KVM_IRQ_LINE_STATUS", 0xc008ae67],
  ["KVM_GET_IRQCHIP", 0xc208ae62], ["KVM_SET_IRQCHIP", 0x8208ae63],
  ["KVM_REGISTER_COALESCED_MMIO", 0x4010ae67], ["KVM_UNREGISTER_COALESCED_MMIO", 0x4010ae68],
  ["KVM_SET_GSI_ROUTING", 0x4008ae6a], ["KVM_IRQFD", 0x4020ae76], ["KVM_CREATE_PIT2", 0x4040ae77],
  ["KVM_IOEVENTFD", 0x4040ae79], ["KVM_SET_CLOCK", 0x4030ae7b], ["KVM_GET_CLOCK", 0x8030ae7c],
  ["KVM_GET_PIT2", 0x8070ae9f], ["KVM_SET_PIT2", 0x4070aea0], ["KVM_SIGNAL_MSI", 0x4020aea5],
  ["KVM_ENABLE_CAP", 0x4068aea3], ["KVM_CLEAR_DIRTY_LOG", 0xc018aec0], ["KVM_RESET_DIRTY_RINGS", 0xaec7],
  ["KVM_GET_STATS_FD", 0xaece], ["KVM_CREATE_DEVICE", 0xc00caee0], ["KVM_SET_DEVICE_ATTR", 0x4018aee1],
  ["KVM_GET_DEVICE_ATTR", 0x4018aee2], ["KVM_HAS_DEVICE_ATTR", 0x4018aee3],
  ["KVM_SET_MEMORY_ATTRIBUTES", 0x4020aed2], ["KVM_CREATE_GUEST_MEMFD", 0xc040aed4],
  ["KVM_RUN", 0xae80], ["KVM_GET_REGS", 0x8090ae81], ["KVM_SET_REGS", 0x4090ae82],
  ["KVM_GET_SREGS", 0x8138ae83], ["KVM_SET_SREGS", 0x4138ae84], ["KVM_TRANSLATE", 0xc018ae85],
  ["KVM_INTERRUPT", 0x4004ae86], ["KVM_GET_MSRS", 0xc008ae88], ["KVM_SET_MSRS", 0x4008ae89],
  ["KVM_SET_SIGNAL_MASK", 0x4004ae8b], ["KVM_GET_FPU", 0x81a0ae8c], ["KVM_SET_FPU", 0x41a0ae8d],
  ["KVM_GET_LAPIC", 0x8400ae8e], ["KVM_SET_LAPIC", 0x4400ae8f], ["KVM_SET_CPUID2", 0x4008ae90],
  ["KVM_GET_CPUID2", 0xc008ae91], ["KVM_GET_MP_STATE", 0x8004ae98], ["KVM_SET_MP_STATE", 0x4004ae99],
  ["KVM_NMI", 0xae9a], ["KVM_SET_GUEST_DEBUG", 0x4048ae9b], ["KVM_GET_VCPU_EVENTS", 0x8040ae9f],
  ["KVM_SET_VCPU_EVENTS", 0x4040aea0], ["KVM_GET_DEBUGREGS", 0x8080aea1], ["KVM_SET_DEBUGREGS", 0x4080aea2],
  ["KVM_GET_XSAVE", 0x9000aea4], ["KVM_SET_XSAVE", 0x5000aea5], ["KVM_GET_XSAVE2", 0x9000aecf],
  ["KVM_GET_XCRS", 0x8188aea6], ["KVM_SET_XCRS", 0x4188aea7], ["KVM_GET_ONE_REG", 0x4010aeab],
  ["KVM_SET_ONE_REG", 0x4010aeac], ["KVM_GET_REG_LIST", 0xc008aeb0], ["KVM_GET_SREGS2", 0x8140aecc],
  ["KVM_SET_SREGS2", 0x4140aecd],
];

test("every ioctl number matches the digest's table", () => {
  for (const [name, value] of IOCTLS) assert.equal(K[name], value, name);
});

test("capability numbers match the digest", () => {
  const caps: [keyof typeof K, number][] = [
    ["KVM_CAP_IRQCHIP", 0], ["KVM_CAP_HLT", 1], ["KVM_CAP_USER_MEMORY", 3], ["KVM_CAP_SET_TSS_ADDR", 4],
    ["KVM_CAP_EXT_CPUID", 7], ["KVM_CAP_NR_VCPUS", 9], ["KVM_CAP_NR_MEMSLOTS", 10], ["KVM_CAP_PIT", 11],
    ["KVM_CAP_COALESCED_MMIO", 15], ["KVM_CAP_SET_GUEST_DEBUG", 23], ["KVM_CAP_IRQ_ROUTING", 25],
    ["KVM_CAP_IRQFD", 32], ["KVM_CAP_PIT2", 33], ["KVM_CAP_IOEVENTFD", 36], ["KVM_CAP_SET_IDENTITY_MAP_ADDR", 37],
    ["KVM_CAP_ADJUST_CLOCK", 39], ["KVM_CAP_MAX_VCPUS", 66], ["KVM_CAP_ONE_REG", 70], ["KVM_CAP_SIGNAL_MSI", 77],
    ["KVM_CAP_READONLY_MEM", 81], ["KVM_CAP_MULTI_ADDRESS_SPACE", 118], ["KVM_CAP_MAX_VCPU_ID", 128],
    ["KVM_CAP_IMMEDIATE_EXIT", 136], ["KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2", 168], ["KVM_CAP_DIRTY_LOG_RING", 192],
    ["KVM_CAP_BINARY_STATS_FD", 203], ["KVM_CAP_DIRTY_LOG_RING_ACQ_REL", 223], ["KVM_CAP_USER_MEMORY2", 231],
    ["KVM_CAP_GUEST_MEMFD", 234], ["KVM_CAP_VM_TYPES", 235],
  ];
  for (const [name, value] of caps) assert.equal(K[name], value, name);
});

// Sizes and field offsets of every struct codec (digest §3 and the uapi headers).
const LAYOUTS: [StructCodec<object>, number, Record<string, number>][] = [
  [S.kvm_regs as never, 144, { rax: 0, rbx: 8, rcx: 16, rdx: 24, rsi: 32, rdi: 40, rsp: 48, rbp: 56, r8: 64, r15: 120, rip: 128, rflags: 136 }],
  [S.kvm_segment as never, 24, { base: 0, limit: 8, selector: 12, type: 14, present: 15, dpl: 16, db: 17, s: 18, l: 19, g: 20, avl: 21, unusable: 22, padding: 23 }],
  [S.kvm_dtable as never, 16, { base: 0, limit: 8, padding: 10 }],
  [S.kvm_sregs as never, 312, { cs: 0, ds: 24, es: 48, fs: 72, gs: 96, ss: 120, tr: 144, ldt: 168, gdt: 192, idt: 208, cr0: 224, cr2: 232, cr3: 240, cr4: 248, cr8: 256, efer: 264, apic_base: 272, interrupt_bitmap: 280 }],
  [S.kvm_userspace_memory_region as never, 32, { slot: 0, flags: 4, guest_phys_addr: 8, memory_size: 16, userspace_addr: 24 }],
  [S.kvm_userspace_memory_region2 as never, 160, { slot: 0, flags: 4, guest_phys_addr: 8, memory_size: 16, userspace_addr: 24, guest_memfd_offset: 32, guest_memfd: 40, pad1: 44, pad2: 48 }],
  [S.kvm_dirty_log as never, 16, { slot: 0, padding1: 4, dirty_bitmap: 8 }],
  [S.kvm_clear_dirty_log as never, 24, { slot: 0, num_pages: 4, first_page: 8, dirty_bitmap: 16 }],
  [S.kvm_enable_cap as never, 104, { cap: 0, flags: 4, args: 8, pad: 40 }],
  [S.kvm_msrs as never, 8, { nmsrs: 0, pad: 4 }],
  [S.kvm_msr_entry as never, 16, { index: 0, reserved: 4, data: 8 }],
  [S.kvm_cpuid2 as never, 8, { nent: 0, padding: 4 }],
  [S.kvm_cpuid_entry2 as never, 40, { function: 0, index: 4, flags: 8, eax: 12, ebx: 16, ecx: 20, edx: 24, padding: 28 }],
  [S.kvm_translation as never, 24, { linear_address: 0, physical_address: 8, valid: 16, writeable: 17, usermode: 18, pad: 19 }],
  [S.kvm_guest_debug as never, 72, { control: 0, pad: 4, debugreg: 8 }],
  [S.kvm_vcpu_events as never, 64, { exception: 0, interrupt: 8, nmi: 12, sipi_vector: 16, flags: 20, smi: 24, triple_fault_pending: 28, exception_has_payload: 55, exception_payload: 56 }],
  [S.kvm_debugregs as never, 128, { db: 0, dr6: 32, dr7: 40, flags: 48, reserved: 56 }],
  [S.kvm_mp_state as never, 4, { mp_state: 0 }],
  [S.kvm_fpu as never, 416, { fpr: 0, fcw: 128, fsw: 130, ftwx: 132, pad1: 133, last_opcode: 134, last_ip: 136, last_dp: 144, xmm: 152, mxcsr: 408, pad2: 412 }],
  [S.kvm_dirty_gfn as never, 16, { flags: 0, slot: 4, offset: 8 }],
  [S.kvm_irq_level as never, 8, { irq: 0, level: 4 }],
  [S.kvm_irqfd as never, 32, { fd: 0, gsi: 4, flags: 8, resamplefd: 12, pad: 16 }],
  [S.kvm_ioeventfd as never, 64, { datamatch: 0, addr: 8, len: 16, fd: 20, flags: 24, pad: 28 }],
  [S.kvm_msi as never, 32, { address_lo: 0, address_hi: 4, data: 8, flags: 12, devid: 16 }],
  [S.kvm_clock_data as never, 48, { clock: 0, flags: 8, realtime: 16, host_tsc: 24 }],
];

test("struct sizes and field offsets", () => {
  for (const [codec, size, offsets] of LAYOUTS) {
    assert.equal(codec.size, size, `${codec.name} size`);
    for (const [f, off] of Object.entries(offsets)) {
      const spec = (codec.fields as Record<string, readonly unknown[]>)[f];
      assert.ok(spec, `${codec.name}.${f} exists`);
      assert.equal(spec[0], off, `${codec.name}.${f} offset`);
    }
  }
});

test("kvm_sregs round-trips and puts nested fields at their absolute offsets", () => {
  const s = S.kvm_sregs.zero();
  s.cs.selector = 0x1234;
  s.cs.base = 0xffff0000n;
  s.tr.type = 11;
  s.idt.limit = 0x3ff;
  s.efer = 0x500n;
  s.interrupt_bitmap[3] = 1n << 63n;
  const b = S.kvm_sregs.encode(s);
  const dv = new DataView(b.buffer);
  assert.equal(dv.getUint16(12, true), 0x1234);
  assert.equal(dv.getBigUint64(0, true), 0xffff0000n);
  assert.equal(b[144 + 14], 11);
  assert.equal(dv.getUint16(208 + 8, true), 0x3ff);
  assert.equal(dv.getBigUint64(264, true), 0x500n);
  assert.equal(dv.getBigUint64(280 + 24, true), 1n << 63n);
  assert.deepEqual(S.kvm_sregs.decode(b), s);
});

test("kvm_vcpu_events nested members and payload", () => {
  const b = S.kvm_vcpu_events.encode({
    exception: { injected: 1, nr: 14, has_error_code: 1, pending: 0, error_code: 0xdead },
    nmi: { injected: 0, pending: 1, masked: 1, pad: 0 }, flags: 0x10, exception_payload: 0x1234n,
    exception_has_payload: 1,
  });
  assert.equal(b[1], 14);
  assert.equal(new DataView(b.buffer).getUint32(4, true), 0xdead);
  assert.equal(b[13], 1);
  assert.equal(b[55], 1);
  assert.equal(new DataView(b.buffer).getBigUint64(56, true), 0x1234n);
});

test("variable-length kvm_msrs / kvm_cpuid2 / kvm_msr_list", () => {
  const msrs = { nmsrs: 2, entries: [{ index: 0x10, reserved: 0, data: 5n }, { index: 0xc0000080, reserved: 0, data: 0xd01n }] };
  const b = S.encodeMsrs(msrs);
  assert.equal(b.length, 8 + 32);
  assert.equal(new DataView(b.buffer).getUint32(8 + 16, true), 0xc0000080);
  assert.deepEqual(S.decodeMsrs(b), msrs);
  const cpuid = { nent: 1, entries: [{ function: 0x40000000, index: 0, flags: 0, eax: 0x40000001, ebx: 0x4b4d564b, ecx: 0x564b4d56, edx: 0x4d, padding: [0, 0, 0] }] };
  const c = S.encodeCpuid2(cpuid);
  assert.equal(c.length, 48);
  assert.equal(new DataView(c.buffer).getUint32(8 + 16, true), 0x4b4d564b);
  assert.deepEqual(S.decodeCpuid2(c), cpuid);
  assert.deepEqual(S.decodeMsrList(S.encodeMsrList({ nmsrs: 2, indices: [0x174, 0x175] })), { nmsrs: 2, indices: [0x174, 0x175] });
});

test("u64 fields accept negative (sign-extended) values as two's complement", () => {
  const b = S.kvm_regs.encode({ rip: -0x7f000000n });
  assert.equal(S.kvm_regs.decode(b).rip, 0xffffffff81000000n);
});
