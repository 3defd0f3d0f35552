/* Library smoke test: boots, prints, takes #UD and #BP through the IDT (64-bit: from CPL 3,
 * the way kvm_pvm runs natively), and returns to ring 0.
 * tskvm-guest: lib=32,64 expect=32:qemu,64:kvm */
#include "lib.h"

static long faults(long x)
{
	if (x & 1) {
		skip_len = 2;
		__asm__ volatile("ud2");
	}
	if (x & 2) {
		skip_len = 0;
		__asm__ volatile("int3");
	}
	return 2 * x;
}

int main(void)
{
	puts("hello from the guest library\n");
	exc_hooks[6] = exc_record;
	exc_hooks[3] = exc_record;
#ifdef __x86_64__
	check("user_call", user_call(faults, 23), 46);
	ulong cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	check("back in ring 0", cs, 0x08);
#else
	check("call", faults(23), 46);
#endif
	check("last vector", last_vector, 3);
	check("exceptions", exc_count, 2);
	return 0;
}
