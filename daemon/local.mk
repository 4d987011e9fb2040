# daemon/local.mk: recd, the daemon: a thin main (daemon/recd.c) over
# libdaemon.la, which the tests link too.
noinst_LTLIBRARIES += libdaemon.la
libdaemon_la_SOURCES = daemon/conf.c daemon/conf.h daemon/daemon.c daemon/daemon.h \
	daemon/log.c daemon/log.h daemon/notify.c daemon/notify.h
libdaemon_la_CFLAGS = $(AM_CFLAGS) $(SYSTEMD_CFLAGS)
libdaemon_la_LIBADD = libstore.la $(LMDB_LIBS) $(SODIUM_LIBS) $(SYSTEMD_LIBS)

sbin_PROGRAMS += recd
recd_SOURCES = daemon/recd.c
# The default configuration file follows --sysconfdir, so that make install
# (which puts recd.conf under $(sysconfdir)/recd) and recd agree on it.
recd_CPPFLAGS = $(AM_CPPFLAGS) -DRECD_SYSCONFDIR='"$(sysconfdir)"'
recd_LDADD = libdaemon.la libstore.la $(LMDB_LIBS) $(SODIUM_LIBS) $(SYSTEMD_LIBS)

dist_man_MANS += man/recd.8 man/recd.conf.5

# Tests: the config parser, the daemon's open/reload/status, and the whole
# process against a fake NOTIFY_SOCKET (tests/notify_listen is its listener).
check_PROGRAMS += tests/test_conf tests/test_daemon tests/notify_listen
tests_test_conf_SOURCES = tests/test_conf.c tests/test.h
tests_test_conf_LDADD = libdaemon.la
tests_test_daemon_SOURCES = tests/test_daemon.c tests/test.h
tests_test_daemon_LDADD = libdaemon.la libstore.la $(LMDB_LIBS) $(SODIUM_LIBS) $(SYSTEMD_LIBS)
tests_notify_listen_SOURCES = tests/notify_listen.c
TESTS += tests/test_conf tests/test_daemon tests/daemon_notify.sh
EXTRA_DIST += tests/daemon_notify.sh
