/* Floating-point kernel at CPL 3, SSE2 scalar double: a 32x32 matrix multiply and a 256-point
 * radix-2 complex FFT, repeated. The unit is a nominal flop (2 n^3 per multiply, 5 N log2 N per
 * FFT). Ring 0 sets CR4.OSFXSR/OSXMMEXCPT and clears CR0.EM first (SDM Vol 3A 14.1.3).
 * tskvm-guest: lib=64 mem=0x800000 expect=kvm */
#include "bench.h"

#define MN 32
#define FN 256
#define FLOG 8
#define REPS_PER_SCALE 20ULL

static long fp_setup(long);
static long fp_run(long);

int main(void)
{
	ulong cr0, cr4;
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	cr0 = (cr0 & ~4UL) | 2UL;     /* EM = 0, MP = 1 */
	cr4 |= (1UL << 9) | (1UL << 10); /* OSFXSR, OSXMMEXCPT */
	__asm__ volatile("mov %0, %%cr0" ::"r"(cr0));
	__asm__ volatile("mov %0, %%cr4" ::"r"(cr4));
	u64 reps = REPS_PER_SCALE * SCALE;
	user_call(fp_setup, 0);
	begin("fp");
	long check = user_call(fp_run, (long)reps);
	end("fp");
	kv("units", reps * (2ULL * MN * MN * MN + 5ULL * FN * FLOG));
	kvs("unit", "flop");
	kv("check", (u64)check);
	putc('\n');
	return 0;
}

#pragma GCC target("sse2")

static double ma[MN][MN], mb[MN][MN], mc[MN][MN];
static double re[FN], im[FN], wr[FN / 2], wi[FN / 2];

/* cos and sin of x by Taylor series (|x| small here: 2*pi/FN), then the twiddles by recurrence. */
static long fp_setup(long unused)
{
	(void)unused;
	const double x = 6.283185307179586 / FN;
	double c = 1.0, s = 0.0, t = 1.0;
	for (int k = 1; k < 20; k++) {
		t = t * x / k;
		int m = k & 3;
		if (m == 1) s += t;
		else if (m == 2) c -= t;
		else if (m == 3) s -= t;
		else c += t;
	}
	double cr = 1.0, ci = 0.0;
	for (int k = 0; k < FN / 2; k++) {
		wr[k] = cr;
		wi[k] = -ci;
		double nr = cr * c - ci * s;
		ci = cr * s + ci * c;
		cr = nr;
	}
	for (int i = 0; i < MN; i++)
		for (int j = 0; j < MN; j++) {
			ma[i][j] = (double)((i * 7 + j * 3) % 11) * 0.25;
			mb[i][j] = (double)((i * 5 + j) % 13) * 0.5;
		}
	return 0;
}

static void matmul(void)
{
	for (int i = 0; i < MN; i++)
		for (int j = 0; j < MN; j++) {
			double acc = 0.0;
			for (int k = 0; k < MN; k++) acc += ma[i][k] * mb[k][j];
			mc[i][j] = acc;
		}
}

static void fft(void)
{
	for (int i = 1, j = 0; i < FN; i++) {
		int bit = FN >> 1;
		for (; j & bit; bit >>= 1) j ^= bit;
		j ^= bit;
		if (i < j) {
			double tr = re[i], ti = im[i];
			re[i] = re[j]; im[i] = im[j];
			re[j] = tr; im[j] = ti;
		}
	}
	for (int len = 2; len <= FN; len <<= 1) {
		int step = FN / len;
		for (int i = 0; i < FN; i += len)
			for (int k = 0; k < len / 2; k++) {
				double xr = wr[k * step], xi = wi[k * step];
				double br = re[i + k + len / 2], bi = im[i + k + len / 2];
				double tr = br * xr - bi * xi, ti = br * xi + bi * xr;
				re[i + k + len / 2] = re[i + k] - tr;
				im[i + k + len / 2] = im[i + k] - ti;
				re[i + k] += tr;
				im[i + k] += ti;
			}
	}
}

static long fp_run(long reps)
{
	double sum = 0.0;
	for (long r = 0; r < reps; r++) {
		matmul();
		for (int i = 0; i < FN; i++) {
			re[i] = (double)((i * 37 + r) % 17) - 8.0;
			im[i] = 0.0;
		}
		fft();
		sum += mc[r % MN][(r * 3) % MN] + re[1] * re[1] + im[1] * im[1];
	}
	return (long)sum;
}
