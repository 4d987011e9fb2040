# client/: librecd (the public C library) and recctl (the CLI).
lib_LTLIBRARIES += librecd.la
# librecd speaks only the wire protocol (daemon/proto.h): no store, no model.
librecd_la_SOURCES = client/librecd.c daemon/proto.h
librecd_la_LDFLAGS = $(AM_LDFLAGS) -version-info $(LIBRECD_LT_VERSION) -export-symbols-regex '^recd_'
pkginclude_HEADERS = include/recd/recd.h
pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = client/librecd.pc
EXTRA_DIST += client/librecd.pc.in
dist_man_MANS += man/librecd.3

bin_PROGRAMS += recctl
recctl_SOURCES = client/recctl.c client/recctl.h client/cmd_stats.c client/cmd_compact.c client/cmd_show.c client/cmd_model.c client/cmd_modelver.c client/cmd_finetune.c \
	client/cmd_import.c client/cmd_generate.c client/cmd_jobs.c
# The daemon's commands (librecd) and config-check (recd's own parser).
recctl_SOURCES += client/cmd_daemon.c client/cmd_ringjobs.c daemon/conf.c daemon/conf.h
recctl_CPPFLAGS = $(AM_CPPFLAGS) -DRECCTL_SYSCONFDIR='"$(sysconfdir)"'
recctl_CFLAGS = $(AM_CFLAGS) $(LMDB_CFLAGS) $(SODIUM_CFLAGS) $(JSONC_CFLAGS)
recctl_LDADD = libsample.la libmodel.la libimport.la libkernels.la libstore.la librecd.la \
	$(JSONC_LIBS) $(LMDB_LIBS) $(SODIUM_LIBS) $(BLAS_LIBS) -lm
