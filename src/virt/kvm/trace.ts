/**
 * KVM tracepoints (include/trace/events/kvm.h, arch/x86/kvm/trace.h): the events, their fields,
 * and their TP_printk text, formatted in exactly one place (`formatTraceEvent`).
 *
 * Emitters call `kvm.trace(name, fields, vcpu)` only when `kvm.tracing` is true, so the hot path
 * costs one property read when nobody listens. Subscribers receive `TraceEvent` records; the
 * `ftraceSubscriber` turns them into trace_pipe-style lines:
 *   "        tskvm-1000    [000] ....     0.000123: kvm_exit: vcpu 0 reason IO_INSTRUCTION rip 0x1000 ..."
 *
 * Field names per event (what emitters pass), as in the TP_STRUCT__entry of the real event:
 *   kvm_entry          { vcpu_id, rip }
 *   kvm_exit           { vcpu_id, exit_reason, guest_rip, info1, info2, intr_info, error_code, isa? (1 VMX default, 2 SVM) }
 *   kvm_pio            { rw (0 in, 1 out), port, size, count, val }
 *   kvm_mmio           { type (0 unsatisfied-read, 1 read, 2 write), len, gpa, val }
 *   kvm_fast_mmio      { gpa }
 *   kvm_userspace_exit { reason, errno (0 or negative errno) }
 *   kvm_hypercall      { nr, a0, a1, a2, a3 }
 *   kvm_page_fault     { vcpu_id, guest_rip, fault_address, error_code }
 *   kvm_set_irq        { gsi, level, irq_source_id }
 *   kvm_msr            { write (bool/0/1), ecx, data, exception (bool) }
 *   kvm_cpuid          { function, index, rax, rbx, rcx, rdx, found, used_max_basic }
 *   kvm_inj_virq       { vector (or irq), soft, reinjected }
 *   kvm_emulate_insn   { csbase, rip, insn (hex string or byte count + bytes), mode (string or number), failed }
 *   kvm_fpu            { load }
 *   kvm_ple_window_update { vcpu_id, new, old }
 *   kvm_vcpu_wakeup    { ns, waited, valid }
 *   kvm_halt_poll_ns   { grow, vcpu_id, new, old }
 *   kvm_apic           { rw, reg, val }
 *   kvm_dirty_ring_push { index, dirty_index, reset_index, slot, offset }
 * Any other event prints its fields as "name=value" pairs.
 */
import { KVM_EXIT_NAMES } from "../../uapi/kvm.js";
import { VMX_EXIT_REASON_NAMES, VMX_EXIT_REASONS_FAILED_VMENTRY } from "../../uapi/vmx.js";
import { EINTR } from "../../uapi/errno.js";

export type TraceValue = number | string | bigint | boolean;
export type TraceFields = Record<string, TraceValue>;

export interface TraceEvent {
  readonly name: string;
  readonly fields: TraceFields;
  /** Host clock time in ns. */
  readonly tsNs: number;
  readonly pid: number;
  readonly comm: string;
  /** Host CPU the event happened on (single CPU here). */
  readonly cpu: number;
  /** vcpu_id when the event belongs to a vCPU, else -1. */
  readonly vcpuId: number;
}

export type TraceFilter = null | readonly string[] | ((name: string) => boolean);
export type TraceCallback = (ev: TraceEvent) => void;

interface Sub {
  match: (name: string) => boolean;
  cb: TraceCallback;
}

/** The tracing "instance" a KvmDev owns: subscribers and a cheap `enabled` flag. */
export class KvmTracer {
  private subs: Sub[] = [];
  /** True while at least one subscriber listens (checked by `kvm.tracing`). */
  enabled = false;

  /**
   * Listen to events whose name passes `filter` (null = all; a list of names, each may end in
   * "*" as a prefix wildcard like "kvm_*"; or a predicate). Returns the unsubscribe function.
   */
  subscribe(filter: TraceFilter, cb: TraceCallback): () => void {
    const s: Sub = { match: compileFilter(filter), cb };
    this.subs = [...this.subs, s];
    this.enabled = true;
    return () => {
      this.subs = this.subs.filter((x) => x !== s);
      this.enabled = this.subs.length > 0;
    };
  }

  emit(ev: TraceEvent): void {
    for (const s of this.subs) if (s.match(ev.name)) s.cb(ev);
  }
}

function compileFilter(filter: TraceFilter): (name: string) => boolean {
  if (filter === null) return () => true;
  if (typeof filter === "function") return filter;
  const exact = new Set(filter.filter((f) => !f.endsWith("*")));
  const prefixes = filter.filter((f) => f.endsWith("*")).map((f) => f.slice(0, -1));
  return (n) => exact.has(n) || prefixes.some((p) => n.startsWith(p));
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers (printf conversions used by the TP_printk strings)
// ---------------------------------------------------------------------------------------------

const M64 = (1n << 64n) - 1n;

/** Value as an unsigned 64-bit bigint (numbers and bigints; negatives wrap as in C). */
function u64(v: TraceValue | undefined): bigint {
  if (v === undefined) return 0n;
  if (typeof v === "bigint") return v & M64;
  if (typeof v === "boolean") return v ? 1n : 0n;
  if (typeof v === "string") return BigInt(v) & M64;
  return BigInt(Math.trunc(v)) & M64;
}
/** %x / %lx / %llx */
const hex = (v: TraceValue | undefined): string => u64(v).toString(16);
/** %0Nx / %0Nllx */
const hexPad = (v: TraceValue | undefined, n: number): string => hex(v).padStart(n, "0");
/** %x of a 32-bit value */
const hex32 = (v: TraceValue | undefined): string => (u64(v) & 0xffffffffn).toString(16);
/** %u / %d */
const dec = (v: TraceValue | undefined): string => (typeof v === "bigint" ? v.toString() : String(Number(v ?? 0)));
const truthy = (v: TraceValue | undefined): boolean => v !== undefined && v !== 0 && v !== false && v !== 0n && v !== "";

const KVM_ISA_VMX = 1;
const MMIO_TYPES = ["unsatisfied-read", "read", "write"];
const EMUL_MODES: Record<number, string> = { 0: "real", 1: "vm16", 2: "prot16", 3: "prot32", 4: "prot64" };

/** kvm_print_exit_reason(): VMX flags, then the symbolic basic reason. */
function exitReasonText(reason: number, isa: number): string {
  if (isa !== KVM_ISA_VMX) return String(reason);
  const basic = reason & 0xffff;
  const flags = (reason & VMX_EXIT_REASONS_FAILED_VMENTRY) !== 0 ? "FAILED_VMENTRY " : "";
  return flags + (VMX_EXIT_REASON_NAMES[basic] ?? `0x${basic.toString(16)}`);
}

type Printer = (f: TraceFields) => string;

/** TP_printk of each known event. */
const PRINTERS: Record<string, Printer> = {
  kvm_entry: (f) => `vcpu ${dec(f.vcpu_id)}, rip 0x${hex(f.rip)}`,
  kvm_exit: (f) =>
    `vcpu ${dec(f.vcpu_id)} reason ${exitReasonText(Number(f.exit_reason ?? 0) >>> 0, Number(f.isa ?? KVM_ISA_VMX))}` +
    ` rip 0x${hex(f.guest_rip)} info1 0x${hexPad(f.info1, 16)} info2 0x${hexPad(f.info2, 16)}` +
    ` intr_info 0x${hexPad(u64(f.intr_info) & 0xffffffffn, 8)} error_code 0x${hexPad(u64(f.error_code) & 0xffffffffn, 8)}`,
  kvm_pio: (f) =>
    `pio_${truthy(f.rw) ? "write" : "read"} at 0x${hex32(f.port)} size ${dec(f.size)} count ${dec(f.count)} val 0x${hex32(f.val)} ${Number(f.count ?? 1) > 1 ? "(...)" : ""}`,
  kvm_mmio: (f) => `mmio ${MMIO_TYPES[Number(f.type ?? 0)] ?? dec(f.type)} len ${dec(f.len)} gpa 0x${hex(f.gpa)} val 0x${hex(f.val)}`,
  kvm_fast_mmio: (f) => `fast mmio at gpa 0x${hex(f.gpa)}`,
  kvm_userspace_exit: (f) => {
    const errno = Number(f.errno ?? 0);
    const reason = Number(f.reason ?? 0);
    if (errno < 0) return `reason ${errno === -EINTR ? "restart" : "error"} (${-errno})`;
    return `reason ${KVM_EXIT_NAMES[reason] ?? reason} (${reason})`;
  },
  kvm_hypercall: (f) => `nr 0x${hex(f.nr)} a0 0x${hex(f.a0)} a1 0x${hex(f.a1)} a2 0x${hex(f.a2)} a3 0x${hex(f.a3)}`,
  kvm_page_fault: (f) => `vcpu ${dec(f.vcpu_id)} rip 0x${hex(f.guest_rip)} address 0x${hexPad(f.fault_address, 16)} error_code 0x${hex(f.error_code)}`,
  kvm_set_irq: (f) => `gsi ${dec(f.gsi)} level ${dec(f.level)} source ${dec(f.irq_source_id)}`,
  kvm_msr: (f) => `msr_${truthy(f.write) ? "write" : "read"} ${hex32(f.ecx)} = 0x${hex(f.data)}${truthy(f.exception) ? " (#GP)" : ""}`,
  kvm_cpuid: (f) =>
    `func ${hex32(f.function)} idx ${hex32(f.index)} rax ${hex(f.rax)} rbx ${hex(f.rbx)} rcx ${hex(f.rcx)} rdx ${hex(f.rdx)}, cpuid entry ${truthy(f.found) ? "found" : "not found"}${truthy(f.used_max_basic) ? ", used max basic" : ""}`,
  kvm_inj_virq: (f) => `${truthy(f.soft) ? "Soft/INTn" : "IRQ"} 0x${hex32(f.vector ?? f.irq)}${truthy(f.reinjected) ? " [reinjected]" : ""}`,
  kvm_emulate_insn: (f) => {
    const mode = typeof f.mode === "string" ? f.mode : (EMUL_MODES[Number(f.mode ?? 0)] ?? dec(f.mode));
    const insn = typeof f.insn === "string" ? f.insn : "";
    return `${hex32(f.csbase)}:${hex(f.rip)}:${insn} (${mode})${truthy(f.failed) ? " failed" : ""}`;
  },
  kvm_fpu: (f) => (truthy(f.load) ? "load" : "unload"),
  kvm_ple_window_update: (f) =>
    `vcpu ${dec(f.vcpu_id)} old ${dec(f.old)} new ${dec(f.new)} (${Number(f.old) < Number(f.new) ? "growed" : "shrinked"})`,
  kvm_vcpu_wakeup: (f) => `${truthy(f.waited) ? "wait" : "poll"} time ${dec(f.ns)} ns, polling ${truthy(f.valid) ? "valid" : "invalid"}`,
  kvm_halt_poll_ns: (f) => `vcpu ${dec(f.vcpu_id)}: halt_poll_ns ${dec(f.new)} (${truthy(f.grow) ? "grow" : "shrink"} ${dec(f.old)})`,
  kvm_apic: (f) => `apic_${truthy(f.rw) ? "write" : "read"} ${typeof f.reg === "string" ? f.reg : "0x" + hex32(f.reg)} = 0x${hex32(f.val)}`,
  kvm_dirty_ring_push: (f) =>
    `ring 0x${hex(f.ring)}: dirty 0x${hex32(f.dirty_index)} reset 0x${hex32(f.reset_index)} slot ${dec(f.slot)} offset 0x${hex(f.offset)} (used ${dec(Number(f.dirty_index ?? 0) - Number(f.reset_index ?? 0))})`,
};

/** The TP_printk text of an event (without the ftrace line prefix). */
export function formatTraceEvent(name: string, fields: TraceFields): string {
  const p = PRINTERS[name];
  if (p) return p(fields);
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === "number" || typeof v === "bigint" ? "0x" + hex(v) : String(v)}`)
    .join(" ");
}

/** Names of events with a dedicated TP_printk. */
export const KNOWN_TRACE_EVENTS: readonly string[] = Object.keys(PRINTERS);

/** One trace_pipe line: "<comm>-<pid> [cpu] flags secs.usecs: name: text". */
export function formatFtraceLine(ev: TraceEvent): string {
  const task = `${ev.comm}-${ev.pid}`.padStart(16);
  const us = Math.floor(ev.tsNs / 1000);
  const ts = `${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, "0")}`.padStart(12);
  return `${task} [${String(ev.cpu).padStart(3, "0")}] .... ${ts}: ${ev.name}: ${formatTraceEvent(ev.name, ev.fields)}`;
}

/** A subscriber callback that writes ftrace-style lines to `write`. */
export function ftraceSubscriber(write: (line: string) => void): TraceCallback {
  return (ev) => write(formatFtraceLine(ev));
}
