# model/local.mk: what model/ adds to the build: libmodel (the sequence
# recommender, its training and evaluation) and its tests.
noinst_LTLIBRARIES += libmodel.la
libmodel_la_SOURCES = model/seqrec.c model/seqrec.h model/train.c model/train.h \
	model/eval.c model/eval.h model/model_int.h model/finetune.c model/finetune.h \
	model/serve.c model/serve.h
libmodel_la_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(LMDB_CFLAGS) $(JSONC_CFLAGS)
libmodel_la_LIBADD = libkernels.la libstore.la $(BLAS_LIBS) $(LMDB_LIBS) $(SODIUM_LIBS) $(JSONC_LIBS) -lm

# The PyTorch reference comparison (llm.c's test_gpt2.c): the committed
# tests/data/seqrec_ref.bin is written by model/reference/seqrec_ref.py
# (Debian's python3-torch, /usr/bin/python3); make check needs only the file.
check_PROGRAMS += tests/test_seqrec tests/test_seqrec_ref tests/test_seqrec_train tests/test_finetune
TESTS += tests/test_seqrec tests/test_seqrec_ref tests/test_seqrec_train tests/test_finetune tests/finetune_realdata.sh
# recctl train's model and optimizer options (bad values, settings, a stored model)
TESTS += tests/train_options.sh
EXTRA_DIST += tests/train_options.sh
tests_test_finetune_SOURCES = tests/test_finetune.c tests/test.h
tests_test_finetune_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(LMDB_CFLAGS)
tests_test_finetune_LDADD = libmodel.la
tests_test_seqrec_SOURCES = tests/test_seqrec.c tests/test.h
tests_test_seqrec_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(LMDB_CFLAGS)
tests_test_seqrec_LDADD = libmodel.la
tests_test_seqrec_ref_SOURCES = tests/test_seqrec_ref.c tests/test.h
tests_test_seqrec_ref_LDADD = libmodel.la
tests_test_seqrec_train_SOURCES = tests/test_seqrec_train.c tests/test.h
tests_test_seqrec_train_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(LMDB_CFLAGS)
tests_test_seqrec_train_LDADD = libmodel.la
EXTRA_DIST += tests/data/seqrec_ref.bin model/reference/seqrec_ref.py tests/finetune_realdata.sh

# serve: the resident model, per-user cache, filters and ingest (trains a tiny
# model on generated sample data first).
check_PROGRAMS += tests/test_serve
TESTS += tests/test_serve
tests_test_serve_SOURCES = tests/test_serve.c tests/test.h
tests_test_serve_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(LMDB_CFLAGS)
tests_test_serve_LDADD = libmodel.la libimport.la libsample.la $(JSONC_LIBS) -lpthread
