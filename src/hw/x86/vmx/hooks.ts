/**
 * The boundary between the CPU core (decode/execute, paging, exceptions: hw/x86/*.ts) and
 * VMX non-root operation (hw/x86/vmx/*.ts).
 *
 * While the processor is in VMX non-root operation, `cpu.vmx` is a `VmxNonRoot` and the core
 * calls it at every point where the SDM (Vol. 3C ch. 26, "VMX non-root operation") says an
 * instruction or event may cause a VM exit or behaves differently. Outside non-root operation
 * `cpu.vmx` is null and the core behaves as bare hardware.
 *
 * Contract for every intercept method:
 * - It is called before the instruction has any architectural effect, with `cpu.state.rip`
 *   still at the start of the instruction and `insnLen` its length in bytes.
 * - If a VM exit is due, it saves guest state into the current VMCS, fills the exit
 *   information fields (reason, qualification, instruction length/information, guest linear
 *   and physical address), leaves non-root operation and throws `VMEXIT`, which the CPU's run
 *   loop lets propagate to `vmlaunch()`/`vmresume()`.
 * - Otherwise it returns and the core executes the instruction as bare hardware would (with
 *   the adjustments some methods return, e.g. CR read shadows or the TSC offset).
 */

/** Thrown (never allocated per use) to unwind the executor on a VM exit. */
export const VMEXIT: { readonly vmexit: true } = Object.freeze({ vmexit: true as const });

export const enum MemAccess {
  READ = 1,
  WRITE = 2,
  FETCH = 4,
}

export interface VmxNonRoot {
  // --- instructions that exit unconditionally or by control (SDM 26.1.2, 26.1.3) ---
  cpuid(insnLen: number): void;
  hlt(insnLen: number): void;
  invlpg(linearAddr: number, insnLen: number): void;
  invpcid(insnLen: number, info: number, qualification: number): void;
  rdpmc(insnLen: number): void;
  /** RDTSC/RDTSCP: exits when configured; otherwise returns the TSC offset (lo/hi in out[0..1]) to add. */
  rdtsc(insnLen: number, rdtscp: boolean): void;
  tscOffsetLo(): number;
  tscOffsetHi(): number;
  /** The guest's view of the TSC (offset and, with TSC scaling, the multiplier applied); absent = host TSC + offset. */
  guestTsc?(hostTsc: number): number;
  rdmsr(msr: number, insnLen: number): void;
  wrmsr(msr: number, insnLen: number): void;
  mwait(insnLen: number): void;
  monitor(insnLen: number): void;
  pause(insnLen: number): void;
  wbinvd(insnLen: number): void;
  invd(insnLen: number): void;
  xsetbv(insnLen: number): void;
  rdrand(insnLen: number, info: number): void;
  rdseed(insnLen: number, info: number): void;
  /**
   * (Added for XSAVES/XRSTORS.) XSAVES (`restore` false) or XRSTORS (true), called after the
   * CR4.OSXSAVE check and before the CPL check: #UD unless "enable XSAVES/XRSTORS" is set, else
   * an exit when the XSS-exiting bitmap has a bit of `maskLo/maskHi` (EDX:EAX AND IA32_XSS)
   * (SDM Vol. 3C 26.1.3). `info` is the memory-operand instruction information, `qualification`
   * the displacement. Optional: an implementer without it (KVM's emulator view, which only runs
   * instructions that already passed these checks) leaves the instructions as on bare hardware.
   */
  xsaves?(restore: boolean, maskLo: number, maskHi: number, insnLen: number, info: number, qualification: number): void;
  /** VMCALL and the VMX instructions (VMCLEAR ... VMXON, INVEPT, INVVPID, VMFUNC): reason = EXIT_REASON_*. */
  vmxInstruction(reason: number, insnLen: number, info: number, qualification: number): void;
  /** LGDT/LIDT/SGDT/SIDT (reason GDTR_IDTR) and LLDT/LTR/SLDT/STR (reason LDTR_TR) with descriptor-table exiting. */
  descriptorTable(reason: number, insnLen: number, info: number, qualification: number): void;
  /**
   * IN/OUT/INS/OUTS (SDM 26.1.3: unconditional or bitmap I/O exiting). `qualification` is
   * already in the exit-qualification format of Table 28-5 (size-1, direction, string, REP,
   * operand encoding, port); `linearAddr` is the string source/destination, if any.
   */
  io(port: number, size: number, qualification: number, insnLen: number, linearAddr: number): void;

  // --- control and debug registers (SDM 26.3, 28.2.1 Table 28-3) ---
  /** MOV to CR0/CR3/CR4/CR8: exits per guest/host masks, CR3-target list, CR8 load exiting. */
  movToCr(cr: number, gpr: number, value: number, insnLen: number): void;
  /** MOV from CR3/CR8: exits per CR3/CR8 store exiting. */
  movFromCr(cr: number, gpr: number, insnLen: number): void;
  /** Value software reads for CR0/CR4: host-owned bits (guest/host mask) come from the read shadow. */
  crReadShadow(cr: 0 | 4, actual: number): number;
  /**
   * (Added by hw/x86/vmx.) The value CR0/CR4 takes when MOV to CR0/CR4, CLTS or LMSW did not
   * exit: host-owned bits (guest/host mask) keep their `current` value (SDM 26.3). `value` is
   * the low 32 bits the instruction would write on bare hardware. The core must write the
   * result instead of `value`, or a guest that flips a guest-owned bit (CR4.PGE, CR0.TS) also
   * clears host-owned ones (CR4.VMXE, CR0.NE) and the next VM entry fails. Optional so other
   * implementers of this interface stay valid; absent means "write `value`".
   */
  crWriteValue?(cr: 0 | 4, value: number, current: number): number;
  clts(insnLen: number): void;
  lmsw(source: number, insnLen: number, memOperand: boolean, linearAddr: number): void;
  movDr(dr: number, gpr: number, toDr: boolean, insnLen: number): void;

  // --- events (SDM 26.2, 27.2) ---
  /**
   * An exception about to be delivered (after the CPU has determined vector and error code,
   * before CR2/DR6 are written and before delivery). Exits if the exception bitmap (and for
   * #PF the error-code mask/match) says so; `errorCode` < 0 means none; `extra` is the #PF
   * linear address or the #DB DR6 bits. `insnLen` is nonzero for software exceptions (INT3, INTO).
   */
  exception(vector: number, errorCode: number, extra: number, insnLen: number): void;
  /** Triple fault: always exits (EXIT_REASON_TRIPLE_FAULT). */
  tripleFault(): void;
  /** A task switch through CALL/JMP/IRET/gate (always exits, EXIT_REASON_TASK_SWITCH). */
  taskSwitch(selector: number, source: number, insnLen: number): void;
  /** Called by the CPU when event delivery starts/ends, so exits during delivery report IDT-vectoring info. */
  beginEventDelivery(vector: number, type: number, errorCode: number, insnLen: number): void;
  endEventDelivery(): void;
  /**
   * At each instruction boundary where the processor could take an interrupt: checks
   * interrupt-window / NMI-window exiting, the preemption timer, and the host's external
   * interrupt (time slice or kick), and exits if due.
   */
  instructionBoundary(): void;

  // --- memory (SDM 29.3: EPT) ---
  /**
   * Translate a guest-physical address when "enable EPT" is set. Returns the host-physical
   * address, or performs an EPT-violation / EPT-misconfiguration exit. `linearAddr` and
   * `isWalk` fill the GLA-valid / "access was to a paging structure" qualification bits.
   */
  eptTranslate(gpa: number, access: MemAccess, linearAddr: number, linearValid: boolean, isWalk: boolean): number;
  readonly eptEnabled: boolean;
  readonly unrestrictedGuest: boolean;
}
