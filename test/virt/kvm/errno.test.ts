// Table-driven errno test: every invalid argument of each implemented ioctl, through the
// byte-level ioctl(request, hva) path, with the rule it checks (api.rst section or kvm_main.c
// function; memory-region rules are numbered as in the digest's §2 table).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as K from "../../../src/uapi/kvm.js";
import * as S from "../../../src/uapi/kvm_structs.js";
import { E2BIG, EEXIST, EFAULT, EINTR, EINVAL, ENOENT, ENOTTY, ENXIO, errnoName } from "../../../src/uapi/errno.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../../src/uapi/mman.js";
import { KvmError } from "../../../src/virt/kvm/kvm_error.js";
import type { Kvm, KvmDev, KvmVcpu } from "../../../src/virt/kvm/kvm_main.js";
import type { HostProcess } from "../../../src/host/process.js";
import { setup } from "./fake_arch.js";

interface Ctx {
  dev: KvmDev;
  kvm: Kvm;
  vcpu: KvmVcpu;
  proc: HostProcess;
  /** A mapped scratch page for structs. */
  scratch: number;
  /** 64 KiB of mapped memory, slot 0 at gpa 0 (not dirty-logged). */
  mem: number;
  /** An address with nothing mapped. */
  unmapped: number;
}

const UNMAPPED = 0x100000000;

/** Fresh VM with slot 0 and vCPU 0 (some rows need no vCPU: they pass `noVcpu`). */
function ctx(noVcpu = false): Ctx {
  const { dev, proc } = setup(16 << 20);
  const kvm = dev.createVm();
  const mm = proc.mm;
  const scratch = mm.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const mem = mm.mmap(0, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  kvm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: 0x10000n, userspace_addr: BigInt(mem) });
  const vcpu = noVcpu ? (null as unknown as KvmVcpu) : kvm.createVcpu(0);
  return { dev, kvm, vcpu, proc, scratch, mem, unmapped: UNMAPPED };
}

/** Write a struct to the scratch page and return its address. */
function put<T extends object>(c: Ctx, codec: { encode(v: Partial<T>): Uint8Array }, v: Partial<T>): number {
  c.proc.mm.copyToUser(c.scratch, codec.encode(v));
  return c.scratch;
}

type Region = Partial<S.KvmUserspaceMemoryRegion2>;
const region = (c: Ctx, r: Region): number => put(c, S.kvm_userspace_memory_region, { slot: 1, flags: 0, guest_phys_addr: 0x100000n, memory_size: 0x10000n, userspace_addr: BigInt(c.mem), ...r });
const region2 = (c: Ctx, r: Region): number => put(c, S.kvm_userspace_memory_region2, { slot: 1, flags: 0, guest_phys_addr: 0x100000n, memory_size: 0x10000n, userspace_addr: BigInt(c.mem), ...r });
const cap = (c: Ctx, v: Partial<S.KvmEnableCap>): number => put(c, S.kvm_enable_cap, v);

interface Row {
  rule: string;
  level: "dev" | "vm" | "vcpu";
  request: number;
  errno: number;
  /** Build the argument (and any state it needs). */
  arg: (c: Ctx) => number;
  noVcpu?: boolean;
}

const M = K.KVM_SET_USER_MEMORY_REGION;
const M2 = K.KVM_SET_USER_MEMORY_REGION2;

const ROWS: Row[] = [
  // ---- system ioctls (kvm_dev_ioctl)
  { rule: "kvm_dev_ioctl: KVM_GET_API_VERSION arg != 0", level: "dev", request: K.KVM_GET_API_VERSION, errno: EINVAL, arg: () => 1 },
  { rule: "kvm_dev_ioctl: KVM_GET_VCPU_MMAP_SIZE arg != 0", level: "dev", request: K.KVM_GET_VCPU_MMAP_SIZE, errno: EINVAL, arg: () => 1 },
  { rule: "kvm_dev_ioctl -> kvm_arch_dev_ioctl: unknown request", level: "dev", request: 0xaeff, errno: ENOTTY, arg: () => 0 },
  { rule: "kvm_arch_dev_ioctl: KVM_GET_SUPPORTED_CPUID header copy_from_user", level: "dev", request: K.KVM_GET_SUPPORTED_CPUID, errno: EFAULT, arg: (c) => c.unmapped },

  // ---- KVM_SET_USER_MEMORY_REGION(2): digest §2 rules, kvm_vm_ioctl / __kvm_set_memory_region
  { rule: "§2 rule 0: copy_from_user of the region fails", level: "vm", request: M, errno: EFAULT, arg: (c) => c.unmapped },
  { rule: "§2 rule 0: copy_from_user of region2 fails", level: "vm", request: M2, errno: EFAULT, arg: (c) => c.unmapped },
  { rule: "§2 rule 1: v1 ioctl with KVM_MEM_GUEST_MEMFD", level: "vm", request: M, errno: EINVAL, arg: (c) => region(c, { flags: K.KVM_MEM_GUEST_MEMFD }) },
  { rule: "§2 rule 1: v1 ioctl with an unknown flag", level: "vm", request: M, errno: EINVAL, arg: (c) => region(c, { flags: 1 << 5 }) },
  { rule: "§2 rule 2: (u16)slot >= KVM_USER_MEM_SLOTS", level: "vm", request: M, errno: EINVAL, arg: (c) => region(c, { slot: K.KVM_USER_MEM_SLOTS }) },
  { rule: "§2 rule 3: v2 unknown flag", level: "vm", request: M2, errno: EINVAL, arg: (c) => region2(c, { flags: 1 << 3 }) },
  { rule: "§2 rule 3: v2 KVM_MEM_GUEST_MEMFD (guest_memfd not supported)", level: "vm", request: M2, errno: EINVAL, arg: (c) => region2(c, { flags: K.KVM_MEM_GUEST_MEMFD }) },
  { rule: "§2 rule 3: GUEST_MEMFD with LOG_DIRTY_PAGES", level: "vm", request: M2, errno: EINVAL, arg: (c) => region2(c, { flags: K.KVM_MEM_GUEST_MEMFD | K.KVM_MEM_LOG_DIRTY_PAGES }) },
  { rule: "§2 rule 4: memory_size not page aligned", level: "vm", request: M, errno: EINVAL, arg: (c) => region(c, { memory_size: 0x1001n }) },
  { rule: "§2 rule 5: guest_phys_addr not page aligned", level: "vm", request: M, errno: EINVAL, arg: (c) => region(c, { guest_phys_addr: 0x100800n }) },
  { rule: "§2 rule 6: userspace_addr not page aligned", level: "vm", request: M, errno: EINVAL, arg: (c) => region(c, { userspace_addr: BigInt(c.mem + 8) }) },
  { rule: "§2 rule 6: userspace_addr + size beyond the user address space (access_ok)", level: "vm", request: M, errno: EINVAL, arg: (c) => region(c, { userspace_addr: 0x7ffffff00000n, memory_size: 0x200000n }) },
  { rule: "§2 rule 8: address space id >= KVM_ADDRESS_SPACE_NUM", level: "vm", request: M, errno: EINVAL, arg: (c) => region(c, { slot: (2 << 16) | 1 }) },
  { rule: "§2 rule 9: guest_phys_addr + memory_size wraps", level: "vm", request: M, errno: EINVAL, arg: (c) => region(c, { guest_phys_addr: 0xfffffffffffff000n, memory_size: 0x2000n }) },
  { rule: "§2 rule 10: more than KVM_MEM_MAX_NR_PAGES pages", level: "vm", request: M, errno: EINVAL, arg: (c) => region(c, { guest_phys_addr: 0n, memory_size: 1n << 43n, userspace_addr: 0x100000000n }) },
  { rule: "§2 rule 11: deleting (size 0) a slot that does not exist", level: "vm", request: M, errno: EINVAL, arg: (c) => region(c, { slot: 7, memory_size: 0n }) },
  { rule: "§2 rule 14: existing slot with a different userspace_addr", level: "vm", request: M, errno: EINVAL, arg: (c) => region(c, { slot: 0, guest_phys_addr: 0n, userspace_addr: BigInt(c.scratch) }) },
  { rule: "§2 rule 14: existing slot resized", level: "vm", request: M, errno: EINVAL, arg: (c) => region(c, { slot: 0, guest_phys_addr: 0n, memory_size: 0x8000n }) },
  { rule: "§2 rule 14: READONLY toggled on an existing slot", level: "vm", request: M, errno: EINVAL, arg: (c) => region(c, { slot: 0, guest_phys_addr: 0n, flags: K.KVM_MEM_READONLY }) },
  { rule: "§2 rule 15: same base and flags is a no-op", level: "vm", request: M, errno: 0, arg: (c) => region(c, { slot: 0, guest_phys_addr: 0n }) },
  { rule: "§2 rule 15: new flags (LOG_DIRTY_PAGES) is FLAGS_ONLY", level: "vm", request: M, errno: 0, arg: (c) => region(c, { slot: 0, guest_phys_addr: 0n, flags: K.KVM_MEM_LOG_DIRTY_PAGES }) },
  { rule: "§2 rule 16: CREATE overlapping slot 0", level: "vm", request: M, errno: EEXIST, arg: (c) => region(c, { guest_phys_addr: 0x8000n }) },
  { rule: "§2 rule 16: MOVE onto another slot", level: "vm", request: M, errno: EEXIST, arg: (c) => {
    c.kvm.ioctl(M, region(c, { slot: 1, guest_phys_addr: 0x100000n, userspace_addr: BigInt(c.scratch), memory_size: 0x1000n }));
    return region(c, { slot: 1, guest_phys_addr: 0x4000n, userspace_addr: BigInt(c.scratch), memory_size: 0x1000n });
  } },
  { rule: "§2 rule 16: the same range in address space 1 is not an overlap", level: "vm", request: M, errno: 0, arg: (c) => region(c, { slot: (1 << 16) | 0, guest_phys_addr: 0n }) },

  // ---- KVM_CREATE_VCPU (kvm_vm_ioctl_create_vcpu)
  { rule: "kvm_vm_ioctl_create_vcpu: id >= KVM_MAX_VCPU_IDS", level: "vm", request: K.KVM_CREATE_VCPU, errno: EINVAL, arg: () => K.KVM_MAX_VCPU_IDS },
  { rule: "kvm_vm_ioctl_create_vcpu: created_vcpus >= max_vcpus", level: "vm", request: K.KVM_CREATE_VCPU, errno: EINVAL, arg: (c) => { c.kvm.maxVcpus = 1; return 1; } },
  { rule: "kvm_vm_ioctl_create_vcpu: duplicate id", level: "vm", request: K.KVM_CREATE_VCPU, errno: EEXIST, arg: () => 0 },
  { rule: "kvm_vm_ioctl -> kvm_arch_vm_ioctl: unknown request", level: "vm", request: 0xaeef, errno: ENOTTY, arg: () => 0 },

  // ---- KVM_RUN and vCPU ioctls (kvm_vcpu_ioctl)
  { rule: "kvm_vcpu_ioctl(KVM_RUN): arg != 0", level: "vcpu", request: K.KVM_RUN, errno: EINVAL, arg: () => 1 },
  { rule: "api.rst kvm_run.immediate_exit: KVM_RUN returns -EINTR", level: "vcpu", request: K.KVM_RUN, errno: EINTR, arg: (c) => { c.vcpu.kvmRun.immediateExit = 1; return 0; } },
  { rule: "api.rst KVM_RUN: a pending signal gives -EINTR", level: "vcpu", request: K.KVM_RUN, errno: EINTR, arg: (c) => { c.proc.task.kill(10); return 0; } },
  { rule: "kvm_vcpu_ioctl -> kvm_arch_vcpu_ioctl: unknown request", level: "vcpu", request: 0xaeee, errno: ENOTTY, arg: () => 0 },
  { rule: "kvm_arch_vcpu_ioctl(KVM_GET_REGS): copy_to_user fails", level: "vcpu", request: K.KVM_GET_REGS, errno: EFAULT, arg: (c) => c.unmapped },
  { rule: "kvm_arch_vcpu_ioctl(KVM_SET_REGS): copy_from_user fails", level: "vcpu", request: K.KVM_SET_REGS, errno: EFAULT, arg: (c) => c.unmapped },
  { rule: "kvm_vcpu_ioctl(KVM_SET_SIGNAL_MASK): copy_from_user of the header fails", level: "vcpu", request: K.KVM_SET_SIGNAL_MASK, errno: EFAULT, arg: (c) => c.unmapped },
  { rule: "kvm_vcpu_ioctl(KVM_SET_SIGNAL_MASK): len != sizeof(sigset_t)", level: "vcpu", request: K.KVM_SET_SIGNAL_MASK, errno: EINVAL, arg: (c) => put(c, S.kvm_signal_mask, { len: 128 }) },
  { rule: "kvm_vcpu_ioctl(KVM_SET_SIGNAL_MASK): sigset copy fails", level: "vcpu", request: K.KVM_SET_SIGNAL_MASK, errno: EFAULT, arg: (c) => { c.proc.mm.writeU32(c.scratch + 4092, 8); return c.scratch + 4092; } },
  { rule: "kvm_vcpu_ioctl(KVM_SET_SIGNAL_MASK): NULL clears the mask", level: "vcpu", request: K.KVM_SET_SIGNAL_MASK, errno: 0, arg: () => 0 },
  { rule: "x86.c msr_io: KVM_GET_MSRS nmsrs >= MAX_IO_MSRS", level: "vcpu", request: K.KVM_GET_MSRS, errno: E2BIG, arg: (c) => put(c, S.kvm_msrs, { nmsrs: 256 }) },
  { rule: "x86.c msr_io: KVM_SET_MSRS entries past the mapping", level: "vcpu", request: K.KVM_SET_MSRS, errno: EFAULT, arg: (c) => { c.proc.mm.writeU32(c.scratch + 4088, 2); return c.scratch + 4088; } },
  { rule: "x86.c KVM_SET_CPUID2: nent > KVM_MAX_CPUID_ENTRIES", level: "vcpu", request: K.KVM_SET_CPUID2, errno: E2BIG, arg: (c) => put(c, S.kvm_cpuid2, { nent: 257 }) },
  { rule: "KVM_SET_SIGNAL_MASK: a signal blocked by the vCPU mask does not interrupt KVM_RUN", level: "vcpu", request: K.KVM_RUN, errno: 0, arg: (c) => {
    c.proc.mm.copyToUser(c.scratch, Uint8Array.of(8, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0)); // len 8, SIGUSR1 (bit 9)
    c.vcpu.ioctl(K.KVM_SET_SIGNAL_MASK, c.scratch);
    c.proc.task.kill(10);
    return 0;
  } },

  // ---- dirty log (kvm_get_dirty_log_protect / kvm_clear_dirty_log_protect)
  { rule: "kvm_vm_ioctl(KVM_GET_DIRTY_LOG): copy_from_user fails", level: "vm", request: K.KVM_GET_DIRTY_LOG, errno: EFAULT, arg: (c) => c.unmapped },
  { rule: "kvm_get_dirty_log_protect: as_id out of range", level: "vm", request: K.KVM_GET_DIRTY_LOG, errno: EINVAL, arg: (c) => put(c, S.kvm_dirty_log, { slot: 2 << 16, dirty_bitmap: BigInt(c.scratch) }) },
  { rule: "kvm_get_dirty_log_protect: id >= KVM_USER_MEM_SLOTS", level: "vm", request: K.KVM_GET_DIRTY_LOG, errno: EINVAL, arg: (c) => put(c, S.kvm_dirty_log, { slot: K.KVM_USER_MEM_SLOTS, dirty_bitmap: BigInt(c.scratch) }) },
  { rule: "kvm_get_dirty_log_protect: no such slot", level: "vm", request: K.KVM_GET_DIRTY_LOG, errno: ENOENT, arg: (c) => put(c, S.kvm_dirty_log, { slot: 9, dirty_bitmap: BigInt(c.scratch) }) },
  { rule: "kvm_get_dirty_log_protect: slot without a dirty bitmap", level: "vm", request: K.KVM_GET_DIRTY_LOG, errno: ENOENT, arg: (c) => put(c, S.kvm_dirty_log, { slot: 0, dirty_bitmap: BigInt(c.scratch) }) },
  { rule: "kvm_get_dirty_log_protect: bitmap copy_to_user fails", level: "vm", request: K.KVM_GET_DIRTY_LOG, errno: EFAULT, arg: (c) => {
    c.kvm.ioctl(M, region(c, { slot: 0, guest_phys_addr: 0n, flags: K.KVM_MEM_LOG_DIRTY_PAGES }));
    return put(c, S.kvm_dirty_log, { slot: 0, dirty_bitmap: BigInt(c.unmapped) });
  } },
  { rule: "kvm_clear_dirty_log_protect: first_page not a multiple of 64", level: "vm", request: K.KVM_CLEAR_DIRTY_LOG, errno: EINVAL, arg: (c) => logged(c, { first_page: 1n, num_pages: 15 }) },
  { rule: "kvm_clear_dirty_log_protect: num_pages not a multiple of 64 and not reaching the end", level: "vm", request: K.KVM_CLEAR_DIRTY_LOG, errno: EINVAL, arg: (c) => logged(c, { first_page: 0n, num_pages: 10 }) },
  { rule: "kvm_clear_dirty_log_protect: range beyond the slot", level: "vm", request: K.KVM_CLEAR_DIRTY_LOG, errno: EINVAL, arg: (c) => logged(c, { first_page: 64n, num_pages: 64 }) },
  { rule: "kvm_clear_dirty_log_protect: num_pages reaching the slot end need not be a multiple of 64", level: "vm", request: K.KVM_CLEAR_DIRTY_LOG, errno: 0, arg: (c) => logged(c, { first_page: 0n, num_pages: 16 }) },
  { rule: "kvm_clear_dirty_log_protect: a huge num_pages is refused before any copy", level: "vm", request: K.KVM_CLEAR_DIRTY_LOG, errno: EINVAL, arg: (c) => logged(c, { first_page: 0n, num_pages: 0xffffffc0, dirty_bitmap: BigInt(UNMAPPED) }) },
  { rule: "kvm_clear_dirty_log_protect: user bitmap copy fails", level: "vm", request: K.KVM_CLEAR_DIRTY_LOG, errno: EFAULT, arg: (c) => logged(c, { first_page: 0n, num_pages: 16, dirty_bitmap: BigInt(UNMAPPED) }) },
  { rule: "kvm_get_dirty_log_protect: dirty ring in use (ENXIO)", level: "vm", request: K.KVM_GET_DIRTY_LOG, errno: ENXIO, noVcpu: true, arg: (c) => {
    c.kvm.enableCap({ cap: K.KVM_CAP_DIRTY_LOG_RING, args: [4096n] });
    return put(c, S.kvm_dirty_log, { slot: 0, dirty_bitmap: BigInt(c.scratch) });
  } },
  { rule: "kvm_clear_dirty_log_protect: dirty ring in use (ENXIO)", level: "vm", request: K.KVM_CLEAR_DIRTY_LOG, errno: ENXIO, noVcpu: true, arg: (c) => {
    c.kvm.enableCap({ cap: K.KVM_CAP_DIRTY_LOG_RING, args: [4096n] });
    return put(c, S.kvm_clear_dirty_log, { slot: 0, num_pages: 16, dirty_bitmap: BigInt(c.scratch) });
  } },
  { rule: "kvm_vm_ioctl_reset_dirty_pages: no dirty ring", level: "vm", request: K.KVM_RESET_DIRTY_RINGS, errno: EINVAL, arg: () => 0 },

  // ---- KVM_ENABLE_CAP (kvm_vm_ioctl_enable_cap_generic, kvm_vm_ioctl_enable_dirty_log_ring)
  { rule: "kvm_vm_ioctl(KVM_ENABLE_CAP): copy_from_user fails", level: "vm", request: K.KVM_ENABLE_CAP, errno: EFAULT, arg: (c) => c.unmapped },
  { rule: "enable_cap_generic MANUAL_DIRTY_LOG_PROTECT2: flags != 0", level: "vm", request: K.KVM_ENABLE_CAP, errno: EINVAL, arg: (c) => cap(c, { cap: K.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, flags: 1, args: [1n] }) },
  { rule: "enable_cap_generic MANUAL_DIRTY_LOG_PROTECT2: unknown option bits", level: "vm", request: K.KVM_ENABLE_CAP, errno: EINVAL, arg: (c) => cap(c, { cap: K.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, args: [4n] }) },
  { rule: "enable_dirty_log_ring: size not a power of two", level: "vm", request: K.KVM_ENABLE_CAP, errno: EINVAL, noVcpu: true, arg: (c) => cap(c, { cap: K.KVM_CAP_DIRTY_LOG_RING, args: [3000n] }) },
  { rule: "enable_dirty_log_ring: size 0", level: "vm", request: K.KVM_ENABLE_CAP, errno: EINVAL, noVcpu: true, arg: (c) => cap(c, { cap: K.KVM_CAP_DIRTY_LOG_RING, args: [0n] }) },
  { rule: "enable_dirty_log_ring: below one page / the reserved entries", level: "vm", request: K.KVM_ENABLE_CAP, errno: EINVAL, noVcpu: true, arg: (c) => cap(c, { cap: K.KVM_CAP_DIRTY_LOG_RING, args: [2048n] }) },
  { rule: "enable_dirty_log_ring: above KVM_DIRTY_RING_MAX_ENTRIES entries", level: "vm", request: K.KVM_ENABLE_CAP, errno: E2BIG, noVcpu: true, arg: (c) => cap(c, { cap: K.KVM_CAP_DIRTY_LOG_RING, args: [1n << 21n] }) },
  { rule: "enable_dirty_log_ring: set twice", level: "vm", request: K.KVM_ENABLE_CAP, errno: EINVAL, noVcpu: true, arg: (c) => {
    c.kvm.enableCap({ cap: K.KVM_CAP_DIRTY_LOG_RING, args: [4096n] });
    return cap(c, { cap: K.KVM_CAP_DIRTY_LOG_RING, args: [8192n] });
  } },
  { rule: "enable_dirty_log_ring: a vCPU already exists", level: "vm", request: K.KVM_ENABLE_CAP, errno: EINVAL, arg: (c) => cap(c, { cap: K.KVM_CAP_DIRTY_LOG_RING_ACQ_REL, args: [4096n] }) },
  { rule: "kvm_vm_ioctl_enable_cap (arch): unknown cap", level: "vm", request: K.KVM_ENABLE_CAP, errno: EINVAL, arg: (c) => cap(c, { cap: 9999 }) },
];

/** A dirty-logged slot 0 and a kvm_clear_dirty_log at the scratch page (bitmap after it). */
function logged(c: Ctx, v: Partial<S.KvmClearDirtyLog>): number {
  c.kvm.ioctl(M, region(c, { slot: 0, guest_phys_addr: 0n, flags: K.KVM_MEM_LOG_DIRTY_PAGES }));
  return put(c, S.kvm_clear_dirty_log, { slot: 0, dirty_bitmap: BigInt(c.scratch + 64), ...v });
}

for (const row of ROWS) {
  test(`${row.rule} -> ${row.errno ? errnoName(row.errno) : "0"}`, () => {
    const c = ctx(row.noVcpu);
    const arg = row.arg(c);
    const target = row.level === "dev" ? c.dev : row.level === "vm" ? c.kvm : c.vcpu;
    let got = 0;
    try {
      target.ioctl(row.request, arg);
    } catch (e) {
      if (!(e instanceof KvmError)) throw e;
      got = e.errno;
    }
    assert.equal(errnoName(got), row.errno ? errnoName(row.errno) : "errno 0");
  });
}
