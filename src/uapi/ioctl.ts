/**
 * ioctl request encoding (include/uapi/asm-generic/ioctl.h): nr in bits 0-7, type in 8-15,
 * size in 16-29, direction in 30-31 (NONE 0, WRITE 1, READ 2). Results are unsigned 32-bit.
 */
export const IOC_NONE = 0;
export const IOC_WRITE = 1;
export const IOC_READ = 2;

export function IOC(dir: number, type: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}
export const IO = (type: number, nr: number): number => IOC(IOC_NONE, type, nr, 0);
export const IOR = (type: number, nr: number, size: number): number => IOC(IOC_READ, type, nr, size);
export const IOW = (type: number, nr: number, size: number): number => IOC(IOC_WRITE, type, nr, size);
export const IOWR = (type: number, nr: number, size: number): number => IOC(IOC_READ | IOC_WRITE, type, nr, size);

export const iocNr = (req: number): number => req & 0xff;
export const iocType = (req: number): number => (req >>> 8) & 0xff;
export const iocSize = (req: number): number => (req >>> 16) & 0x3fff;
export const iocDir = (req: number): number => req >>> 30;
