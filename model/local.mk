# model/local.mk: what model/ adds to the build: libmodel (the sequence
# recommender, its training and evaluation) and its tests.
noinst_LTLIBRARIES += libmodel.la
libmodel_la_SOURCES = model/seqrec.c model/seqrec.h model/train.c model/train.h \
	model/eval.c model/eval.h model/model_int.h
libmodel_la_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(LMDB_CFLAGS)
libmodel_la_LIBADD = libkernels.la libstore.la $(BLAS_LIBS) $(LMDB_LIBS) $(SODIUM_LIBS) -lm

# The PyTorch reference comparison (llm.c's test_gpt2.c): the committed
# tests/data/seqrec_ref.bin is written by model/reference/seqrec_ref.py
# (Debian's python3-torch, /usr/bin/python3); make check needs only the file.
check_PROGRAMS += tests/test_seqrec tests/test_seqrec_ref tests/test_seqrec_train
TESTS += tests/test_seqrec tests/test_seqrec_ref tests/test_seqrec_train
tests_test_seqrec_SOURCES = tests/test_seqrec.c tests/test.h
tests_test_seqrec_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(LMDB_CFLAGS)
tests_test_seqrec_LDADD = libmodel.la
tests_test_seqrec_ref_SOURCES = tests/test_seqrec_ref.c tests/test.h
tests_test_seqrec_ref_LDADD = libmodel.la
tests_test_seqrec_train_SOURCES = tests/test_seqrec_train.c tests/test.h
tests_test_seqrec_train_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(LMDB_CFLAGS)
tests_test_seqrec_train_LDADD = libmodel.la
EXTRA_DIST += tests/data/seqrec_ref.bin model/reference/seqrec_ref.py
