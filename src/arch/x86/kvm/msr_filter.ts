/**
 * MSR filtering (KVM_X86_SET_MSR_FILTER, api.rst "KVM_X86_SET_MSR_FILTER"; x86.c
 * kvm_vm_ioctl_set_msr_filter, kvm_add_msr_filter, kvm_msr_allowed): userspace lists ranges of
 * MSR indices with a bitmap each (bit set = the access is allowed) for reads and/or writes, and a
 * default for indices no range covers. The first range that covers an index and has the access's
 * flag decides. A denied guest RDMSR/WRMSR exits to userspace with KVM_MSR_EXIT_REASON_FILTER when
 * KVM_CAP_X86_USER_SPACE_MSR enabled that reason, else the guest gets #GP. Accesses by the host
 * (KVM_GET/SET_MSRS) and the x2APIC range are never filtered.
 */
import { EINVAL } from "../../../uapi/errno.js";
import { KvmError } from "../../../virt/kvm/kvm_error.js";
import { copyInBytes, registerArchIoctlArg } from "../../../virt/kvm/kvm_ioctl_args.js";
import * as K from "../../../uapi/kvm.js";

export const KVM_MSR_FILTER_READ = 1 << 0;
export const KVM_MSR_FILTER_WRITE = 1 << 1;
export const KVM_MSR_FILTER_RANGE_VALID_MASK = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE;
export const KVM_MSR_FILTER_DEFAULT_ALLOW = 0;
export const KVM_MSR_FILTER_DEFAULT_DENY = 1 << 0;
export const KVM_MSR_FILTER_VALID_MASK = KVM_MSR_FILTER_DEFAULT_DENY;
export const KVM_MSR_FILTER_MAX_RANGES = 16;
export const KVM_MSR_FILTER_MAX_BITMAP_SIZE = 0x600;
/** sizeof(struct kvm_msr_filter): flags, then 16 ranges of { flags, nmsrs, base, (pad), bitmap pointer }. */
export const KVM_MSR_FILTER_SIZE = 8 + KVM_MSR_FILTER_MAX_RANGES * 24;

/** One range as the ioctl hands it to the arch: the bitmap already copied from userspace. */
export interface MsrFilterRange {
  flags: number;
  nmsrs: number;
  base: number;
  bitmap: Uint8Array;
}

export interface KvmMsrFilter {
  flags: number;
  ranges: MsrFilterRange[];
}

/** The VM's filter (struct kvm_x86_msr_filter): only non-empty ranges are kept. */
export class MsrFilter {
  constructor(readonly defaultAllow: boolean, readonly ranges: readonly MsrFilterRange[]) {}
}

/** BITS_TO_LONGS(nmsrs) * sizeof(long): the bytes KVM copies for a range's bitmap. */
function bitmapBytes(nmsrs: number): number {
  return Math.ceil(nmsrs / 64) * 8;
}

/** kvm_add_msr_filter()'s checks of one non-empty range. */
function checkRange(flags: number, nmsrs: number): void {
  const name = "KVM_X86_SET_MSR_FILTER";
  if (flags & ~KVM_MSR_FILTER_RANGE_VALID_MASK) throw new KvmError(EINVAL, name, `range flags 0x${flags.toString(16)}`);
  if (flags === 0) throw new KvmError(EINVAL, name, "a range with nmsrs but no READ/WRITE flag");
  const size = bitmapBytes(nmsrs);
  if (size === 0 || size > KVM_MSR_FILTER_MAX_BITMAP_SIZE) throw new KvmError(EINVAL, name, `bitmap of ${nmsrs} MSRs`);
}

/**
 * kvm_vm_ioctl_set_msr_filter(): validate and build the new filter. An empty filter with the
 * default "allow" removes filtering; an empty one with "deny" is EINVAL.
 */
export function kvmBuildMsrFilter(arg: KvmMsrFilter): MsrFilter | null {
  const name = "KVM_X86_SET_MSR_FILTER";
  if (arg.flags & ~KVM_MSR_FILTER_VALID_MASK) throw new KvmError(EINVAL, name, `flags 0x${arg.flags.toString(16)}`);
  if (arg.ranges.length > KVM_MSR_FILTER_MAX_RANGES) throw new KvmError(EINVAL, name, `${arg.ranges.length} ranges`);
  const defaultAllow = (arg.flags & KVM_MSR_FILTER_DEFAULT_DENY) === 0;
  const ranges: MsrFilterRange[] = [];
  for (const r of arg.ranges) {
    if (r.nmsrs === 0) continue;
    checkRange(r.flags, r.nmsrs);
    const need = bitmapBytes(r.nmsrs);
    if (r.bitmap.length < need) throw new KvmError(EINVAL, name, `bitmap of ${r.bitmap.length} bytes for ${r.nmsrs} MSRs`);
    ranges.push({ flags: r.flags, nmsrs: r.nmsrs >>> 0, base: r.base >>> 0, bitmap: r.bitmap.slice(0, need) });
  }
  if (ranges.length === 0 && !defaultAllow) throw new KvmError(EINVAL, name, "default deny without ranges");
  return ranges.length === 0 ? null : new MsrFilter(defaultAllow, ranges);
}

/** kvm_msr_allowed(): may the guest perform `type` (KVM_MSR_FILTER_READ/WRITE) on `index`? */
export function kvmMsrAllowed(filter: MsrFilter | null, index: number, type: number): boolean {
  if (filter === null) return true;
  index >>>= 0;
  // The x2APIC MSRs are never filtered (KVM's x2APIC virtualization decides them).
  if (index >= 0x800 && index <= 0x8ff) return true;
  const ranges = filter.ranges;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    const off = index - r.base;
    if (off >= 0 && off < r.nmsrs && (r.flags & type) !== 0) return ((r.bitmap[off >>> 3]! >>> (off & 7)) & 1) !== 0;
  }
  return filter.defaultAllow;
}

// The byte-level ioctl: struct kvm_msr_filter, each non-empty range's bitmap copied from its
// user pointer in kvm_add_msr_filter's order (so a bad pointer after a bad range gives EINVAL).
registerArchIoctlArg(K.KVM_X86_SET_MSR_FILTER, {
  name: "KVM_X86_SET_MSR_FILTER",
  read: (mm, hva) => {
    const name = "KVM_X86_SET_MSR_FILTER";
    const raw = copyInBytes(mm, hva, KVM_MSR_FILTER_SIZE, name);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const flags = dv.getUint32(0, true);
    if (flags & ~KVM_MSR_FILTER_VALID_MASK) throw new KvmError(EINVAL, name, `flags 0x${flags.toString(16)}`);
    const ranges: MsrFilterRange[] = [];
    for (let i = 0; i < KVM_MSR_FILTER_MAX_RANGES; i++) {
      const o = 8 + i * 24;
      const rflags = dv.getUint32(o, true), nmsrs = dv.getUint32(o + 4, true), base = dv.getUint32(o + 8, true);
      if (nmsrs === 0) continue;
      checkRange(rflags, nmsrs);
      const ptr = Number(dv.getBigUint64(o + 16, true));
      ranges.push({ flags: rflags, nmsrs, base, bitmap: copyInBytes(mm, ptr, bitmapBytes(nmsrs), name) });
    }
    return { flags, ranges } satisfies KvmMsrFilter;
  },
});
