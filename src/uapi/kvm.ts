/**
 * include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h: request numbers built the way
 * the header builds them, exit reasons, capabilities, flags. Struct sizes used in the request
 * numbers are the x86-64 sizes (pinned by test/uapi/kvm.test.ts).
 */
import { IO, IOR, IOW, IOWR } from "./ioctl.js";

export const KVMIO = 0xae;
export const KVM_API_VERSION = 12;

// Struct sizes (x86-64) that appear in request numbers.
const SZ_kvm_msr_list = 4;
const SZ_kvm_cpuid2 = 8;
const SZ_kvm_dirty_log = 16;
const SZ_kvm_userspace_memory_region = 32;
const SZ_kvm_userspace_memory_region2 = 160;
const SZ_kvm_irq_level = 8;
const SZ_kvm_irqchip = 520;
const SZ_kvm_coalesced_mmio_zone = 16;
const SZ_kvm_irq_routing = 8;
const SZ_kvm_irqfd = 32;
const SZ_kvm_pit_config = 64;
const SZ_kvm_ioeventfd = 64;
const SZ_kvm_clock_data = 48;
const SZ_kvm_pit_state2 = 112;
const SZ_kvm_msi = 32;
const SZ_kvm_enable_cap = 104;
const SZ_kvm_clear_dirty_log = 24;
const SZ_kvm_create_device = 12;
const SZ_kvm_device_attr = 24;
const SZ_kvm_memory_attributes = 32;
const SZ_kvm_create_guest_memfd = 64;
const SZ_kvm_regs = 144;
const SZ_kvm_sregs = 312;
const SZ_kvm_sregs2 = 320;
const SZ_kvm_translation = 24;
const SZ_kvm_interrupt = 4;
const SZ_kvm_msrs = 8;
const SZ_kvm_signal_mask = 4;
const SZ_kvm_fpu = 416;
const SZ_kvm_lapic_state = 1024;
const SZ_kvm_mp_state = 4;
const SZ_kvm_guest_debug = 72;
const SZ_kvm_vcpu_events = 64;
const SZ_kvm_debugregs = 128;
const SZ_kvm_xsave = 4096;
const SZ_kvm_xcrs = 392;
const SZ_kvm_one_reg = 16;
const SZ_kvm_reg_list = 8;
const SZ_u64 = 8;

// System ioctls
export const KVM_GET_API_VERSION = IO(KVMIO, 0x00);
export const KVM_CREATE_VM = IO(KVMIO, 0x01);
export const KVM_GET_MSR_INDEX_LIST = IOWR(KVMIO, 0x02, SZ_kvm_msr_list);
export const KVM_CHECK_EXTENSION = IO(KVMIO, 0x03);
export const KVM_GET_VCPU_MMAP_SIZE = IO(KVMIO, 0x04);
export const KVM_GET_SUPPORTED_CPUID = IOWR(KVMIO, 0x05, SZ_kvm_cpuid2);
export const KVM_GET_EMULATED_CPUID = IOWR(KVMIO, 0x09, SZ_kvm_cpuid2);
export const KVM_GET_MSR_FEATURE_INDEX_LIST = IOWR(KVMIO, 0x0a, SZ_kvm_msr_list);

// VM ioctls
export const KVM_CREATE_VCPU = IO(KVMIO, 0x41);
export const KVM_GET_DIRTY_LOG = IOW(KVMIO, 0x42, SZ_kvm_dirty_log);
export const KVM_SET_USER_MEMORY_REGION = IOW(KVMIO, 0x46, SZ_kvm_userspace_memory_region);
export const KVM_SET_TSS_ADDR = IO(KVMIO, 0x47);
export const KVM_SET_IDENTITY_MAP_ADDR = IOW(KVMIO, 0x48, SZ_u64);
export const KVM_SET_USER_MEMORY_REGION2 = IOW(KVMIO, 0x49, SZ_kvm_userspace_memory_region2);
export const KVM_CREATE_IRQCHIP = IO(KVMIO, 0x60);
export const KVM_IRQ_LINE = IOW(KVMIO, 0x61, SZ_kvm_irq_level);
export const KVM_GET_IRQCHIP = IOWR(KVMIO, 0x62, SZ_kvm_irqchip);
export const KVM_SET_IRQCHIP = IOR(KVMIO, 0x63, SZ_kvm_irqchip);
export const KVM_IRQ_LINE_STATUS = IOWR(KVMIO, 0x67, SZ_kvm_irq_level);
export const KVM_REGISTER_COALESCED_MMIO = IOW(KVMIO, 0x67, SZ_kvm_coalesced_mmio_zone);
export const KVM_UNREGISTER_COALESCED_MMIO = IOW(KVMIO, 0x68, SZ_kvm_coalesced_mmio_zone);
export const KVM_SET_GSI_ROUTING = IOW(KVMIO, 0x6a, SZ_kvm_irq_routing);
export const KVM_IRQFD = IOW(KVMIO, 0x76, SZ_kvm_irqfd);
export const KVM_CREATE_PIT2 = IOW(KVMIO, 0x77, SZ_kvm_pit_config);
export const KVM_IOEVENTFD = IOW(KVMIO, 0x79, SZ_kvm_ioeventfd);
export const KVM_SET_CLOCK = IOW(KVMIO, 0x7b, SZ_kvm_clock_data);
export const KVM_GET_CLOCK = IOR(KVMIO, 0x7c, SZ_kvm_clock_data);
export const KVM_GET_PIT2 = IOR(KVMIO, 0x9f, SZ_kvm_pit_state2);
export const KVM_SET_PIT2 = IOW(KVMIO, 0xa0, SZ_kvm_pit_state2);
export const KVM_SIGNAL_MSI = IOW(KVMIO, 0xa5, SZ_kvm_msi);
export const KVM_ENABLE_CAP = IOW(KVMIO, 0xa3, SZ_kvm_enable_cap);
export const KVM_CLEAR_DIRTY_LOG = IOWR(KVMIO, 0xc0, SZ_kvm_clear_dirty_log);
/** struct kvm_msr_filter: u32 flags, then 16 x { u32 flags, nmsrs, base; u8 *bitmap } (24 bytes each, 8-aligned). */
export const KVM_X86_SET_MSR_FILTER = IOW(KVMIO, 0xc6, 8 + 16 * 24);
export const KVM_RESET_DIRTY_RINGS = IO(KVMIO, 0xc7);
export const KVM_GET_STATS_FD = IO(KVMIO, 0xce);
export const KVM_CREATE_DEVICE = IOWR(KVMIO, 0xe0, SZ_kvm_create_device);
export const KVM_SET_DEVICE_ATTR = IOW(KVMIO, 0xe1, SZ_kvm_device_attr);
export const KVM_GET_DEVICE_ATTR = IOW(KVMIO, 0xe2, SZ_kvm_device_attr);
export const KVM_HAS_DEVICE_ATTR = IOW(KVMIO, 0xe3, SZ_kvm_device_attr);
export const KVM_SET_MEMORY_ATTRIBUTES = IOW(KVMIO, 0xd2, SZ_kvm_memory_attributes);
export const KVM_CREATE_GUEST_MEMFD = IOWR(KVMIO, 0xd4, SZ_kvm_create_guest_memfd);

// vCPU ioctls
export const KVM_RUN = IO(KVMIO, 0x80);
export const KVM_GET_REGS = IOR(KVMIO, 0x81, SZ_kvm_regs);
export const KVM_SET_REGS = IOW(KVMIO, 0x82, SZ_kvm_regs);
export const KVM_GET_SREGS = IOR(KVMIO, 0x83, SZ_kvm_sregs);
export const KVM_SET_SREGS = IOW(KVMIO, 0x84, SZ_kvm_sregs);
export const KVM_TRANSLATE = IOWR(KVMIO, 0x85, SZ_kvm_translation);
export const KVM_INTERRUPT = IOW(KVMIO, 0x86, SZ_kvm_interrupt);
export const KVM_GET_MSRS = IOWR(KVMIO, 0x88, SZ_kvm_msrs);
export const KVM_SET_MSRS = IOW(KVMIO, 0x89, SZ_kvm_msrs);
export const KVM_SET_SIGNAL_MASK = IOW(KVMIO, 0x8b, SZ_kvm_signal_mask);
export const KVM_GET_FPU = IOR(KVMIO, 0x8c, SZ_kvm_fpu);
export const KVM_SET_FPU = IOW(KVMIO, 0x8d, SZ_kvm_fpu);
export const KVM_GET_LAPIC = IOR(KVMIO, 0x8e, SZ_kvm_lapic_state);
export const KVM_SET_LAPIC = IOW(KVMIO, 0x8f, SZ_kvm_lapic_state);
export const KVM_SET_CPUID2 = IOW(KVMIO, 0x90, SZ_kvm_cpuid2);
export const KVM_GET_CPUID2 = IOWR(KVMIO, 0x91, SZ_kvm_cpuid2);
export const KVM_GET_MP_STATE = IOR(KVMIO, 0x98, SZ_kvm_mp_state);
export const KVM_SET_MP_STATE = IOW(KVMIO, 0x99, SZ_kvm_mp_state);
export const KVM_NMI = IO(KVMIO, 0x9a);
export const KVM_SET_GUEST_DEBUG = IOW(KVMIO, 0x9b, SZ_kvm_guest_debug);
export const KVM_GET_VCPU_EVENTS = IOR(KVMIO, 0x9f, SZ_kvm_vcpu_events);
export const KVM_SET_VCPU_EVENTS = IOW(KVMIO, 0xa0, SZ_kvm_vcpu_events);
export const KVM_GET_DEBUGREGS = IOR(KVMIO, 0xa1, SZ_kvm_debugregs);
export const KVM_SET_DEBUGREGS = IOW(KVMIO, 0xa2, SZ_kvm_debugregs);
export const KVM_GET_XSAVE = IOR(KVMIO, 0xa4, SZ_kvm_xsave);
export const KVM_SET_XSAVE = IOW(KVMIO, 0xa5, SZ_kvm_xsave);
export const KVM_GET_XCRS = IOR(KVMIO, 0xa6, SZ_kvm_xcrs);
export const KVM_SET_XCRS = IOW(KVMIO, 0xa7, SZ_kvm_xcrs);
export const KVM_GET_ONE_REG = IOW(KVMIO, 0xab, SZ_kvm_one_reg);
export const KVM_SET_ONE_REG = IOW(KVMIO, 0xac, SZ_kvm_one_reg);
export const KVM_GET_REG_LIST = IOWR(KVMIO, 0xb0, SZ_kvm_reg_list);
export const KVM_GET_SREGS2 = IOR(KVMIO, 0xcc, SZ_kvm_sregs2);
export const KVM_SET_SREGS2 = IOW(KVMIO, 0xcd, SZ_kvm_sregs2);
export const KVM_GET_XSAVE2 = IOR(KVMIO, 0xcf, SZ_kvm_xsave);

// KVM_EXIT_*
export const KVM_EXIT_UNKNOWN = 0;
export const KVM_EXIT_EXCEPTION = 1;
export const KVM_EXIT_IO = 2;
export const KVM_EXIT_HYPERCALL = 3;
export const KVM_EXIT_DEBUG = 4;
export const KVM_EXIT_HLT = 5;
export const KVM_EXIT_MMIO = 6;
export const KVM_EXIT_IRQ_WINDOW_OPEN = 7;
export const KVM_EXIT_SHUTDOWN = 8;
export const KVM_EXIT_FAIL_ENTRY = 9;
export const KVM_EXIT_INTR = 10;
export const KVM_EXIT_SET_TPR = 11;
export const KVM_EXIT_TPR_ACCESS = 12;
export const KVM_EXIT_NMI = 16;
export const KVM_EXIT_INTERNAL_ERROR = 17;
export const KVM_EXIT_SYSTEM_EVENT = 24;
export const KVM_EXIT_IOAPIC_EOI = 26;
export const KVM_EXIT_ARM_NISV = 28;
export const KVM_EXIT_X86_RDMSR = 29;
export const KVM_EXIT_X86_WRMSR = 30;
export const KVM_EXIT_DIRTY_RING_FULL = 31;
export const KVM_EXIT_X86_BUS_LOCK = 33;
export const KVM_EXIT_NOTIFY = 37;
export const KVM_EXIT_MEMORY_FAULT = 39;

/** Names as the kvm_userspace_exit tracepoint prints them (kvm_trace_exit_reason). */
export const KVM_EXIT_NAMES: Record<number, string> = {
  0: "UNKNOWN", 1: "EXCEPTION", 2: "IO", 3: "HYPERCALL", 4: "DEBUG", 5: "HLT", 6: "MMIO",
  7: "IRQ_WINDOW_OPEN", 8: "SHUTDOWN", 9: "FAIL_ENTRY", 10: "INTR", 11: "SET_TPR",
  12: "TPR_ACCESS", 16: "NMI", 17: "INTERNAL_ERROR", 24: "SYSTEM_EVENT", 26: "IOAPIC_EOI",
  28: "ARM_NISV", 29: "X86_RDMSR", 30: "X86_WRMSR", 31: "DIRTY_RING_FULL", 33: "X86_BUS_LOCK",
  37: "NOTIFY", 39: "MEMORY_FAULT",
};

// KVM_INTERNAL_ERROR_* suberrors
export const KVM_INTERNAL_ERROR_EMULATION = 1;
export const KVM_INTERNAL_ERROR_SIMUL_EX = 2;
export const KVM_INTERNAL_ERROR_DELIVERY_EV = 3;
export const KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON = 4;

// KVM_SYSTEM_EVENT_*
export const KVM_SYSTEM_EVENT_SHUTDOWN = 1;
export const KVM_SYSTEM_EVENT_RESET = 2;
export const KVM_SYSTEM_EVENT_CRASH = 3;
export const KVM_SYSTEM_EVENT_WAKEUP = 4;
export const KVM_SYSTEM_EVENT_SUSPEND = 5;

export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;

// Memory region flags
export const KVM_MEM_LOG_DIRTY_PAGES = 1 << 0;
export const KVM_MEM_READONLY = 1 << 1;
export const KVM_MEM_GUEST_MEMFD = 1 << 2;

// KVM_CAP_*
export const KVM_CAP_IRQCHIP = 0;
export const KVM_CAP_HLT = 1;
export const KVM_CAP_MMU_SHADOW_CACHE_CONTROL = 2;
export const KVM_CAP_USER_MEMORY = 3;
export const KVM_CAP_SET_TSS_ADDR = 4;
export const KVM_CAP_VAPIC = 6;
export const KVM_CAP_EXT_CPUID = 7;
export const KVM_CAP_CLOCKSOURCE = 8;
export const KVM_CAP_NR_VCPUS = 9;
export const KVM_CAP_NR_MEMSLOTS = 10;
export const KVM_CAP_PIT = 11;
export const KVM_CAP_NOP_IO_DELAY = 12;
export const KVM_CAP_PV_MMU = 13;
export const KVM_CAP_MP_STATE = 14;
export const KVM_CAP_COALESCED_MMIO = 15;
export const KVM_CAP_COALESCED_PIO = 162;
export const KVM_CAP_SYNC_MMU = 16;
export const KVM_CAP_IOMMU = 18;
export const KVM_CAP_DESTROY_MEMORY_REGION_WORKS = 21;
export const KVM_CAP_USER_NMI = 22;
export const KVM_CAP_SET_GUEST_DEBUG = 23;
export const KVM_CAP_REINJECT_CONTROL = 24;
export const KVM_CAP_IRQ_ROUTING = 25;
export const KVM_CAP_IRQ_INJECT_STATUS = 26;
export const KVM_CAP_ASSIGN_DEV_IRQ = 29;
export const KVM_CAP_JOIN_MEMORY_REGIONS_WORKS = 30;
export const KVM_CAP_MCE = 31;
export const KVM_CAP_IRQFD = 32;
export const KVM_CAP_PIT2 = 33;
export const KVM_CAP_SET_BOOT_CPU_ID = 34;
export const KVM_CAP_PIT_STATE2 = 35;
export const KVM_CAP_IOEVENTFD = 36;
export const KVM_CAP_SET_IDENTITY_MAP_ADDR = 37;
export const KVM_CAP_XEN_HVM = 38;
export const KVM_CAP_ADJUST_CLOCK = 39;
export const KVM_CAP_INTERNAL_ERROR_DATA = 40;
export const KVM_CAP_VCPU_EVENTS = 41;
export const KVM_CAP_S390_PSW = 42;
export const KVM_CAP_PPC_SEGSTATE = 43;
export const KVM_CAP_HYPERV = 44;
export const KVM_CAP_HYPERV_VAPIC = 45;
export const KVM_CAP_HYPERV_SPIN = 46;
export const KVM_CAP_PCI_SEGMENT = 47;
export const KVM_CAP_PPC_PAIRED_SINGLES = 48;
export const KVM_CAP_INTR_SHADOW = 49;
export const KVM_CAP_DEBUGREGS = 50;
export const KVM_CAP_X86_ROBUST_SINGLESTEP = 51;
export const KVM_CAP_PPC_OSI = 52;
export const KVM_CAP_PPC_UNSET_IRQ = 53;
export const KVM_CAP_ENABLE_CAP = 54;
export const KVM_CAP_XSAVE = 55;
export const KVM_CAP_XCRS = 56;
export const KVM_CAP_ASYNC_PF = 59;
export const KVM_CAP_TSC_CONTROL = 60;
export const KVM_CAP_GET_TSC_KHZ = 61;
export const KVM_CAP_MAX_VCPUS = 66;
export const KVM_CAP_PCI_2_3 = 75;
export const KVM_CAP_KVMCLOCK_CTRL = 76;
export const KVM_CAP_SIGNAL_MSI = 77;
export const KVM_CAP_ONE_REG = 70;
export const KVM_CAP_READONLY_MEM = 81;
export const KVM_CAP_IRQFD_RESAMPLE = 82;
export const KVM_CAP_TSC_DEADLINE_TIMER = 72;
export const KVM_CAP_ENABLE_CAP_VM = 98;
export const KVM_CAP_IOEVENTFD_NO_LENGTH = 100;
export const KVM_CAP_VM_ATTRIBUTES = 101;
export const KVM_CAP_CHECK_EXTENSION_VM = 105;
export const KVM_CAP_DISABLE_QUIRKS = 116;
export const KVM_CAP_X86_SMM = 117;
export const KVM_CAP_MULTI_ADDRESS_SPACE = 118;
export const KVM_CAP_GUEST_DEBUG_HW_BPS = 119;
export const KVM_CAP_GUEST_DEBUG_HW_WPS = 120;
export const KVM_CAP_SPLIT_IRQCHIP = 121;
export const KVM_CAP_IOEVENTFD_ANY_LENGTH = 122;
export const KVM_CAP_X2APIC_API = 129;
export const KVM_CAP_MAX_VCPU_ID = 128;
export const KVM_CAP_IMMEDIATE_EXIT = 136;
export const KVM_CAP_X86_DISABLE_EXITS = 143;
/** KVM_CAP_X86_DISABLE_EXITS argument bits. */
export const KVM_X86_DISABLE_EXITS_MWAIT = 1 << 0;
export const KVM_X86_DISABLE_EXITS_HLT = 1 << 1;
export const KVM_X86_DISABLE_EXITS_PAUSE = 1 << 2;
export const KVM_X86_DISABLE_EXITS_CSTATE = 1 << 3;
export const KVM_CAP_GET_MSR_FEATURES = 153;
export const KVM_CAP_SYNC_REGS = 74;
export const KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = 168;
export const KVM_CAP_X86_USER_SPACE_MSR = 188;
export const KVM_CAP_X86_MSR_FILTER = 189;
export const KVM_CAP_DIRTY_LOG_RING = 192;
export const KVM_CAP_BINARY_STATS_FD = 203;
export const KVM_CAP_EXIT_ON_EMULATION_FAILURE = 204;
export const KVM_CAP_SREGS2 = 200;
export const KVM_CAP_XSAVE2 = 208;
export const KVM_CAP_DIRTY_LOG_RING_ACQ_REL = 223;
export const KVM_CAP_USER_MEMORY2 = 231;
export const KVM_CAP_MEMORY_FAULT_INFO = 232;
export const KVM_CAP_MEMORY_ATTRIBUTES = 233;
export const KVM_CAP_GUEST_MEMFD = 234;
export const KVM_CAP_VM_TYPES = 235;

/** kvm_run.flags (x86) */
export const KVM_RUN_X86_SMM = 1 << 0;
export const KVM_RUN_X86_BUS_LOCK = 1 << 1;

/** KVM_SET_GUEST_DEBUG control flags */
export const KVM_GUESTDBG_ENABLE = 0x00000001;
export const KVM_GUESTDBG_SINGLESTEP = 0x00000002;
export const KVM_GUESTDBG_USE_SW_BP = 0x00010000;
export const KVM_GUESTDBG_USE_HW_BP = 0x00020000;
export const KVM_GUESTDBG_INJECT_DB = 0x00040000;
export const KVM_GUESTDBG_INJECT_BP = 0x00080000;

/** KVM_IRQFD / KVM_IOEVENTFD flags */
export const KVM_IRQFD_FLAG_DEASSIGN = 1 << 0;
export const KVM_IRQFD_FLAG_RESAMPLE = 1 << 1;
export const KVM_IOEVENTFD_FLAG_DATAMATCH = 1 << 0;
export const KVM_IOEVENTFD_FLAG_PIO = 1 << 1;
export const KVM_IOEVENTFD_FLAG_DEASSIGN = 1 << 2;

/** GSI routing entry types */
export const KVM_IRQ_ROUTING_IRQCHIP = 1;
export const KVM_IRQ_ROUTING_MSI = 2;

/** KVM_MP_STATE_* */
export const KVM_MP_STATE_RUNNABLE = 0;
export const KVM_MP_STATE_UNINITIALIZED = 1;
export const KVM_MP_STATE_INIT_RECEIVED = 2;
export const KVM_MP_STATE_HALTED = 3;
export const KVM_MP_STATE_SIPI_RECEIVED = 4;

/** KVM_MSR_EXIT_REASON_* for KVM_CAP_X86_USER_SPACE_MSR */
export const KVM_MSR_EXIT_REASON_INVAL = 1 << 0;
export const KVM_MSR_EXIT_REASON_UNKNOWN = 1 << 1;
export const KVM_MSR_EXIT_REASON_FILTER = 1 << 2;

/** Dirty ring entry flags */
export const KVM_DIRTY_GFN_F_DIRTY = 1 << 0;
export const KVM_DIRTY_GFN_F_RESET = 1 << 1;

/** x86 limits */
export const KVM_MAX_VCPUS = 1024;
export const KVM_MAX_VCPU_IDS = 4 * KVM_MAX_VCPUS;
export const KVM_USER_MEM_SLOTS = 32764;
export const KVM_ADDRESS_SPACE_NUM = 2;
export const KVM_MEM_MAX_NR_PAGES = 2 ** 31 - 1;

/** Page offsets inside the vCPU mmap area (x86). */
export const KVM_PIO_PAGE_OFFSET = 1;
export const KVM_COALESCED_MMIO_PAGE_OFFSET = 2;
export const KVM_DIRTY_LOG_PAGE_OFFSET = 64;

/** Binary stats descriptor flags */
export const KVM_STATS_TYPE_CUMULATIVE = 0x0 << 0;
export const KVM_STATS_TYPE_INSTANT = 0x1 << 0;
export const KVM_STATS_TYPE_PEAK = 0x2 << 0;
export const KVM_STATS_TYPE_LINEAR_HIST = 0x3 << 0;
export const KVM_STATS_TYPE_LOG_HIST = 0x4 << 0;
export const KVM_STATS_UNIT_NONE = 0x0 << 4;
export const KVM_STATS_UNIT_BYTES = 0x1 << 4;
export const KVM_STATS_UNIT_SECONDS = 0x2 << 4;
export const KVM_STATS_UNIT_CYCLES = 0x3 << 4;
export const KVM_STATS_UNIT_BOOLEAN = 0x4 << 4;
export const KVM_STATS_BASE_POW10 = 0x0 << 8;
export const KVM_STATS_BASE_POW2 = 0x1 << 8;
export const KVM_CAP_HALT_POLL = 182;
/** KVM_SET_TSC_KHZ / KVM_GET_TSC_KHZ (vCPU ioctls; also VM-wide with KVM_CAP_VM_TSC_CONTROL). */
export const KVM_SET_TSC_KHZ = IO(KVMIO, 0xa2);
export const KVM_GET_TSC_KHZ = IO(KVMIO, 0xa3);
/** struct kvm_clock_data flags (KVM_GET_CLOCK / KVM_SET_CLOCK). */
export const KVM_CLOCK_TSC_STABLE = 2;
export const KVM_CLOCK_REALTIME = 1 << 2;
export const KVM_CLOCK_HOST_TSC = 1 << 3;
export const KVM_CAP_VCPU_ATTRIBUTES = 127;
