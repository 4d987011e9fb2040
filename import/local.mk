# import/local.mk: what import/ adds to the build: libimport (the dataset
# importers behind `recctl import`) and its tests.
noinst_LTLIBRARIES += libimport.la
libimport_la_SOURCES = import/import.c import/import.h import/import_int.h \
	import/csv.c import/csv.h import/movielens.c import/recbole.c \
	import/foursquare.c import/amazon.c import/generic.c import/event.c import/event.h
libimport_la_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(JSONC_CFLAGS)
libimport_la_LIBADD = $(JSONC_LIBS) $(SODIUM_LIBS) -lm
EXTRA_DIST += import/FORMATS.md

check_PROGRAMS += tests/test_import tests/test_import_csv
TESTS += tests/test_import tests/test_import_csv
tests_test_import_SOURCES = tests/test_import.c tests/test.h
tests_test_import_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(JSONC_CFLAGS)
tests_test_import_LDADD = libimport.la libstore.la $(JSONC_LIBS) $(LMDB_LIBS) $(SODIUM_LIBS) -lm
tests_test_import_csv_SOURCES = tests/test_import_csv.c tests/test.h import/csv.c import/csv.h

TESTS += tests/import_kill.sh tests/import_realdata.sh
EXTRA_DIST += tests/import_kill.sh tests/import_realdata.sh bench/run-import.sh
