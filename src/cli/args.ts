/**
 * Command-line parsing with QEMU's spelling: single-dash long options (`-m 512`, `-smp 2`,
 * `-device isa-debug-exit,iobase=0xf4,iosize=0x04`), also accepted with two dashes and as
 * `--opt=value`. Options that only make sense for QEMU's own display/accelerator choices are
 * accepted and ignored; anything unknown is a clear error (CliError), never a stack trace.
 */
import type { CpuMode } from "../vmm/loader/boot_state.js";

export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

export interface DeviceSpec {
  driver: string;
  props: Map<string, string>;
}

export interface LoaderSpec {
  file: string;
  addr: number;
  mode: CpuMode;
}

export interface RunOptions {
  ramBytes: number;
  smp: number;
  kernel: string | null;
  initrd: string[];
  append: string;
  devices: DeviceSpec[];
  loaders: LoaderSpec[];
  isaDebugExit: { iobase: number; iosize: number } | null;
  pcTestdev: boolean;
  pciTestdev: boolean;
  startPaused: boolean;
  monitor: string | null;
  serial: string;
  noReboot: boolean;
  noShutdown: boolean;
  trace: { events: string[]; file: string } | null;
  /** tskvm stat: refresh interval in seconds (0 = final table only). */
  statInterval: number;
  ignored: string[];
}

/** Options taking a value that tskvm accepts and ignores (meaningless without QEMU's display, accelerators, NICs...). */
const IGNORED_WITH_VALUE = new Set(["display", "machine", "M", "global", "cpu", "accel", "vga", "net", "name", "rtc", "boot", "k", "usbdevice", "audiodev", "uuid"]);
const IGNORED_FLAGS = new Set(["enable-kvm", "no-user-config", "nographic", "no-hpet", "no-acpi", "snapshot", "full-screen", "no-fd-bootchk", "nodefaults"]);

const KNOWN_DEVICES = "isa-debug-exit, pc-testdev, pci-testdev, loader";

export function defaultRunOptions(): RunOptions {
  return {
    ramBytes: 128 * 1024 * 1024, smp: 1, kernel: null, initrd: [], append: "", devices: [], loaders: [],
    isaDebugExit: null, pcTestdev: false, pciTestdev: false, startPaused: false, monitor: null, serial: "stdio",
    noReboot: false, noShutdown: false, trace: null, statInterval: 0, ignored: [],
  };
}

/** A size with QEMU's suffixes (no suffix = MiB for -m). */
export function parseSize(s: string, what: string, defaultUnit = 1024 * 1024): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgGtT]?)[bB]?$/.exec(s.trim());
  if (!m) throw new CliError(`${what}: invalid size '${s}'`);
  const unit = { "": defaultUnit, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase()]!;
  const v = Math.round(parseFloat(m[1]!) * unit);
  if (!(v > 0)) throw new CliError(`${what}: size must be positive`);
  return v;
}

/** An integer in C syntax (0x..., 0..., decimal). */
export function parseNumber(s: string, what: string): number {
  const t = s.trim();
  let v: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(t)) v = parseInt(t.slice(2), 16);
  else if (/^0[0-7]+$/.test(t)) v = parseInt(t, 8);
  else if (/^\d+$/.test(t)) v = parseInt(t, 10);
  else throw new CliError(`${what}: '${s}' is not a number`);
  if (!Number.isSafeInteger(v)) throw new CliError(`${what}: '${s}' is out of range`);
  return v;
}

/** "driver,key=value,key=value" (QEMU's QemuOpts with an implied first key). */
export function parseDevice(spec: string): DeviceSpec {
  const parts = spec.split(",");
  const driver = parts.shift()!.trim();
  if (!driver) throw new CliError(`-device: missing driver name in '${spec}'`);
  const props = new Map<string, string>();
  for (const p of parts) {
    const eq = p.indexOf("=");
    if (eq <= 0) throw new CliError(`-device ${driver}: expected key=value, got '${p}'`);
    props.set(p.slice(0, eq), p.slice(eq + 1));
  }
  return { driver, props };
}

function takeProps(dev: DeviceSpec, allowed: string[]): void {
  for (const k of dev.props.keys()) {
    if (!allowed.includes(k)) throw new CliError(`-device ${dev.driver}: unknown property '${k}' (known: ${allowed.join(", ") || "none"})`);
  }
}

function applyDevice(o: RunOptions, dev: DeviceSpec): void {
  switch (dev.driver) {
    case "isa-debug-exit": {
      takeProps(dev, ["iobase", "iosize"]);
      const iobase = parseNumber(dev.props.get("iobase") ?? "0x501", "isa-debug-exit iobase");
      const iosize = parseNumber(dev.props.get("iosize") ?? "0x02", "isa-debug-exit iosize");
      if (iobase + iosize > 0x10000 || iosize < 1 || iosize > 8) throw new CliError(`isa-debug-exit: bad port range 0x${iobase.toString(16)}+${iosize}`);
      o.isaDebugExit = { iobase, iosize };
      break;
    }
    case "pc-testdev":
      takeProps(dev, []);
      o.pcTestdev = true;
      break;
    case "pci-testdev":
      takeProps(dev, []);
      o.pciTestdev = true;
      break;
    case "loader": {
      takeProps(dev, ["file", "addr", "cpu-mode", "cpu-num"]);
      const file = dev.props.get("file");
      if (!file) throw new CliError("-device loader: file= is required");
      const addr = parseNumber(dev.props.get("addr") ?? "", "-device loader addr");
      const mode = dev.props.get("cpu-mode") ?? "real";
      if (mode !== "real" && mode !== "protected" && mode !== "long") throw new CliError(`-device loader: cpu-mode must be real, protected or long (got '${mode}')`);
      if ((dev.props.get("cpu-num") ?? "0") !== "0") throw new CliError("-device loader: only cpu-num=0 is supported");
      o.loaders.push({ file, addr, mode });
      break;
    }
    default:
      throw new CliError(`-device: unknown device '${dev.driver}' (available: ${KNOWN_DEVICES})`);
  }
  o.devices.push(dev);
}

/** Parse `tskvm run`'s arguments (also used by `tskvm stat`). */
export function parseRunArgs(argv: readonly string[], allowStat = false): RunOptions {
  const o = defaultRunOptions();
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    if (!raw.startsWith("-") || raw === "-") throw new CliError(`unexpected argument '${raw}' (options start with '-')`);
    let name = raw.replace(/^--?/, "");
    let inline: string | undefined;
    const eq = name.indexOf("=");
    if (raw.startsWith("--") && eq > 0) {
      inline = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new CliError(`option '-${name}' needs an argument`);
      return v;
    };
    switch (name) {
      case "m": {
        const v = value();
        const size = v.startsWith("size=") ? v.slice(5).split(",")[0]! : v.split(",")[0]!;
        o.ramBytes = parseSize(size, "-m");
        if (o.ramBytes < 2 * 1024 * 1024) throw new CliError("-m: at least 2 MiB of RAM is needed");
        if (o.ramBytes % 4096) throw new CliError("-m: RAM size must be a multiple of 4 KiB");
        break;
      }
      case "smp": {
        const v = value();
        const first = v.split(",")[0]!;
        const n = first.startsWith("cpus=") ? first.slice(5) : first;
        o.smp = parseNumber(n, "-smp");
        if (o.smp < 1 || o.smp > 255) throw new CliError("-smp: CPU count must be between 1 and 255");
        break;
      }
      case "kernel": o.kernel = value(); break;
      case "initrd": o.initrd = value().split(",").filter((s) => s.length > 0); break;
      case "append": o.append = value(); break;
      case "device": applyDevice(o, parseDevice(value())); break;
      case "S": o.startPaused = true; break;
      case "monitor": o.monitor = value(); break;
      case "serial": {
        const v = value();
        if (v !== "stdio" && v !== "none" && v !== "null" && !v.startsWith("file:")) throw new CliError(`-serial: unsupported backend '${v}' (stdio, none, file:PATH)`);
        o.serial = v;
        break;
      }
      case "no-reboot": o.noReboot = true; break;
      case "no-shutdown": o.noShutdown = true; break;
      case "trace": {
        const events = inline !== undefined ? inline.split(",").filter(Boolean) : ["kvm_*"];
        o.trace = { events, file: o.trace?.file ?? "tskvm.trace" };
        break;
      }
      case "trace-file": {
        const file = value();
        o.trace = { events: o.trace?.events ?? ["kvm_*"], file };
        break;
      }
      case "interval":
        if (!allowStat) throw new CliError("option '--interval' is only for 'tskvm stat'");
        o.statInterval = Number(value());
        if (!(o.statInterval > 0)) throw new CliError("--interval: expected a positive number of seconds");
        break;
      default:
        if (IGNORED_WITH_VALUE.has(name)) {
          o.ignored.push(`-${name} ${value()}`);
        } else if (IGNORED_FLAGS.has(name)) {
          o.ignored.push(`-${name}`);
        } else {
          throw new CliError(`unknown option '${raw}' (see 'tskvm help')`);
        }
    }
  }
  if (!o.kernel && o.loaders.length === 0) throw new CliError("nothing to run: give -kernel FILE or -device loader,file=FILE,addr=ADDR");
  if (o.initrd.length && !o.kernel) throw new CliError("-initrd needs -kernel");
  return o;
}

export const USAGE = `usage: tskvm <command> [options]

commands:
  run [options]        boot a guest (QEMU-style options, below)
  demo                 run the bundled demo guest
  stat [options]       run a guest and show KVM's per-VM / per-vCPU counters
                       (--interval SECS refreshes a live table on stderr)
  report FILE          summarise a --trace file like 'perf kvm stat report'
  help                 this text

run options:
  -m SIZE              guest RAM (default 128M; suffixes K, M, G)
  -smp N               number of vCPUs
  -kernel FILE         multiboot, PVH (vmlinux), bzImage or ELF kernel
  -initrd FILE[,FILE]  Linux initrd, or multiboot modules
  -append CMDLINE      kernel command line
  -device isa-debug-exit[,iobase=0xf4,iosize=0x04]
  -device pc-testdev | pci-testdev
  -device loader,file=FILE,addr=GPA[,cpu-mode=real|protected|long]
  -S                   start with the vCPUs stopped (use the monitor's 'cont')
  -monitor stdio|unix:PATH[,server,nowait]|none
  -serial stdio|none|file:PATH   (default stdio: guest serial is the only thing on stdout)
  -no-reboot           end instead of rebooting on a guest reset / triple fault
  --trace[=EVENTS]     write ftrace text of KVM's tracepoints (default all kvm_*)
  --trace-file FILE    where to write it (default tskvm.trace)
  accepted and ignored: -display, -machine, -cpu, -global, -accel, -enable-kvm, -nographic,
  -nodefaults, -vga, -net, -name, -rtc, -no-user-config

Ctrl-a c switches between the guest console and the monitor; Ctrl-a x quits.`;
