/**
 * `struct kvm_run` (include/uapi/linux/kvm.h, x86-64 layout, 2352 bytes) as an accessor over the
 * vCPU's mmap'ed run area: getters/setters read and write the shared bytes in place, nothing is
 * copied, so the kernel side (arch run loop) and the VMM see the same memory, as with mmap().
 *
 * Naming: each union member's fields are prefixed with the member's name (`io.port` -> `ioPort`,
 * `mmio.phys_addr` -> `mmioPhysAddr`).
 *
 * 64-bit convention: every u64 field has two accessors,
 *   - `name`     a `number` (exact below 2^53: addresses, sizes, counters; larger values lose
 *                 low bits, so use the bigint form for arbitrary data),
 *   - `nameBig`  a `bigint` (all 64 bits; the setter takes negative values as two's complement).
 * Indexed u64 arrays (hypercall args, internal/system_event data) use `xxx(i)` / `setXxx(i, v)`
 * with bigint values.
 */

export const KVM_RUN_SIZE = 2352;

// Offsets (api.rst "The kvm_run structure"; digest §3).
export const KVM_RUN_OFF_REQUEST_INTERRUPT_WINDOW = 0;
export const KVM_RUN_OFF_IMMEDIATE_EXIT = 1;
export const KVM_RUN_OFF_EXIT_REASON = 8;
export const KVM_RUN_OFF_READY_FOR_INTERRUPT_INJECTION = 12;
export const KVM_RUN_OFF_IF_FLAG = 13;
export const KVM_RUN_OFF_FLAGS = 14;
export const KVM_RUN_OFF_CR8 = 16;
export const KVM_RUN_OFF_APIC_BASE = 24;
/** Start of the exit-reason union (256 bytes). */
export const KVM_RUN_OFF_UNION = 32;
export const KVM_RUN_OFF_KVM_VALID_REGS = 288;
export const KVM_RUN_OFF_KVM_DIRTY_REGS = 296;
/** struct kvm_sync_regs s (2048 bytes). */
export const KVM_RUN_OFF_SYNC_REGS = 304;

const U = KVM_RUN_OFF_UNION;
const TWO32 = 4294967296;

export class KvmRun {
  readonly dv: DataView;
  /** kvm_run.mmio.data: an 8-byte view into the run area. */
  readonly mmioData: Uint8Array;

  constructor(readonly bytes: Uint8Array) {
    if (bytes.byteLength < KVM_RUN_SIZE) throw new RangeError(`run area of ${bytes.byteLength} bytes is smaller than struct kvm_run`);
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.mmioData = bytes.subarray(U + 8, U + 16);
  }

  /** Read a u64 as a number (exact below 2^53). */
  u64(off: number): number {
    return this.dv.getUint32(off + 4, true) * TWO32 + this.dv.getUint32(off, true);
  }
  setU64(off: number, v: number): void {
    // Negative numbers are written as their 64-bit two's complement, like a C cast.
    const lo = v >>> 0;
    const hi = Math.floor(v / TWO32) >>> 0;
    this.dv.setUint32(off, lo, true);
    this.dv.setUint32(off + 4, hi, true);
  }
  u64Big(off: number): bigint {
    return this.dv.getBigUint64(off, true);
  }
  setU64Big(off: number, v: bigint): void {
    this.dv.setBigUint64(off, BigInt.asUintN(64, v), true);
  }

  /** Zero the union (KVM clears stale exit data only where it writes new data; VMMs read per reason). */
  clearUnion(): void {
    this.bytes.fill(0, U, U + 256);
  }

  // --- common header
  get requestInterruptWindow(): number { return this.dv.getUint8(KVM_RUN_OFF_REQUEST_INTERRUPT_WINDOW); }
  set requestInterruptWindow(v: number) { this.dv.setUint8(KVM_RUN_OFF_REQUEST_INTERRUPT_WINDOW, v); }
  get immediateExit(): number { return this.dv.getUint8(KVM_RUN_OFF_IMMEDIATE_EXIT); }
  set immediateExit(v: number) { this.dv.setUint8(KVM_RUN_OFF_IMMEDIATE_EXIT, v); }
  get exitReason(): number { return this.dv.getUint32(KVM_RUN_OFF_EXIT_REASON, true); }
  set exitReason(v: number) { this.dv.setUint32(KVM_RUN_OFF_EXIT_REASON, v, true); }
  get readyForInterruptInjection(): number { return this.dv.getUint8(KVM_RUN_OFF_READY_FOR_INTERRUPT_INJECTION); }
  set readyForInterruptInjection(v: number) { this.dv.setUint8(KVM_RUN_OFF_READY_FOR_INTERRUPT_INJECTION, v); }
  get ifFlag(): number { return this.dv.getUint8(KVM_RUN_OFF_IF_FLAG); }
  set ifFlag(v: number) { this.dv.setUint8(KVM_RUN_OFF_IF_FLAG, v); }
  get flags(): number { return this.dv.getUint16(KVM_RUN_OFF_FLAGS, true); }
  set flags(v: number) { this.dv.setUint16(KVM_RUN_OFF_FLAGS, v, true); }
  get cr8(): number { return this.u64(KVM_RUN_OFF_CR8); }
  set cr8(v: number) { this.setU64(KVM_RUN_OFF_CR8, v); }
  get cr8Big(): bigint { return this.u64Big(KVM_RUN_OFF_CR8); }
  set cr8Big(v: bigint) { this.setU64Big(KVM_RUN_OFF_CR8, v); }
  get apicBase(): number { return this.u64(KVM_RUN_OFF_APIC_BASE); }
  set apicBase(v: number) { this.setU64(KVM_RUN_OFF_APIC_BASE, v); }
  get apicBaseBig(): bigint { return this.u64Big(KVM_RUN_OFF_APIC_BASE); }
  set apicBaseBig(v: bigint) { this.setU64Big(KVM_RUN_OFF_APIC_BASE, v); }

  // --- KVM_EXIT_UNKNOWN: hw.hardware_exit_reason
  get hwHardwareExitReason(): number { return this.u64(U); }
  set hwHardwareExitReason(v: number) { this.setU64(U, v); }
  get hwHardwareExitReasonBig(): bigint { return this.u64Big(U); }
  set hwHardwareExitReasonBig(v: bigint) { this.setU64Big(U, v); }

  // --- KVM_EXIT_FAIL_ENTRY
  get failEntryHardwareEntryFailureReason(): number { return this.u64(U); }
  set failEntryHardwareEntryFailureReason(v: number) { this.setU64(U, v); }
  get failEntryHardwareEntryFailureReasonBig(): bigint { return this.u64Big(U); }
  set failEntryHardwareEntryFailureReasonBig(v: bigint) { this.setU64Big(U, v); }
  get failEntryCpu(): number { return this.dv.getUint32(U + 8, true); }
  set failEntryCpu(v: number) { this.dv.setUint32(U + 8, v, true); }

  // --- KVM_EXIT_EXCEPTION: ex {exception, error_code}
  get exException(): number { return this.dv.getUint32(U, true); }
  set exException(v: number) { this.dv.setUint32(U, v, true); }
  get exErrorCode(): number { return this.dv.getUint32(U + 4, true); }
  set exErrorCode(v: number) { this.dv.setUint32(U + 4, v, true); }

  // --- KVM_EXIT_IO
  get ioDirection(): number { return this.dv.getUint8(U); }
  set ioDirection(v: number) { this.dv.setUint8(U, v); }
  get ioSize(): number { return this.dv.getUint8(U + 1); }
  set ioSize(v: number) { this.dv.setUint8(U + 1, v); }
  get ioPort(): number { return this.dv.getUint16(U + 2, true); }
  set ioPort(v: number) { this.dv.setUint16(U + 2, v, true); }
  get ioCount(): number { return this.dv.getUint32(U + 4, true); }
  set ioCount(v: number) { this.dv.setUint32(U + 4, v, true); }
  /** Offset of the data inside the run area (x86: KVM_PIO_PAGE_OFFSET * 4096). */
  get ioDataOffset(): number { return this.u64(U + 8); }
  set ioDataOffset(v: number) { this.setU64(U + 8, v); }
  get ioDataOffsetBig(): bigint { return this.u64Big(U + 8); }
  set ioDataOffsetBig(v: bigint) { this.setU64Big(U + 8, v); }
  /** The size * count data bytes at data_offset (a view into the run area, not a copy). */
  ioData(): Uint8Array {
    const off = this.ioDataOffset;
    return this.bytes.subarray(off, off + this.ioSize * this.ioCount);
  }

  // --- KVM_EXIT_DEBUG: debug.arch (x86)
  get debugException(): number { return this.dv.getUint32(U, true); }
  set debugException(v: number) { this.dv.setUint32(U, v, true); }
  get debugPc(): number { return this.u64(U + 8); }
  set debugPc(v: number) { this.setU64(U + 8, v); }
  get debugPcBig(): bigint { return this.u64Big(U + 8); }
  set debugPcBig(v: bigint) { this.setU64Big(U + 8, v); }
  get debugDr6(): number { return this.u64(U + 16); }
  set debugDr6(v: number) { this.setU64(U + 16, v); }
  get debugDr6Big(): bigint { return this.u64Big(U + 16); }
  set debugDr6Big(v: bigint) { this.setU64Big(U + 16, v); }
  get debugDr7(): number { return this.u64(U + 24); }
  set debugDr7(v: number) { this.setU64(U + 24, v); }
  get debugDr7Big(): bigint { return this.u64Big(U + 24); }
  set debugDr7Big(v: bigint) { this.setU64Big(U + 24, v); }

  // --- KVM_EXIT_MMIO (mmioData is the 8-byte data view)
  get mmioPhysAddr(): number { return this.u64(U); }
  set mmioPhysAddr(v: number) { this.setU64(U, v); }
  get mmioPhysAddrBig(): bigint { return this.u64Big(U); }
  set mmioPhysAddrBig(v: bigint) { this.setU64Big(U, v); }
  get mmioLen(): number { return this.dv.getUint32(U + 16, true); }
  set mmioLen(v: number) { this.dv.setUint32(U + 16, v, true); }
  get mmioIsWrite(): number { return this.dv.getUint8(U + 20); }
  set mmioIsWrite(v: number) { this.dv.setUint8(U + 20, v); }

  // --- KVM_EXIT_HYPERCALL
  get hypercallNr(): number { return this.u64(U); }
  set hypercallNr(v: number) { this.setU64(U, v); }
  get hypercallNrBig(): bigint { return this.u64Big(U); }
  set hypercallNrBig(v: bigint) { this.setU64Big(U, v); }
  hypercallArg(i: number): bigint { return this.u64Big(U + 8 + 8 * checkIndex(i, 6)); }
  setHypercallArg(i: number, v: bigint): void { this.setU64Big(U + 8 + 8 * checkIndex(i, 6), v); }
  get hypercallRet(): number { return this.u64(U + 56); }
  set hypercallRet(v: number) { this.setU64(U + 56, v); }
  get hypercallRetBig(): bigint { return this.u64Big(U + 56); }
  set hypercallRetBig(v: bigint) { this.setU64Big(U + 56, v); }
  get hypercallFlags(): number { return this.u64(U + 64); }
  set hypercallFlags(v: number) { this.setU64(U + 64, v); }
  get hypercallFlagsBig(): bigint { return this.u64Big(U + 64); }
  set hypercallFlagsBig(v: bigint) { this.setU64Big(U + 64, v); }

  // --- KVM_EXIT_INTERNAL_ERROR
  get internalSuberror(): number { return this.dv.getUint32(U, true); }
  set internalSuberror(v: number) { this.dv.setUint32(U, v, true); }
  get internalNdata(): number { return this.dv.getUint32(U + 4, true); }
  set internalNdata(v: number) { this.dv.setUint32(U + 4, v, true); }
  internalData(i: number): bigint { return this.u64Big(U + 8 + 8 * checkIndex(i, 16)); }
  setInternalData(i: number, v: bigint): void { this.setU64Big(U + 8 + 8 * checkIndex(i, 16), v); }

  // --- KVM_EXIT_SYSTEM_EVENT
  get systemEventType(): number { return this.dv.getUint32(U, true); }
  set systemEventType(v: number) { this.dv.setUint32(U, v, true); }
  get systemEventNdata(): number { return this.dv.getUint32(U + 4, true); }
  set systemEventNdata(v: number) { this.dv.setUint32(U + 4, v, true); }
  systemEventData(i: number): bigint { return this.u64Big(U + 8 + 8 * checkIndex(i, 16)); }
  setSystemEventData(i: number, v: bigint): void { this.setU64Big(U + 8 + 8 * checkIndex(i, 16), v); }

  // --- KVM_EXIT_X86_RDMSR / KVM_EXIT_X86_WRMSR
  get msrError(): number { return this.dv.getUint8(U); }
  set msrError(v: number) { this.dv.setUint8(U, v); }
  get msrReason(): number { return this.dv.getUint32(U + 8, true); }
  set msrReason(v: number) { this.dv.setUint32(U + 8, v, true); }
  get msrIndex(): number { return this.dv.getUint32(U + 12, true); }
  set msrIndex(v: number) { this.dv.setUint32(U + 12, v, true); }
  get msrData(): number { return this.u64(U + 16); }
  set msrData(v: number) { this.setU64(U + 16, v); }
  get msrDataBig(): bigint { return this.u64Big(U + 16); }
  set msrDataBig(v: bigint) { this.setU64Big(U + 16, v); }

  // --- KVM_EXIT_MEMORY_FAULT: memory_fault {flags, gpa, size}
  get memoryFaultFlags(): number { return this.u64(U); }
  set memoryFaultFlags(v: number) { this.setU64(U, v); }
  get memoryFaultGpa(): number { return this.u64(U + 8); }
  set memoryFaultGpa(v: number) { this.setU64(U + 8, v); }
  get memoryFaultSize(): number { return this.u64(U + 16); }
  set memoryFaultSize(v: number) { this.setU64(U + 16, v); }

  // --- sync regs bitmaps (KVM_CAP_SYNC_REGS)
  get kvmValidRegs(): number { return this.u64(KVM_RUN_OFF_KVM_VALID_REGS); }
  set kvmValidRegs(v: number) { this.setU64(KVM_RUN_OFF_KVM_VALID_REGS, v); }
  get kvmValidRegsBig(): bigint { return this.u64Big(KVM_RUN_OFF_KVM_VALID_REGS); }
  set kvmValidRegsBig(v: bigint) { this.setU64Big(KVM_RUN_OFF_KVM_VALID_REGS, v); }
  get kvmDirtyRegs(): number { return this.u64(KVM_RUN_OFF_KVM_DIRTY_REGS); }
  set kvmDirtyRegs(v: number) { this.setU64(KVM_RUN_OFF_KVM_DIRTY_REGS, v); }
  get kvmDirtyRegsBig(): bigint { return this.u64Big(KVM_RUN_OFF_KVM_DIRTY_REGS); }
  set kvmDirtyRegsBig(v: bigint) { this.setU64Big(KVM_RUN_OFF_KVM_DIRTY_REGS, v); }
}

function checkIndex(i: number, n: number): number {
  if (!(i >= 0 && i < n && Number.isInteger(i))) throw new RangeError(`index ${i} outside [0, ${n})`);
  return i;
}
