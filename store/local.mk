# store/: the LMDB stores, a convenience library linked into recd and recctl.
noinst_LTLIBRARIES += libstore.la
libstore_la_SOURCES = store/store.c store/store.h store/store_int.h store/recent.c store/recent.h
libstore_la_CFLAGS = $(AM_CFLAGS) $(LMDB_CFLAGS) $(SODIUM_CFLAGS)
libstore_la_LIBADD = $(LMDB_LIBS) $(SODIUM_LIBS)
