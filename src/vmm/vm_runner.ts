/**
 * Drives a PcMachine's vCPUs on one host thread: each vCPU runs for a time slice (an alarm
 * makes KVM_RUN return with KVM_EXIT_INTR / EINTR, api.rst "KVM_RUN"), exits are handled,
 * and between slices the host gets control back (stdin, timers, the monitor). The VM's
 * lifecycle is an explicit state machine: running <-> paused -> finished; a guest reset
 * rebuilds the machine from its configuration unless -no-reboot.
 */
import { KvmError } from "../virt/kvm/kvm_error.js";
import { VmmError } from "./error.js";
import { handleExit, isRetry, ExitAction } from "./vcpu_run.js";
import type { MachineEnd, PcMachine } from "./machine/pc.js";

export type VmState = "running" | "paused" | "finished";

export interface RunnerOptions {
  noReboot: boolean;
  startPaused: boolean;
  /** Length of one vCPU time slice in host ns. */
  sliceNs?: number;
  /** Give the host event loop a turn (setImmediate in Node, a message-channel tick in browsers). */
  yieldToHost(): Promise<void>;
  /** Called when a guest reset rebuilds the machine. */
  onReset?(m: PcMachine, why: string): void;
  /** Called with kvm_run.exit_reason after every KVM_RUN (for statistics). */
  onExit?(reason: number): void;
}

export class VmRunner {
  state: VmState;
  machine: PcMachine;
  /** Per vCPU: parked on HLT with nothing to wake it. */
  halted: boolean[];
  resets = 0;
  private wake: (() => void) | null = null;
  private quitRequest: MachineEnd | null = null;
  private resetRequest = false;

  constructor(
    private readonly build: () => PcMachine,
    private readonly opts: RunnerOptions,
  ) {
    this.machine = build();
    this.halted = this.machine.vcpus.map(() => false);
    this.state = opts.startPaused ? "paused" : "running";
  }

  /** Monitor 'stop'. */
  pause(): void {
    if (this.state === "running") this.state = "paused";
  }

  /** Monitor 'cont'. */
  resume(): void {
    if (this.state !== "paused") return;
    this.state = "running";
    this.kick();
  }

  /** True once the VM has ended or been asked to. */
  get ending(): boolean {
    return this.state === "finished" || this.quitRequest !== null;
  }

  /** Monitor 'quit' / Ctrl-a x. */
  quit(message = "quit requested"): void {
    this.quitRequest = { kind: "quit", status: 0, message };
    this.kick();
  }

  /** Monitor 'system_reset'. */
  systemReset(): void {
    this.resetRequest = true;
    this.kick();
  }

  private kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Run until the machine ends; returns how. */
  async run(): Promise<MachineEnd> {
    // One vCPU: the slice only bounds how long the host waits for its turn (10 ms). Several: a
    // vCPU spinning on another (IPIs, stop_machine, spinlocks) wastes the rest of its slice while
    // the other cannot run on this one host thread, so slices are short (1 ms); a 2-vCPU Linux
    // boot to shell: 54 s with 10 ms, 34 s with 2 ms, 30 s with 0.5 ms (one vCPU: 23 s either way).
    const slice = this.opts.sliceNs ?? (this.machine.vcpus.length > 1 ? 1_000_000 : 10_000_000);
    for (;;) {
      if (this.quitRequest) return this.finish(this.quitRequest);
      if (this.resetRequest) {
        this.resetRequest = false;
        this.reboot("system_reset");
        continue;
      }
      if (this.state === "paused") {
        await new Promise<void>((r) => { this.wake = r; });
        continue;
      }
      const m = this.machine;
      let anyRan = false;
      for (let i = 0; i < m.vcpus.length && !m.pendingEnd; i++) {
        if (this.halted[i]) continue;
        anyRan = true;
        const action = this.runSlice(i, slice);
        if (action === ExitAction.Halted) this.halted[i] = true;
      }
      const end = m.pendingEnd;
      if (end) {
        m.pendingEnd = null;
        if ((end.kind === "reset" || end.kind === "shutdown") && !this.opts.noReboot) {
          this.reboot(end.message);
          continue;
        }
        return this.finish(end);
      }
      if (!anyRan) {
        return this.finish({ kind: "halted", status: 0, message: "all vCPUs halted with no interrupt controller to wake them" });
      }
      await this.opts.yieldToHost();
    }
  }

  /** One KVM_RUN and its exit. */
  private runSlice(i: number, sliceNs: number): ExitAction {
    const m = this.machine;
    const vcpu = m.vcpus[i]!;
    const task = m.proc.task;
    task.alarmAt(m.proc.clock.nowNs() + sliceNs);
    try {
      vcpu.run();
    } catch (e) {
      // -EINTR (our slice alarm, a kick, immediate_exit) or -EAGAIN (an AP between INIT and
      // SIPI): kvm_run describes no new exit; run it again in a later round.
      if (isRetry(e)) return ExitAction.Continue;
      m.pendingEnd = { kind: "error", status: 1, message: `vCPU ${i}: KVM_RUN failed: ${e instanceof Error ? e.message : String(e)}` };
      return ExitAction.End;
    } finally {
      task.cancelAlarm();
      while (task.dequeueSignal() !== 0) { /* the alarm (or a kick) has done its job */ }
    }
    this.opts.onExit?.(vcpu.kvmRun.exitReason);
    return handleExit(m, vcpu.kvmRun, i);
  }

  private reboot(why: string): void {
    this.resets++;
    this.machine.destroy();
    try {
      this.machine = this.build();
    } catch (e) {
      if (e instanceof VmmError || e instanceof KvmError) throw new VmmError(`reset failed: ${e.message}`);
      throw e;
    }
    this.halted = this.machine.vcpus.map(() => false);
    this.opts.onReset?.(this.machine, why);
  }

  private finish(end: MachineEnd): MachineEnd {
    this.state = "finished";
    return end;
  }
}
