/*
 * kvm-runner: run a flat guest image on the real /dev/kvm and print one JSON line per exit.
 *
 * It is the reference side of tskvm's differential tests (test/diff/): the same image and
 * initial state go to tskvm, and the two exit streams are compared. See README.md for the
 * options, the output format and what this machine's KVM (kvm_pvm) accepts.
 *
 * Only the uapi of <linux/kvm.h> is used: KVM_CREATE_VM, KVM_SET_USER_MEMORY_REGION,
 * KVM_CREATE_VCPU, KVM_SET_CPUID2, KVM_SET_SREGS/REGS, KVM_RUN (Documentation/virt/kvm/api.rst).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Exit codes of the runner itself (not of the guest). */
#define RC_OK 0
#define RC_USAGE 2
#define RC_NOKVM 3   /* /dev/kvm missing or a VM/vCPU cannot be created: callers skip */
#define RC_SETUP 4   /* the VM exists but the requested initial state was refused */

struct opts {
	const char *image;
	uint64_t gpa, mem, entry, hash_base, hash_len;
	int has_entry, has_hash;
	unsigned max_exits, timeout, exit_port, quiet;
	const char *mode;
	int cpl;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	/* Which register fields were given explicitly (they override the mode preset). */
	uint64_t regs_set;
	/* Deferred sreg overrides, applied after the mode preset. */
	uint64_t dump_base, dump_len, exit_mmio;
	int has_exit_mmio;
	int has_cr0, has_cr3, has_cr4, has_efer, has_gdt, has_idt;
	uint64_t cr0, cr3, cr4, efer;
	struct kvm_dtable gdt, idt;
	struct { const char *name; struct kvm_segment seg; } segs[8];
	int nsegs;
	/* KVM_SET_GUEST_DEBUG: control flags and debugreg[0..3], debugreg[7]. */
	int has_guest_debug;
	struct kvm_guest_debug guest_debug;
};

static volatile sig_atomic_t timed_out;
static struct kvm_run *run_page;

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
	if (run_page)
		run_page->immediate_exit = 1;
}

static void die_usage(const char *msg, const char *arg)
{
	fprintf(stderr, "kvm-runner: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	fprintf(stderr, "usage: runner [options] IMAGE   (see tools/kvm-runner/README.md)\n");
	exit(RC_USAGE);
}

static uint64_t num(const char *s)
{
	char *end;
	errno = 0;
	uint64_t v = strtoull(s, &end, 0);
	if (errno || *end || end == s)
		die_usage("not a number", s);
	return v;
}

/* "BASE:LIMIT" */
static void pair(const char *s, uint64_t *a, uint64_t *b)
{
	char buf[128];
	snprintf(buf, sizeof buf, "%s", s);
	char *colon = strchr(buf, ':');
	if (!colon)
		die_usage("expected BASE:LIMIT", s);
	*colon = 0;
	*a = num(buf);
	*b = num(colon + 1);
}

static const char *const reg_names[] = {
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags",
};
#define NREGS 18

static uint64_t *reg_slot(struct kvm_regs *r, int i)
{
	/* struct kvm_regs keeps exactly this order (arch/x86/include/uapi/asm/kvm.h). */
	return &((uint64_t *)r)[i];
}

static int reg_index(const char *name)
{
	for (int i = 0; i < NREGS; i++)
		if (!strcmp(reg_names[i], name))
			return i;
	return -1;
}

/*
 * "--seg cs=SEL:BASE:LIMIT:TYPE:S:DPL:P:DB:L:G" sets a whole segment register (hidden part
 * included), the form the TS harness uses so that both sides start from identical state.
 */
static void parse_seg(struct opts *o, const char *s)
{
	char name[8];
	unsigned long long sel, base, limit, type, sflag, dpl, p, db, l, g;
	if (sscanf(s, "%7[a-z]=%lli:%lli:%lli:%lli:%lli:%lli:%lli:%lli:%lli:%lli", name, &sel, &base,
		   &limit, &type, &sflag, &dpl, &p, &db, &l, &g) != 11)
		die_usage("bad --seg (NAME=SEL:BASE:LIMIT:TYPE:S:DPL:P:DB:L:G)", s);
	if (o->nsegs == 8)
		die_usage("too many --seg", s);
	struct kvm_segment *k = &o->segs[o->nsegs].seg;
	memset(k, 0, sizeof *k);
	k->selector = sel;
	k->base = base;
	k->limit = limit;
	k->type = type;
	k->s = sflag;
	k->dpl = dpl;
	k->present = p;
	k->db = db;
	k->l = l;
	k->g = g;
	k->unusable = !p;
	o->segs[o->nsegs].name = strdup(name);
	o->nsegs++;
}

static void parse_args(struct opts *o, int argc, char **argv);

/* "@FILE": whitespace-separated options, '#' starts a comment. */
static void parse_file(struct opts *o, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die_usage("cannot open option file", path);
	char *words[512];
	int n = 1;
	words[0] = "runner";
	char line[1024];
	while (fgets(line, sizeof line, f)) {
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		for (char *t = strtok(line, " \t\r\n"); t; t = strtok(NULL, " \t\r\n")) {
			if (n == 511)
				die_usage("option file too long", path);
			words[n++] = strdup(t);
		}
	}
	fclose(f);
	words[n] = NULL;
	parse_args(o, n, words);
}

static void parse_args(struct opts *o, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) die_usage("missing value for", a); i++; } while (0)
		if (a[0] == '@') {
			parse_file(o, a + 1);
		} else if (!strcmp(a, "--gpa")) {
			NEEDV(); o->gpa = num(v);
		} else if (!strcmp(a, "--mem")) {
			NEEDV(); o->mem = num(v);
		} else if (!strcmp(a, "--mode")) {
			NEEDV(); o->mode = v;
		} else if (!strcmp(a, "--cpl")) {
			NEEDV(); o->cpl = (int)num(v);
		} else if (!strcmp(a, "--entry")) {
			NEEDV(); o->entry = num(v); o->has_entry = 1;
		} else if (!strcmp(a, "--max-exits")) {
			NEEDV(); o->max_exits = (unsigned)num(v);
		} else if (!strcmp(a, "--timeout")) {
			NEEDV(); o->timeout = (unsigned)num(v);
		} else if (!strcmp(a, "--exit-port")) {
			NEEDV(); o->exit_port = (unsigned)num(v);
		} else if (!strcmp(a, "--hash")) {
			NEEDV(); pair(v, &o->hash_base, &o->hash_len); o->has_hash = 1;
		} else if (!strcmp(a, "--exit-mmio")) {
			NEEDV(); o->exit_mmio = num(v); o->has_exit_mmio = 1;
		} else if (!strcmp(a, "--dump")) {
			NEEDV(); pair(v, &o->dump_base, &o->dump_len);
		} else if (!strcmp(a, "--quiet")) {
			o->quiet = 1;
		} else if (!strcmp(a, "--guest-debug")) {
			NEEDV(); o->guest_debug.control = (uint32_t)num(v); o->has_guest_debug = 1;
		} else if (!strcmp(a, "--debugreg")) {
			uint64_t dr, val;
			NEEDV(); pair(v, &dr, &val);
			if (dr > 7 || (dr > 3 && dr < 7))
				die_usage("--debugreg I:VALUE takes I in 0-3 or 7", v);
			o->guest_debug.arch.debugreg[dr] = val;
		} else if (!strcmp(a, "--cr0")) {
			NEEDV(); o->cr0 = num(v); o->has_cr0 = 1;
		} else if (!strcmp(a, "--cr3")) {
			NEEDV(); o->cr3 = num(v); o->has_cr3 = 1;
		} else if (!strcmp(a, "--cr4")) {
			NEEDV(); o->cr4 = num(v); o->has_cr4 = 1;
		} else if (!strcmp(a, "--efer")) {
			NEEDV(); o->efer = num(v); o->has_efer = 1;
		} else if (!strcmp(a, "--gdt") || !strcmp(a, "--idt")) {
			uint64_t b, l;
			NEEDV(); pair(v, &b, &l);
			struct kvm_dtable *d = a[2] == 'g' ? &o->gdt : &o->idt;
			d->base = b;
			d->limit = (uint16_t)l;
			if (a[2] == 'g') o->has_gdt = 1; else o->has_idt = 1;
		} else if (!strcmp(a, "--seg")) {
			NEEDV(); parse_seg(o, v);
		} else if (!strcmp(a, "--reg")) {
			NEEDV();
			char name[16];
			const char *eq = strchr(v, '=');
			if (!eq || eq - v >= (long)sizeof name)
				die_usage("bad --reg (NAME=VALUE)", v);
			memcpy(name, v, eq - v);
			name[eq - v] = 0;
			int r = reg_index(name);
			if (r < 0)
				die_usage("unknown register", name);
			*reg_slot(&o->regs, r) = num(eq + 1);
			o->regs_set |= 1ull << r;
		} else if (a[0] == '-') {
			die_usage("unknown option", a);
		} else {
			o->image = a;
		}
#undef NEEDV
	}
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t dpl, int code_l, int db)
{
	memset(s, 0, sizeof *s);
	s->selector = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->type = type;
	s->s = 1;
	s->dpl = dpl;
	s->present = 1;
	s->db = db;
	s->l = code_l;
	s->g = 1;
}

/*
 * Mode presets. The flat GDT layout they name is the one guests/lib/ builds:
 * 0x08 kernel code64, 0x10 kernel data, 0x18 kernel code32, 0x20 user data (DPL3),
 * 0x28 user code64 (DPL3), 0x30 user code32 (DPL3), 0x38 TSS.
 */
static void preset(struct opts *o, struct kvm_sregs *s, struct kvm_regs *r)
{
	const char *m = o->mode;
	int cpl = o->cpl;
	if (!strcmp(m, "real16")) {
		/* Real mode with CS:IP = 0:entry (entry below 64 KiB) or a CS base for higher ones. */
		uint64_t e = o->has_entry ? o->entry : o->gpa;
		struct kvm_segment *segs[] = { &s->cs, &s->ds, &s->es, &s->fs, &s->gs, &s->ss };
		for (int i = 0; i < 6; i++) {
			memset(segs[i], 0, sizeof *segs[i]);
			segs[i]->limit = 0xffff;
			segs[i]->type = i == 0 ? 0xb : 0x3;
			segs[i]->s = 1;
			segs[i]->present = 1;
		}
		if (e > 0xffff) {
			s->cs.selector = (uint16_t)((e & ~0xfull) >> 4);
			s->cs.base = e & ~0xfull;
			e &= 0xf;
		}
		s->cr0 = 0x10; /* ET */
		s->cr4 = 0;
		s->efer = 0;
		r->rip = e;
	} else if (!strcmp(m, "prot32") || !strcmp(m, "long64")) {
		int lm = m[0] == 'l';
		uint16_t csel = cpl ? (lm ? 0x2b : 0x33) : (lm ? 0x08 : 0x18);
		uint16_t dsel = cpl ? 0x23 : 0x10;
		set_seg(&s->cs, csel, 0xb, cpl, lm, !lm);
		set_seg(&s->ds, dsel, 0x3, cpl, 0, 1);
		s->es = s->fs = s->gs = s->ss = s->ds;
		memset(&s->tr, 0, sizeof s->tr);
		s->tr.selector = 0x38;
		s->tr.limit = 0x67;
		s->tr.type = 0xb; /* busy 32/64-bit TSS */
		s->tr.present = 1;
		memset(&s->ldt, 0, sizeof s->ldt);
		s->ldt.unusable = 1;
		s->ldt.type = 2;
		s->cr0 = lm ? 0x80050033ull : 0x50033ull; /* PG? WP NE ET MP PE */
		s->cr4 = lm ? 0x20 : 0;                   /* PAE for long mode */
		s->efer = lm ? 0x500 : 0;                 /* LMA | LME */
		r->rip = o->has_entry ? o->entry : o->gpa;
		r->rflags = 2;
	} else {
		die_usage("unknown --mode (real16, prot32, long64)", m);
	}
	r->rflags = 2;
}

static struct kvm_segment *seg_by_name(struct kvm_sregs *s, const char *n)
{
	if (!strcmp(n, "cs")) return &s->cs;
	if (!strcmp(n, "ds")) return &s->ds;
	if (!strcmp(n, "es")) return &s->es;
	if (!strcmp(n, "fs")) return &s->fs;
	if (!strcmp(n, "gs")) return &s->gs;
	if (!strcmp(n, "ss")) return &s->ss;
	if (!strcmp(n, "tr")) return &s->tr;
	if (!strcmp(n, "ldt")) return &s->ldt;
	return NULL;
}

/* FNV-1a, 32-bit: cheap and easy to reproduce in TypeScript with Math.imul. */
static uint32_t fnv1a(const uint8_t *p, uint64_t n)
{
	uint32_t h = 0x811c9dc5u;
	for (uint64_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x01000193u;
	}
	return h;
}

static const char *exit_name(uint32_t r)
{
	static const char *const names[] = {
		[KVM_EXIT_UNKNOWN] = "UNKNOWN", [KVM_EXIT_EXCEPTION] = "EXCEPTION", [KVM_EXIT_IO] = "IO",
		[KVM_EXIT_HYPERCALL] = "HYPERCALL", [KVM_EXIT_DEBUG] = "DEBUG", [KVM_EXIT_HLT] = "HLT",
		[KVM_EXIT_MMIO] = "MMIO", [KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
		[KVM_EXIT_SHUTDOWN] = "SHUTDOWN", [KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
		[KVM_EXIT_INTR] = "INTR", [KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
		[KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
	};
	if (r < sizeof names / sizeof names[0] && names[r])
		return names[r];
	return "OTHER";
}

static void hex_bytes(char *out, const uint8_t *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * n] = 0;
}

static void json_str(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

int main(int argc, char **argv)
{
	struct opts o;
	memset(&o, 0, sizeof o);
	o.gpa = 0x1000;
	o.mem = 0x200000;
	o.max_exits = 1000;
	o.timeout = 10;
	o.exit_port = 0xf4;
	o.mode = "real16";
	parse_args(&o, argc, argv);
	if (!o.image)
		die_usage("no image", NULL);
	if (o.mem & 0xfff || o.mem == 0)
		die_usage("--mem must be a non-zero multiple of 4096", NULL);
	if (!o.has_hash) {
		o.hash_base = 0;
		o.hash_len = o.mem;
	}
	if (o.hash_base + o.hash_len > o.mem)
		die_usage("--hash range outside guest memory", NULL);

	int img = open(o.image, O_RDONLY);
	if (img < 0)
		die_usage("cannot open image", o.image);
	struct stat st;
	fstat(img, &st);
	if ((uint64_t)st.st_size + o.gpa > o.mem)
		die_usage("image does not fit in guest memory at --gpa", o.image);

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		printf("{\"error\":\"open /dev/kvm: %s\"}\n", strerror(errno));
		return RC_NOKVM;
	}
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		printf("{\"error\":\"KVM_CREATE_VM: %s\"}\n", strerror(errno));
		return RC_NOKVM;
	}
	uint8_t *mem = mmap(NULL, o.mem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return RC_SETUP;
	}
	if (read(img, mem + o.gpa, st.st_size) != st.st_size) {
		perror("read image");
		return RC_SETUP;
	}
	close(img);
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = o.mem, .userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		printf("{\"error\":\"KVM_SET_USER_MEMORY_REGION: %s\"}\n", strerror(errno));
		return RC_SETUP;
	}
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		printf("{\"error\":\"KVM_CREATE_VCPU: %s\"}\n", strerror(errno));
		return RC_NOKVM;
	}
	/* Give the guest the CPUID KVM supports, so long mode (CPUID LM) and friends are allowed. */
	int nent = 256;
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof *cpuid + nent * sizeof(struct kvm_cpuid_entry2));
	cpuid->nent = nent;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) == 0 && ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) {
		printf("{\"error\":\"KVM_SET_CPUID2: %s\"}\n", strerror(errno));
		return RC_SETUP;
	}
	int mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	run_page = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run_page == MAP_FAILED) {
		perror("mmap kvm_run");
		return RC_SETUP;
	}

	struct kvm_sregs sregs;
	struct kvm_regs regs;
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_GET_REGS, &regs) < 0) {
		printf("{\"error\":\"KVM_GET_SREGS: %s\"}\n", strerror(errno));
		return RC_SETUP;
	}
	preset(&o, &sregs, &regs);
	for (int i = 0; i < NREGS; i++)
		if (o.regs_set >> i & 1)
			*reg_slot(&regs, i) = *reg_slot(&o.regs, i);
	if (o.has_cr0) sregs.cr0 = o.cr0;
	if (o.has_cr3) sregs.cr3 = o.cr3;
	if (o.has_cr4) sregs.cr4 = o.cr4;
	if (o.has_efer) sregs.efer = o.efer;
	if (o.has_gdt) sregs.gdt = o.gdt;
	if (o.has_idt) sregs.idt = o.idt;
	for (int i = 0; i < o.nsegs; i++) {
		struct kvm_segment *s = seg_by_name(&sregs, o.segs[i].name);
		if (!s)
			die_usage("unknown segment register", o.segs[i].name);
		*s = o.segs[i].seg;
	}
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) {
		printf("{\"error\":\"KVM_SET_SREGS: %s\"}\n", strerror(errno));
		return RC_SETUP;
	}
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
		printf("{\"error\":\"KVM_SET_REGS: %s\"}\n", strerror(errno));
		return RC_SETUP;
	}

	if (o.has_guest_debug && ioctl(vcpu, KVM_SET_GUEST_DEBUG, &o.guest_debug) < 0) {
		printf("{\"error\":\"KVM_SET_GUEST_DEBUG: %s\"}\n", strerror(errno));
		return RC_SETUP;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm; /* no SA_RESTART: KVM_RUN returns EINTR */
	sigaction(SIGALRM, &sa, NULL);
	alarm(o.timeout);

	char *serial = malloc(1 << 20);
	size_t nserial = 0;
	const char *stop = NULL;
	unsigned n = 0;
	for (;;) {
		int rc = ioctl(vcpu, KVM_RUN, 0);
		int err = errno;
		if (rc < 0 && err != EINTR) {
			printf("{\"error\":\"KVM_RUN: %s\"}\n", strerror(err));
			stop = "error";
			break;
		}
		n++;
		struct kvm_run *k = run_page;
		if (ioctl(vcpu, KVM_GET_REGS, &regs) < 0 || ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
			printf("{\"error\":\"KVM_GET_REGS after exit: %s\"}\n", strerror(errno));
			stop = "error";
			break;
		}
		uint32_t reason = rc < 0 ? KVM_EXIT_INTR : k->exit_reason;
		int is_exit_port = 0;
		char detail[9000];
		detail[0] = 0;
		if (reason == KVM_EXIT_IO) {
			uint8_t *data = (uint8_t *)k + k->io.data_offset;
			unsigned bytes = k->io.size * k->io.count;
			if (k->io.direction == KVM_EXIT_IO_IN) {
				/* IN returns a fixed pattern: byte i = 0x11 * (i % 4 + 1). */
				for (unsigned i = 0; i < bytes; i++)
					data[i] = (uint8_t)(0x11 * (i % 4 + 1));
			} else if (k->io.port == 0x3f8) {
				for (unsigned i = 0; i < bytes && nserial < (1 << 20); i++)
					serial[nserial++] = data[i];
			}
			if (k->io.direction == KVM_EXIT_IO_OUT && k->io.port == o.exit_port)
				is_exit_port = 1;
			char hex[8193];
			hex_bytes(hex, data, bytes > 4096 ? 4096 : bytes);
			snprintf(detail, sizeof detail,
				 ",\"io\":{\"dir\":\"%s\",\"size\":%u,\"port\":%u,\"count\":%u,\"data\":\"%s\"}",
				 k->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", k->io.size, k->io.port,
				 k->io.count, hex);
		} else if (reason == KVM_EXIT_MMIO) {
			char hex[17];
			hex_bytes(hex, k->mmio.data, k->mmio.len > 8 ? 8 : k->mmio.len);
			snprintf(detail, sizeof detail,
				 ",\"mmio\":{\"addr\":\"0x%llx\",\"len\":%u,\"write\":%u,\"data\":\"%s\"}",
				 (unsigned long long)k->mmio.phys_addr, k->mmio.len, k->mmio.is_write,
				 k->mmio.is_write ? hex : "");
			if (k->mmio.is_write && o.has_exit_mmio && k->mmio.phys_addr == o.exit_mmio)
				is_exit_port = 1;
			/* MMIO reads (there is no device) return zeroes. */
			if (!k->mmio.is_write)
				memset(k->mmio.data, 0, sizeof k->mmio.data);
		} else if (reason == KVM_EXIT_INTERNAL_ERROR) {
			int m = snprintf(detail, sizeof detail, ",\"internal\":{\"suberror\":%u,\"data\":[",
					 k->internal.suberror);
			for (unsigned i = 0; i < k->internal.ndata && i < 16; i++)
				m += snprintf(detail + m, sizeof detail - m, "%s\"0x%llx\"", i ? "," : "",
					      (unsigned long long)k->internal.data[i]);
			snprintf(detail + m, sizeof detail - m, "]}");
		} else if (reason == KVM_EXIT_FAIL_ENTRY) {
			snprintf(detail, sizeof detail, ",\"fail_entry\":\"0x%llx\"",
				 (unsigned long long)k->fail_entry.hardware_entry_failure_reason);
		} else if (reason == KVM_EXIT_EXCEPTION) {
			snprintf(detail, sizeof detail, ",\"exception\":{\"vector\":%u,\"error_code\":%u}",
				 k->ex.exception, k->ex.error_code);
		} else if (reason == KVM_EXIT_SYSTEM_EVENT) {
			snprintf(detail, sizeof detail, ",\"system_event\":%u", k->system_event.type);
		} else if (reason == KVM_EXIT_DEBUG) {
			snprintf(detail, sizeof detail,
				 ",\"debug\":{\"exception\":%u,\"pc\":\"0x%llx\",\"dr6\":\"0x%llx\",\"dr7\":\"0x%llx\"}",
				 k->debug.arch.exception, (unsigned long long)k->debug.arch.pc,
				 (unsigned long long)k->debug.arch.dr6, (unsigned long long)k->debug.arch.dr7);
		}
		if (!o.quiet || (reason != KVM_EXIT_IO && reason != KVM_EXIT_MMIO) || is_exit_port || timed_out) {
			printf("{\"n\":%u,\"exit\":\"%s\",\"reason\":%u%s,\"regs\":{", n, exit_name(reason), reason, detail);
			for (int i = 0; i < NREGS; i++)
				printf("%s\"%s\":\"0x%llx\"", i ? "," : "", reg_names[i],
				       (unsigned long long)*reg_slot(&regs, i));
			printf("},\"sregs\":{\"cr0\":\"0x%llx\",\"cr2\":\"0x%llx\",\"cr3\":\"0x%llx\","
			       "\"cr4\":\"0x%llx\",\"efer\":\"0x%llx\",\"cs\":%u,\"ss\":%u,\"ds\":%u,\"es\":%u,"
			       "\"fs\":%u,\"gs\":%u},\"mem\":\"%08x\"}\n",
			       (unsigned long long)sregs.cr0, (unsigned long long)sregs.cr2,
			       (unsigned long long)sregs.cr3, (unsigned long long)sregs.cr4,
			       (unsigned long long)sregs.efer, sregs.cs.selector, sregs.ss.selector,
			       sregs.ds.selector, sregs.es.selector, sregs.fs.selector, sregs.gs.selector,
			       fnv1a(mem + o.hash_base, o.hash_len));
		}
		if (timed_out) { stop = "timeout"; break; }
		if (reason == KVM_EXIT_HLT) { stop = "hlt"; break; }
		if (reason == KVM_EXIT_SHUTDOWN) { stop = "shutdown"; break; }
		if (is_exit_port) { stop = reason == KVM_EXIT_MMIO ? "exit-mmio" : "exit-port"; break; }
		/* With --guest-debug, debug exits are recorded and the guest continues. */
		if (reason != KVM_EXIT_IO && reason != KVM_EXIT_MMIO && reason != KVM_EXIT_INTR &&
		    !(reason == KVM_EXIT_DEBUG && o.has_guest_debug)) {
			stop = "unhandled";
			break;
		}
		if (n >= o.max_exits) { stop = "max-exits"; break; }
	}
	printf("{\"stop\":\"%s\",\"exits\":%u,\"serial\":", stop, n);
	json_str(stdout, serial, nserial);
	if (o.dump_len && o.dump_base + o.dump_len <= o.mem && o.dump_len <= 4096) {
		/* --dump BASE:LEN: guest memory at the end, for debugging guests. */
		char hex[8193];
		hex_bytes(hex, mem + o.dump_base, (unsigned)o.dump_len);
		printf(",\"dump\":\"%s\"", hex);
	}
	printf("}\n");
	return RC_OK;
}
