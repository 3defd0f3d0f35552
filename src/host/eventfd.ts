/**
 * eventfd(2) (fs/eventfd.c): a 64-bit counter that write() adds to and read() drains, with
 * a wait-queue so in-kernel users (irqfd, vhost) are called back instead of sleeping in a
 * thread. An eventfd is a file of its process (host/file.ts), so ioctl structs carry it as a
 * plain descriptor, as in C (struct kvm_irqfd.fd), and closing the last descriptor hangs up.
 *
 * Single-threaded: callbacks run synchronously inside write()/signal(). A SharedArrayBuffer +
 * Atomics variant for worker vCPUs is not built yet.
 */
import { EAGAIN, EINVAL } from "../uapi/errno.js";
import { HostError } from "./errors.js";
import type { FdTable, HostFile } from "./file.js";

export const EFD_SEMAPHORE = 1;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

/** Poll events passed to waiters (include/uapi/linux/eventpoll.h). */
export const EPOLLIN = 0x001;
export const EPOLLHUP = 0x010;

const ULLONG_MAX = 0xffffffffffffffffn;

/** A wait-queue entry (wait_queue_entry_t with its wake function). */
export type EventfdWaiter = (events: number, ctx: EventfdCtx) => void;

/** struct eventfd_ctx, and the file that holds it. */
export class EventfdCtx implements HostFile {
  readonly fileKind = "eventfd";
  /** The descriptor eventfd() installed it at. */
  fd = -1;
  /** The counter; never ULLONG_MAX. */
  private count: bigint;
  private readonly waiters: EventfdWaiter[] = [];
  closed = false;

  constructor(
    initval: number | bigint,
    readonly flags: number,
  ) {
    this.count = BigInt(initval);
  }

  get counter(): bigint {
    return this.count;
  }

  /** eventfd_signal(): add n (1 by default), saturating below ULLONG_MAX, and wake waiters. */
  signal(n = 1): void {
    const add = BigInt(n);
    const room = ULLONG_MAX - 1n - this.count;
    this.count += add < room ? add : room;
    this.wake(EPOLLIN);
  }

  /** write(2) of a u64: EINVAL for ULLONG_MAX, EAGAIN where a blocking write would sleep. */
  write(value: bigint | number): void {
    const v = BigInt(value);
    if (v < 0n || v >= ULLONG_MAX) throw new HostError(EINVAL, "write");
    if (ULLONG_MAX - 1n - this.count < v) throw new HostError(EAGAIN, "write");
    this.count += v;
    if (this.count > 0n) this.wake(EPOLLIN);
  }

  /** read(2)'s value: the counter (or 1 in semaphore mode); EAGAIN where a blocking read would sleep. */
  readCount(): bigint {
    if (this.count === 0n) throw new HostError(EAGAIN, "read");
    return this.doRead();
  }

  /** HostFile.read: read(2) of the file, the value as 8 little-endian bytes; EINVAL below 8 bytes. */
  read(_offset: number, len: number): Uint8Array {
    if (len < 8) throw new HostError(EINVAL, "read");
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, this.readCount(), true);
    return out;
  }

  /** eventfd_ctx_do_read(): what read() does, for in-kernel users that already know count > 0. */
  doRead(): bigint {
    const v = this.flags & EFD_SEMAPHORE ? 1n : this.count;
    this.count -= v;
    return v;
  }

  /** poll(): EPOLLIN when readable. */
  poll(): number {
    return this.count > 0n ? EPOLLIN : 0;
  }

  /** add_wait_queue() */
  addWaiter(w: EventfdWaiter): void {
    this.waiters.push(w);
  }

  /** remove_wait_queue() */
  removeWaiter(w: EventfdWaiter): void {
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  private wake(events: number): void {
    // Waiters may unregister themselves while being woken; walk a snapshot.
    const list = this.waiters.slice();
    for (let i = 0; i < list.length; i++) list[i](events, this);
  }

  /** release(): the last descriptor was closed; waiters see EPOLLHUP (irqfd shuts itself down). */
  release(): void {
    if (this.closed) return;
    this.closed = true;
    this.wake(EPOLLHUP);
    this.waiters.length = 0;
  }
}

/** eventfd2(initval, flags) in the process owning `files`: returns the context; `ctx.fd` is its descriptor. */
export function eventfd(files: FdTable, initval: number | bigint = 0, flags = 0): EventfdCtx {
  if (flags & ~(EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC)) throw new HostError(EINVAL, "eventfd2");
  const v = BigInt(initval);
  if (v < 0n || v > 0xffffffffn) throw new HostError(EINVAL, "eventfd2", "initval is an unsigned int");
  const ctx = new EventfdCtx(v, flags);
  ctx.fd = files.install(ctx);
  return ctx;
}

/** eventfd_ctx_fdget(): the eventfd behind `fd`: EBADF if not open, EINVAL if not an eventfd. */
export function eventfdCtxFdget(files: FdTable, fd: number): EventfdCtx {
  const f = files.get(fd);
  if (!(f instanceof EventfdCtx)) throw new HostError(EINVAL, "eventfd_ctx_fdget", `fd ${fd} is a ${f.fileKind}`);
  return f;
}
