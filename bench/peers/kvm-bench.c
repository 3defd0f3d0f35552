/*
 * kvm-bench: times a guests/bench image on the real /dev/kvm, the peer bench/run.ts compares
 * tskvm against. It boots the flat Multiboot image the way a Multiboot loader leaves the
 * machine (32-bit flat protected mode, paging off; Multiboot 0.6.96 section 3.2) and prints,
 * with CLOCK_MONOTONIC nanoseconds counted from just before KVM_CREATE_VM:
 *
 *   L <ns at the line's first byte> <ns at its newline> <serial line>
 *   F <ns at the first serial byte>
 *   S <stop: exit-port|hlt|shutdown|unhandled|error> exits=<KVM_RUN returns> io=<n> mmio=<n>
 *
 * Port 0x3f8 OUTs are the serial console, an OUT to 0xf4 ends the run, every other port and
 * all MMIO are accepted and ignored (INs read 0), so exit-heavy guests measure the whole
 * KVM_RUN round trip through this VMM.
 *
 * Usage: kvm-bench IMAGE MEM_BYTES          exit 3: no usable /dev/kvm (callers skip)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOAD_GPA 0x100000u
#define SERIAL 0x3f8
#define EXIT_PORT 0xf4

static struct timespec t0;

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0.tv_sec) * 1000000000LL + (t.tv_nsec - t0.tv_nsec);
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->db = 1;
	s->g = 1;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: kvm-bench IMAGE MEM_BYTES\n");
		return 2;
	}
	size_t mem_size = strtoull(argv[2], NULL, 0);
	int img = open(argv[1], O_RDONLY);
	struct stat st;
	if (img < 0 || fstat(img, &st) < 0 || (size_t)st.st_size + LOAD_GPA > mem_size) {
		fprintf(stderr, "kvm-bench: %s: cannot load\n", argv[1]);
		return 2;
	}
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		fprintf(stderr, "kvm-bench: /dev/kvm: %s\n", strerror(errno));
		return 3;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		fprintf(stderr, "kvm-bench: KVM_CREATE_VM: %s\n", strerror(errno));
		return 3;
	}
	uint8_t *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED || pread(img, mem + LOAD_GPA, st.st_size, 0) != st.st_size) {
		fprintf(stderr, "kvm-bench: guest memory: %s\n", strerror(errno));
		return 2;
	}
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = mem_size, .userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		fprintf(stderr, "kvm-bench: KVM_SET_USER_MEMORY_REGION: %s\n", strerror(errno));
		return 3;
	}
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		fprintf(stderr, "kvm-bench: KVM_CREATE_VCPU: %s\n", strerror(errno));
		return 3;
	}
	/* The guest switches to long mode, so the vCPU needs CPUID with LM (api.rst KVM_SET_CPUID2). */
	int nent = 256;
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + nent * sizeof(struct kvm_cpuid_entry2));
	cpuid->nent = nent;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0 || ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) {
		fprintf(stderr, "kvm-bench: CPUID: %s\n", strerror(errno));
		return 4;
	}
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) return 3;

	struct kvm_sregs sregs;
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) return 4;
	seg(&sregs.cs, 0x18, 0xb);
	seg(&sregs.ds, 0x10, 0x3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 = 0x33; /* PE MP ET NE */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) {
		fprintf(stderr, "kvm-bench: KVM_SET_SREGS: %s\n", strerror(errno));
		return 4;
	}
	struct kvm_regs regs;
	memset(&regs, 0, sizeof(regs));
	regs.rip = LOAD_GPA;
	regs.rflags = 2;
	regs.rax = 0x2badb002;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) return 4;

	static char line[4096];
	size_t len = 0;
	long long line_start = -1, first = -1;
	unsigned long long exits = 0, io = 0, mmio = 0;
	const char *stop = "unhandled";
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR) continue;
			fprintf(stderr, "kvm-bench: KVM_RUN: %s\n", strerror(errno));
			stop = "error";
			break;
		}
		exits++;
		if (run->exit_reason == KVM_EXIT_IO) {
			io++;
			uint8_t *data = (uint8_t *)run + run->io.data_offset;
			if (run->io.direction == KVM_EXIT_IO_IN) {
				memset(data, 0, run->io.size * run->io.count);
				continue;
			}
			if (run->io.port == EXIT_PORT) {
				stop = "exit-port";
				break;
			}
			if (run->io.port != SERIAL) continue;
			for (unsigned i = 0; i < run->io.size * run->io.count; i++) {
				long long t = now_ns();
				if (first < 0) first = t;
				if (len == 0) line_start = t;
				if (data[i] == '\n') {
					printf("L %lld %lld %.*s\n", line_start, t, (int)len, line);
					len = 0;
				} else if (len < sizeof(line) - 1) {
					line[len++] = (char)data[i];
				}
			}
		} else if (run->exit_reason == KVM_EXIT_MMIO) {
			mmio++;
			if (!run->mmio.is_write) memset(run->mmio.data, 0, sizeof(run->mmio.data));
		} else if (run->exit_reason == KVM_EXIT_INTR) {
			continue;
		} else if (run->exit_reason == KVM_EXIT_HLT) {
			stop = "hlt";
			break;
		} else if (run->exit_reason == KVM_EXIT_SHUTDOWN) {
			stop = "shutdown";
			break;
		} else {
			fprintf(stderr, "kvm-bench: exit reason %u\n", run->exit_reason);
			break;
		}
	}
	if (len) printf("L %lld %lld %.*s\n", line_start, now_ns(), (int)len, line);
	printf("F %lld\nS %s exits=%llu io=%llu mmio=%llu\n", first, stop, exits, io, mmio);
	return 0;
}
