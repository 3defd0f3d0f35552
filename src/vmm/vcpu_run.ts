/**
 * The vCPU run loop (kvmtool's kvm_cpu__start, QEMU's kvm_cpu_exec): KVM_RUN, then switch on
 * kvm_run.exit_reason. PIO and MMIO go to the userspace buses; HLT (no in-kernel irqchip)
 * parks the vCPU; SHUTDOWN, SYSTEM_EVENT and device requests end or reset the machine;
 * INTERNAL_ERROR and FAIL_ENTRY are reported with their data; INTR (a signal: our time slice
 * alarm, or a kick) returns to the host so it can service timers, stdin and the monitor.
 *
 * `handleExit` is a free function over a small context so tests can feed it made-up exits.
 */
import { EAGAIN, EINTR } from "../uapi/errno.js";
import {
  KVM_EXIT_DEBUG, KVM_EXIT_FAIL_ENTRY, KVM_EXIT_HLT, KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_INTR, KVM_EXIT_IO,
  KVM_EXIT_IO_OUT, KVM_EXIT_IRQ_WINDOW_OPEN, KVM_EXIT_MMIO, KVM_EXIT_NAMES, KVM_EXIT_SHUTDOWN, KVM_EXIT_SYSTEM_EVENT,
  KVM_INTERNAL_ERROR_DELIVERY_EV, KVM_INTERNAL_ERROR_EMULATION, KVM_INTERNAL_ERROR_SIMUL_EX,
  KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN,
} from "../uapi/kvm.js";
import type { KvmRun } from "../uapi/kvm_run.js";
import type { IoBus } from "./io_bus.js";
import type { MachineEnd } from "./machine/pc.js";

export const enum ExitAction {
  /** Re-enter the guest. */
  Continue = 0,
  /** This vCPU halted and waits for an interrupt the machine cannot deliver. */
  Halted = 1,
  /** The machine is ending (see ExitContext.end). */
  End = 2,
}

export interface ExitContext {
  readonly pio: IoBus;
  readonly mmio: IoBus;
  pendingEnd: MachineEnd | null;
  warnOnce(msg: string): void;
}

const SUBERRORS: Record<number, string> = {
  [KVM_INTERNAL_ERROR_EMULATION]: "emulation failure",
  [KVM_INTERNAL_ERROR_SIMUL_EX]: "simultaneous exceptions",
  [KVM_INTERNAL_ERROR_DELIVERY_EV]: "event delivery failed",
  4: "unexpected exit reason",
};

export function exitName(reason: number): string {
  return KVM_EXIT_NAMES[reason] ?? `unknown (${reason})`;
}

/** One exit. `vcpuId` is only for messages. */
export function handleExit(ctx: ExitContext, run: KvmRun, vcpuId: number): ExitAction {
  const reason = run.exitReason;
  switch (reason) {
    case KVM_EXIT_IO: {
      const size = run.ioSize, count = run.ioCount, port = run.ioPort;
      const data = run.ioData();
      const out = run.ioDirection === KVM_EXIT_IO_OUT;
      for (let i = 0; i < count; i++) {
        const d = data.subarray(i * size, (i + 1) * size);
        if (out) ctx.pio.write(port, d, size);
        else ctx.pio.read(port, d, size);
      }
      break;
    }
    case KVM_EXIT_MMIO: {
      const len = run.mmioLen;
      if (run.mmioIsWrite) ctx.mmio.write(run.mmioPhysAddr, run.mmioData, len);
      else ctx.mmio.read(run.mmioPhysAddr, run.mmioData, len);
      break;
    }
    case KVM_EXIT_INTR:
    case KVM_EXIT_IRQ_WINDOW_OPEN:
      break;
    case KVM_EXIT_HLT:
      return ExitAction.Halted;
    case KVM_EXIT_SHUTDOWN:
      ctx.pendingEnd = { kind: "shutdown", status: 0, message: `vCPU ${vcpuId}: shutdown (triple fault)` };
      return ExitAction.End;
    case KVM_EXIT_SYSTEM_EVENT: {
      const t = run.systemEventType;
      if (t === KVM_SYSTEM_EVENT_SHUTDOWN) ctx.pendingEnd = { kind: "poweroff", status: 0, message: "guest powered off (system event)" };
      else if (t === KVM_SYSTEM_EVENT_RESET) ctx.pendingEnd = { kind: "reset", status: 0, message: "guest reset (system event)" };
      else if (t === KVM_SYSTEM_EVENT_CRASH) ctx.pendingEnd = { kind: "error", status: 1, message: `vCPU ${vcpuId}: guest crashed (system event CRASH)${eventData(run)}` };
      else {
        ctx.warnOnce(`vCPU ${vcpuId}: system event type ${t} ignored`);
        break;
      }
      return ExitAction.End;
    }
    case KVM_EXIT_INTERNAL_ERROR: {
      const sub = run.internalSuberror;
      const n = Math.min(run.internalNdata, 16);
      const lines = [`KVM internal error. Suberror: ${sub} (${SUBERRORS[sub] ?? "unknown"})`];
      for (let i = 0; i < n; i++) lines.push(`extra data[${i}]: 0x${run.internalData(i).toString(16).padStart(16, "0")}`);
      ctx.pendingEnd = { kind: "error", status: 1, message: `vCPU ${vcpuId}: ${lines.join("\n")}` };
      return ExitAction.End;
    }
    case KVM_EXIT_FAIL_ENTRY:
      ctx.pendingEnd = {
        kind: "error", status: 1,
        message: `vCPU ${vcpuId}: KVM_EXIT_FAIL_ENTRY: hardware entry failure reason 0x${run.failEntryHardwareEntryFailureReasonBig.toString(16)} (cpu ${run.failEntryCpu})`,
      };
      return ExitAction.End;
    case KVM_EXIT_DEBUG:
      ctx.pendingEnd = { kind: "error", status: 1, message: `vCPU ${vcpuId}: debug exit (exception ${run.debugException}, pc 0x${run.debugPcBig.toString(16)}) without guest debugging enabled` };
      return ExitAction.End;
    default:
      ctx.pendingEnd = { kind: "error", status: 1, message: `vCPU ${vcpuId}: unhandled exit reason ${reason} (${exitName(reason)})` };
      return ExitAction.End;
  }
  return ctx.pendingEnd ? ExitAction.End : ExitAction.Continue;
}

function eventData(run: KvmRun): string {
  const n = Math.min(run.systemEventNdata, 16);
  const d: string[] = [];
  for (let i = 0; i < n; i++) d.push(`0x${run.systemEventData(i).toString(16)}`);
  return d.length ? ` data ${d.join(" ")}` : "";
}

/**
 * Whether KVM_RUN only says "not now, run me again": EINTR, or the EAGAIN of an AP that woke
 * without becoming runnable (INIT received, SIPI still to come: kvm_arch_vcpu_ioctl_run).
 * QEMU's kvm_cpu_exec treats both alike.
 */
export function isRetry(e: unknown): boolean {
  if (typeof e !== "object" || e === null) return false;
  const errno = (e as { errno?: unknown }).errno;
  return errno === EINTR || errno === EAGAIN;
}
