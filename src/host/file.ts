/**
 * A process's open files (struct files_struct): what a file descriptor names. KVM's handles are
 * files like in Linux (/dev/kvm, the VM fd, vCPU fds, the stats fd), so the byte-level ioctl
 * path can return descriptors (KVM_CREATE_VM, KVM_CREATE_VCPU, KVM_GET_STATS_FD) and a VMM
 * written like its C original keeps integers: `ioctl(vmfd, KVM_CREATE_VCPU, 0)`.
 */
import { EBADF, ENOTTY, EINVAL } from "../uapi/errno.js";
import { HostError } from "./errors.js";

/** struct file_operations, the subset used here. */
export interface HostFile {
  /** What the file is, for messages ("kvm-vm", "kvm-vcpu:0", "eventfd"...). */
  readonly fileKind: string;
  /** unlocked_ioctl(): throws (KvmError/HostError) on failure. */
  ioctl?(request: number, arg: number): number;
  /** pread(): bytes [offset, offset + len). */
  read?(offset: number, len: number): Uint8Array;
  /** release(): the last descriptor was closed. */
  release?(): void;
}

export class FdTable {
  private readonly files = new Map<number, HostFile>();

  /** fd_install() at the lowest free descriptor >= 3 (0-2 being stdio). */
  install(f: HostFile): number {
    let fd = 3;
    while (this.files.has(fd)) fd++;
    this.files.set(fd, f);
    return fd;
  }

  /** fdget(): the file behind `fd`, or EBADF. */
  get(fd: number): HostFile {
    const f = this.files.get(fd);
    if (!f) throw new HostError(EBADF, "fdget", `fd ${fd}`);
    return f;
  }

  /** close(fd) */
  close(fd: number): void {
    const f = this.files.get(fd);
    if (!f) throw new HostError(EBADF, "close", `fd ${fd}`);
    this.files.delete(fd);
    let stillOpen = false;
    for (const g of this.files.values()) if (g === f) stillOpen = true;
    if (!stillOpen) f.release?.();
  }

  /** ioctl(fd, request, arg) */
  ioctl(fd: number, request: number, arg = 0): number {
    const f = this.get(fd);
    if (!f.ioctl) throw new HostError(ENOTTY, "ioctl", `${f.fileKind} has no ioctls`);
    return f.ioctl(request, arg);
  }

  /** pread(fd, len, offset) */
  pread(fd: number, len: number, offset: number): Uint8Array {
    const f = this.get(fd);
    if (!f.read) throw new HostError(EINVAL, "pread", `${f.fileKind} is not readable`);
    return f.read(offset, len);
  }

  get size(): number {
    return this.files.size;
  }
}
