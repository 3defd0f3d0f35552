/*
 * SSE..SSE4.2 and MMX at CPL 3: compiler-generated scalar double/single code and integer loops
 * vectorized by GCC (checked against the same C built without SSE), MXCSR rounding
 * modes, sticky flags, FTZ and DAZ, unmasked exceptions (#XM with CR4.OSXMMEXCPT, #UD without:
 * SDM Vol 1 11.5.3), 16-byte alignment (#GP, Vol 1 11.4.1), integer/shuffle/string operations and
 * the MMX <-> x87 state effects (FXSAVE abridged tag byte, Vol 1 9.5.1). The checks this
 * machine's kvm_pvm cannot judge (it emulates ring 0, so guest CR4 changes do not reach ring 3,
 * and it turns #GP from unknown instructions into #UD) are in sse_sdm.c. Every expected value is
 * derived from the SDM definitions (the doubles are the IEEE round-to-nearest results of the
 * same expressions). Ring 0 sets CR4.OSFXSR/OSXMMEXCPT and clears CR0.EM (Vol 3A 14.1.3).
 * tskvm-guest: lib=64 expect=kvm
 */
#include "lib.h"

#define NRES 64
static volatile u64 res[NRES];

static long run_float(long);
static long run_int(long);
static long run_exc(long);
static long run_mmx(long);

/* Integer kernels the compiler vectorizes in the SSE section (O3) and keeps scalar here (general
 * registers only): the two builds must agree. */
#define NV 1000
static u32 va[NV], vb[NV];
static u16 vh[NV];
static u8 vc[NV];
static int vi[NV];
static u32 vrev[NV];
#define KERNELS(out)                                                                     \
	do {                                                                             \
		u64 dot = 0, wsum = 0, asum = 0, rsum = 0;                               \
		u32 cnt = 0;                                                             \
		u16 mx = 0;                                                              \
		for (int i = 0; i < NV; i++) dot += (u64)(va[i] * vb[i] + (va[i] >> 3)); \
		for (int i = 0; i < NV; i++) mx = vh[i] > mx ? vh[i] : mx;               \
		for (int i = 0; i < NV; i++) cnt += vc[i] == 'x';                        \
		for (int i = 0; i < NV; i++) wsum += vc[i];                              \
		for (int i = 0; i < NV; i++) asum += (u32)(vi[i] < 0 ? -vi[i] : vi[i]);  \
		for (int i = 0; i < NV; i++) vrev[i] = va[NV - 1 - i] ^ vb[i];           \
		for (int i = 0; i < NV; i++) rsum = rsum * 3 + vrev[i];                  \
		out[0] = dot; out[1] = mx; out[2] = cnt; out[3] = wsum; out[4] = asum;   \
		out[5] = rsum;                                                           \
	} while (0)

static void kernels_ref(u64 *out) { KERNELS(out); }
static long run_vec(long);


int main(void)
{
	sse_enable();
	exc_hooks[13] = exc_record;
	exc_hooks[6] = exc_record;
	exc_hooks[19] = exc_record;

	user_call(run_float, 0);
	check("addsd/mulsd/divsd chain", res[0], 0x401730c30c30c30cULL);
	check("single-precision sum", res[1], 0x40b8f5c3ULL);
	check("sqrtsd 2", res[2], 0x3ff6a09e667f3bcdULL);
	check("cvtsd2si 2.5 nearest/down/up/zero", res[3], 0x02030202ULL);
	check("cvtsd2si -2.5 nearest/down/up/zero", res[4], 0xfefefdfeULL);
	check("mxcsr after 1/3 (PE)", res[5], 0x1fa0);
	check("mxcsr after 1/0 masked (ZE)", res[6], 0x1f84);
	check("1/0 masked is +inf", res[7], 0x7ff0000000000000ULL);
	check("DAZ: denormal + 0", res[8], 0);
	check("FTZ: tiny product flushed", res[9], 0x8000000000000000ULL);
	check("FTZ: mxcsr UE PE", res[10], 0x9fb0);
	check("cvttss2si overflow indefinite", res[11], 0x80000000ULL);
	check("comisd flags 1<2, 2=2, NaN", res[12], 0x014045ULL);
	check("roundsd floor/ceil/trunc of -1.5", res[13], 0xbff0bff0c000ULL);
	check("minsd NaN returns second", res[14], 0x4000000000000000ULL);
	check("dpps 1,2,3,4 . 5,6,7,8 lanes", res[15], 0x428c0000ULL);
	check("haddpd", res[16], 0x4022000000000000ULL);
	check("cvtpd2ps/cvtps2pd round trip 0.1", res[17], 0x3fb99999a0000000ULL);

	user_call(run_int, 0);
	check("paddusb/psubsw lanes", res[20], 0xffff7fff8000ffffULL);
	check("pmaddwd", res[21], 0x0000001900000008ULL);
	check("pshufb reverse", res[22], 0x0001020304050607ULL);
	check("pcmpistri strlen", res[23], 12);
	check("pcmpestri equal-ordered", res[24], 3);
	check("ptest ZF CF", res[25], 0x41);
	check("pmovsxbw/pmovzxbw", res[26], 0x00ffffffULL);
	check("phminposuw", res[27], 0x60002ULL);
	check("pmulld/pmuldq", res[28], 0xfffffffe00000006ULL);
	check("pextrb/pinsrd/pextrq", res[29], 0x12345678000000abULL);
	check("psadbw", res[30], 0x1fe);
	check("palignr 5", res[31], 0x0c0b0a0908070605ULL);
	check("popcnt/crc32c", res[32], (13ULL << 32) | 0xe3069283ULL);

	user_call(run_mmx, 0);
	check("paddw mm", res[40], 0x0002000300048000ULL);
	check("fxsave abridged tags after MMX", res[41], 0xff);
	check("fxsave abridged tags after EMMS", res[42], 0x00);
	check("packsswb mm", res[43], 0x0005807f807fff01ULL);
	check("pmovmskb mm", res[44], 0xa5);

	u32 seed = 12345;
	for (int i = 0; i < NV; i++) {
		seed = seed * 1103515245u + 12345u; va[i] = seed;
		seed = seed * 1103515245u + 12345u; vb[i] = seed;
		vh[i] = (u16)(seed >> 7);
		vc[i] = (seed >> 20) & 1 ? 'x' : (u8)(seed >> 12);
		vi[i] = (int)(seed ^ (seed << 13));
	}
	u64 ref[6];
	kernels_ref(ref);
	user_call(run_vec, 0);
	check("vectorized u32 dot product", res[60], ref[0]);
	check("vectorized u16 max", res[61], ref[1]);
	check("vectorized byte count", res[62], ref[2]);
	check("vectorized byte widening sum", res[63], ref[3]);
	check("vectorized abs sum", res[56], ref[4]);
	check("vectorized reverse xor", res[57], ref[5]);

	user_call(run_exc, 0);
	check("divss by zero unmasked: #XM", res[50], 19);
	check("destination kept on #XM", res[51], 0x3f800000);
	check("movaps misaligned: #GP", res[52], 13);
	check("movups misaligned: no fault", res[54], 0xff);
	return failures ? 1 : 0;
}

#pragma GCC push_options
#pragma GCC target("sse4.2,popcnt,mmx,fpmath=sse")

typedef long long v2di __attribute__((vector_size(16)));
typedef double v2df __attribute__((vector_size(16)));
typedef float v4sf __attribute__((vector_size(16)));

static u64 bits(double d) { union { double d; u64 u; } x = { .d = d }; return x.u; }
static u32 fbits(float f) { union { float f; u32 u; } x = { .f = f }; return x.u; }
static double dbl(u64 u) { union { double d; u64 u; } x = { .u = u }; return x.d; }

static void ldmxcsr(u32 v) { __asm__ volatile("ldmxcsr %0" ::"m"(v)); }
static u32 stmxcsr(void) { u32 v; __asm__ volatile("stmxcsr %0" : "=m"(v)); return v; }
static int cvtsd2si(double d) { int r; __asm__ volatile("cvtsd2si %1, %0" : "=r"(r) : "x"(d)); return r; }

static volatile double vd[8] = { 1.5, 2.25, 3.0, 7.0, 2.0, -2.5, 2.5, 0.1 };
static volatile float vf[4] = { 1.1f, 2.2f, 0.33f, 2.15f };

static long run_float(long unused)
{
	(void)unused;
	/* ((1.5 + 2.25) * 3.0) / 7.0 * 2.0 + 1/3-ish terms, all in binary64 with RN. */
	double a = (vd[0] + vd[1]) * vd[2] / vd[3] * vd[4] + vd[0] / vd[2] / vd[4] + vd[3] / 3.0;
	res[0] = bits(a);
	res[1] = fbits(vf[0] + vf[1] + vf[2] + vf[3]);
	double two = vd[4], r;
	__asm__ volatile("sqrtsd %1, %0" : "=x"(r) : "x"(two));
	res[2] = bits(r);
	u64 pos = 0, neg = 0;
	for (int rc = 0; rc < 4; rc++) {
		ldmxcsr(0x1f80 | (rc << 13));
		pos |= (u64)(u8)cvtsd2si(vd[6]) << (8 * rc);
		neg |= (u64)(u8)cvtsd2si(vd[5]) << (8 * rc);
	}
	res[3] = pos;
	res[4] = neg;
	ldmxcsr(0x1f80);
	volatile double one = 1.0, zero = 0.0, three = 3.0;
	volatile double q = one / three;
	(void)q;
	res[5] = stmxcsr();
	ldmxcsr(0x1f80);
	volatile double inf = one / zero;
	res[6] = stmxcsr();
	res[7] = bits(inf);
	/* DAZ: the smallest denormal reads as +0. */
	ldmxcsr(0x1f80 | 0x40);
	volatile double den = dbl(1), sum = den + zero;
	res[8] = bits(sum);
	/* FTZ: -1e-200 * 1e-200 underflows to -0 with UE and PE. */
	ldmxcsr(0x1f80 | 0x8000);
	volatile double t1 = -1e-200, t2 = 1e-200, tp = t1 * t2;
	res[9] = bits(tp);
	res[10] = stmxcsr();
	ldmxcsr(0x1f80);
	volatile float big = 3e9f;
	int ti;
	__asm__ volatile("cvttss2si %1, %0" : "=r"(ti) : "x"(big));
	res[11] = (u32)ti;
	/* COMISD: 1<2 -> CF; 2=2 -> ZF; NaN -> ZF PF CF. */
	u64 fl = 0;
	double x1 = 1.0, x2 = 2.0, xn = dbl(0x7ff8000000000000ULL);
	ulong f;
	__asm__ volatile("comisd %2, %1\n\tpushf\n\tpop %0" : "=r"(f) : "x"(x1), "x"(x2) : "cc");
	fl |= (f & 0xff) << 16;
	__asm__ volatile("comisd %2, %1\n\tpushf\n\tpop %0" : "=r"(f) : "x"(x2), "x"(x2) : "cc");
	fl |= (f & 0xff) << 8;
	__asm__ volatile("ucomisd %2, %1\n\tpushf\n\tpop %0" : "=r"(f) : "x"(xn), "x"(x2) : "cc");
	fl |= f & 0xff & ~2UL;
	res[12] = fl & 0xc5c5c5;
	/* ROUNDSD -1.5: floor -2 (0xc000...), ceil -1 (0xbff0...), trunc -1. High words packed. */
	double m15 = -1.5, rf, rcl, rt;
	__asm__ volatile("roundsd $9, %1, %0" : "=x"(rf) : "x"(m15));
	__asm__ volatile("roundsd $10, %1, %0" : "=x"(rcl) : "x"(m15));
	__asm__ volatile("roundsd $11, %1, %0" : "=x"(rt) : "x"(m15));
	res[13] = ((bits(rcl) >> 48) << 32) | ((bits(rt) >> 48) << 16) | (bits(rf) >> 48);
	double mn = xn;
	__asm__ volatile("minsd %1, %0" : "+x"(mn) : "x"(x2));
	res[14] = bits(mn);
	v4sf da = { 1, 2, 3, 4 }, db = { 5, 6, 7, 8 };
	__asm__ volatile("dpps $0xf1, %1, %0" : "+x"(da) : "x"(db));
	res[15] = fbits(da[0]) | ((u64)fbits(da[1]) << 32);
	v2df ha = { 4.0, 5.0 }, hb = { 1.0, 2.0 };
	__asm__ volatile("haddpd %1, %0" : "+x"(ha) : "x"(hb));
	res[16] = bits(ha[0]);
	v2df p01 = { vd[7], 0 };
	v4sf ps;
	__asm__ volatile("cvtpd2ps %1, %0" : "=x"(ps) : "x"(p01));
	__asm__ volatile("cvtps2pd %1, %0" : "=x"(p01) : "x"(ps));
	res[17] = bits(p01[0]);
	return 0;
}

static long run_int(long unused)
{
	(void)unused;
	v2di a = { 0x00000000fff0ff80LL, 0 }, b = { 0x000000000020ff80LL, 0 };
	/* PADDUSB: 80+80, ff+ff, f0+20 saturate to ff; PSUBSW: 0-1, -32768-1 (saturates), 32767-(-1) (saturates). */
	__asm__ volatile("paddusb %1, %0" : "+x"(a) : "x"(b));
	v2di w = { 0x00007fff80000000LL, 0 }, w2 = { 0x0000ffff00010001LL, 0 };
	__asm__ volatile("psubsw %1, %0" : "+x"(w) : "x"(w2));
	res[20] = ((u64)a[0] << 48) | ((u64)w[0] & 0xffffffffffffULL);
	v2di m1 = { 0x0004000300020001LL, 0 }, m2 = { 0x0004000300020004LL, 0 };
	__asm__ volatile("pmaddwd %1, %0" : "+x"(m1) : "x"(m2));
	res[21] = m1[0];
	v2di s = { 0x0706050403020100LL, 0 }, ctl = { 0x0001020304050607LL, (long long)0x8080808080808080ULL };
	__asm__ volatile("pshufb %1, %0" : "+x"(s) : "x"(ctl));
	res[22] = s[0] ^ s[1];
	static const char str[16] __attribute__((aligned(16))) = "hello, world";
	v2di hs = *(const v2di *)str;
	ulong idx;
	__asm__ volatile("pcmpistri $0x3a, %1, %1\n\tmov %%rcx, %0" : "=r"(idx) : "x"(hs) : "rcx", "cc");
	res[23] = idx;
	static const char nd[16] __attribute__((aligned(16))) = "lo,";
	v2di needle = *(const v2di *)nd;
	__asm__ volatile("mov $3, %%eax\n\tmov $12, %%edx\n\tpcmpestri $0x0c, %2, %1\n\tmov %%rcx, %0"
			 : "=r"(idx) : "x"(needle), "x"(hs) : "rax", "rcx", "rdx", "cc");
	res[24] = idx;
	v2di t1 = { 0xf0, 0 }, t2 = { 0x0f, 0 };
	ulong f;
	__asm__ volatile("ptest %2, %1\n\tpushf\n\tpop %0" : "=r"(f) : "x"(t1), "x"(t1) : "cc");
	ulong f2;
	__asm__ volatile("ptest %2, %1\n\tpushf\n\tpop %0" : "=r"(f2) : "x"(t1), "x"(t2) : "cc");
	res[25] = (f & 0x41 & 0x01) | (f2 & 0x40);
	v2di sx = { (long long)0x00000000000080ffULL, 0 }, zx;
	__asm__ volatile("pmovsxbw %1, %0" : "=x"(zx) : "x"(sx));
	v2di zz;
	__asm__ volatile("pmovzxbw %1, %0" : "=x"(zz) : "x"(sx));
	res[26] = ((u64)(zx[0] & 0xffff)) | ((u64)(zz[0] & 0xff) << 16);
	v2di hm = { 0x0009000500070008LL, 0x00060002000a0003LL };
	__asm__ volatile("phminposuw %1, %0" : "=x"(hm) : "x"(hm));
	res[27] = hm[0];
	v2di ml = { 0x00000002fffffffeLL, 0 }, ml2 = { 0x0000000300000001LL, 0 }, mq = { 0x00000002fffffffeLL, 0 };
	__asm__ volatile("pmulld %1, %0" : "+x"(ml) : "x"(ml2));
	__asm__ volatile("pmuldq %1, %0" : "+x"(mq) : "x"(ml2));
	res[28] = ((u64)(u32)(ml[0] >> 32) << 0) | ((u64)(u32)mq[0] << 32);
	v2di pe = { 0xab, 0 };
	ulong eb, q;
	u32 ins = 0x12345678;
	__asm__ volatile("pextrb $0, %1, %k0" : "=r"(eb) : "x"(pe));
	__asm__ volatile("pinsrd $3, %1, %0" : "+x"(pe) : "r"(ins));
	__asm__ volatile("pextrq $1, %1, %0" : "=r"(q) : "x"(pe));
	res[29] = (q & 0xffffffff00000000ULL) | eb;
	v2di sa = { (long long)0xff000000000000ffULL, 0 }, sb = { 0, 0 };
	__asm__ volatile("psadbw %1, %0" : "+x"(sa) : "x"(sb));
	res[30] = sa[0];
	v2di al = { 0x0f0e0d0c0b0a0908LL, 0 }, ar = { 0x0706050403020100LL, 0x0f0e0d0c0b0a0908LL };
	__asm__ volatile("palignr $5, %1, %0" : "+x"(al) : "x"(ar));
	res[31] = al[0];
	u64 pc = 0x00ff0000f0000001ULL, cnt;
	__asm__ volatile("popcnt %1, %0" : "=r"(cnt) : "r"(pc) : "cc");
	u32 crc = 0xffffffff;
	u64 word = 0x3837363534333231ULL; /* "12345678" */
	__asm__ volatile("crc32q %1, %q0" : "+r"(crc) : "r"(word));
	__asm__ volatile("crc32b %1, %0" : "+r"(crc) : "r"((u8)'9'));
	res[32] = (cnt << 32) | (u32)~crc;
	return 0;
}

static long run_mmx(long unused)
{
	(void)unused;
	static u8 fx[512] __attribute__((aligned(16)));
	u64 a = 0x0001000200037fffULL, b = 0x0001000100010001ULL, r;
	__asm__ volatile("movq %1, %%mm0\n\tmovq %2, %%mm1\n\tpaddw %%mm1, %%mm0\n\tmovq %%mm0, %0"
			 : "=r"(r) : "r"(a), "r"(b) : "mm0", "mm1");
	res[40] = r;
	__asm__ volatile("fxsave %0" : "=m"(fx));
	res[41] = fx[4];
	__asm__ volatile("emms\n\tfxsave %0" : "=m"(fx));
	res[42] = fx[4];
	a = 0xff3800c8ffff0001ULL;
	b = 0x0000000580007fffULL;
	__asm__ volatile("movq %1, %%mm2\n\tmovq %2, %%mm3\n\tpacksswb %%mm3, %%mm2\n\tmovq %%mm2, %0"
			 : "=r"(r) : "r"(a), "r"(b) : "mm2", "mm3");
	res[43] = r;
	a = 0x8000ff017f800081ULL;
	__asm__ volatile("movq %1, %%mm4\n\tpmovmskb %%mm4, %k0\n\temms" : "=r"(r) : "r"(a) : "mm4");
	res[44] = r;
	return 0;
}


static long run_exc(long unused)
{
	static float buf[12] __attribute__((aligned(16))) = { 1, 2, 3, 4, 5, 6, 7, 8 };
	const char *mis = (const char *)buf + 4;
	(void)unused;
	{
		ldmxcsr(0x1f80 & ~0x200); /* ZM clear */
		float one = 1.0f, zero = 0.0f;
		TRY_EXC("divss %[z], %[o]", , [o] "+x"(one) : [z] "x"(zero) : "rax");
		res[50] = last_vector;
		res[51] = fbits(one);
		ldmxcsr(0x1f80);
		TRY_EXC("movaps (%[p]), %%xmm1", : [p] "r"(mis) : "rax", "xmm1");
		res[52] = last_vector;
		TRY_EXC("movups (%[p]), %%xmm1", : [p] "r"(mis) : "rax", "xmm1");
		res[54] = last_vector;
	}
	return 0;
}

#pragma GCC push_options
#pragma GCC optimize("O3", "tree-vectorize")
static long run_vec(long unused)
{
	(void)unused;
	u64 out[6];
	KERNELS(out);
	res[60] = out[0]; res[61] = out[1]; res[62] = out[2]; res[63] = out[3];
	res[56] = out[4]; res[57] = out[5];
	return 0;
}
#pragma GCC pop_options

#pragma GCC pop_options
