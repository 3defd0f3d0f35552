/*
 * kvm-errno-probe: runs ioctls against the real /dev/kvm and prints what each returned, so the
 * errno tables of tskvm can be compared with the real KVM (test/virt/kvm/errno_real.test.ts).
 *
 * Input, one case per line on stdin:
 *   <level> <request-hex> int <value-hex>                   integer argument
 *   <level> <request-hex> mem <slot> <flags> <gpa> <size> <uaddr>   kvm_userspace_memory_region
 *   <level> <request-hex> ptr <value-hex>                   a raw (bad) pointer
 *   <level> <request-hex> buf <hex bytes>                   pointer to these bytes (a struct)
 * level: sys | vm | vcpu | newvm (a fresh VM for this line and the following vm/vcpu lines).
 * In `mem` lines, uaddr "MAP+<hex>" is an offset into a 16 MiB anonymous mapping made here.
 * Output, one line per case: "ok <return value>" or "err <ERRNO-NAME>".
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *ename(int e) {
  switch (e) {
  case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case EINTR: return "EINTR";
  case ENXIO: return "ENXIO"; case E2BIG: return "E2BIG"; case EBADF: return "EBADF";
  case ENOMEM: return "ENOMEM"; case EFAULT: return "EFAULT"; case EBUSY: return "EBUSY";
  case EEXIST: return "EEXIST"; case EINVAL: return "EINVAL"; case ENOTTY: return "ENOTTY";
  case ENOSPC: return "ENOSPC"; case ERANGE: return "ERANGE"; case EOPNOTSUPP: return "EOPNOTSUPP";
  default: { static char b[32]; snprintf(b, sizeof b, "errno%d", e); return b; }
  }
}

int main(void) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) { perror("open /dev/kvm"); return 2; }
  char *map = mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) { perror("mmap"); return 2; }
  int vm = -1, vcpu = -1;
  char line[512];
  while (fgets(line, sizeof line, stdin)) {
    char level[16], kind[8];
    unsigned long req;
    int off = 0;
    if (sscanf(line, "%15s %lx %7s %n", level, &req, kind, &off) < 3) continue;
    if (!strcmp(level, "newvm") || vm < 0) {
      if (vcpu >= 0) close(vcpu);
      if (vm >= 0) close(vm);
      vm = ioctl(kvm, KVM_CREATE_VM, 0);
      vcpu = vm >= 0 ? ioctl(vm, KVM_CREATE_VCPU, 0) : -1;
      if (vm < 0 || vcpu < 0) { printf("setup %s\n", ename(errno)); fflush(stdout); return 3; }
      if (!strcmp(level, "newvm")) strcpy(level, "vm");
    }
    int fd = !strcmp(level, "sys") ? kvm : !strcmp(level, "vm") ? vm : vcpu;
    long r;
    if (!strcmp(kind, "int") || !strcmp(kind, "ptr")) {
      unsigned long v = strtoul(line + off, NULL, 16);
      r = ioctl(fd, req, v);
    } else if (!strcmp(kind, "buf")) {
      static unsigned char buf[4096];
      size_t n = 0;
      memset(buf, 0, sizeof buf);
      for (const char *p = line + off; p[0] && p[1] && n < sizeof buf; p += 2) {
        if (p[0] == '\n' || p[0] == ' ') break;
        char hx[3] = { p[0], p[1], 0 };
        buf[n++] = (unsigned char)strtoul(hx, NULL, 16);
      }
      r = ioctl(fd, req, buf);
    } else {
      struct kvm_userspace_memory_region m;
      char ua[64];
      unsigned long long gpa, size;
      unsigned flags, slot;
      if (sscanf(line + off, "%x %x %llx %llx %63s", &slot, &flags, &gpa, &size, ua) != 5) { printf("bad line\n"); continue; }
      m.slot = slot; m.flags = flags; m.guest_phys_addr = gpa; m.memory_size = size;
      m.userspace_addr = !strncmp(ua, "MAP+", 4) ? (uintptr_t)map + strtoull(ua + 4, NULL, 16) : strtoull(ua, NULL, 16);
      r = ioctl(fd, req, &m);
    }
    if (r < 0) printf("err %s\n", ename(errno));
    else printf("ok %ld\n", r);
    fflush(stdout);
  }
  return 0;
}
