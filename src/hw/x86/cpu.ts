/**
 * The emulated x86-64 processor core: one logical processor executing the Intel 64 integer
 * instruction set in real, protected, virtual-8086 and IA-32e modes, with paging, exceptions and
 * interrupts (SDM Vol. 1 and 3A). VMX non-root behaviour is layered on through `vmx`
 * (src/hw/x86/vmx/hooks.ts): wherever the SDM says an instruction or event may cause a VM exit
 * the core calls the matching hook.
 *
 * Layout of the core:
 *   flags.ts      lazy RFLAGS          decode.ts   opcode table + decoder + decoded-insn cache
 *   mmu.ts        software TLB, linear/segmented memory access     paging.ts  page walks
 *   segment.ts    descriptor loads, far transfers                  interrupt.ts event delivery, IRET
 *   ops/*.ts      instruction handlers by family
 */
import type { CodeWatcher, PhysMem } from "../physmem.js";
import { X86State, AR_L, AR_DB, AR_UNUSABLE, ActivityState, INTR_BLOCKING_STI, INTR_BLOCKING_MOV_SS } from "./state.js";
import type { VmxNonRoot } from "./vmx/hooks.js";
import { FAULT, GP_VECTOR, DB_VECTOR } from "./fault.js";
import { flagsSync, LOP_NONE, RFLAGS_VALID, VM, TF, RF, AC } from "./flags.js";
import { TlbSet, TLB_MASK, tlbFlushAllSets, tlbFlushNonGlobalSets, tlbFlushPageSets, fetchTranslate } from "./mmu.js";
import { decode, HANDLERS, DCACHE_SIZE, DCACHE_MASK, DW } from "./decode.js";
import "./opcodes.js";
import { deliverEvent, deliverException } from "./interrupt.js";
import { readMsr, writeMsr } from "./msr.js";
import { cpuid } from "./cpuid.js";
import { pdptesAfterStateChange } from "./paging.js";
import { BlockCache, blockJit, compileBlock, DW_BLOCK, DW_BLOCK_GEN, NO_BLOCK } from "./block_jit.js";
import { BREAK_BRANCH } from "./block_emit.js";

export interface X86IoBus {
  /** Port input of `size` bytes (1, 2, 4); returns the value zero-extended. */
  in(port: number, size: number): number;
  out(port: number, size: number, value: number): void;
}

export interface X86CpuOptions {
  /** Host clock in nanoseconds for the TSC (default: performance.now()). */
  clockNs?: () => number;
  /** TSC frequency in kHz (default 2 GHz). */
  tscKhz?: number;
  /** Port I/O on bare metal (outside VMX non-root operation); reads float to all ones without it. */
  io?: X86IoBus;
}

const CR0_PE = 1, CR0_PG = 0x80000000, CR0_AM = 1 << 18;
// Module-local aliases of hot imported bindings: a loader that turns imports into property
// reads (CommonJS interop) would otherwise pay a getter call per instruction.
const H = HANDLERS;
const DC_MASK = DCACHE_MASK;
const DC_W = DW;
const TMASK = TLB_MASK;
const ACTIVE = 0;
/** Longest block the run loop executes between its once-per-block checks. */
const BLOCK_MAX = 64;
/** Longest run of a compiled self-loop between the run loop's checks (preemption timer, VMX windows). */
const LOOP_MAX = 4096;
const CR4_PAE = 1 << 5, CR4_LA57 = 1 << 12;
/** Decode-cache mode of 32-bit protected mode (csz 2 | protected, not virtual-8086): compiled like 64-bit mode. */
const DMODE_PM32 = 2 | 4;
const EFER_LMA = 1 << 10;

export class X86Cpu implements CodeWatcher {
  readonly physmem: PhysMem;
  readonly state = new X86State();
  vmx: VmxNonRoot | null = null;
  readonly hostIrq: Int32Array;
  io: X86IoBus | null;
  readonly clockNs: () => number;
  readonly tscKhz: number;

  /** Last opcode that raised #UD because the core does not implement it: (map << 8) | byte, map 0 = one-byte, 1 = 0F, 2 = 0F38, 3 = 0F3A, 4+ = VEX maps; -1 if none. */
  lastUnimplemented = -1;
  /** Count of retired instructions. */
  icount = 0;
  get insnCount(): number { return this.icount; }

  // ---- RFLAGS: `fl` holds every bit; CF/PF/AF/ZF/SF/OF only when lop === LOP_NONE (flags.ts) ----
  fl = 2;
  lop = 0; lsh = 0; l64 = 0; lcin = 0;
  ldst = 0; lsrc = 0; lres = 0; ldstH = 0; lsrcH = 0; lresH = 0;

  // ---- cached mode (recomputed by stateChanged and by the instructions that change them) ----
  cpl = 0;
  pe = 0;
  v86 = 0;
  m64 = 0;
  /** Code default size: 1 = 16-bit, 2 = 32-bit, 3 = 64-bit. */
  csz = 1;
  /** Stack address size: 1 = SP, 2 = ESP, 3 = RSP. */
  ssz = 1;
  /** 0 none, 1 32-bit, 2 PAE, 3 4-level, 4 5-level (SDM 4.1.1). */
  pgMode = 0;
  /** Decode-cache mode key (code size + protected-mode bit). */
  dmode = 1;
  /** Canonical limit 2^47 or 2^56 (LA57). */
  canon = 0x800000000000;
  /** Per segment: linear base as used for address formation (0 for ES/CS/SS/DS in 64-bit mode). */
  readonly effBase = new Float64Array(8);
  /** Per segment: lowest and highest valid offset (limit check, expand-down aware). */
  readonly segLo = new Float64Array(8);
  readonly segHi = new Float64Array(8);
  /** Per segment: 1 readable, 2 writable. */
  readonly segRW = new Uint8Array(8);

  // ---- remembered code page for fetch (fetchDecode) ----
  fLo = NaN;
  fKey = 0;
  fCi = 0;
  /** CS limit for the fetch check outside 64-bit mode. */
  csLim = 0xffff;

  // ---- the decoded instruction (packed words, see decode.ts) ----
  /** w0 and w1 are copied per instruction; the rest is read from its decoded-cache slot at `wb`. */
  w0 = 0; w1 = 0;
  /** Index in dcW of the current instruction's words (a cache slot, or the scratch slot for uncached ones). */
  wb = DCACHE_SIZE * DW;
  get w2(): number { return this.dcW[this.wb + 2]; }
  get w3(): number { return this.dcW[this.wb + 3]; }
  get w4(): number { return this.dcW[this.wb + 4]; }
  get w5(): number { return this.dcW[this.wb + 5]; }
  /** RIP of the current instruction's first byte. */
  curRip = 0;
  /** Scratch: high half of the last 64-bit operand read or result. */
  rhi = 0;
  /** Scratch: linear address of a read-modify-write operand (-1 = register). */
  rmwLa = 0;

  // ---- fault information for the instruction in flight ----
  faultVec = 0;
  faultErr = -1;
  faultExtra = 0;

  // ---- slow-step conditions: TF, RF, interrupt shadows, debug registers ----
  slow = 0;
  /** DR6 bits collected by data breakpoints during the current instruction. */
  pendingDr6 = 0;
  /** Some DR7 data breakpoint is armed: accesses bypass the TLB so each is checked. */
  dbgData = 0;
  /** Some DR7 instruction breakpoint is armed. */
  dbgInsn = 0;
  /** Alignment checking is on (CR0.AM, EFLAGS.AC, CPL 3: SDM 6.15 #AC): data accesses bypass the TLB so each is checked. */
  acCheck = 0;
  /** Page-walk results for the TLB fill (paging.ts). */
  walkPerm = 0;
  walkGlobal = 0;
  /** Set by event delivery, so the single-step trap is not taken after INT n / a fault. */
  eventDelivered = 0;
  /** Set when an instruction changed something that the run loop must look at before the next one. */
  breakLoop = 0;

  // ---- software TLB (mmu.ts): one set for CPL 3 accesses, one for supervisor ----
  readonly tlbUser = new TlbSet();
  readonly tlbSup = new TlbSet();
  tR: Float64Array; tW: Float64Array; tX: Float64Array;
  tM8: Uint8Array[]; tM32: Int32Array[]; tOff: Int32Array; tPfn: Float64Array;
  /** Per page frame: 1 if decoded instructions from it are cached (writes must invalidate). */
  readonly hasCode: Uint8Array;

  // ---- decoded-instruction cache, direct mapped by host-physical address ----
  readonly dcTag = new Float64Array(DCACHE_SIZE).fill(NaN);
  /** Slot DCACHE_SIZE is scratch for an instruction that is not cached (page-crossing, no RAM). */
  readonly dcW = new Int32Array((DCACHE_SIZE + 1) * DW);
  /** Compiled blocks over the decoded cache (block_jit.ts). */
  readonly blocks = new BlockCache();

  // ---- MSR-backed state (msr.ts) ----
  starLo = 0; starHi = 0;
  lstar = 0; cstar = 0; fmask = 0;
  kernelGsBase = 0;
  sysenterCs = 0; sysenterEsp = 0; sysenterEip = 0;
  patLo = 0x00070406; patHi = 0x00070406;
  tscAux = 0;
  /** TSC = clock-derived count + tscAdjust (WRMSR IA32_TSC moves the adjust). */
  tscAdjust = 0;
  apicBaseLo = 0xfee00900; apicBaseHi = 0;
  miscEnableLo = 1; miscEnableHi = 0;
  mtrrDefType = 0;
  featureControl = 0;
  /** IA32_SPEC_CTRL etc. are not modelled; see msr.ts for the list the CPU has. */

  constructor(physmem: PhysMem, opts: X86CpuOptions = {}) {
    this.physmem = physmem;
    this.hostIrq = new Int32Array(new SharedArrayBuffer(4));
    this.io = opts.io ?? null;
    this.clockNs = opts.clockNs ?? (() => globalThis.performance.now() * 1e6);
    this.tscKhz = opts.tscKhz ?? 2000000;
    this.hasCode = new Uint8Array(physmem.nrFrames);
    const s = this.tlbSup;
    this.tR = s.tagR; this.tW = s.tagW; this.tX = s.tagX; this.tM8 = s.mem8; this.tM32 = s.mem32; this.tOff = s.off; this.tPfn = s.pfn;
    this.reset();
  }

  // ---- decoded-field accessors (decode.ts packs them) ----
  /** Opcode as map * 256 + byte (specialized handler indices, all one-byte-map forms, map back to their opcode). */
  get op(): number { const h = this.w0 & 0x7ff; return h >= 0x700 ? this.w0 >>> 24 : h; }
  get ilen(): number { return (this.w0 >>> 11) & 15; }
  get osz(): number { return (this.w0 >>> 15) & 3; }
  get asz(): number { return (this.w0 >>> 17) & 3; }
  get rep(): number { return (this.w0 >>> 19) & 3; }
  get lock(): number { return (this.w0 >>> 21) & 1; }
  get rex(): number { return (this.w0 >>> 22) & 1; }
  get p66(): number { return (this.w0 >>> 23) & 1; }
  get opb(): number { return this.w0 >>> 24; }
  get mod(): number { return this.w1 & 3; }
  get reg(): number { return (this.w1 >>> 2) & 15; }
  get rm(): number { return (this.w1 >>> 6) & 15; }
  get base(): number { return (this.w1 >>> 10) & 31; }
  get index(): number { return (this.w1 >>> 15) & 31; }
  get scale(): number { return (this.w1 >>> 20) & 3; }
  /** Segment of the memory operand: the override, else DS (SS for BP/SP-based addressing). */
  get seg(): number { return (this.w1 >>> 22) & 7; }
  /** Segment override prefix, 7 if none. */
  get segOvr(): number { return (this.w1 >>> 25) & 7; }
  get vexL(): number { return (this.w1 >>> 28) & 1; }
  get vexW(): number { return (this.w1 >>> 29) & 1; }
  /** REX.B as 8 for opcodes that encode a register in their low bits (decode.ts stores it in rm). */
  rexB(): number { return (this.w1 >>> 6) & 8; }
  get disp(): number { return this.dcW[this.wb + 2]; }
  get imm(): number { return this.dcW[this.wb + 3]; }
  get imm2(): number { return this.dcW[this.wb + 4]; }
  get vexV(): number { return this.dcW[this.wb + 5]; }

  /** Power-up / RESET state (SDM Table 9-1). */
  reset(): void {
    const st = this.state;
    st.gpr.fill(0);
    st.gpr[2 * 2] = 0x000806f0; // EDX: the CPUID.1 EAX signature (SDM 9.1.4)
    st.rip = 0xfff0;
    for (let i = 0; i < 8; i++) { st.segSel[i] = 0; st.segBase[i] = 0; st.segLimit[i] = 0xffff; st.segAr[i] = 0x93; }
    st.segSel[1] = 0xf000; st.segBase[1] = 0xffff0000; st.segAr[1] = 0x9b;
    st.segAr[6] = 0x82; st.segAr[7] = 0x8b;
    st.gdtrBase = 0; st.gdtrLimit = 0xffff; st.idtrBase = 0; st.idtrLimit = 0xffff;
    st.cr0 = 0x60000010; st.cr2 = 0; st.cr3 = 0; st.cr4 = 0; st.cr8 = 0; st.efer = 0;
    st.dr.fill(0); st.dr[6] = 0xffff0ff0; st.dr[7] = 0x400;
    st.interruptibility = 0; st.activityState = ActivityState.ACTIVE; st.xcr0 = 1;
    // x87/SSE power-up state (SDM Table 9-1): FCW 0040H, FTW 5555H, registers +0.0, MXCSR 1F80H.
    st.fpu.init(); st.fpu.cw = 0x40; st.fpu.tag = 0x5555; st.fpu.regs.fill(0); st.xmm.fill(0); st.mxcsr = 0x1f80; st.fpuFerr = 0;
    this.fl = 2; this.lop = LOP_NONE;
    this.stateChanged();
  }

  getRflags(): number {
    flagsSync(this);
    return (this.fl | 2) >>> 0;
  }

  setRflags(v: number): void {
    const old = this.fl;
    this.fl = (v & RFLAGS_VALID) | 2;
    this.lop = LOP_NONE;
    if ((old ^ this.fl) & VM) this.stateChanged(); // entering/leaving virtual-8086 mode
    else this.modeFlagsChanged();
  }

  /** Recompute every cached mode bit after state was written from outside (VM entry, tests). */
  stateChanged(): void {
    const st = this.state;
    const oldPg = this.pgMode;
    this.pe = st.cr0 & CR0_PE;
    this.v86 = this.pe && (this.fl & VM) ? 1 : 0;
    const lma = (st.efer & EFER_LMA) !== 0;
    this.m64 = lma && (st.segAr[1] & AR_L) !== 0 ? 1 : 0;
    this.csz = this.m64 ? 3 : (st.segAr[1] & AR_DB) !== 0 ? 2 : 1;
    this.ssz = this.m64 ? 3 : (st.segAr[2] & AR_DB) !== 0 ? 2 : 1;
    this.dmode = this.csz | (this.pe && !this.v86 ? 4 : 0);
    if (!(st.cr0 & CR0_PG)) this.pgMode = 0;
    else if (lma) this.pgMode = st.cr4 & CR4_LA57 ? 4 : 3;
    else this.pgMode = st.cr4 & CR4_PAE ? 2 : 1;
    this.canon = this.pgMode === 4 ? 0x100000000000000 : 0x800000000000;
    for (let s = 0; s < 8; s++) this.segCache(s);
    this.fLo = NaN;
    this.setCpl(!this.pe ? 0 : this.v86 ? 3 : (st.segAr[2] >>> 5) & 3);
    if (oldPg !== this.pgMode) this.tlbFlushAll();
    pdptesAfterStateChange(this, oldPg);
    this.modeFlagsChanged();
  }

  /** Recompute the address-formation cache of one segment register (after a load). */
  segCache(s: number): void {
    const st = this.state;
    if (s === 1) { this.fLo = NaN; this.breakLoop = 1; this.csLim = st.segLimit[1]; }
    const ar = st.segAr[s];
    if (this.m64) {
      this.effBase[s] = s >= 4 ? st.segBase[s] : 0;
      this.segLo[s] = -Infinity; this.segHi[s] = Infinity; this.segRW[s] = 3;
      return;
    }
    this.effBase[s] = st.segBase[s] >>> 0;
    const lim = st.segLimit[s];
    if (!this.pe || this.v86) {
      this.segLo[s] = 0; this.segHi[s] = lim; this.segRW[s] = 3;
    } else if (ar & AR_UNUSABLE) {
      this.segLo[s] = 1; this.segHi[s] = 0; this.segRW[s] = 0;
    } else if (ar & 8) { // code: readable if type bit 1, never writable
      this.segLo[s] = 0; this.segHi[s] = lim; this.segRW[s] = ar & 2 ? 1 : 0;
    } else if (ar & 4) { // expand-down data
      this.segLo[s] = lim + 1; this.segHi[s] = ar & AR_DB ? 0xffffffff : 0xffff; this.segRW[s] = ar & 2 ? 3 : 1;
    } else {
      this.segLo[s] = 0; this.segHi[s] = lim; this.segRW[s] = ar & 2 ? 3 : 1;
    }
  }

  setCpl(cpl: number): void {
    this.cpl = cpl;
    this.fLo = NaN; this.breakLoop = 1;
    const t = cpl === 3 ? this.tlbUser : this.tlbSup;
    this.tR = t.tagR; this.tW = t.tagW; this.tX = t.tagX; this.tM8 = t.mem8; this.tM32 = t.mem32; this.tOff = t.off; this.tPfn = t.pfn;
  }

  /** TF/RF/shadow/debug-register state changed: decide whether the run loop needs the careful path. */
  modeFlagsChanged(): void {
    const st = this.state;
    const dr7 = st.dr[7];
    let insn = 0, data = 0;
    for (let i = 0; i < 4; i++) {
      if ((dr7 >>> (i * 2)) & 3) {
        if (((dr7 >>> (16 + i * 4)) & 3) === 0) insn = 1; else data = 1;
      }
    }
    this.dbgInsn = insn;
    if (data !== this.dbgData) { this.dbgData = data; this.tlbFlushAll(); }
    const ac = this.cpl === 3 && (st.cr0 & CR0_AM) !== 0 && (this.fl & AC) !== 0 ? 1 : 0;
    if (ac !== this.acCheck) { this.acCheck = ac; this.tlbFlushAll(); }
    this.slow = (this.fl & (TF | RF)) || (st.interruptibility & (INTR_BLOCKING_STI | INTR_BLOCKING_MOV_SS)) || insn || data ? 1 : 0;
    this.breakLoop = 1;
  }

  // ---- general registers ----
  /** Read register r of size sz (0 byte, 1 word, 2 dword, 3 qword: high half in rhi). Byte registers 4-7 without REX are AH..BH. */
  getReg(sz: number, r: number): number {
    const g = this.state.gpr;
    switch (sz) {
      case 0:
        if (r < 4 || r > 7 || this.rex) return g[r << 1] & 0xff;
        return (g[(r - 4) << 1] >>> 8) & 0xff;
      case 1: return g[r << 1] & 0xffff;
      case 2: return g[r << 1];
      default: this.rhi = g[(r << 1) | 1]; return g[r << 1];
    }
  }

  /** Write register r of size sz; 32-bit writes zero the upper half, 8/16-bit writes merge. */
  setReg(sz: number, r: number, lo: number, hi: number): void {
    const g = this.state.gpr;
    switch (sz) {
      case 0:
        if (r < 4 || r > 7 || this.rex) g[r << 1] = (g[r << 1] & ~0xff) | (lo & 0xff);
        else { const i = (r - 4) << 1; g[i] = (g[i] & ~0xff00) | ((lo & 0xff) << 8); }
        return;
      case 1: g[r << 1] = (g[r << 1] & ~0xffff) | (lo & 0xffff); return;
      case 2: g[r << 1] = lo; g[(r << 1) | 1] = 0; return;
      default: g[r << 1] = lo; g[(r << 1) | 1] = hi; return;
    }
  }

  /** Register as a number of the current address size (for RSI/RDI/RCX in string ops, addressing). */
  regAddr(r: number, asz: number): number {
    const g = this.state.gpr;
    if (asz === 3) return g[(r << 1) | 1] * 4294967296 + (g[r << 1] >>> 0);
    if (asz === 2) return g[r << 1] >>> 0;
    return g[r << 1] & 0xffff;
  }

  /** Write a number back into register r with address-size semantics (16: merge, 32: zero-extend, 64: full). */
  setRegAddr(r: number, asz: number, v: number): void {
    const g = this.state.gpr;
    if (asz === 3) { g[r << 1] = v | 0; g[(r << 1) | 1] = Math.floor(v / 4294967296) | 0; }
    else if (asz === 2) { g[r << 1] = v | 0; g[(r << 1) | 1] = 0; }
    else g[r << 1] = (g[r << 1] & ~0xffff) | (v & 0xffff);
  }

  // ---- execution ----
  /** Execute up to maxInsns instructions; returns how many retired (SDM: the fetch-decode-execute loop). */
  run(maxInsns: number): number {
    const start = this.icount;
    const end = start + maxInsns;
    const st = this.state;
    for (;;) {
      try {
        this.loop(end);
        return this.icount - start;
      } catch (e) {
        if (e !== FAULT) throw e;
        st.rip = this.curRip;
        deliverException(this, this.faultVec, this.faultErr, this.faultExtra, 0);
        if (st.activityState !== ActivityState.ACTIVE) return this.icount - start;
      }
    }
  }

  /**
   * The run loop, in blocks: a block is the straight-line run of instructions between two
   * points where something may have to be looked at (a taken branch, a change of mode, flags,
   * shadows or debug state, HLT, a write into cached code: everything that sets `breakLoop`).
   * The activity state, host interrupt word, VMX boundary checks (interrupt/NMI window,
   * preemption timer: SDM 26.7) and the careful single-step path are handled once per block
   * (so a window exit is taken at exactly the boundary where IF or a shadow changed: those
   * changes all end the block); inside a block only the budget is checked per instruction. `icount` counts each retired
   * instruction as it retires, so a fault or VM exit in the middle of a block leaves it exact.
   */
  private loop(end: number): void {
    const st = this.state;
    const hostIrq = this.hostIrq;
    while (this.icount < end) {
      if (st.activityState !== ACTIVE || hostIrq[0] !== 0) return;
      this.breakLoop = 0;
      if (this.vmx !== null) this.vmx.instructionBoundary();
      if (this.slow) { this.stepSlow(); continue; }
      // A block is also cut after BLOCK_MAX instructions, so straight-line code cannot delay the
      // preemption timer or a host kick by more than that.
      const stop = Math.min(end, this.icount + BLOCK_MAX);
      // The remembered code page stays put for the whole block: everything that drops it
      // (TLB flushes, CS/CPL/mode changes) also sets breakLoop, and a fetch miss reloads it.
      const dcTag = this.dcTag, dcW = this.dcW, m64 = this.m64;
      let fLo = this.fLo, fCi = this.fCi, fKey = this.fKey;
      if ((m64 || this.dmode === DMODE_PM32) && blockJit.enabled) {
        // Block start in 64-bit or 32-bit protected mode on a decoded-cache hit: run its compiled
        // form if it has a current one, else count the entry and compile once it is hot (block_jit.ts).
        const rip = st.rip;
        const ci = this.blockSlot(rip);
        fLo = this.fLo; fCi = this.fCi; fKey = this.fKey;
        if (ci >= 0) {
          const b = ci * DC_W;
          const v = dcW[b + DW_BLOCK];
          if (v > 0) {
            const bc = this.blocks;
            if (dcW[b + DW_BLOCK_GEN] === bc.regionGen[ci >>> 12]) {
              // A compiled block that loops on itself may run up to LOOP_MAX instructions (it checks
              // the host interrupt word at each pass); interpreted blocks stop at BLOCK_MAX.
              const lim = Math.min(end, this.icount + LOOP_MAX);
              bc.table[v](this, st, rip, lim);
              // Chaining: a generated branch (BREAK_BRANCH) changed nothing the once-per-block
              // checks look at but RIP, so a compiled block at the target runs at once, within
              // the same LOOP_MAX budget (the preemption timer and the VMX window checks wait at
              // most that long) and while no host interrupt is signalled.
              while (this.breakLoop === BREAK_BRANCH && this.icount < lim && hostIrq[0] === 0) {
                const r2 = st.rip;
                const c2 = this.blockSlot(r2);
                if (c2 < 0) break;
                const b2 = c2 * DC_W, v2 = dcW[b2 + DW_BLOCK];
                if (v2 <= 0 || dcW[b2 + DW_BLOCK_GEN] !== bc.regionGen[c2 >>> 12]) break;
                this.breakLoop = 0;
                bc.table[v2](this, st, r2, lim);
              }
              fLo = this.fLo; fCi = this.fCi; fKey = this.fKey;
              if (this.icount >= stop || this.breakLoop !== 0) continue;
            } else dcW[b + DW_BLOCK] = 0; // built on slots since replaced: count again
          } else if (v !== NO_BLOCK) {
            if (v - 1 <= -blockJit.hot) compileBlock(this, ci, this.fKey + (rip - this.fLo) * 8);
            else dcW[b + DW_BLOCK] = v - 1;
          }
        }
      }
      do {
        const rip = st.rip;
        const off = rip - fLo;
        const ci = fCi | off;
        if (m64 && off >= 0 && off < 4096 && dcTag[ci] === fKey + off * 8) {
          // 64-bit mode, decoded-cache hit: fetchDecode's fast path without the field traffic
          const b = ci * DC_W, w0 = dcW[b];
          this.curRip = rip; this.w0 = w0; this.w1 = dcW[b + 1]; this.wb = b;
          st.rip = rip + ((w0 >>> 11) & 15);
          H[w0 & 0x7ff](this);
        } else {
          this.fetchDecode();
          fLo = this.fLo; fCi = this.fCi; fKey = this.fKey;
          H[this.w0 & 0x7ff](this);
        }
      } while (++this.icount < stop && this.breakLoop === 0);
    }
  }

  /**
   * Fetch and decode the instruction at RIP (through the decoded-instruction cache) and advance
   * RIP past it. The code page of the last fetch is remembered as a RIP range (fLo..fLo+4095)
   * with its cache key base, so straight-line code skips the TLB lookup entirely; the range is
   * dropped on every TLB flush, CPL or mode change (invalidateFetch).
   */
  fetchDecode(): void {
    const st = this.state;
    const rip = st.rip;
    this.curRip = rip;
    const off = rip - this.fLo;
    if (off >= 0 && off < 4096) {
      const ci = this.fCi | off;
      const key = this.fKey + off * 8;
      if (this.dcTag[ci] === key) {
        const b = ci * DC_W, w = this.dcW;
        this.w0 = w[b]; this.w1 = w[b + 1]; this.wb = b;
      } else {
        decode(this, this.m64 ? rip : (rip + this.effBase[1]) >>> 0, (this.fKey - this.dmode) / 8 + off, ci, key);
      }
    } else {
      this.fetchMiss(rip);
    }
    const len = (this.w0 >>> 11) & 15;
    if (this.m64) st.rip = rip + len;
    else {
      if (rip + len - 1 > this.csLim) this.raise(GP_VECTOR, 0);
      st.rip = this.csz === 2 ? (rip + len) >>> 0 : (rip + len) & 0xffff;
    }
  }

  /** Fetch from a page other than the remembered one: translate, remember it, decode. */
  private fetchMiss(rip: number): void {
    const la = this.m64 ? rip : (rip + this.effBase[1]) >>> 0;
    const hpa = this.fetchPage(rip, la);
    if (hpa < 0) { decode(this, la, -1, 0, 0); return; }
    const off = la & 4095;
    const ci = this.fCi | off, key = this.fKey + off * 8;
    if (this.dcTag[ci] === key) {
      const b = ci * DC_W, w = this.dcW;
      this.w0 = w[b]; this.w1 = w[b + 1]; this.wb = b;
    } else decode(this, la, hpa, ci, key);
  }

  /**
   * Translate the code address of `rip` (linear `la`) for execution and remember its page
   * (fLo/fKey/fCi); returns the host-physical address, or -1 (page forgotten) without RAM there.
   * Faults as the fetch of the instruction at `rip` would: the caller has set curRip.
   */
  fetchPage(rip: number, la: number): number {
    const vpn = Math.floor(la / 4096);
    const i = vpn & TMASK;
    let hpa: number;
    if (this.tX[i] === vpn) hpa = this.tPfn[i] * 4096 + (la & 4095);
    else hpa = fetchTranslate(this, la);
    if (hpa < 0) { this.fLo = NaN; return -1; }
    const off = la & 4095;
    const base = hpa - off;
    // Remember the page only when its RIP range does not wrap around the segment/address space.
    this.fLo = this.m64 || la - off + 4096 <= 4294967296 ? rip - off : NaN;
    this.fKey = base * 8 + this.dmode;
    this.fCi = base & DC_MASK;
    return hpa;
  }

  /**
   * The decoded-cache slot of the instruction at `rip` if it is cached, else -1; a RIP outside
   * the remembered code page translates its page first, as the fetch would (a fault there is the
   * fetch fault of the instruction at RIP). For the run loop's compiled-block lookups.
   */
  private blockSlot(rip: number): number {
    let off = rip - this.fLo;
    if (!(off >= 0 && off < 4096)) {
      this.curRip = rip;
      if (this.fetchPage(rip, this.m64 ? rip : (rip + this.effBase[1]) >>> 0) < 0) return -1;
      off = rip - this.fLo;
      if (!(off >= 0 && off < 4096)) return -1;
    }
    const ci = this.fCi | off;
    return this.dcTag[ci] === this.fKey + off * 8 ? ci : -1;
  }

  /** Forget the remembered code page (TLB flush, CPL/mode/CS change). */
  invalidateFetch(): void {
    this.fLo = NaN; this.breakLoop = 1;
  }

  /** One instruction with the careful checks: instruction breakpoints, single-step, RF, interrupt shadows. */
  private stepSlow(): void {
    const st = this.state;
    const tfBefore = this.fl & TF;
    const shadow = st.interruptibility & (INTR_BLOCKING_STI | INTR_BLOCKING_MOV_SS);
    if (this.dbgInsn && !(this.fl & RF)) {
      const la = this.m64 ? st.rip : (st.rip + this.effBase[1]) >>> 0;
      const hit = this.matchBreakpoints(la, 1, 0);
      if (hit) {
        this.curRip = st.rip;
        deliverException(this, DB_VECTOR, -1, hit, 0);
        return;
      }
    }
    this.pendingDr6 = 0;
    this.eventDelivered = 0;
    // RF only suppresses the instruction-breakpoint check just made; clearing it now keeps an RF
    // that this instruction loads itself (IRET) for the next one (SDM 17.3.1.1).
    this.fl &= ~RF;
    this.fetchDecode();
    HANDLERS[this.w0 & 0x7ff](this);
    this.icount++;
    // The instruction completed: a shadow set before it expires (SDM 6.8.3).
    if (shadow) st.interruptibility &= ~shadow;
    this.modeFlagsChanged();
    let dr6 = this.pendingDr6;
    this.pendingDr6 = 0;
    // Single-step traps after an instruction that began with TF set, unless the instruction
    // itself delivered an event (INT n, exceptions: the handler starts with TF clear, SDM 17.3.1.4).
    if (tfBefore && !this.eventDelivered) dr6 |= 0x4000;
    this.eventDelivered = 0;
    if (dr6 && st.activityState === ActivityState.ACTIVE) {
      this.curRip = st.rip;
      deliverException(this, DB_VECTOR, -1, dr6, 0);
    }
  }

  /**
   * DR7 breakpoint match for an access of `size` bytes at `la`; kind 0 = instruction, 1 = write,
   * 3 = read/write (SDM 17.2.4, 17.2.5). Returns the DR6 B0-B3 bits of the matching enabled breakpoints.
   */
  matchBreakpoints(la: number, size: number, kind: number): number {
    const dr = this.state.dr;
    const dr7 = dr[7];
    let hit = 0;
    for (let i = 0; i < 4; i++) {
      if (!((dr7 >>> (i * 2)) & 3)) continue;
      const rw = (dr7 >>> (16 + i * 4)) & 3;
      const len = [1, 2, 8, 4][(dr7 >>> (18 + i * 4)) & 3];
      if (kind === 0) { if (rw !== 0) continue; if (dr[i] === la) hit |= 1 << i; continue; }
      if (rw === 0 || rw === 2 || (rw === 1 && kind !== 1)) continue;
      const b = Math.floor(dr[i] / len) * len;
      if (la < b + len && la + size > b) hit |= 1 << i;
    }
    return hit;
  }

  /** Raise a fault for the current instruction (unwinds to run()). */
  raise(vector: number, errorCode: number): never {
    this.faultVec = vector;
    this.faultErr = errorCode;
    this.faultExtra = 0;
    throw FAULT;
  }

  /** #UD for an opcode the core does not implement, recorded in lastUnimplemented. */
  unimplemented(code: number): never {
    this.lastUnimplemented = code;
    return this.raise(6, -1);
  }

  /** Deliver an event through the IDT of the current mode as VM-entry event injection does (SDM 27.6). */
  deliverEvent(vector: number, type: number, errorCode: number, insnLen: number): void {
    this.curRip = this.state.rip;
    if (this.state.activityState === ActivityState.HLT) this.state.activityState = ActivityState.ACTIVE;
    deliverEvent(this, vector, type, errorCode, insnLen);
  }

  // ---- TLB maintenance (mmu.ts holds the arrays' layout) ----
  // Each flush also forgets the remembered code page, and ends the run loop's block (which keeps a copy of it).
  tlbFlushAll(): void { tlbFlushAllSets(this); this.fLo = NaN; this.breakLoop = 1; }
  tlbFlushNonGlobal(): void { tlbFlushNonGlobalSets(this); this.fLo = NaN; this.breakLoop = 1; }
  tlbFlushPage(linearAddr: number): void { tlbFlushPageSets(this, linearAddr); this.fLo = NaN; this.breakLoop = 1; }
  /** PCIDs are not tagged in the software TLB, so a PCID flush drops every non-global entry (a superset, which the SDM allows). */
  tlbFlushPcid(_pcid: number): void { tlbFlushNonGlobalSets(this); this.fLo = NaN; this.breakLoop = 1; }

  /** CodeWatcher: stop writing frame `pfn` through the TLB (some processor caches code from it). */
  dropCodeWrites(pfn: number): void {
    this.tlbUser.dropWrites(pfn);
    this.tlbSup.dropWrites(pfn);
  }

  /** Leave PhysMem's code-coherence registry (the processor of a freed vCPU). */
  release(): void {
    this.physmem.removeCodeWatcher(this);
  }

  /**
   * CodeWatcher: drop cached decoded instructions of one host frame. Called through
   * PhysMem.codeWritten() for a store from any processor, the host or a device.
   */
  invalidateCode(pfn: number): void {
    if (pfn < 0 || pfn >= this.hasCode.length || !this.hasCode[pfn]) return;
    this.hasCode[pfn] = 0;
    const base = ((pfn * 4096) & DCACHE_MASK) & ~4095;
    this.dcTag.fill(NaN, base, base + 4096);
    this.blocks.invalidateRegion(base);
    // The instruction in flight may have rewritten code of its own block: the block ends here.
    this.breakLoop = 1;
  }

  readMsr(msr: number, out: Int32Array): boolean { return readMsr(this, msr, out); }
  writeMsr(msr: number, lo: number, hi: number): boolean { return writeMsr(this, msr, lo, hi); }
  cpuid(leaf: number, subleaf: number, out: Int32Array): void { cpuid(this, leaf, subleaf, out); }

  /** Current TSC as a double (exact below 2^53). */
  tsc(): number {
    return Math.floor(this.clockNs() * this.tscKhz / 1e6) + this.tscAdjust;
  }
}

