# tests/: one program or script per subject.  Parts add their own tests in
# their local.mk; the ones here test the store and the tree as a whole.
check_PROGRAMS += tests/test_store
TESTS += tests/test_store
tests_test_store_SOURCES = tests/test_store.c tests/test.h
tests_test_store_CFLAGS = $(AM_CFLAGS) $(LMDB_CFLAGS)
tests_test_store_LDADD = libstore.la $(LMDB_LIBS) $(SODIUM_LIBS) -lm
check_PROGRAMS += tests/test_store_writers
TESTS += tests/test_store_writers
tests_test_store_writers_SOURCES = tests/test_store_writers.c tests/test.h
tests_test_store_writers_CFLAGS = $(AM_CFLAGS) $(LMDB_CFLAGS)
tests_test_store_writers_LDADD = libstore.la $(LMDB_LIBS) $(SODIUM_LIBS) -lpthread -lm
# The recent table (real-time appends) and compaction, against a model.
check_PROGRAMS += tests/test_store_recent
TESTS += tests/test_store_recent
tests_test_store_recent_SOURCES = tests/test_store_recent.c tests/test.h
tests_test_store_recent_CFLAGS = $(AM_CFLAGS) $(LMDB_CFLAGS)
tests_test_store_recent_LDADD = libstore.la $(LMDB_LIBS) $(SODIUM_LIBS) -lpthread -lm

TESTS += tests/store_pseudonym.sh
EXTRA_DIST += tests/store_pseudonym.sh
