# kernels/: the math, one backend per subfolder (kernels.h is the interface).
noinst_LTLIBRARIES += libkernels.la
libkernels_la_SOURCES = kernels/kernels.h kernels/backend.h kernels/kernels.c \
	kernels/cpu/cpu.h kernels/cpu/cpu.c kernels/cpu/vec_body.h \
	kernels/cpu/vec_generic.c kernels/cpu/vec_avx2.c \
	kernels/cpu/gemm.c kernels/cpu/matmul.c kernels/cpu/attention.c kernels/cpu/xent.c \
	kernels/cpu/elementwise.c kernels/cpu/adamw.c
libkernels_la_CFLAGS = $(AM_CFLAGS) $(BLAS_CFLAGS)
libkernels_la_LIBADD = $(BLAS_LIBS) -lpthread -lm

check_PROGRAMS += tests/test_kernels_grad
TESTS += tests/test_kernels_grad
tests_test_kernels_grad_SOURCES = tests/test_kernels_grad.c tests/test.h
tests_test_kernels_grad_LDADD = libkernels.la -lm

# bench/run kernels: per-op timings; built by make check (or make bench/kernels_bin).
check_PROGRAMS += bench/kernels_bin
bench_kernels_bin_SOURCES = bench/bench_kernels.c
bench_kernels_bin_LDADD = libkernels.la -lm
EXTRA_DIST += bench/run-kernels.sh
