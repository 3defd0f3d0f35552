/* Exit-heavy loops: OUTs to port 0x80 (the POST port) at CPL 0 (each one a KVM_EXIT_IO the VMM handles and
 * resumes; ring-3 port I/O faults on kvm_pvm) and MMIO writes at CPL 3 to an unbacked GPA
 * (0x30000000, inside the 1 GiB identity map: KVM_EXIT_MMIO). Each at two sizes (N, 4N) to
 * show how the rate holds up. The unit is one exit.
 * tskvm-guest: lib=64 mem=0x800000 expect=kvm */
#include "bench.h"

#define PIO_PORT 0x80
#define MMIO_GPA 0x30000000UL
#define EXITS_PER_SCALE 500ULL

static void pio(const char *phase, u64 n)
{
	begin(phase);
	for (u64 i = 0; i < n; i++) outb(PIO_PORT, (u8)i);
	end(phase);
	kv("units", n);
	kvs("unit", "exit");
	putc('\n');
}

static long mmio_loop(long n)
{
	/* Through a register: the address is opaque to the compiler, so the store is a plain
	 * mov %reg, (%reg) rather than an absolute disp32 form. */
	volatile u32 *p = (volatile u32 *)MMIO_GPA;
	__asm__("" : "+r"(p));
	for (long i = 0; i < n; i++) *p = (u32)i;
	return n;
}

static void mmio(const char *phase, u64 n)
{
	begin(phase);
	user_call(mmio_loop, (long)n);
	end(phase);
	kv("units", n);
	kvs("unit", "exit");
	putc('\n');
}

int main(void)
{
	u64 n = EXITS_PER_SCALE * SCALE;
	pio("pio-1x", n);
	pio("pio-4x", 4 * n);
	mmio("mmio-1x", n);
	mmio("mmio-4x", 4 * n);
	return 0;
}
