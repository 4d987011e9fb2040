EXTRA_DIST += bench/run
# bench/local.mk: what bench/ adds to the build.
EXTRA_DIST += bench/run-quality.sh bench/run-train-speed.sh bench/sasrec_torch.py

# bench/run infer: recommend latency through model/serve.c; built by make check
# (or make bench/infer_bin).
check_PROGRAMS += bench/infer_bin
bench_infer_bin_SOURCES = bench/bench_infer.c
bench_infer_bin_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(LMDB_CFLAGS)
bench_infer_bin_LDADD = libmodel.la libimport.la libkernels.la libstore.la $(JSONC_LIBS) $(BLAS_LIBS) \
	$(LMDB_LIBS) $(SODIUM_LIBS) -lpthread -lm
EXTRA_DIST += bench/run-infer.sh

# bench/run ipc: the request ring against a Unix socket (built by make check,
# or make bench/ipc_bin).
check_PROGRAMS += bench/ipc_bin
bench_ipc_bin_SOURCES = bench/bench_ipc.c
bench_ipc_bin_LDADD = librecd.la
EXTRA_DIST += bench/run-ipc.sh

# bench/run serve: recommend and ingest through recd on ML-1M (built by make
# check, or make bench/serve_bin).
check_PROGRAMS += bench/serve_bin
bench_serve_bin_SOURCES = bench/bench_serve.c
bench_serve_bin_LDADD = librecd.la -lpthread
EXTRA_DIST += bench/run-serve.sh

# bench/run spool: batch jobs end to end through the spool and the ring
# (built by make check, or make bench/spool_bin).
check_PROGRAMS += bench/spool_bin
bench_spool_bin_SOURCES = bench/bench_spool.c
bench_spool_bin_LDADD = librecd.la -lpthread
EXTRA_DIST += bench/run-spool.sh
