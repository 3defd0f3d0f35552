/**
 * The virtual-machine control structure (SDM Vol. 3C ch. 25, Appendix B) as this processor
 * implements it: the field encodings (named as Linux's `enum vmcs_field`,
 * arch/x86/include/asm/vmx.h), the control bits (Linux's names), the exit-information formats,
 * and the VMCS region itself.
 *
 * Field encoding (SDM 25.11.2, Table 25-21):
 *   bit 0      access type (0 full, 1 high 32 bits of a 64-bit field)
 *   bits 9:1   index
 *   bits 11:10 type (0 control, 1 VM-exit information (read-only), 2 guest state, 3 host state)
 *   bits 14:13 width (0 16-bit, 1 64-bit, 2 32-bit, 3 natural width)
 *
 * Region format (SDM 25.2 leaves everything after the first 8 bytes implementation-specific):
 *   0   revision identifier (bits 30:0) and shadow-VMCS indicator (bit 31)
 *   4   VMX-abort indicator
 *   8   launch state (VMCS_LAUNCH_STATE_*)
 *   16  field data: 8 bytes per supported field, slot order of VMCS_SUPPORTED_FIELDS, low then
 *       high 32 bits.
 * While a VMCS is current its data lives in the processor (`VmcsCache`) and is written back to
 * the region on VMCLEAR and when VMPTRLD makes another VMCS current (SDM 25.11.1).
 */
import type { PhysMem } from "../../physmem.js";
import { PAGE_MASK, PAGE_SIZE, FRAMES_PER_CHUNK_SHIFT } from "../../physmem.js";

// ---------------------------------------------------------------------------------------------
// Field encodings (SDM Appendix B; Linux enum vmcs_field)
// ---------------------------------------------------------------------------------------------

// 16-bit control fields (B.1.1)
export const VIRTUAL_PROCESSOR_ID = 0x00000000;
export const POSTED_INTR_NV = 0x00000002;
export const EPTP_INDEX = 0x00000004;
export const LAST_PID_POINTER_INDEX = 0x00000008;
// 16-bit guest-state fields (B.1.2)
export const GUEST_ES_SELECTOR = 0x00000800;
export const GUEST_CS_SELECTOR = 0x00000802;
export const GUEST_SS_SELECTOR = 0x00000804;
export const GUEST_DS_SELECTOR = 0x00000806;
export const GUEST_FS_SELECTOR = 0x00000808;
export const GUEST_GS_SELECTOR = 0x0000080a;
export const GUEST_LDTR_SELECTOR = 0x0000080c;
export const GUEST_TR_SELECTOR = 0x0000080e;
export const GUEST_INTR_STATUS = 0x00000810;
export const GUEST_PML_INDEX = 0x00000812;
// 16-bit host-state fields (B.1.3)
export const HOST_ES_SELECTOR = 0x00000c00;
export const HOST_CS_SELECTOR = 0x00000c02;
export const HOST_SS_SELECTOR = 0x00000c04;
export const HOST_DS_SELECTOR = 0x00000c06;
export const HOST_FS_SELECTOR = 0x00000c08;
export const HOST_GS_SELECTOR = 0x00000c0a;
export const HOST_TR_SELECTOR = 0x00000c0c;
// 64-bit control fields (B.2.1)
export const IO_BITMAP_A = 0x00002000;
export const IO_BITMAP_A_HIGH = 0x00002001;
export const IO_BITMAP_B = 0x00002002;
export const IO_BITMAP_B_HIGH = 0x00002003;
export const MSR_BITMAP = 0x00002004;
export const MSR_BITMAP_HIGH = 0x00002005;
export const VM_EXIT_MSR_STORE_ADDR = 0x00002006;
export const VM_EXIT_MSR_STORE_ADDR_HIGH = 0x00002007;
export const VM_EXIT_MSR_LOAD_ADDR = 0x00002008;
export const VM_EXIT_MSR_LOAD_ADDR_HIGH = 0x00002009;
export const VM_ENTRY_MSR_LOAD_ADDR = 0x0000200a;
export const VM_ENTRY_MSR_LOAD_ADDR_HIGH = 0x0000200b;
export const PML_ADDRESS = 0x0000200e;
export const PML_ADDRESS_HIGH = 0x0000200f;
export const TSC_OFFSET = 0x00002010;
export const TSC_OFFSET_HIGH = 0x00002011;
export const VIRTUAL_APIC_PAGE_ADDR = 0x00002012;
export const VIRTUAL_APIC_PAGE_ADDR_HIGH = 0x00002013;
export const APIC_ACCESS_ADDR = 0x00002014;
export const APIC_ACCESS_ADDR_HIGH = 0x00002015;
export const POSTED_INTR_DESC_ADDR = 0x00002016;
export const POSTED_INTR_DESC_ADDR_HIGH = 0x00002017;
export const VM_FUNCTION_CONTROL = 0x00002018;
export const VM_FUNCTION_CONTROL_HIGH = 0x00002019;
export const EPT_POINTER = 0x0000201a;
export const EPT_POINTER_HIGH = 0x0000201b;
export const EOI_EXIT_BITMAP0 = 0x0000201c;
export const EOI_EXIT_BITMAP0_HIGH = 0x0000201d;
export const EOI_EXIT_BITMAP1 = 0x0000201e;
export const EOI_EXIT_BITMAP1_HIGH = 0x0000201f;
export const EOI_EXIT_BITMAP2 = 0x00002020;
export const EOI_EXIT_BITMAP2_HIGH = 0x00002021;
export const EOI_EXIT_BITMAP3 = 0x00002022;
export const EOI_EXIT_BITMAP3_HIGH = 0x00002023;
export const EPTP_LIST_ADDRESS = 0x00002024;
export const EPTP_LIST_ADDRESS_HIGH = 0x00002025;
export const VMREAD_BITMAP = 0x00002026;
export const VMREAD_BITMAP_HIGH = 0x00002027;
export const VMWRITE_BITMAP = 0x00002028;
export const VMWRITE_BITMAP_HIGH = 0x00002029;
export const XSS_EXIT_BITMAP = 0x0000202c;
export const XSS_EXIT_BITMAP_HIGH = 0x0000202d;
export const ENCLS_EXITING_BITMAP = 0x0000202e;
export const ENCLS_EXITING_BITMAP_HIGH = 0x0000202f;
export const TSC_MULTIPLIER = 0x00002032;
export const TSC_MULTIPLIER_HIGH = 0x00002033;
export const TERTIARY_VM_EXEC_CONTROL = 0x00002034;
export const TERTIARY_VM_EXEC_CONTROL_HIGH = 0x00002035;
// 64-bit read-only data field (B.2.2)
export const GUEST_PHYSICAL_ADDRESS = 0x00002400;
export const GUEST_PHYSICAL_ADDRESS_HIGH = 0x00002401;
// 64-bit guest-state fields (B.2.3)
export const VMCS_LINK_POINTER = 0x00002800;
export const VMCS_LINK_POINTER_HIGH = 0x00002801;
export const GUEST_IA32_DEBUGCTL = 0x00002802;
export const GUEST_IA32_DEBUGCTL_HIGH = 0x00002803;
export const GUEST_IA32_PAT = 0x00002804;
export const GUEST_IA32_PAT_HIGH = 0x00002805;
export const GUEST_IA32_EFER = 0x00002806;
export const GUEST_IA32_EFER_HIGH = 0x00002807;
export const GUEST_IA32_PERF_GLOBAL_CTRL = 0x00002808;
export const GUEST_IA32_PERF_GLOBAL_CTRL_HIGH = 0x00002809;
export const GUEST_PDPTR0 = 0x0000280a;
export const GUEST_PDPTR0_HIGH = 0x0000280b;
export const GUEST_PDPTR1 = 0x0000280c;
export const GUEST_PDPTR1_HIGH = 0x0000280d;
export const GUEST_PDPTR2 = 0x0000280e;
export const GUEST_PDPTR2_HIGH = 0x0000280f;
export const GUEST_PDPTR3 = 0x00002810;
export const GUEST_PDPTR3_HIGH = 0x00002811;
export const GUEST_BNDCFGS = 0x00002812;
export const GUEST_BNDCFGS_HIGH = 0x00002813;
export const GUEST_IA32_RTIT_CTL = 0x00002814;
export const GUEST_IA32_RTIT_CTL_HIGH = 0x00002815;
// 64-bit host-state fields (B.2.4)
export const HOST_IA32_PAT = 0x00002c00;
export const HOST_IA32_PAT_HIGH = 0x00002c01;
export const HOST_IA32_EFER = 0x00002c02;
export const HOST_IA32_EFER_HIGH = 0x00002c03;
export const HOST_IA32_PERF_GLOBAL_CTRL = 0x00002c04;
export const HOST_IA32_PERF_GLOBAL_CTRL_HIGH = 0x00002c05;
// 32-bit control fields (B.3.1)
export const PIN_BASED_VM_EXEC_CONTROL = 0x00004000;
export const CPU_BASED_VM_EXEC_CONTROL = 0x00004002;
export const EXCEPTION_BITMAP = 0x00004004;
export const PAGE_FAULT_ERROR_CODE_MASK = 0x00004006;
export const PAGE_FAULT_ERROR_CODE_MATCH = 0x00004008;
export const CR3_TARGET_COUNT = 0x0000400a;
export const VM_EXIT_CONTROLS = 0x0000400c;
export const VM_EXIT_MSR_STORE_COUNT = 0x0000400e;
export const VM_EXIT_MSR_LOAD_COUNT = 0x00004010;
export const VM_ENTRY_CONTROLS = 0x00004012;
export const VM_ENTRY_MSR_LOAD_COUNT = 0x00004014;
export const VM_ENTRY_INTR_INFO_FIELD = 0x00004016;
export const VM_ENTRY_EXCEPTION_ERROR_CODE = 0x00004018;
export const VM_ENTRY_INSTRUCTION_LEN = 0x0000401a;
export const TPR_THRESHOLD = 0x0000401c;
export const SECONDARY_VM_EXEC_CONTROL = 0x0000401e;
export const PLE_GAP = 0x00004020;
export const PLE_WINDOW = 0x00004022;
export const NOTIFY_WINDOW = 0x00004024;
// 32-bit read-only data fields (B.3.2)
export const VM_INSTRUCTION_ERROR = 0x00004400;
export const VM_EXIT_REASON = 0x00004402;
export const VM_EXIT_INTR_INFO = 0x00004404;
export const VM_EXIT_INTR_ERROR_CODE = 0x00004406;
export const IDT_VECTORING_INFO_FIELD = 0x00004408;
export const IDT_VECTORING_ERROR_CODE = 0x0000440a;
export const VM_EXIT_INSTRUCTION_LEN = 0x0000440c;
export const VMX_INSTRUCTION_INFO = 0x0000440e;
// 32-bit guest-state fields (B.3.3)
export const GUEST_ES_LIMIT = 0x00004800;
export const GUEST_CS_LIMIT = 0x00004802;
export const GUEST_SS_LIMIT = 0x00004804;
export const GUEST_DS_LIMIT = 0x00004806;
export const GUEST_FS_LIMIT = 0x00004808;
export const GUEST_GS_LIMIT = 0x0000480a;
export const GUEST_LDTR_LIMIT = 0x0000480c;
export const GUEST_TR_LIMIT = 0x0000480e;
export const GUEST_GDTR_LIMIT = 0x00004810;
export const GUEST_IDTR_LIMIT = 0x00004812;
export const GUEST_ES_AR_BYTES = 0x00004814;
export const GUEST_CS_AR_BYTES = 0x00004816;
export const GUEST_SS_AR_BYTES = 0x00004818;
export const GUEST_DS_AR_BYTES = 0x0000481a;
export const GUEST_FS_AR_BYTES = 0x0000481c;
export const GUEST_GS_AR_BYTES = 0x0000481e;
export const GUEST_LDTR_AR_BYTES = 0x00004820;
export const GUEST_TR_AR_BYTES = 0x00004822;
export const GUEST_INTERRUPTIBILITY_INFO = 0x00004824;
export const GUEST_ACTIVITY_STATE = 0x00004826;
export const GUEST_SMBASE = 0x00004828;
export const GUEST_SYSENTER_CS = 0x0000482a;
export const VMX_PREEMPTION_TIMER_VALUE = 0x0000482e;
// 32-bit host-state field (B.3.4)
export const HOST_IA32_SYSENTER_CS = 0x00004c00;
// Natural-width control fields (B.4.1)
export const CR0_GUEST_HOST_MASK = 0x00006000;
export const CR4_GUEST_HOST_MASK = 0x00006002;
export const CR0_READ_SHADOW = 0x00006004;
export const CR4_READ_SHADOW = 0x00006006;
export const CR3_TARGET_VALUE0 = 0x00006008;
export const CR3_TARGET_VALUE1 = 0x0000600a;
export const CR3_TARGET_VALUE2 = 0x0000600c;
export const CR3_TARGET_VALUE3 = 0x0000600e;
// Natural-width read-only data fields (B.4.2)
export const EXIT_QUALIFICATION = 0x00006400;
export const EXIT_IO_RCX = 0x00006402;
export const EXIT_IO_RSI = 0x00006404;
export const EXIT_IO_RDI = 0x00006406;
export const EXIT_IO_RIP = 0x00006408;
export const GUEST_LINEAR_ADDRESS = 0x0000640a;
// Natural-width guest-state fields (B.4.3)
export const GUEST_CR0 = 0x00006800;
export const GUEST_CR3 = 0x00006802;
export const GUEST_CR4 = 0x00006804;
export const GUEST_ES_BASE = 0x00006806;
export const GUEST_CS_BASE = 0x00006808;
export const GUEST_SS_BASE = 0x0000680a;
export const GUEST_DS_BASE = 0x0000680c;
export const GUEST_FS_BASE = 0x0000680e;
export const GUEST_GS_BASE = 0x00006810;
export const GUEST_LDTR_BASE = 0x00006812;
export const GUEST_TR_BASE = 0x00006814;
export const GUEST_GDTR_BASE = 0x00006816;
export const GUEST_IDTR_BASE = 0x00006818;
export const GUEST_DR7 = 0x0000681a;
export const GUEST_RSP = 0x0000681c;
export const GUEST_RIP = 0x0000681e;
export const GUEST_RFLAGS = 0x00006820;
export const GUEST_PENDING_DBG_EXCEPTIONS = 0x00006822;
export const GUEST_SYSENTER_ESP = 0x00006824;
export const GUEST_SYSENTER_EIP = 0x00006826;
// Natural-width host-state fields (B.4.4)
export const HOST_CR0 = 0x00006c00;
export const HOST_CR3 = 0x00006c02;
export const HOST_CR4 = 0x00006c04;
export const HOST_FS_BASE = 0x00006c06;
export const HOST_GS_BASE = 0x00006c08;
export const HOST_TR_BASE = 0x00006c0a;
export const HOST_GDTR_BASE = 0x00006c0c;
export const HOST_IDTR_BASE = 0x00006c0e;
export const HOST_IA32_SYSENTER_ESP = 0x00006c10;
export const HOST_IA32_SYSENTER_EIP = 0x00006c12;
export const HOST_RSP = 0x00006c14;
export const HOST_RIP = 0x00006c16;

/** Guest segment field bases, indexed by `Seg` (ES CS SS DS FS GS LDTR TR): field = base + 2*seg. */
export const GUEST_SEG_SELECTOR_BASE = GUEST_ES_SELECTOR;
export const GUEST_SEG_LIMIT_BASE = GUEST_ES_LIMIT;
export const GUEST_SEG_AR_BASE = GUEST_ES_AR_BYTES;
export const GUEST_SEG_BASE_BASE = GUEST_ES_BASE;

/**
 * Every field this processor implements (full access type). VMREAD/VMWRITE of anything else
 * fails with VMXERR_UNSUPPORTED_VMCS_COMPONENT. Fields of features not advertised in the
 * capability MSRs are still storage (as on hardware that has the field but not the feature).
 */
export const VMCS_SUPPORTED_FIELDS: readonly number[] = [
  VIRTUAL_PROCESSOR_ID, POSTED_INTR_NV, EPTP_INDEX, LAST_PID_POINTER_INDEX,
  GUEST_ES_SELECTOR, GUEST_CS_SELECTOR, GUEST_SS_SELECTOR, GUEST_DS_SELECTOR, GUEST_FS_SELECTOR,
  GUEST_GS_SELECTOR, GUEST_LDTR_SELECTOR, GUEST_TR_SELECTOR, GUEST_INTR_STATUS, GUEST_PML_INDEX,
  HOST_ES_SELECTOR, HOST_CS_SELECTOR, HOST_SS_SELECTOR, HOST_DS_SELECTOR, HOST_FS_SELECTOR,
  HOST_GS_SELECTOR, HOST_TR_SELECTOR,
  IO_BITMAP_A, IO_BITMAP_B, MSR_BITMAP, VM_EXIT_MSR_STORE_ADDR, VM_EXIT_MSR_LOAD_ADDR,
  VM_ENTRY_MSR_LOAD_ADDR, PML_ADDRESS, TSC_OFFSET, VIRTUAL_APIC_PAGE_ADDR, APIC_ACCESS_ADDR,
  POSTED_INTR_DESC_ADDR, VM_FUNCTION_CONTROL, EPT_POINTER, EOI_EXIT_BITMAP0, EOI_EXIT_BITMAP1,
  EOI_EXIT_BITMAP2, EOI_EXIT_BITMAP3, EPTP_LIST_ADDRESS, VMREAD_BITMAP, VMWRITE_BITMAP,
  XSS_EXIT_BITMAP, ENCLS_EXITING_BITMAP, TSC_MULTIPLIER, TERTIARY_VM_EXEC_CONTROL,
  GUEST_PHYSICAL_ADDRESS,
  VMCS_LINK_POINTER, GUEST_IA32_DEBUGCTL, GUEST_IA32_PAT, GUEST_IA32_EFER,
  GUEST_IA32_PERF_GLOBAL_CTRL, GUEST_PDPTR0, GUEST_PDPTR1, GUEST_PDPTR2, GUEST_PDPTR3,
  GUEST_BNDCFGS, GUEST_IA32_RTIT_CTL,
  HOST_IA32_PAT, HOST_IA32_EFER, HOST_IA32_PERF_GLOBAL_CTRL,
  PIN_BASED_VM_EXEC_CONTROL, CPU_BASED_VM_EXEC_CONTROL, EXCEPTION_BITMAP,
  PAGE_FAULT_ERROR_CODE_MASK, PAGE_FAULT_ERROR_CODE_MATCH, CR3_TARGET_COUNT, VM_EXIT_CONTROLS,
  VM_EXIT_MSR_STORE_COUNT, VM_EXIT_MSR_LOAD_COUNT, VM_ENTRY_CONTROLS, VM_ENTRY_MSR_LOAD_COUNT,
  VM_ENTRY_INTR_INFO_FIELD, VM_ENTRY_EXCEPTION_ERROR_CODE, VM_ENTRY_INSTRUCTION_LEN,
  TPR_THRESHOLD, SECONDARY_VM_EXEC_CONTROL, PLE_GAP, PLE_WINDOW, NOTIFY_WINDOW,
  VM_INSTRUCTION_ERROR, VM_EXIT_REASON, VM_EXIT_INTR_INFO, VM_EXIT_INTR_ERROR_CODE,
  IDT_VECTORING_INFO_FIELD, IDT_VECTORING_ERROR_CODE, VM_EXIT_INSTRUCTION_LEN,
  VMX_INSTRUCTION_INFO,
  GUEST_ES_LIMIT, GUEST_CS_LIMIT, GUEST_SS_LIMIT, GUEST_DS_LIMIT, GUEST_FS_LIMIT, GUEST_GS_LIMIT,
  GUEST_LDTR_LIMIT, GUEST_TR_LIMIT, GUEST_GDTR_LIMIT, GUEST_IDTR_LIMIT,
  GUEST_ES_AR_BYTES, GUEST_CS_AR_BYTES, GUEST_SS_AR_BYTES, GUEST_DS_AR_BYTES, GUEST_FS_AR_BYTES,
  GUEST_GS_AR_BYTES, GUEST_LDTR_AR_BYTES, GUEST_TR_AR_BYTES,
  GUEST_INTERRUPTIBILITY_INFO, GUEST_ACTIVITY_STATE, GUEST_SMBASE, GUEST_SYSENTER_CS,
  VMX_PREEMPTION_TIMER_VALUE,
  HOST_IA32_SYSENTER_CS,
  CR0_GUEST_HOST_MASK, CR4_GUEST_HOST_MASK, CR0_READ_SHADOW, CR4_READ_SHADOW,
  CR3_TARGET_VALUE0, CR3_TARGET_VALUE1, CR3_TARGET_VALUE2, CR3_TARGET_VALUE3,
  EXIT_QUALIFICATION, EXIT_IO_RCX, EXIT_IO_RSI, EXIT_IO_RDI, EXIT_IO_RIP, GUEST_LINEAR_ADDRESS,
  GUEST_CR0, GUEST_CR3, GUEST_CR4, GUEST_ES_BASE, GUEST_CS_BASE, GUEST_SS_BASE, GUEST_DS_BASE,
  GUEST_FS_BASE, GUEST_GS_BASE, GUEST_LDTR_BASE, GUEST_TR_BASE, GUEST_GDTR_BASE,
  GUEST_IDTR_BASE, GUEST_DR7, GUEST_RSP, GUEST_RIP, GUEST_RFLAGS, GUEST_PENDING_DBG_EXCEPTIONS,
  GUEST_SYSENTER_ESP, GUEST_SYSENTER_EIP,
  HOST_CR0, HOST_CR3, HOST_CR4, HOST_FS_BASE, HOST_GS_BASE, HOST_TR_BASE, HOST_GDTR_BASE,
  HOST_IDTR_BASE, HOST_IA32_SYSENTER_ESP, HOST_IA32_SYSENTER_EIP, HOST_RSP, HOST_RIP,
];

// Encoding components (SDM Table 25-21).
export const VMCS_FIELD_ACCESS_HIGH = 1;
export const VMCS_FIELD_INDEX_SHIFT = 1;
export const VMCS_FIELD_TYPE_SHIFT = 10;
export const VMCS_FIELD_WIDTH_SHIFT = 13;
export const VMCS_FIELD_TYPE_CONTROL = 0;
export const VMCS_FIELD_TYPE_EXIT_INFO = 1;
export const VMCS_FIELD_TYPE_GUEST = 2;
export const VMCS_FIELD_TYPE_HOST = 3;
export const VMCS_FIELD_WIDTH_U16 = 0;
export const VMCS_FIELD_WIDTH_U64 = 1;
export const VMCS_FIELD_WIDTH_U32 = 2;
export const VMCS_FIELD_WIDTH_NATURAL_WIDTH = 3;

export function vmcsFieldWidth(field: number): number {
  return (field >>> VMCS_FIELD_WIDTH_SHIFT) & 3;
}

export function vmcsFieldType(field: number): number {
  return (field >>> VMCS_FIELD_TYPE_SHIFT) & 3;
}

/** Highest index of any supported field (IA32_VMX_VMCS_ENUM bits 9:1, SDM A.9). */
export const VMCS_MAX_FIELD_INDEX = VMCS_SUPPORTED_FIELDS.reduce((m, f) => Math.max(m, (f >>> 1) & 0x1ff), 0);

export const VMCS_NR_SLOTS = VMCS_SUPPORTED_FIELDS.length;
const FIELD_SLOT = new Int16Array(0x8000).fill(-1);
VMCS_SUPPORTED_FIELDS.forEach((f, i) => { FIELD_SLOT[f] = i; });

/** Storage slot of a full-access field encoding, or -1 if this processor does not implement it. */
export function vmcsSlot(field: number): number {
  return field >= 0 && field < 0x8000 ? FIELD_SLOT[field] : -1;
}

// ---------------------------------------------------------------------------------------------
// VMCS region and its on-chip cache
// ---------------------------------------------------------------------------------------------

/** VMCS revision identifier reported in IA32_VMX_BASIC[30:0] and required in every region. */
export const VMCS_REVISION_ID = 0x7ec5;
export const VMCS_SIZE = PAGE_SIZE;
export const VMCS_SHADOW_INDICATOR = 0x80000000;
const OFF_LAUNCH_STATE = 8;
const OFF_DATA = 16;
export const VMCS_LAUNCH_STATE_CLEAR = 0;
export const VMCS_LAUNCH_STATE_LAUNCHED = 1;

/**
 * The processor's copy of the current VMCS (SDM 25.11.1: the VMCS data of the current VMCS may
 * be held on the processor; memory is authoritative only after VMCLEAR).
 * `data` holds each slot as two int32 (low, high).
 */
export class VmcsCache {
  /** hpa of the current VMCS, or -1 when there is none (VMPTRST then stores all ones). */
  hpa = -1;
  launched = false;
  readonly data = new Int32Array(VMCS_NR_SLOTS * 2);

  /** VMPTRLD: make the region at `hpa` current and bring its data on chip. */
  load(physmem: PhysMem, hpa: number): void {
    const pfn = Math.floor(hpa / PAGE_SIZE);
    const m = physmem.chunk32(pfn);
    const base = physmem.frameOffset(pfn) >>> 2;
    this.launched = m[base + (OFF_LAUNCH_STATE >>> 2)] === VMCS_LAUNCH_STATE_LAUNCHED;
    const d = this.data;
    const off = base + (OFF_DATA >>> 2);
    for (let i = 0; i < d.length; i++) d[i] = m[off + i];
    this.hpa = hpa;
  }

  /** Write the on-chip data (and launch state) back to the region. */
  store(physmem: PhysMem): void {
    if (this.hpa < 0) return;
    const pfn = Math.floor(this.hpa / PAGE_SIZE);
    const m = physmem.chunk32(pfn);
    const base = physmem.frameOffset(pfn) >>> 2;
    m[base + (OFF_LAUNCH_STATE >>> 2)] = this.launched ? VMCS_LAUNCH_STATE_LAUNCHED : VMCS_LAUNCH_STATE_CLEAR;
    const d = this.data;
    const off = base + (OFF_DATA >>> 2);
    for (let i = 0; i < d.length; i++) m[off + i] = d[i];
  }

  // Internal accessors by field encoding (no width checks: callers are the processor itself).
  /** Low 32 bits of a field (16/32-bit fields: the whole value, unsigned). */
  r32(field: number): number {
    return this.data[FIELD_SLOT[field] << 1] >>> 0;
  }
  /** High 32 bits of a 64-bit/natural field (unsigned). */
  rHi(field: number): number {
    return this.data[(FIELD_SLOT[field] << 1) + 1] >>> 0;
  }
  /**
   * A 64-bit/natural field as a number: exact for physical addresses and canonical
   * (sign-extended) addresses; the high half is taken as signed.
   */
  rNum(field: number): number {
    const s = FIELD_SLOT[field] << 1;
    return this.data[s + 1] * 4294967296 + (this.data[s] >>> 0);
  }
  w32(field: number, v: number): void {
    const s = FIELD_SLOT[field] << 1;
    this.data[s] = v;
    this.data[s + 1] = 0;
  }
  w64(field: number, lo: number, hi: number): void {
    const s = FIELD_SLOT[field] << 1;
    this.data[s] = lo;
    this.data[s + 1] = hi;
  }
  /** Store a number (canonical address or physical address) in a 64-bit/natural field. */
  wNum(field: number, v: number): void {
    const hi = Math.floor(v / 4294967296);
    const s = FIELD_SLOT[field] << 1;
    this.data[s] = v - hi * 4294967296;
    this.data[s + 1] = hi;
  }
}

/** True if `hpa` is a valid VMXON/VMCS pointer for a machine with `physmem` (4 KiB aligned, in DRAM). */
export function validRegionPointer(physmem: PhysMem, hpa: number): boolean {
  return Number.isInteger(hpa) && hpa >= 0 && (hpa & PAGE_MASK) === 0 && hpa / PAGE_SIZE < physmem.nrFrames &&
    physmem.chunks32[Math.floor(hpa / PAGE_SIZE) >>> FRAMES_PER_CHUNK_SHIFT] !== undefined;
}

/** Byte at `hpa`, or 0xff where no DRAM is populated (reads of nonexistent memory return all ones). */
export function physByteOrOnes(physmem: PhysMem, hpa: number): number {
  const pfn = Math.floor(hpa / PAGE_SIZE);
  if (pfn < 0 || pfn >= physmem.nrFrames || physmem.chunks8[pfn >>> FRAMES_PER_CHUNK_SHIFT] === undefined) return 0xff;
  return physmem.read8(hpa);
}

/** True if the `bytes` at `hpa` lie in populated DRAM. */
export function physRangePopulated(physmem: PhysMem, hpa: number, bytes: number): boolean {
  for (let pfn = Math.floor(hpa / PAGE_SIZE), last = Math.floor((hpa + bytes - 1) / PAGE_SIZE); pfn <= last; pfn++) {
    if (pfn < 0 || pfn >= physmem.nrFrames || physmem.chunks8[pfn >>> FRAMES_PER_CHUNK_SHIFT] === undefined) return false;
  }
  return true;
}

/** Set the launch state stored in a (non-current) VMCS region (VMCLEAR). */
export function setRegionLaunchState(physmem: PhysMem, hpa: number, launched: boolean): void {
  physmem.write32(hpa + OFF_LAUNCH_STATE, launched ? VMCS_LAUNCH_STATE_LAUNCHED : VMCS_LAUNCH_STATE_CLEAR);
}

/** Read the revision identifier dword of a region (bits 30:0 revision, bit 31 shadow indicator). */
export function regionRevision(physmem: PhysMem, hpa: number): number {
  return physmem.read32(hpa);
}

// ---------------------------------------------------------------------------------------------
// Control bits (SDM 25.6; Linux arch/x86/include/asm/vmx.h)
// ---------------------------------------------------------------------------------------------

// Pin-based VM-execution controls (SDM 25.6.1)
export const PIN_BASED_EXT_INTR_MASK = 0x00000001;
export const PIN_BASED_NMI_EXITING = 0x00000008;
export const PIN_BASED_VIRTUAL_NMIS = 0x00000020;
export const PIN_BASED_VMX_PREEMPTION_TIMER = 0x00000040;
export const PIN_BASED_POSTED_INTR = 0x00000080;
export const PIN_BASED_ALWAYSON_WITHOUT_TRUE_MSR = 0x00000016;

// Primary processor-based VM-execution controls (SDM 25.6.2)
export const CPU_BASED_INTR_WINDOW_EXITING = 0x00000004;
export const CPU_BASED_USE_TSC_OFFSETTING = 0x00000008;
export const CPU_BASED_HLT_EXITING = 0x00000080;
export const CPU_BASED_INVLPG_EXITING = 0x00000200;
export const CPU_BASED_MWAIT_EXITING = 0x00000400;
export const CPU_BASED_RDPMC_EXITING = 0x00000800;
export const CPU_BASED_RDTSC_EXITING = 0x00001000;
export const CPU_BASED_CR3_LOAD_EXITING = 0x00008000;
export const CPU_BASED_CR3_STORE_EXITING = 0x00010000;
export const CPU_BASED_ACTIVATE_TERTIARY_CONTROLS = 0x00020000;
export const CPU_BASED_CR8_LOAD_EXITING = 0x00080000;
export const CPU_BASED_CR8_STORE_EXITING = 0x00100000;
export const CPU_BASED_TPR_SHADOW = 0x00200000;
export const CPU_BASED_NMI_WINDOW_EXITING = 0x00400000;
export const CPU_BASED_MOV_DR_EXITING = 0x00800000;
export const CPU_BASED_UNCOND_IO_EXITING = 0x01000000;
export const CPU_BASED_USE_IO_BITMAPS = 0x02000000;
export const CPU_BASED_MONITOR_TRAP_FLAG = 0x08000000;
export const CPU_BASED_USE_MSR_BITMAPS = 0x10000000;
export const CPU_BASED_MONITOR_EXITING = 0x20000000;
export const CPU_BASED_PAUSE_EXITING = 0x40000000;
export const CPU_BASED_ACTIVATE_SECONDARY_CONTROLS = 0x80000000;
export const CPU_BASED_ALWAYSON_WITHOUT_TRUE_MSR = 0x0401e172;

// Secondary processor-based VM-execution controls (SDM 25.6.2, Table 25-7)
export const SECONDARY_EXEC_VIRTUALIZE_APIC_ACCESSES = 0x00000001;
export const SECONDARY_EXEC_ENABLE_EPT = 0x00000002;
export const SECONDARY_EXEC_DESC = 0x00000004;
export const SECONDARY_EXEC_ENABLE_RDTSCP = 0x00000008;
export const SECONDARY_EXEC_VIRTUALIZE_X2APIC_MODE = 0x00000010;
export const SECONDARY_EXEC_ENABLE_VPID = 0x00000020;
export const SECONDARY_EXEC_WBINVD_EXITING = 0x00000040;
export const SECONDARY_EXEC_UNRESTRICTED_GUEST = 0x00000080;
export const SECONDARY_EXEC_APIC_REGISTER_VIRT = 0x00000100;
export const SECONDARY_EXEC_VIRTUAL_INTR_DELIVERY = 0x00000200;
export const SECONDARY_EXEC_PAUSE_LOOP_EXITING = 0x00000400;
export const SECONDARY_EXEC_RDRAND_EXITING = 0x00000800;
export const SECONDARY_EXEC_ENABLE_INVPCID = 0x00001000;
export const SECONDARY_EXEC_ENABLE_VMFUNC = 0x00002000;
export const SECONDARY_EXEC_SHADOW_VMCS = 0x00004000;
export const SECONDARY_EXEC_ENCLS_EXITING = 0x00008000;
export const SECONDARY_EXEC_RDSEED_EXITING = 0x00010000;
export const SECONDARY_EXEC_ENABLE_PML = 0x00020000;
export const SECONDARY_EXEC_EPT_VIOLATION_VE = 0x00040000;
export const SECONDARY_EXEC_PT_CONCEAL_VMX = 0x00080000;
export const SECONDARY_EXEC_ENABLE_XSAVES = 0x00100000;
export const SECONDARY_EXEC_MODE_BASED_EPT_EXEC = 0x00400000;
export const SECONDARY_EXEC_PT_USE_GPA = 0x01000000;
export const SECONDARY_EXEC_TSC_SCALING = 0x02000000;
export const SECONDARY_EXEC_ENABLE_USR_WAIT_PAUSE = 0x04000000;
export const SECONDARY_EXEC_BUS_LOCK_DETECTION = 0x40000000;
export const SECONDARY_EXEC_NOTIFY_VM_EXITING = 0x80000000;

// VM-exit controls (SDM 25.7.1)
export const VM_EXIT_SAVE_DEBUG_CONTROLS = 0x00000004;
export const VM_EXIT_HOST_ADDR_SPACE_SIZE = 0x00000200;
export const VM_EXIT_LOAD_IA32_PERF_GLOBAL_CTRL = 0x00001000;
export const VM_EXIT_ACK_INTR_ON_EXIT = 0x00008000;
export const VM_EXIT_SAVE_IA32_PAT = 0x00040000;
export const VM_EXIT_LOAD_IA32_PAT = 0x00080000;
export const VM_EXIT_SAVE_IA32_EFER = 0x00100000;
export const VM_EXIT_LOAD_IA32_EFER = 0x00200000;
export const VM_EXIT_SAVE_VMX_PREEMPTION_TIMER = 0x00400000;
export const VM_EXIT_CLEAR_BNDCFGS = 0x00800000;
export const VM_EXIT_PT_CONCEAL_PIP = 0x01000000;
export const VM_EXIT_CLEAR_IA32_RTIT_CTL = 0x02000000;
export const VM_EXIT_LOAD_CET_STATE = 0x10000000;
export const VM_EXIT_ALWAYSON_WITHOUT_TRUE_MSR = 0x00036dff;

// VM-entry controls (SDM 25.8.1)
export const VM_ENTRY_LOAD_DEBUG_CONTROLS = 0x00000004;
export const VM_ENTRY_IA32E_MODE = 0x00000200;
export const VM_ENTRY_SMM = 0x00000400;
export const VM_ENTRY_DEACT_DUAL_MONITOR = 0x00000800;
export const VM_ENTRY_LOAD_IA32_PERF_GLOBAL_CTRL = 0x00002000;
export const VM_ENTRY_LOAD_IA32_PAT = 0x00004000;
export const VM_ENTRY_LOAD_IA32_EFER = 0x00008000;
export const VM_ENTRY_LOAD_BNDCFGS = 0x00010000;
export const VM_ENTRY_PT_CONCEAL_PIP = 0x00020000;
export const VM_ENTRY_LOAD_IA32_RTIT_CTL = 0x00040000;
export const VM_ENTRY_LOAD_CET_STATE = 0x00100000;
export const VM_ENTRY_ALWAYSON_WITHOUT_TRUE_MSR = 0x000011ff;

// ---------------------------------------------------------------------------------------------
// Event information formats (SDM 25.8.3 Table 25-17, 25.9.2 Tables 25-19/25-20)
// ---------------------------------------------------------------------------------------------
export const INTR_INFO_VECTOR_MASK = 0xff;
export const INTR_INFO_INTR_TYPE_MASK = 0x700;
export const INTR_INFO_INTR_TYPE_SHIFT = 8;
export const INTR_INFO_DELIVER_CODE_MASK = 0x800;
export const INTR_INFO_UNBLOCK_NMI = 0x1000;
export const INTR_INFO_VALID_MASK = 0x80000000;
export const INTR_INFO_RESVD_BITS_MASK = 0x7ffff000;

export const VECTORING_INFO_VECTOR_MASK = INTR_INFO_VECTOR_MASK;
export const VECTORING_INFO_TYPE_MASK = INTR_INFO_INTR_TYPE_MASK;
export const VECTORING_INFO_DELIVER_CODE_MASK = INTR_INFO_DELIVER_CODE_MASK;
export const VECTORING_INFO_VALID_MASK = INTR_INFO_VALID_MASK;

export const INTR_TYPE_EXT_INTR = 0 << 8;
export const INTR_TYPE_RESERVED = 1 << 8;
export const INTR_TYPE_NMI_INTR = 2 << 8;
export const INTR_TYPE_HARD_EXCEPTION = 3 << 8;
export const INTR_TYPE_SOFT_INTR = 4 << 8;
export const INTR_TYPE_PRIV_SW_EXCEPTION = 5 << 8;
export const INTR_TYPE_SOFT_EXCEPTION = 6 << 8;
export const INTR_TYPE_OTHER_EVENT = 7 << 8;

// Guest interruptibility state (SDM 25.4.2 Table 25-3)
export const GUEST_INTR_STATE_STI = 0x00000001;
export const GUEST_INTR_STATE_MOV_SS = 0x00000002;
export const GUEST_INTR_STATE_SMI = 0x00000004;
export const GUEST_INTR_STATE_NMI = 0x00000008;
export const GUEST_INTR_STATE_ENCLAVE_INTR = 0x00000010;

// Guest activity state (SDM 25.4.2)
export const GUEST_ACTIVITY_ACTIVE = 0;
export const GUEST_ACTIVITY_HLT = 1;
export const GUEST_ACTIVITY_SHUTDOWN = 2;
export const GUEST_ACTIVITY_WAIT_SIPI = 3;

// Pending debug exceptions (SDM 25.4.2)
export const DEBUG_PENDING_B0_3 = 0xf;
export const DEBUG_PENDING_ENABLED_BP = 1 << 12;
export const DEBUG_PENDING_BS = 1 << 14;
export const DEBUG_PENDING_RTM = 1 << 16;

// Exit reason field (SDM 25.9.1 Table 25-18)
export const VMX_EXIT_REASON_BASIC_MASK = 0xffff;
export const VMX_EXIT_REASONS_ENCLAVE_MODE = 1 << 27;
export const VMX_EXIT_REASONS_PENDING_MTF = 1 << 28;
export const VMX_EXIT_REASONS_FROM_ROOT = 1 << 29;

// Exit qualification for VM-entry failures (SDM 26.8; Linux ENTRY_FAIL_*)
export const ENTRY_FAIL_DEFAULT = 0;
export const ENTRY_FAIL_PDPTE = 2;
export const ENTRY_FAIL_NMI = 3;
export const ENTRY_FAIL_VMCS_LINK_PTR = 4;

// Exit qualification, control-register access (SDM Table 28-3)
export const CR_ACCESS_CR_MASK = 0xf;
export const CR_ACCESS_TYPE_SHIFT = 4;
export const CR_ACCESS_TYPE_MOV_TO_CR = 0;
export const CR_ACCESS_TYPE_MOV_FROM_CR = 1;
export const CR_ACCESS_TYPE_CLTS = 2;
export const CR_ACCESS_TYPE_LMSW = 3;
export const CR_ACCESS_LMSW_MEM = 1 << 6;
export const CR_ACCESS_GPR_SHIFT = 8;
export const CR_ACCESS_LMSW_SRC_SHIFT = 16;

// Exit qualification, MOV DR (SDM Table 28-4)
export const DEBUG_REG_ACCESS_NUM = 0x7;
export const DEBUG_REG_ACCESS_TYPE = 0x10;
export const DEBUG_REG_ACCESS_REG_SHIFT = 8;
export const TYPE_MOV_TO_DR = 0 << 4;
export const TYPE_MOV_FROM_DR = 1 << 4;

// Exit qualification, I/O instructions (SDM Table 28-5)
export const IO_QUAL_SIZE_MASK = 0x7;
export const IO_QUAL_IN = 1 << 3;
export const IO_QUAL_STRING = 1 << 4;
export const IO_QUAL_REP = 1 << 5;
export const IO_QUAL_IMM = 1 << 6;
export const IO_QUAL_PORT_SHIFT = 16;

// Exit qualification, task switch (SDM Table 28-2)
export const TASK_SWITCH_CALL = 0;
export const TASK_SWITCH_IRET = 1;
export const TASK_SWITCH_JMP = 2;
export const TASK_SWITCH_GATE = 3;
export const TASK_SWITCH_SOURCE_SHIFT = 30;

// Exit qualification, EPT violation (SDM Table 28-7; Linux EPT_VIOLATION_*)
export const EPT_VIOLATION_ACC_READ = 1 << 0;
export const EPT_VIOLATION_ACC_WRITE = 1 << 1;
export const EPT_VIOLATION_ACC_INSTR = 1 << 2;
export const EPT_VIOLATION_PROT_READ = 1 << 3;
export const EPT_VIOLATION_PROT_WRITE = 1 << 4;
export const EPT_VIOLATION_PROT_EXEC = 1 << 5;
export const EPT_VIOLATION_PROT_USER_EXEC = 1 << 6;
export const EPT_VIOLATION_RWX_SHIFT = 3;
export const EPT_VIOLATION_GVA_IS_VALID = 1 << 7;
export const EPT_VIOLATION_GVA_TRANSLATED = 1 << 8;
export const EPT_VIOLATION_NMI_UNBLOCKING = 1 << 12;

// ---------------------------------------------------------------------------------------------
// VM-instruction error numbers (SDM 31.4 Table 31-1; Linux enum vmx_instruction_error_number)
// ---------------------------------------------------------------------------------------------
export const VMXERR_VMCALL_IN_VMX_ROOT_OPERATION = 1;
export const VMXERR_VMCLEAR_INVALID_ADDRESS = 2;
export const VMXERR_VMCLEAR_VMXON_POINTER = 3;
export const VMXERR_VMLAUNCH_NONCLEAR_VMCS = 4;
export const VMXERR_VMRESUME_NONLAUNCHED_VMCS = 5;
export const VMXERR_VMRESUME_AFTER_VMXOFF = 6;
export const VMXERR_ENTRY_INVALID_CONTROL_FIELD = 7;
export const VMXERR_ENTRY_INVALID_HOST_STATE_FIELD = 8;
export const VMXERR_VMPTRLD_INVALID_ADDRESS = 9;
export const VMXERR_VMPTRLD_VMXON_POINTER = 10;
export const VMXERR_VMPTRLD_INCORRECT_VMCS_REVISION_ID = 11;
export const VMXERR_UNSUPPORTED_VMCS_COMPONENT = 12;
export const VMXERR_VMWRITE_READ_ONLY_VMCS_COMPONENT = 13;
export const VMXERR_VMXON_IN_VMX_ROOT_OPERATION = 15;
export const VMXERR_ENTRY_INVALID_EXECUTIVE_VMCS_POINTER = 16;
export const VMXERR_ENTRY_NONLAUNCHED_EXECUTIVE_VMCS = 17;
export const VMXERR_ENTRY_EXECUTIVE_VMCS_POINTER_NOT_VMXON_POINTER = 18;
export const VMXERR_VMCALL_NONCLEAR_VMCS = 19;
export const VMXERR_VMCALL_INVALID_VM_EXIT_CONTROL_FIELDS = 20;
export const VMXERR_VMCALL_INCORRECT_MSEG_REVISION_ID = 22;
export const VMXERR_VMXOFF_UNDER_DUAL_MONITOR_TREATMENT_OF_SMIS_AND_SMM = 23;
export const VMXERR_VMCALL_INVALID_SMM_MONITOR_FEATURES = 24;
export const VMXERR_ENTRY_INVALID_VM_EXECUTION_CONTROL_FIELDS_IN_EXECUTIVE_VMCS = 25;
export const VMXERR_ENTRY_EVENTS_BLOCKED_BY_MOV_SS = 26;
export const VMXERR_INVALID_OPERAND_TO_INVEPT_INVVPID = 28;

// ---------------------------------------------------------------------------------------------
// EPT (SDM 29.3.2, 29.3.3; Linux VMX_EPT_* / VMX_EPTP_*)
// ---------------------------------------------------------------------------------------------
export const VMX_EPTP_MT_UC = 0;
export const VMX_EPTP_MT_WB = 6;
export const VMX_EPTP_MT_MASK = 0x7;
export const VMX_EPTP_PWL_4 = 3 << 3;
export const VMX_EPTP_PWL_MASK = 7 << 3;
export const VMX_EPTP_AD_ENABLE_BIT = 1 << 6;
export const VMX_EPT_READABLE_MASK = 0x1;
export const VMX_EPT_WRITABLE_MASK = 0x2;
export const VMX_EPT_EXECUTABLE_MASK = 0x4;
export const VMX_EPT_RWX_MASK = 0x7;
export const VMX_EPT_MT_EPTE_SHIFT = 3;
export const VMX_EPT_IPAT_BIT = 1 << 6;
export const VMX_EPT_LARGE_PAGE = 1 << 7;
export const VMX_EPT_ACCESS_BIT = 1 << 8;
export const VMX_EPT_DIRTY_BIT = 1 << 9;
export const VMX_EPT_USER_EXECUTABLE_MASK = 1 << 10;

// INVEPT / INVVPID types (SDM 31, Linux VMX_EPT_EXTENT_* / VMX_VPID_EXTENT_*)
export const VMX_EPT_EXTENT_CONTEXT = 1;
export const VMX_EPT_EXTENT_GLOBAL = 2;
export const VMX_VPID_EXTENT_INDIVIDUAL_ADDR = 0;
export const VMX_VPID_EXTENT_SINGLE_CONTEXT = 1;
export const VMX_VPID_EXTENT_ALL_CONTEXT = 2;
export const VMX_VPID_EXTENT_SINGLE_NON_GLOBAL = 3;
