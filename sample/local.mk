# sample/: the synthetic dataset generator behind recctl generate, a
# convenience library linked into recctl and the tests.
noinst_LTLIBRARIES += libsample.la
libsample_la_SOURCES = sample/sample.c sample/sample.h
EXTRA_DIST += sample/FORMAT.md

check_PROGRAMS += tests/test_sample
TESTS += tests/test_sample tests/sample_cli.sh
tests_test_sample_SOURCES = tests/test_sample.c tests/test.h
tests_test_sample_LDADD = libsample.la
EXTRA_DIST += tests/sample_cli.sh
