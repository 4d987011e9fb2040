# client/: librecd (the public C library) and recctl (the CLI).
lib_LTLIBRARIES += librecd.la
librecd_la_SOURCES = client/librecd.c
librecd_la_LDFLAGS = $(AM_LDFLAGS) -version-info $(LIBRECD_LT_VERSION) -export-symbols-regex '^recd_'
pkginclude_HEADERS = include/recd/recd.h
pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = client/librecd.pc
EXTRA_DIST += client/librecd.pc.in

bin_PROGRAMS += recctl
recctl_SOURCES = client/recctl.c client/recctl.h client/cmd_stats.c client/cmd_show.c client/cmd_model.c \
	client/cmd_import.c client/cmd_generate.c
recctl_CFLAGS = $(AM_CFLAGS) $(LMDB_CFLAGS) $(SODIUM_CFLAGS) $(JSONC_CFLAGS)
recctl_LDADD = libimport.la libsample.la libmodel.la libkernels.la libstore.la librecd.la \
	$(JSONC_LIBS) $(LMDB_LIBS) $(SODIUM_LIBS) $(BLAS_LIBS) -lm
