# daemon/local.mk: recd, the daemon: a thin main (daemon/recd.c) over
# libdaemon.la, which the tests link too.
noinst_LTLIBRARIES += libdaemon.la
libdaemon_la_SOURCES = daemon/conf.c daemon/conf.h daemon/daemon.c daemon/daemon.h \
	daemon/log.c daemon/log.h daemon/notify.c daemon/notify.h \
	daemon/ring.c daemon/ring.h daemon/proto.h \
	daemon/jobs.c daemon/jobs.h daemon/spool.c daemon/spool.h \
	daemon/compact.c daemon/compact.h
libdaemon_la_CFLAGS = $(AM_CFLAGS) $(SYSTEMD_CFLAGS) $(URING_CFLAGS) $(JSONC_CFLAGS) $(SODIUM_CFLAGS)
libdaemon_la_LIBADD = libmodel.la libimport.la libkernels.la libstore.la $(BLAS_LIBS) $(LMDB_LIBS) $(SODIUM_LIBS) \
	$(JSONC_LIBS) $(URING_LIBS) $(SYSTEMD_LIBS) -lm

sbin_PROGRAMS += recd
recd_SOURCES = daemon/recd.c
# The default configuration file follows --sysconfdir, so that make install
# (which puts recd.conf under $(sysconfdir)/recd) and recd agree on it.
recd_CPPFLAGS = $(AM_CPPFLAGS) -DRECD_SYSCONFDIR='"$(sysconfdir)"'
recd_LDADD = libdaemon.la libmodel.la libimport.la libkernels.la libstore.la $(BLAS_LIBS) $(LMDB_LIBS) \
	$(SODIUM_LIBS) $(JSONC_LIBS) $(URING_LIBS) $(SYSTEMD_LIBS) -lm

dist_man_MANS += man/recd.8 man/recd.conf.5 man/recd-spool.5

# Tests: the config parser, the daemon's open/reload/status, and the whole
# process against a fake NOTIFY_SOCKET (tests/notify_listen is its listener).
check_PROGRAMS += tests/test_conf tests/test_daemon tests/notify_listen
tests_test_conf_SOURCES = tests/test_conf.c tests/test.h
tests_test_conf_LDADD = libdaemon.la
tests_test_daemon_SOURCES = tests/test_daemon.c tests/test.h
tests_test_daemon_LDADD = libdaemon.la libstore.la $(LMDB_LIBS) $(SODIUM_LIBS) $(SYSTEMD_LIBS)
tests_notify_listen_SOURCES = tests/notify_listen.c
TESTS += tests/test_conf tests/test_daemon tests/daemon_notify.sh

# The request rings end to end: recd as a process, librecd and raw clients.
check_PROGRAMS += tests/test_ring
tests_test_ring_SOURCES = tests/test_ring.c tests/recd_harness.h tests/test.h
tests_test_ring_LDADD = librecd.la -lm
TESTS += tests/test_ring tests/recctl_daemon.sh
# The recent table through recd and recctl compact.
TESTS += tests/recent_compact.sh
EXTRA_DIST += tests/recent_compact.sh
# Faults on the rings: a client killed mid-request, model switches under
# load, recd killed and restarted.
check_PROGRAMS += tests/test_ring_fault
tests_test_ring_fault_SOURCES = tests/test_ring_fault.c tests/recd_harness.h tests/test.h
tests_test_ring_fault_LDADD = librecd.la -lpthread
TESTS += tests/test_ring_fault
EXTRA_DIST += tests/recctl_daemon.sh
EXTRA_DIST += tests/daemon_notify.sh

# The spool: job names, parsing and signatures (test_jobs); bad input and
# crashes against the whole daemon (recd-spool(5)).
check_PROGRAMS += tests/test_jobs
tests_test_jobs_SOURCES = tests/test_jobs.c tests/test.h
tests_test_jobs_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(SODIUM_CFLAGS)
tests_test_jobs_LDADD = libdaemon.la $(JSONC_LIBS) $(SODIUM_LIBS)
TESTS += tests/test_jobs tests/spool_badinput.sh tests/spool_fault.sh tests/ring_jobs.sh
EXTRA_DIST += tests/spool_badinput.sh tests/spool_fault.sh tests/spool_lib.sh tests/ring_jobs.sh
