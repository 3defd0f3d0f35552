// `tskvm run` / `demo` / `stat`: read the images, build the PC machine over KVM, wire the
// terminal, trace and stats, run until the guest ends, and turn the ending into an exit status.
import { readFileSync, createWriteStream, type WriteStream } from "node:fs";
import { parseStatsFd } from "../virt/kvm/binary_stats.js";
import { ftraceSubscriber } from "../virt/kvm/trace.js";
import { KVM_EXIT_NAMES } from "../uapi/kvm.js";
import { PcMachine, type MachineEnd, type PcConfig } from "../vmm/machine/pc.js";
import { Monitor } from "../vmm/monitor.js";
import { VmRunner } from "../vmm/vm_runner.js";
import type { BootFile } from "../vmm/loader/options.js";
import { CliError, type RunOptions } from "./args.js";
import type { KvmSystemApi } from "../vmm/kvm_api.js";
import { openBackend } from "./backend.js";
import { Console, SerialSink } from "./console.js";
import { icedDisassembler } from "./disasm.js";

function readBootFile(path: string, what: string): BootFile {
  try {
    return { name: path, data: new Uint8Array(readFileSync(path)) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(`${what} '${path}': ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (e as Error).message}`);
  }
}

export interface RunExtras {
  /** Images given directly (demo) instead of from files; may depend on what KVM offers. */
  flat?: (kvm: KvmSystemApi) => PcConfig["flat"];
  /** tskvm stat: print counters (live every `statInterval` s if > 0, and at the end). */
  stat?: boolean;
}

export async function runVm(o: RunOptions, extras: RunExtras = {}): Promise<number> {
  const cfg: PcConfig = {
    ramBytes: o.ramBytes,
    nrCpus: o.smp,
    kernel: o.kernel ? readBootFile(o.kernel, "-kernel") : null,
    initrds: o.initrd.map((f) => readBootFile(f.split(" ")[0]!, "-initrd")).map((f, i) => ({ ...f, name: o.initrd[i]! })),
    cmdline: o.append,
    flat: o.loaders.map((l) => ({ file: readBootFile(l.file, "-device loader"), addr: l.addr, mode: l.mode })),
    isaDebugExit: o.isaDebugExit,
    pcTestdev: o.pcTestdev,
    pciTestdev: o.pciTestdev,
  };
  const { kvm, proc } = await openBackend(o.ramBytes);
  if (extras.flat) cfg.flat = extras.flat(kvm);
  const serial = new SerialSink(o.serial);
  const host = {
    serialOut: (b: number) => serial.push(b),
    nowMs: () => Date.now(),
    warn: (msg: string) => process.stderr.write(`tskvm: warning: ${msg}\n`),
  };

  let trace: WriteStream | null = null;
  let unsubscribe: (() => void) | null = null;
  if (o.trace) {
    trace = createWriteStream(o.trace.file);
    trace.write("# tracer: nop\n#\n#           TASK-PID     CPU#  ||||   TIMESTAMP  FUNCTION\n#              | |         |   ||||      |         |\n");
    const out = trace;
    unsubscribe = kvm.subscribeTrace(o.trace.events, ftraceSubscriber((line) => out.write(line + "\n")));
  }

  const exitCounts = new Map<string, number>();
  const runner = new VmRunner(() => new PcMachine(kvm, proc, cfg, host), {
    noReboot: o.noReboot,
    startPaused: o.startPaused,
    yieldToHost: () => new Promise((r) => setImmediate(() => { serial.flush(); r(); })),
    // QEMU reboots silently; say it once so a reset loop is visible without flooding stderr.
    onReset: (_m, why) => { if (runner.resets === 1) host.warn(`${why}: rebooting (further resets are not reported)`); },
    onExit: extras.stat ? (reason) => { const n = KVM_EXIT_NAMES[reason] ?? String(reason); exitCounts.set(n, (exitCounts.get(n) ?? 0) + 1); } : undefined,
  });
  // A closed stdout (e.g. `| head`) ends the VM the way SIGPIPE ends QEMU, without a stack trace.
  const onStdoutError = (e: NodeJS.ErrnoException) => {
    serial.closed = true;
    runner.quit(`stdout: ${e.code ?? e.message}`);
  };
  process.stdout.on("error", onStdoutError);
  const monitor = new Monitor(runner, icedDisassembler);
  const con = new Console(() => runner, () => monitor, o.monitor, o.serial === "stdio");
  con.start();
  let timer: NodeJS.Timeout | null = null;
  if (extras.stat && o.statInterval > 0) {
    timer = setInterval(() => process.stderr.write((process.stderr.isTTY ? "\x1b[H\x1b[2J" : "") + statTable(runner, exitCounts) + "\n"), o.statInterval * 1000);
  }
  let end: MachineEnd;
  try {
    end = await runner.run();
  } finally {
    if (timer) clearInterval(timer);
    con.stop();
    serial.flush();
    process.stdout.off("error", onStdoutError);
    unsubscribe?.();
    if (trace) await new Promise<void>((r) => trace!.end(r));
  }
  if (extras.stat) process.stderr.write(statTable(runner, exitCounts) + "\n");
  if (end.kind === "error") {
    process.stderr.write(`tskvm: ${end.message}\n`);
    // Like QEMU after a KVM internal error: the registers of the vCPU that stopped.
    const m = /^vCPU (\d+):/.exec(end.message);
    if (m) {
      monitor.cpu = Number(m[1]);
      process.stderr.write(monitor.execute("info registers") + "\n");
    }
  }
  else if (end.kind === "shutdown" || process.env.TSKVM_VERBOSE) process.stderr.write(`tskvm: ${end.message}\n`);
  // As for any VMM, the VM and guest memory go away with the process (its fds and mappings).
  return end.status;
}

/** Per-VM and per-vCPU counters from the binary stats files (what kvm_stat reads), plus the userspace exit reasons seen. */
export function statTable(runner: VmRunner, exitCounts: Map<string, number>): string {
  const m = runner.machine;
  const lines: string[] = [];
  const vm = parseStatsFd(m.vm.getStatsFd().bytes());
  const vcpus = m.vcpus.map((v) => parseStatsFd(v.getStatsFd().bytes()));
  const scalar = (s: { values: bigint[] }) => (s.values.length === 1 ? s.values[0]! : s.values.reduce((a, b) => a + b, 0n));
  lines.push(`Event (${vm.id})`.padEnd(40) + "Total");
  for (const s of vm.stats) if (scalar(s) !== 0n) lines.push(`  ${s.name}`.padEnd(40) + scalar(s).toString());
  const names = vcpus[0]?.stats.map((s) => s.name) ?? [];
  lines.push("", "vCPU event".padEnd(40) + vcpus.map((_, i) => `vcpu${i}`.padStart(12)).join("") + "Total".padStart(12));
  names.forEach((name, k) => {
    const vals = vcpus.map((v) => scalar(v.stats[k]!));
    const tot = vals.reduce((a, b) => a + b, 0n);
    if (tot !== 0n) lines.push(`  ${name}`.padEnd(40) + vals.map((v) => v.toString().padStart(12)).join("") + tot.toString().padStart(12));
  });
  if (exitCounts.size) {
    lines.push("", "Exits to userspace (exit_reason)".padEnd(40) + "Count");
    for (const [n, c] of [...exitCounts].sort((a, b) => b[1] - a[1])) lines.push(`  ${n}`.padEnd(40) + String(c));
  }
  return lines.join("\n");
}
