/* kvmclock read by the guest itself, as Linux's pvclock code does: the KVM CPUID leaves
 * advertise it, MSR_KVM_SYSTEM_TIME_NEW names a pvclock_vcpu_time_info, and the guest turns
 * its own TSC into ns with tsc_to_system_mul/tsc_shift under the odd/even version protocol.
 * Checks: the stable bit, monotonic readings, the wall clock (MSR_KVM_WALL_CLOCK_NEW) in a
 * plausible year, and kvmclock advancing at least as far as 50 ticks of the 1 kHz PIT.
 * tskvm-guest: lib=32 smp=1 expect=sdm */
#include "lib.h"

struct pvclock_vcpu_time_info {
	u32 version, pad0;
	u64 tsc_timestamp, system_time;
	u32 tsc_to_system_mul;
	signed char tsc_shift;
	u8 flags, pad[2];
} __attribute__((packed));
struct pvclock_wall_clock { u32 version, sec, nsec; } __attribute__((packed));

static struct pvclock_vcpu_time_info pvti __attribute__((aligned(64)));
static struct pvclock_wall_clock wall __attribute__((aligned(16)));
static volatile u32 ticks;

static u64 rdtsc(void) { u32 lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return ((u64)hi << 32) | lo; }
static void wrmsr(u32 m, u64 v) { __asm__ volatile("wrmsr" ::"c"(m), "a"((u32)v), "d"((u32)(v >> 32))); }
static void cpuid(u32 leaf, u32 *r) { __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0)); }

/* ((delta << shift) * mul) >> 32, with a 64x32-bit product split in halves. */
static u64 scale_delta(u64 delta, u32 mul, int shift)
{
	if (shift < 0)
		delta >>= -shift;
	else
		delta <<= shift;
	u64 lo = (delta & 0xffffffffull) * mul;
	u64 hi = (delta >> 32) * mul;
	return hi + (lo >> 32);
}

static u64 kvmclock_read(u8 *flags)
{
	volatile struct pvclock_vcpu_time_info *p = &pvti;
	u32 v;
	u64 ns;
	do {
		v = p->version;
		__asm__ volatile("" ::: "memory");
		u64 tsc = rdtsc();
		ns = p->system_time + scale_delta(tsc - p->tsc_timestamp, p->tsc_to_system_mul, p->tsc_shift);
		*flags = p->flags;
		__asm__ volatile("" ::: "memory");
	} while ((v & 1) || v != p->version);
	return ns;
}

#define STUB "irq0:\n\tpushal\n\tincl ticks\n\tmovb $0x20, %al\n\toutb %al, $0x20\n\tpopal\n\tiret\n"
__asm__(".text\n" STUB);
extern char irq0[];

int main(void)
{
	u32 r[4];
	cpuid(0x40000000, r);
	check("kvm signature", r[1] == 0x4b4d564b && r[2] == 0x564b4d56 && r[3] == 0x4d, 1);
	cpuid(0x40000001, r);
	check("CLOCKSOURCE2 and the stable bit advertised", r[0] & ((1 << 3) | (1 << 24)), (1 << 3) | (1 << 24));

	wrmsr(0x4b564d01, (u32)&pvti | 1);
	u8 flags;
	u64 t0 = kvmclock_read(&flags);
	check("version even after the update", pvti.version & 1, 0);
	check("PVCLOCK_TSC_STABLE_BIT", flags & 1, 1);
	check("kvmclock is running", t0 > 0, 1);
	int mono = 1;
	u64 prev = t0;
	for (int i = 0; i < 1000; i++) {
		u64 t = kvmclock_read(&flags);
		if (t < prev)
			mono = 0;
		prev = t;
	}
	check("1000 readings never go back", mono, 1);

	wrmsr(0x4b564d00, (u32)&wall);
	check("wall clock version even", wall.version & 1, 0);
	/* 2020-01-01 .. 2100-01-01 */
	check("wall clock in a plausible year", wall.sec > 1577836800u && wall.sec < 4102444800u && wall.nsec < 1000000000u, 1);

	/* 50 PIT ticks at 1 kHz: kvmclock must have moved at least 48 ms. The first reading comes
	 * before the PIT is programmed: ticks lost while the vCPU was not running are reinjected in
	 * a burst, so only the programming time bounds when the 50th can arrive. */
	u64 a = kvmclock_read(&flags);
	set_intr_gate(0x20, irq0);
	outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 0x04); outb(0x21, 0x01); outb(0x21, 0xfe);
	outb(0x43, 0x34); outb(0x40, 1193 & 0xff); outb(0x40, 1193 >> 8);
	u32 start = ticks;
	__asm__ volatile("sti");
	while (ticks - start < 50)
		__asm__ volatile("hlt");
	__asm__ volatile("cli");
	u64 b = kvmclock_read(&flags);
	check("kvmclock advanced with the PIT (>= 48 ms for 50 ticks)", b - a >= 48000000ull, 1);
	check("and not absurdly further (< 60 s)", b - a < 60000000000ull, 1);
	return failures ? 1 : 0;
}
