/* The interrupt controllers and timers programmed as an OS does, self-checking: the 8259 PIC
 * remapped and masked with the 8254 PIT on IRQ0, the I/O APIC routing the PIT, the local APIC
 * timer in one-shot, periodic and TSC-deadline modes, self-IPIs and a self-NMI, x2APIC mode
 * through the MSRs, and INIT/SIPI start-up of the second CPU, which sends the first a fixed IPI
 * through its x2APIC ICR and then takes an NMI IPI.
 * Run with two vCPUs and an in-kernel irqchip (test/arch/x86/kvm/irq_guests.test.ts).
 * tskvm-guest: lib=32 smp=2 expect=sdm */
#include "lib.h"

#define LAPIC 0xfee00000u
#define IOAPIC 0xfec00000u
#define APIC_ID 0x20
#define APIC_LVR 0x30
#define APIC_EOI 0xb0
#define APIC_SVR 0xf0
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define APIC_LVTT 0x320
#define APIC_TMICT 0x380
#define APIC_TMCCT 0x390
#define APIC_TDCR 0x3e0
#define MSR_APIC_BASE 0x1b
#define MSR_TSC_DEADLINE 0x6e0
#define X2APIC_MSR(reg) (0x800 + ((reg) >> 4))

#define V_PIT_PIC 0x20
#define V_PIT_IOAPIC 0x30
#define V_TIMER 0x50
#define V_SELF 0x58
#define V_X2SELF 0x59
#define V_FROM_AP 0x5a
#define NVEC 0x60

static volatile u32 hits[NVEC];
static volatile u32 nmis;

static u32 rd(u32 reg) { return *(volatile u32 *)(LAPIC + reg); }
static void wr(u32 reg, u32 v) { *(volatile u32 *)(LAPIC + reg) = v; }
static u32 ioapic_rd(u32 idx) { *(volatile u32 *)IOAPIC = idx; return *(volatile u32 *)(IOAPIC + 0x10); }
static void ioapic_wr(u32 idx, u32 v) { *(volatile u32 *)IOAPIC = idx; *(volatile u32 *)(IOAPIC + 0x10) = v; }
static u64 rdmsr(u32 m) { u32 lo, hi; __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(m)); return ((u64)hi << 32) | lo; }
static void wrmsr(u32 m, u64 v) { __asm__ volatile("wrmsr" ::"c"(m), "a"((u32)v), "d"((u32)(v >> 32))); }
static u64 rdtsc(void) { u32 lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return ((u64)hi << 32) | lo; }

static int x2apic;

/* A pointer to low physical memory the compiler cannot reason about (it assumes nothing lives at small addresses). */
static void *phys(u32 a) { __asm__("" : "+r"(a)); return (void *)a; }

/* The interrupt entry points: each pushes its vector and calls irq_dispatch. */
#define STUB(v) "irq_" #v ":\n\tpushal\n\tpushl $" #v "\n\tcall irq_dispatch\n\taddl $4, %esp\n\tpopal\n\tiret\n"
__asm__(".text\n" STUB(0x20) STUB(0x30) STUB(0x50) STUB(0x58) STUB(0x59) STUB(0x5a));
extern char irq_0x20[], irq_0x30[], irq_0x50[], irq_0x58[], irq_0x59[], irq_0x5a[];

__attribute__((used)) void irq_dispatch(u32 v)
{
	hits[v]++;
	if (v == V_PIT_PIC)
		outb(0x20, 0x20); /* non-specific EOI to the master PIC */
	else if (x2apic)
		wrmsr(X2APIC_MSR(APIC_EOI), 0);
	else
		wr(APIC_EOI, 0);
}

static void nmi_hook(struct frame *f) { (void)f; nmis++; }

/* Waits with interrupts enabled until *c reaches n or about `ms` milliseconds of TSC pass. */
static u32 wait_for(volatile u32 *c, u32 n, u32 ms)
{
	u64 end = rdtsc() + (u64)ms * 2000000; /* the TSC's nominal 2 GHz; only a timeout */
	__asm__ volatile("sti");
	while (*c < n && rdtsc() < end)
		__asm__ volatile("pause");
	__asm__ volatile("cli");
	return *c;
}

static void pit_start(u16 count)
{
	outb(0x43, 0x34); /* channel 0, lobyte/hibyte, mode 2 */
	outb(0x40, count & 0xff);
	outb(0x40, count >> 8);
}

static void pic_and_pit(void)
{
	/* ICW1-4: edge, cascade, vectors 0x20 / 0x28, slave on IRQ2, 8086 mode; then OCW1. */
	outb(0x20, 0x11); outb(0xa0, 0x11);
	outb(0x21, 0x20); outb(0xa1, 0x28);
	outb(0x21, 0x04); outb(0xa1, 0x02);
	outb(0x21, 0x01); outb(0xa1, 0x01);
	outb(0x21, 0xfe); outb(0xa1, 0xff);
	check("pic imr master", inb(0x21), 0xfe);
	check("pic imr slave", inb(0xa1), 0xff);
	pit_start(1193); /* about 1 kHz */
	check("pit ticks through the pic at vector 0x20", wait_for(&hits[V_PIT_PIC], 3, 3000) >= 3, 1);
	outb(0x21, 0xff);
	wait_for(&hits[V_PIT_PIC], ~0u, 5); /* one already in service may still arrive */
	u32 before = hits[V_PIT_PIC];
	wait_for(&hits[V_PIT_PIC], before + 1, 20);
	check("masked irq0 stays out", hits[V_PIT_PIC] - before, 0);
}

static void ioapic_pit(void)
{
	check("ioapic version: 24 pins, version 0x20", ioapic_rd(1) & 0xff00ff, (23 << 16) | 0x20);
	/* The PIT is GSI 0: KVM's default routing sends it to I/O APIC pin 0, QEMU's routing (and
	   the MADT's ISA override) to pin 2. Both pins get the vector; only one of them is wired. */
	for (u32 pin = 0; pin <= 2; pin += 2) {
		ioapic_wr(0x10 + 2 * pin, V_PIT_IOAPIC); /* fixed, physical, edge, unmasked */
		ioapic_wr(0x11 + 2 * pin, 0);            /* destination APIC ID 0 */
	}
	check("ioapic redirection readback", ioapic_rd(0x10) & 0x1ffff, V_PIT_IOAPIC);
	check("pit ticks through the ioapic at vector 0x30", wait_for(&hits[V_PIT_IOAPIC], 3, 3000) >= 3, 1);
	ioapic_wr(0x10, 0x10000 | V_PIT_IOAPIC); /* masked */
	ioapic_wr(0x14, 0x10000 | V_PIT_IOAPIC);
	/* A tick accepted by the local APIC while interrupts were off still arrives: let it. */
	wait_for(&hits[V_PIT_IOAPIC], ~0u, 5);
	u32 before = hits[V_PIT_IOAPIC];
	wait_for(&hits[V_PIT_IOAPIC], before + 1, 20);
	check("masked ioapic pin stays out", hits[V_PIT_IOAPIC] - before, 0);
}

static void lapic_timer(void)
{
	wr(APIC_TDCR, 0xb); /* divide by 1 */
	wr(APIC_LVTT, V_TIMER); /* one-shot */
	wr(APIC_TMICT, 200000);
	wait_for(&hits[V_TIMER], 1, 3000);
	check("one-shot fires once", wait_for(&hits[V_TIMER], 2, 20), 1);
	check("one-shot count reached 0", rd(APIC_TMCCT), 0);
	hits[V_TIMER] = 0;
	wr(APIC_LVTT, V_TIMER | (1 << 17)); /* periodic */
	wr(APIC_TMICT, 100000);
	check("periodic fires repeatedly", wait_for(&hits[V_TIMER], 3, 3000) >= 3, 1);
	check("periodic counter reloads", rd(APIC_TMCCT) != 0, 1);
	wr(APIC_TMICT, 0); /* stop */
	wait_for(&hits[V_TIMER], ~0u, 5); /* a period already accepted while interrupts were off */
	hits[V_TIMER] = 0;
	wr(APIC_LVTT, V_TIMER | (2 << 17)); /* TSC-deadline */
	wrmsr(MSR_TSC_DEADLINE, rdtsc() + 1000000);
	wait_for(&hits[V_TIMER], 1, 3000);
	check("tsc-deadline fires once", wait_for(&hits[V_TIMER], 2, 20), 1);
	check("tsc-deadline msr cleared after expiry", rdmsr(MSR_TSC_DEADLINE), 0);
	wr(APIC_LVTT, 0x10000); /* masked */
}

static void ipis(void)
{
	wr(APIC_ICR_HI, 0);
	wr(APIC_ICR_LO, (1 << 18) | V_SELF); /* shorthand self, fixed */
	check("self ipi", wait_for(&hits[V_SELF], 1, 3000), 1);
	wr(APIC_ICR_LO, (1 << 18) | (4 << 8)); /* shorthand self, NMI */
	check("self nmi", wait_for(&nmis, 1, 3000), 1);
}

/* The AP starts in real mode at 0x8000 (SIPI vector 8): it counts itself in, switches its local
 * APIC to x2APIC mode (MSRs work in real mode), sends a fixed IPI to APIC ID 0 through the
 * x2APIC ICR, then sleeps with interrupts off; its NMIs go through the real-mode IVT entry 2
 * to a handler at 0x8100. */
#define AP_ALIVE 0x7000
#define AP_NMIS 0x7004
static const u8 ap_code[] = {
	0x31, 0xc0,                   /* xor ax, ax */
	0x8e, 0xd8,                   /* mov ds, ax */
	0xf0, 0xff, 0x06, 0x00, 0x70, /* lock inc word [0x7000] */
	0x66, 0xb9, 0x1b, 0, 0, 0,    /* mov ecx, IA32_APIC_BASE */
	0x0f, 0x32,                   /* rdmsr */
	0x66, 0x0d, 0x00, 0x0c, 0, 0, /* or eax, EN | EXTD */
	0x0f, 0x30,                   /* wrmsr */
	0x66, 0xb9, 0x0f, 0x08, 0, 0, /* mov ecx, 0x80f (SVR) */
	0x66, 0xb8, 0xff, 0x01, 0, 0, /* mov eax, 0x1ff */
	0x66, 0x31, 0xd2,             /* xor edx, edx */
	0x0f, 0x30,                   /* wrmsr */
	0x66, 0xb9, 0x30, 0x08, 0, 0, /* mov ecx, 0x830 (ICR) */
	0x66, 0xb8, V_FROM_AP, 0, 0, 0, /* mov eax, fixed IPI V_FROM_AP; edx = destination 0 */
	0x0f, 0x30,                   /* wrmsr */
	0xfa, 0xf4, 0xeb, 0xfd,       /* cli; hlt; jmp hlt */
};
static const u8 ap_nmi[] = {
	0x50, 0x31, 0xc0, 0x8e, 0xd8,  /* push ax; xor ax, ax; mov ds, ax */
	0xf0, 0xff, 0x06, 0x04, 0x70,  /* lock inc word [0x7004] */
	0x58, 0xcf,                    /* pop ax; iret */
};

static void smp(void)
{
	volatile u16 *alive = phys(AP_ALIVE), *apnmis = phys(AP_NMIS);
	u8 *tramp = phys(0x8000), *nmi = phys(0x8100);
	for (u32 i = 0; i < sizeof(ap_code); i++) tramp[i] = ap_code[i];
	for (u32 i = 0; i < sizeof(ap_nmi); i++) nmi[i] = ap_nmi[i];
	*(volatile u32 *)phys(2 * 4) = 0x00008100; /* IVT[2] = 0000:8100 */
	*alive = 0;
	*apnmis = 0;
	wr(APIC_ICR_HI, 1u << 24);
	wr(APIC_ICR_LO, 0x4500); /* INIT, level assert */
	wr(APIC_ICR_LO, 0x4608); /* STARTUP, vector 8 -> 0x8000 */
	u64 end = rdtsc() + 6000000000ull;
	while (*alive == 0 && rdtsc() < end)
		__asm__ volatile("pause");
	check("ap started by INIT/SIPI", *alive, 1);
	check("fixed ipi from the ap (x2APIC ICR) reaches the bsp", wait_for(&hits[V_FROM_AP], 1, 3000), 1);
	wr(APIC_ICR_LO, 0x4608); /* a second SIPI is ignored by a running AP */
	end = rdtsc() + 20000000ull;
	while (rdtsc() < end)
		__asm__ volatile("pause");
	check("second SIPI ignored", *alive, 1);
	wr(APIC_ICR_HI, 1u << 24);
	wr(APIC_ICR_LO, 0x400); /* NMI to APIC ID 1 */
	end = rdtsc() + 6000000000ull;
	while (*apnmis == 0 && rdtsc() < end)
		__asm__ volatile("pause");
	check("nmi ipi reaches the ap (now in x2APIC mode)", *apnmis, 1);
}

static void x2apic_mode(void)
{
	u64 base = rdmsr(MSR_APIC_BASE);
	wrmsr(MSR_APIC_BASE, base | (1 << 10)); /* EXTD with EN: x2APIC */
	x2apic = 1;
	check("x2apic enabled", (rdmsr(MSR_APIC_BASE) >> 10) & 3, 3);
	check("x2apic id", rdmsr(X2APIC_MSR(APIC_ID)), 0);
	check("x2apic version 0x14", rdmsr(X2APIC_MSR(APIC_LVR)) & 0xff, 0x14);
	wrmsr(0x83f, V_X2SELF); /* SELF IPI register */
	check("x2apic self ipi", wait_for(&hits[V_X2SELF], 1, 3000), 1);
	wrmsr(X2APIC_MSR(APIC_ICR_LO), (1 << 18) | V_SELF); /* ICR is one 64-bit MSR */
	check("x2apic icr self ipi", wait_for(&hits[V_SELF], 2, 3000), 2);
}

int main(void)
{
	set_intr_gate(V_PIT_PIC, irq_0x20);
	set_intr_gate(V_PIT_IOAPIC, irq_0x30);
	set_intr_gate(V_TIMER, irq_0x50);
	set_intr_gate(V_SELF, irq_0x58);
	set_intr_gate(V_X2SELF, irq_0x59);
	set_intr_gate(V_FROM_AP, irq_0x5a);
	exc_hooks[2] = nmi_hook;
	pic_and_pit();
	wr(APIC_SVR, 0x1ff); /* software-enable the local APIC, spurious vector 0xff */
	check("bsp apic id", rd(APIC_ID) >> 24, 0);
	check("apic version 0x14", rd(APIC_LVR) & 0xff, 0x14);
	ioapic_pit();
	lapic_timer();
	ipis();
	smp();
	x2apic_mode();
	return failures ? 1 : 0;
}
