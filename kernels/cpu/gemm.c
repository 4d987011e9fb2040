/* gemm.c: sgemm over the pool.  OpenBLAS runs single-threaded (cpu.c says
 * why) on pieces of the product handed out from a shared counter:
 *   - rows of C (M) or columns of C (N), whichever is larger, so the
 *     operand that every piece packs again is the smaller one;
 *   - or, when K dwarfs M and N (weight gradients: (OC, C) summed over
 *     B T rows), slices of K, each into its own partial product, added in
 *     slice order afterwards (deterministic, unlike atomics).
 * Piece sizes depend on the shape only, never on the thread count, so the
 * result is bitwise the same for any number of threads, and a thread that
 * the OS delays holds up nobody: the others take its pieces. */
#include "config.h"

#include <string.h>

#include <cblas.h>

#include "kernels/cpu/cpu.h"

/* Below this many multiply-adds a product is one cblas call (~50 us). */
#define GEMM_SPLIT_FMA   (1.0 * (1 << 21))
/* Aim for pieces of an eighth of the product, within these bounds: small
 * enough to balance two threads, large enough that OpenBLAS's packing and
 * call overhead stay a few percent. */
#define GEMM_PIECE_MIN   (1.0 * (1 << 20))
#define GEMM_PIECE_MAX   (1.0 * (1 << 23))

enum gemm_split { GEMM_M, GEMM_N, GEMM_K };

struct gemm_job {
	enum gemm_split split;
	int ta, tb, M, N, K, lda, ldb, ldc;
	float alpha, beta;
	const float *A, *B;
	float *C;
	float *part;          /* GEMM_K: the partial products, (nk, M, N) */
	size_t nk;
	struct cpu_chunks q;
};

static inline void sgemm1(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                          const float *B, int ldb, float beta, float *C, int ldc)
{
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
	            M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void gemm_task(void *arg, int tid, int nth)
{
	struct gemm_job *j = arg;
	size_t lo, hi;
	while (cpu_chunk(&j->q, &lo, &hi)) {
		int n = (int)(hi - lo);
		switch (j->split) {
		case GEMM_M: {   /* rows lo.. of op(A) and of C */
			const float *A = j->ta ? j->A + lo : j->A + lo * (size_t)j->lda;
			sgemm1(j->ta, j->tb, n, j->N, j->K, j->alpha, A, j->lda, j->B, j->ldb, j->beta,
			       j->C + lo * (size_t)j->ldc, j->ldc);
			break;
		}
		case GEMM_N: {   /* columns lo.. of op(B) and of C */
			const float *B = j->tb ? j->B + lo * (size_t)j->ldb : j->B + lo;
			sgemm1(j->ta, j->tb, j->M, n, j->K, j->alpha, j->A, j->lda, B, j->ldb, j->beta, j->C + lo, j->ldc);
			break;
		}
		case GEMM_K: {   /* columns lo.. of op(A), rows lo.. of op(B) */
			const float *A = j->ta ? j->A + lo * (size_t)j->lda : j->A + lo;
			const float *B = j->tb ? j->B + lo : j->B + lo * (size_t)j->ldb;
			float *P = j->part + lo / j->q.chunk * (size_t)j->M * j->N;
			sgemm1(j->ta, j->tb, j->M, j->N, n, j->alpha, A, j->lda, B, j->ldb, 0.0f, P, j->N);
			break;
		}
		}
	}
}

/* C = beta C + the partial products, added in slice order; rows of C in
 * chunks. */
static void gemm_reduce_task(void *arg, int tid, int nth)
{
	struct gemm_job *j = arg;
	size_t lo, hi, MN = (size_t)j->M * j->N;
	while (cpu_chunk(&j->q, &lo, &hi)) {
		for (size_t i = lo; i < hi; i++) {
			float *c = j->C + i * (size_t)j->ldc;
			const float *p = j->part + i * (size_t)j->N;
			/* beta 0 must not read C: it may hold NaN garbage. */
			for (int x = 0; x < j->N; x++)
				c[x] = j->beta == 0.0f ? p[x] : j->beta * c[x] + p[x];
			for (size_t k = 1; k < j->nk; k++)
				for (int x = 0; x < j->N; x++)
					c[x] += p[k * MN + x];
		}
	}
}

static size_t round_up(size_t x, size_t to)
{
	return (x + to - 1) / to * to;
}

void cpu_sgemm(struct cpu *c, int transa, int transb, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *Cm, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	if (K <= 0) {
		/* C = beta C; BLAS would too, but some reject K = 0's lda. */
		for (int i = 0; i < M; i++)
			for (int x = 0; x < N; x++)
				Cm[(size_t)i * ldc + x] = beta == 0.0f ? 0.0f : beta * Cm[(size_t)i * ldc + x];
		return;
	}
	double fma = (double)M * N * K;
	if (fma < GEMM_SPLIT_FMA) {
		sgemm1(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, Cm, ldc);
		return;
	}
	double piece = fma / 8;
	piece = piece < GEMM_PIECE_MIN ? GEMM_PIECE_MIN : piece > GEMM_PIECE_MAX ? GEMM_PIECE_MAX : piece;
	struct gemm_job j = { .ta = transa, .tb = transb, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb,
	                      .ldc = ldc, .alpha = alpha, .beta = beta, .A = A, .B = B, .C = Cm };
	int big = M > N ? M : N;
	if (K >= 8 * big) {
		/* Slices of K of at least 256, and at most 64 partial products. */
		size_t ck = round_up((size_t)(piece / ((double)M * N)) + 1, 256);
		size_t min_ck = round_up(((size_t)K + 63) / 64, 256);
		ck = ck < min_ck ? min_ck : ck;
		if (ck < (size_t)K) {
			j.split = GEMM_K;
			j.nk = ((size_t)K + ck - 1) / ck;
			j.part = cpu_gemm_scratch(c, j.nk * (size_t)M * N);
			j.q = cpu_chunks((size_t)K, ck);
			cpu_parallel(c, gemm_task, &j, (size_t)(fma / 16));
			j.q = cpu_chunks((size_t)M, 16);
			cpu_parallel(c, gemm_reduce_task, &j, j.nk * (size_t)M * N);
			return;
		}
	}
	j.split = M >= N ? GEMM_M : GEMM_N;
	double per = fma / big;   /* multiply-adds per row (or column) of C */
	size_t chunk = round_up((size_t)(piece / per) + 1, 16);
	if (chunk >= (size_t)big) {
		sgemm1(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, Cm, ldc);
		return;
	}
	j.q = cpu_chunks((size_t)big, chunk);
	cpu_parallel(c, gemm_task, &j, (size_t)(fma / 16));
}
