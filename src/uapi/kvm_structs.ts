/**
 * The structs of include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h at their x86-64
 * offsets and sizes, as codecs (see struct.ts). u64 fields are bigint; narrower ones number.
 * Variable-length structs (kvm_msrs, kvm_cpuid2, kvm_msr_list) are a fixed header codec plus an
 * entry codec; `decodeMsrs`/`encodeMsrs` etc. handle the whole thing.
 */
import { StructCodec, viewOf } from "./struct.js";

// ---------------------------------------------------------------- registers
export interface KvmRegs {
  rax: bigint; rbx: bigint; rcx: bigint; rdx: bigint; rsi: bigint; rdi: bigint; rsp: bigint; rbp: bigint;
  r8: bigint; r9: bigint; r10: bigint; r11: bigint; r12: bigint; r13: bigint; r14: bigint; r15: bigint;
  rip: bigint; rflags: bigint;
}
export const kvm_regs = new StructCodec<KvmRegs>("kvm_regs", 144, {
  rax: [0, "u64"], rbx: [8, "u64"], rcx: [16, "u64"], rdx: [24, "u64"],
  rsi: [32, "u64"], rdi: [40, "u64"], rsp: [48, "u64"], rbp: [56, "u64"],
  r8: [64, "u64"], r9: [72, "u64"], r10: [80, "u64"], r11: [88, "u64"],
  r12: [96, "u64"], r13: [104, "u64"], r14: [112, "u64"], r15: [120, "u64"],
  rip: [128, "u64"], rflags: [136, "u64"],
});

export interface KvmSegment {
  base: bigint; limit: number; selector: number; type: number; present: number; dpl: number;
  db: number; s: number; l: number; g: number; avl: number; unusable: number; padding: number;
}
export const kvm_segment = new StructCodec<KvmSegment>("kvm_segment", 24, {
  base: [0, "u64"], limit: [8, "u32"], selector: [12, "u16"], type: [14, "u8"], present: [15, "u8"],
  dpl: [16, "u8"], db: [17, "u8"], s: [18, "u8"], l: [19, "u8"], g: [20, "u8"], avl: [21, "u8"],
  unusable: [22, "u8"], padding: [23, "u8"],
});

export interface KvmDtable { base: bigint; limit: number; padding: number[] }
export const kvm_dtable = new StructCodec<KvmDtable>("kvm_dtable", 16, {
  base: [0, "u64"], limit: [8, "u16"], padding: [10, "u16", 3],
});

export interface KvmSregs {
  cs: KvmSegment; ds: KvmSegment; es: KvmSegment; fs: KvmSegment; gs: KvmSegment; ss: KvmSegment;
  tr: KvmSegment; ldt: KvmSegment; gdt: KvmDtable; idt: KvmDtable;
  cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; cr8: bigint; efer: bigint; apic_base: bigint;
  /** KVM_NR_INTERRUPTS (256) bits: the pending external interrupt, if any. */
  interrupt_bitmap: bigint[];
}
const seg = kvm_segment as unknown as StructCodec<object>;
const dt = kvm_dtable as unknown as StructCodec<object>;
export const kvm_sregs = new StructCodec<KvmSregs>("kvm_sregs", 312, {
  cs: [0, seg], ds: [24, seg], es: [48, seg], fs: [72, seg], gs: [96, seg], ss: [120, seg],
  tr: [144, seg], ldt: [168, seg], gdt: [192, dt], idt: [208, dt],
  cr0: [224, "u64"], cr2: [232, "u64"], cr3: [240, "u64"], cr4: [248, "u64"], cr8: [256, "u64"],
  efer: [264, "u64"], apic_base: [272, "u64"], interrupt_bitmap: [280, "u64", 4],
});

/** struct kvm_fpu: fpr[8][16], fcw, fsw, ftwx, last_opcode, last_ip, last_dp, xmm[16][16], mxcsr. */
export interface KvmFpu {
  fpr: number[]; fcw: number; fsw: number; ftwx: number; pad1: number; last_opcode: number;
  last_ip: bigint; last_dp: bigint; xmm: number[]; mxcsr: number; pad2: number;
}
export const kvm_fpu = new StructCodec<KvmFpu>("kvm_fpu", 416, {
  fpr: [0, "u8", 128], fcw: [128, "u16"], fsw: [130, "u16"], ftwx: [132, "u8"], pad1: [133, "u8"],
  last_opcode: [134, "u16"], last_ip: [136, "u64"], last_dp: [144, "u64"], xmm: [152, "u8", 256],
  mxcsr: [408, "u32"], pad2: [412, "u32"],
});

export interface KvmDebugregs { db: bigint[]; dr6: bigint; dr7: bigint; flags: bigint; reserved: bigint[] }
export const kvm_debugregs = new StructCodec<KvmDebugregs>("kvm_debugregs", 128, {
  db: [0, "u64", 4], dr6: [32, "u64"], dr7: [40, "u64"], flags: [48, "u64"], reserved: [56, "u64", 9],
});

export interface KvmMpState { mp_state: number }
export const kvm_mp_state = new StructCodec<KvmMpState>("kvm_mp_state", 4, { mp_state: [0, "u32"] });

export interface KvmInterrupt { irq: number }
export const kvm_interrupt = new StructCodec<KvmInterrupt>("kvm_interrupt", 4, { irq: [0, "u32"] });

export interface KvmTranslation {
  linear_address: bigint; physical_address: bigint; valid: number; writeable: number; usermode: number; pad: number[];
}
export const kvm_translation = new StructCodec<KvmTranslation>("kvm_translation", 24, {
  linear_address: [0, "u64"], physical_address: [8, "u64"], valid: [16, "u8"], writeable: [17, "u8"],
  usermode: [18, "u8"], pad: [19, "u8", 5],
});

export interface KvmGuestDebug { control: number; pad: number; debugreg: bigint[] }
/** struct kvm_guest_debug with its x86 arch part (debugreg[8]) flattened. */
export const kvm_guest_debug = new StructCodec<KvmGuestDebug>("kvm_guest_debug", 72, {
  control: [0, "u32"], pad: [4, "u32"], debugreg: [8, "u64", 8],
});

export interface KvmVcpuEvents {
  exception: { injected: number; nr: number; has_error_code: number; pending: number; error_code: number };
  interrupt: { injected: number; nr: number; soft: number; shadow: number };
  nmi: { injected: number; pending: number; masked: number; pad: number };
  sipi_vector: number;
  flags: number;
  smi: { smm: number; pending: number; smm_inside_nmi: number; latched_init: number };
  /** union { reserved[27]; struct { u8 pending; } triple_fault; }: triple_fault.pending is reserved[0]. */
  triple_fault_pending: number;
  exception_has_payload: number;
  exception_payload: bigint;
}
const ev_exception = new StructCodec<KvmVcpuEvents["exception"]>("kvm_vcpu_events.exception", 8, {
  injected: [0, "u8"], nr: [1, "u8"], has_error_code: [2, "u8"], pending: [3, "u8"], error_code: [4, "u32"],
});
const ev_interrupt = new StructCodec<KvmVcpuEvents["interrupt"]>("kvm_vcpu_events.interrupt", 4, {
  injected: [0, "u8"], nr: [1, "u8"], soft: [2, "u8"], shadow: [3, "u8"],
});
const ev_nmi = new StructCodec<KvmVcpuEvents["nmi"]>("kvm_vcpu_events.nmi", 4, {
  injected: [0, "u8"], pending: [1, "u8"], masked: [2, "u8"], pad: [3, "u8"],
});
const ev_smi = new StructCodec<KvmVcpuEvents["smi"]>("kvm_vcpu_events.smi", 4, {
  smm: [0, "u8"], pending: [1, "u8"], smm_inside_nmi: [2, "u8"], latched_init: [3, "u8"],
});
const sub = <T extends object>(c: StructCodec<T>): StructCodec<object> => c as unknown as StructCodec<object>;
export const kvm_vcpu_events = new StructCodec<KvmVcpuEvents>("kvm_vcpu_events", 64, {
  exception: [0, sub(ev_exception)], interrupt: [8, sub(ev_interrupt)], nmi: [12, sub(ev_nmi)],
  sipi_vector: [16, "u32"], flags: [20, "u32"], smi: [24, sub(ev_smi)], triple_fault_pending: [28, "u8"],
  exception_has_payload: [55, "u8"], exception_payload: [56, "u64"],
});
export const KVM_VCPUEVENT_VALID_NMI_PENDING = 0x00000001;
export const KVM_VCPUEVENT_VALID_SIPI_VECTOR = 0x00000002;
export const KVM_VCPUEVENT_VALID_SHADOW = 0x00000004;
export const KVM_VCPUEVENT_VALID_SMM = 0x00000008;
export const KVM_VCPUEVENT_VALID_PAYLOAD = 0x00000010;
export const KVM_VCPUEVENT_VALID_TRIPLE_FAULT = 0x00000020;

/** struct kvm_signal_mask: len then `len` bytes of sigset (the kernel's sigset_t: 8 bytes). */
export interface KvmSignalMask { len: number }
export const kvm_signal_mask = new StructCodec<KvmSignalMask>("kvm_signal_mask", 4, { len: [0, "u32"] });

// ---------------------------------------------------------------- MSRs and CPUID
export interface KvmMsrEntry { index: number; reserved: number; data: bigint }
export const kvm_msr_entry = new StructCodec<KvmMsrEntry>("kvm_msr_entry", 16, {
  index: [0, "u32"], reserved: [4, "u32"], data: [8, "u64"],
});
export interface KvmMsrsHeader { nmsrs: number; pad: number }
export const kvm_msrs = new StructCodec<KvmMsrsHeader>("kvm_msrs", 8, { nmsrs: [0, "u32"], pad: [4, "u32"] });
export interface KvmMsrs { nmsrs: number; entries: KvmMsrEntry[] }

export interface KvmMsrListHeader { nmsrs: number }
export const kvm_msr_list = new StructCodec<KvmMsrListHeader>("kvm_msr_list", 4, { nmsrs: [0, "u32"] });
export interface KvmMsrList { nmsrs: number; indices: number[] }

export interface KvmCpuidEntry2 {
  function: number; index: number; flags: number; eax: number; ebx: number; ecx: number; edx: number; padding: number[];
}
export const kvm_cpuid_entry2 = new StructCodec<KvmCpuidEntry2>("kvm_cpuid_entry2", 40, {
  function: [0, "u32"], index: [4, "u32"], flags: [8, "u32"], eax: [12, "u32"], ebx: [16, "u32"],
  ecx: [20, "u32"], edx: [24, "u32"], padding: [28, "u32", 3],
});
export const KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1 << 0;
export interface KvmCpuid2Header { nent: number; padding: number }
export const kvm_cpuid2 = new StructCodec<KvmCpuid2Header>("kvm_cpuid2", 8, { nent: [0, "u32"], padding: [4, "u32"] });
export interface KvmCpuid2 { nent: number; entries: KvmCpuidEntry2[] }

/** Total byte size of a header + `n` entries. */
export const msrsSize = (n: number): number => kvm_msrs.size + n * kvm_msr_entry.size;
export const cpuid2Size = (n: number): number => kvm_cpuid2.size + n * kvm_cpuid_entry2.size;
export const msrListSize = (n: number): number => kvm_msr_list.size + 4 * n;

export function encodeMsrs(v: KvmMsrs, bytes = new Uint8Array(msrsSize(v.entries.length))): Uint8Array {
  kvm_msrs.encode({ nmsrs: v.nmsrs }, bytes, 0);
  v.entries.forEach((e, i) => kvm_msr_entry.encode(e, bytes, kvm_msrs.size + i * kvm_msr_entry.size));
  return bytes;
}
/** Decode `count` entries (defaults to the header's nmsrs). */
export function decodeMsrs(bytes: Uint8Array, count?: number): KvmMsrs {
  const { nmsrs } = kvm_msrs.decode(bytes);
  const n = count ?? nmsrs;
  const entries: KvmMsrEntry[] = [];
  for (let i = 0; i < n; i++) entries.push(kvm_msr_entry.decode(bytes, kvm_msrs.size + i * kvm_msr_entry.size));
  return { nmsrs, entries };
}
export function encodeCpuid2(v: KvmCpuid2, bytes = new Uint8Array(cpuid2Size(v.entries.length))): Uint8Array {
  kvm_cpuid2.encode({ nent: v.nent }, bytes, 0);
  v.entries.forEach((e, i) => kvm_cpuid_entry2.encode(e, bytes, kvm_cpuid2.size + i * kvm_cpuid_entry2.size));
  return bytes;
}
export function decodeCpuid2(bytes: Uint8Array, count?: number): KvmCpuid2 {
  const { nent } = kvm_cpuid2.decode(bytes);
  const n = count ?? nent;
  const entries: KvmCpuidEntry2[] = [];
  for (let i = 0; i < n; i++) entries.push(kvm_cpuid_entry2.decode(bytes, kvm_cpuid2.size + i * kvm_cpuid_entry2.size));
  return { nent, entries };
}
export function encodeMsrList(v: KvmMsrList, bytes = new Uint8Array(msrListSize(v.indices.length))): Uint8Array {
  const dv = viewOf(bytes);
  dv.setUint32(0, v.nmsrs, true);
  v.indices.forEach((x, i) => dv.setUint32(4 + 4 * i, x >>> 0, true));
  return bytes;
}
export function decodeMsrList(bytes: Uint8Array, count?: number): KvmMsrList {
  const dv = viewOf(bytes);
  const nmsrs = dv.getUint32(0, true);
  const n = count ?? nmsrs;
  const indices: number[] = [];
  for (let i = 0; i < n; i++) indices.push(dv.getUint32(4 + 4 * i, true));
  return { nmsrs, indices };
}

// ---------------------------------------------------------------- memory regions and dirty logging
export interface KvmUserspaceMemoryRegion {
  slot: number; flags: number; guest_phys_addr: bigint; memory_size: bigint; userspace_addr: bigint;
}
export const kvm_userspace_memory_region = new StructCodec<KvmUserspaceMemoryRegion>("kvm_userspace_memory_region", 32, {
  slot: [0, "u32"], flags: [4, "u32"], guest_phys_addr: [8, "u64"], memory_size: [16, "u64"], userspace_addr: [24, "u64"],
});

export interface KvmUserspaceMemoryRegion2 extends KvmUserspaceMemoryRegion {
  guest_memfd_offset: bigint; guest_memfd: number; pad1: number; pad2: bigint[];
}
export const kvm_userspace_memory_region2 = new StructCodec<KvmUserspaceMemoryRegion2>("kvm_userspace_memory_region2", 160, {
  slot: [0, "u32"], flags: [4, "u32"], guest_phys_addr: [8, "u64"], memory_size: [16, "u64"], userspace_addr: [24, "u64"],
  guest_memfd_offset: [32, "u64"], guest_memfd: [40, "u32"], pad1: [44, "u32"], pad2: [48, "u64", 14],
});

/** struct kvm_dirty_log: dirty_bitmap is a user pointer (hva). */
export interface KvmDirtyLog { slot: number; padding1: number; dirty_bitmap: bigint }
export const kvm_dirty_log = new StructCodec<KvmDirtyLog>("kvm_dirty_log", 16, {
  slot: [0, "u32"], padding1: [4, "u32"], dirty_bitmap: [8, "u64"],
});

export interface KvmClearDirtyLog { slot: number; num_pages: number; first_page: bigint; dirty_bitmap: bigint }
export const kvm_clear_dirty_log = new StructCodec<KvmClearDirtyLog>("kvm_clear_dirty_log", 24, {
  slot: [0, "u32"], num_pages: [4, "u32"], first_page: [8, "u64"], dirty_bitmap: [16, "u64"],
});

/** struct kvm_dirty_gfn: one dirty-ring entry. */
export interface KvmDirtyGfn { flags: number; slot: number; offset: bigint }
export const kvm_dirty_gfn = new StructCodec<KvmDirtyGfn>("kvm_dirty_gfn", 16, {
  flags: [0, "u32"], slot: [4, "u32"], offset: [8, "u64"],
});

/** The __u64 argument of KVM_SET_IDENTITY_MAP_ADDR. */
export interface KvmIdentityMapAddr { addr: bigint }
export const kvm_identity_map_addr = new StructCodec<KvmIdentityMapAddr>("__u64 ident_addr", 8, { addr: [0, "u64"] });

export interface KvmEnableCap { cap: number; flags: number; args: bigint[]; pad: number[] }
export const kvm_enable_cap = new StructCodec<KvmEnableCap>("kvm_enable_cap", 104, {
  cap: [0, "u32"], flags: [4, "u32"], args: [8, "u64", 4], pad: [40, "u8", 64],
});

// ---------------------------------------------------------------- irqchip-side structs used by the VM ioctls
export interface KvmIrqLevel { irq: number; level: number }
/** struct kvm_irq_level: union { irq; status } then level. */
export const kvm_irq_level = new StructCodec<KvmIrqLevel>("kvm_irq_level", 8, { irq: [0, "u32"], level: [4, "u32"] });

export interface KvmCoalescedMmioZone { addr: bigint; size: number; pad: number }
/** `pad` is the union { pad; pio }. */
export const kvm_coalesced_mmio_zone = new StructCodec<KvmCoalescedMmioZone>("kvm_coalesced_mmio_zone", 16, {
  addr: [0, "u64"], size: [8, "u32"], pad: [12, "u32"],
});

export interface KvmIrqfd { fd: number; gsi: number; flags: number; resamplefd: number; pad: number[] }
export const kvm_irqfd = new StructCodec<KvmIrqfd>("kvm_irqfd", 32, {
  fd: [0, "u32"], gsi: [4, "u32"], flags: [8, "u32"], resamplefd: [12, "u32"], pad: [16, "u8", 16],
});

export interface KvmIoeventfd { datamatch: bigint; addr: bigint; len: number; fd: number; flags: number; pad: number[] }
export const kvm_ioeventfd = new StructCodec<KvmIoeventfd>("kvm_ioeventfd", 64, {
  datamatch: [0, "u64"], addr: [8, "u64"], len: [16, "u32"], fd: [20, "s32"], flags: [24, "u32"], pad: [28, "u8", 36],
});

export interface KvmMsi { address_lo: number; address_hi: number; data: number; flags: number; devid: number; pad: number[] }
export const kvm_msi = new StructCodec<KvmMsi>("kvm_msi", 32, {
  address_lo: [0, "u32"], address_hi: [4, "u32"], data: [8, "u32"], flags: [12, "u32"], devid: [16, "u32"], pad: [20, "u8", 12],
});

export interface KvmPitConfig { flags: number; pad: number[] }
export const kvm_pit_config = new StructCodec<KvmPitConfig>("kvm_pit_config", 64, { flags: [0, "u32"], pad: [4, "u32", 15] });

export interface KvmClockData { clock: bigint; flags: number; pad0: number; realtime: bigint; host_tsc: bigint; pad: number[] }
export const kvm_clock_data = new StructCodec<KvmClockData>("kvm_clock_data", 48, {
  clock: [0, "u64"], flags: [8, "u32"], pad0: [12, "u32"], realtime: [16, "u64"], host_tsc: [24, "u64"], pad: [32, "u32", 4],
});
