import { errnoName } from "../uapi/errno.js";

/**
 * A failed host system call (mmap, munmap, mprotect, ...): what C sees as -1 with `errno` set.
 * Kernel-internal paths (get_user_pages, copy_*_user) return codes instead of throwing.
 */
export class HostError extends Error {
  constructor(
    readonly errno: number,
    readonly syscall: string,
    detail?: string,
  ) {
    super(`${syscall}: ${errnoName(errno)}${detail ? ` (${detail})` : ""}`);
    this.name = "HostError";
  }

  get code(): string {
    return errnoName(this.errno);
  }
}
