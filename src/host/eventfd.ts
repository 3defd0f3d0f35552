/**
 * eventfd(2) (fs/eventfd.c): a 64-bit counter that write() adds to and read() drains, with
 * a wait-queue so in-kernel users (irqfd, vhost) are called back instead of sleeping in a
 * thread. Descriptors live in one process-wide table (the fd table role), so ioctl structs
 * can carry them as plain numbers, as they do in C (struct kvm_irqfd.fd).
 *
 * Single-threaded: callbacks run synchronously inside write()/signal(). A SharedArrayBuffer +
 * Atomics variant for worker vCPUs is not built yet.
 */
import { EAGAIN, EBADF, EINVAL } from "../uapi/errno.js";

export const EFD_SEMAPHORE = 1;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

/** Poll events passed to waiters (include/uapi/linux/eventpoll.h). */
export const EPOLLIN = 0x001;
export const EPOLLHUP = 0x010;

const ULLONG_MAX = 0xffffffffffffffffn;

/** An errno-carrying failure of a host system call. */
export class HostError extends Error {
  constructor(
    readonly errno: number,
    readonly syscall: string,
  ) {
    super(`${syscall}: errno ${errno}`);
    this.name = "HostError";
  }
}

/** A wait-queue entry (wait_queue_entry_t with its wake function). */
export type EventfdWaiter = (events: number, ctx: EventfdCtx) => void;

/** struct eventfd_ctx */
export class EventfdCtx {
  /** The counter; never ULLONG_MAX. */
  private count: bigint;
  private readonly waiters: EventfdWaiter[] = [];
  closed = false;

  constructor(
    readonly fd: number,
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

  /** read(2): the counter (or 1 in semaphore mode); EAGAIN where a blocking read would sleep. */
  read(): bigint {
    if (this.count === 0n) throw new HostError(EAGAIN, "read");
    return this.doRead();
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

  /** close(2) of the last reference: waiters see EPOLLHUP (irqfd shuts itself down on it). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    fdTable.delete(this.fd);
    this.wake(EPOLLHUP);
    this.waiters.length = 0;
  }
}

const fdTable = new Map<number, EventfdCtx>();
let nextFd = 3;

/** eventfd2(initval, flags): returns the new context; its `fd` names it in ioctl structs. */
export function eventfd(initval: number | bigint = 0, flags = 0): EventfdCtx {
  if (flags & ~(EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC)) throw new HostError(EINVAL, "eventfd2");
  const ctx = new EventfdCtx(nextFd++, initval, flags);
  fdTable.set(ctx.fd, ctx);
  return ctx;
}

/** eventfd_ctx_fdget(): the context behind an fd, or EBADF. */
export function eventfdCtxFdget(fd: number): EventfdCtx {
  const ctx = fdTable.get(fd);
  if (!ctx) throw new HostError(EBADF, "eventfd_ctx_fdget");
  return ctx;
}
