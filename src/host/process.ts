/**
 * The host machine and its processes: `createHost()` builds the physical memory, the page
 * allocator and the clock; `host.createProcess()` gives a process (pid, address space, its main
 * thread's signal state, the clock) — what a VMM is when it opens /dev/kvm.
 */
import { PhysMem, CHUNK_SIZE } from "../hw/physmem.js";
import { type HostClock, MonotonicClock, TimerQueue } from "./clock.js";
import { FdTable } from "./file.js";
import { MmStruct } from "./mm.js";
import { PageAllocator } from "./page_alloc.js";
import { HostTask } from "./signal.js";

export interface HostOptions {
  /** Installed host RAM in bytes (rounded up to 2 MiB). Default 4 GiB: costs nothing until touched. */
  memBytes?: number;
  /** Clock; a MonotonicClock by default (pass a VirtualClock for deterministic runs). */
  clock?: HostClock;
  /** First pid handed out (default 1000). */
  firstPid?: number;
}

export class HostProcess {
  /** Name shown in traces (task->comm), at most 15 characters as in Linux. */
  comm: string;
  readonly mm: MmStruct;
  /** The main thread; vCPU threads may get their own via newTask(). */
  readonly task: HostTask;
  /** Open files (descriptors of /dev/kvm, VMs, vCPUs, stats, eventfds ...). */
  readonly files = new FdTable();
  private nextTid: number;

  constructor(
    readonly host: Host,
    readonly pid: number,
    comm: string,
  ) {
    this.comm = comm.slice(0, 15);
    this.mm = new MmStruct(host.pageAlloc);
    this.task = new HostTask(pid, host.clock);
    this.nextTid = pid + 1;
  }

  get clock(): HostClock {
    return this.host.clock;
  }

  /** A new thread in this process (its own signal state), e.g. one per vCPU. */
  newTask(): HostTask {
    return new HostTask(this.host.allocPid(this.nextTid++), this.host.clock);
  }

  /** exit(): tear the address space down. */
  exit(): void {
    this.mm.destroy();
  }
}

export class Host {
  readonly physmem: PhysMem;
  readonly pageAlloc: PageAllocator;
  readonly clock: HostClock;
  /** Host-wide hrtimer queue, on `clock`. */
  readonly timers: TimerQueue;
  private nextPid: number;
  private readonly usedPids = new Set<number>();

  constructor(opts: HostOptions = {}) {
    const bytes = Math.ceil((opts.memBytes ?? 4 * 1024 ** 3) / CHUNK_SIZE) * CHUNK_SIZE;
    this.physmem = new PhysMem(bytes);
    this.pageAlloc = new PageAllocator(this.physmem);
    this.clock = opts.clock ?? new MonotonicClock();
    this.timers = new TimerQueue(this.clock);
    this.nextPid = opts.firstPid ?? 1000;
  }

  /** fork()+exec() of a process named `comm`. */
  createProcess(comm = "tskvm"): HostProcess {
    let pid = this.nextPid;
    while (this.usedPids.has(pid)) pid++;
    this.usedPids.add(pid);
    // Leave room for a handful of thread ids after each pid, as Linux numbers threads from the same space.
    this.nextPid = pid + 64;
    return new HostProcess(this, pid, comm);
  }

  /** @internal pid/tid bookkeeping. */
  allocPid(want: number): number {
    while (this.usedPids.has(want)) want++;
    this.usedPids.add(want);
    return want;
  }
}

/** Build a host machine. */
export function createHost(opts: HostOptions = {}): Host {
  return new Host(opts);
}
