import { errnoName } from "../../uapi/errno.js";

/**
 * The error an ioctl returns: `errno` is the positive value the real KVM returns as -errno,
 * `ioctl` the name of the request that failed.
 */
export class KvmError extends Error {
  constructor(
    readonly errno: number,
    readonly ioctl: string,
    detail?: string,
  ) {
    super(`${ioctl}: ${errnoName(errno)}${detail ? ` (${detail})` : ""}`);
    this.name = "KvmError";
  }

  get code(): string {
    return errnoName(this.errno);
  }
}
