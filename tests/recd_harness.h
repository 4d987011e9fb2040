/* recd_harness.h: runs the recd binary for a C test.  One scratch directory
 * (test_tmpdir) holds the store (state/), the runtime directory (run/), the
 * configuration and recd's log; recd is started from $top_builddir, dies
 * with the test (PR_SET_PDEATHSIG and an atexit kill), and counts as up when
 * a ping over the ring is answered.  Header-only: each test is one program. */
#ifndef RECD_TESTS_RECD_HARNESS_H
#define RECD_TESTS_RECD_HARNESS_H

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "recd/recd.h"
#include "tests/test.h"

static char tmp[4096], sock_path[4200], conf_path[4200], log_path[4200], state[4200];
static char recctl_path[4200];
static pid_t recd_pid = -1;

/* Fills the paths above; the recctl used to prepare stores is $RECCTL or
 * $top_builddir/recctl. */
static inline void harness_init(void)
{
	const char *r = getenv("RECCTL"), *b = getenv("top_builddir");
	signal(SIGPIPE, SIG_IGN);
	if (r && *r)
		snprintf(recctl_path, sizeof recctl_path, "%s", r);
	else
		snprintf(recctl_path, sizeof recctl_path, "%s/recctl", b && *b ? b : ".");
	snprintf(tmp, sizeof tmp, "%s", test_tmpdir());
	snprintf(state, sizeof state, "%s/state", tmp);
	snprintf(conf_path, sizeof conf_path, "%s/recd.conf", tmp);
	snprintf(log_path, sizeof log_path, "%s/recd.log", tmp);
	snprintf(sock_path, sizeof sock_path, "%s/run/recd.sock", tmp);
}

static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* The configuration every test starts from (no spool: spool_dir does not
 * exist), then the caller's own lines. */
static inline void write_conf_with(const char *extra)
{
	FILE *f = fopen(conf_path, "w");
	CHECK(f);
	fprintf(f, "state_dir = %s\nruntime_dir = %s/run\nlog_level = info\nmax_clients = 16\n"
	        "status_interval = 0\nspool_dir = %s/no-spool\n%s", state, tmp, tmp, extra ? extra : "");
	CHECK(fclose(f) == 0);
}

static inline int log_has(const char *needle)
{
	static char buf[1 << 18];
	FILE *f = fopen(log_path, "r");
	size_t n;
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static inline void dump_log(void)
{
	char cmd[4300];
	snprintf(cmd, sizeof cmd, "cat '%s' >&2", log_path);
	if (system(cmd) != 0) {
	}
}

/* A connection, or the test ends with librecd's reason and recd's log;
 * timeout_ms 0 keeps librecd's default. */
static inline struct recd_conn *connect_ok_timeout(int timeout_ms)
{
	struct recd_conn *c = NULL;
	char err[512];
	int r = recd_connect(&c, sock_path, err, sizeof err);
	if (r < 0) {
		fprintf(stderr, "recd_connect: %s (%s)\n", err, recd_strerror(r));
		dump_log();
		exit(1);
	}
	if (timeout_ms > 0)
		recd_set_timeout(c, timeout_ms);
	return c;
}

static inline void kill_recd(void)
{
	if (recd_pid > 0)
		kill(recd_pid, SIGKILL);
}

static inline void start_recd(void)
{
	static int registered;
	const char *b = getenv("top_builddir");
	char recd[4200];
	snprintf(recd, sizeof recd, "%s/recd", b && *b ? b : ".");
	recd_pid = fork();
	CHECK(recd_pid >= 0);
	if (recd_pid > 0 && !registered) {
		atexit(kill_recd);
		registered = 1;
	}
	if (recd_pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		/* Gone with the test, however the test ends. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || fd < 0 || dup2(fd, 2) < 0 || dup2(fd, 1) < 0)
			_exit(127);
		execl(recd, recd, "-c", conf_path, (char *)NULL);
		_exit(127);
	}
	/* Up when a ping is answered. */
	for (int i = 0; i < 400; i++) {
		struct recd_conn *c;
		if (recd_connect(&c, sock_path, NULL, 0) == 0) {
			int r = recd_ping(c);
			recd_close(c);
			if (r == 0)
				return;
		}
		int st;
		if (waitpid(recd_pid, &st, WNOHANG) == recd_pid) {
			fprintf(stderr, "recd exited early (status %d)\n", st);
			dump_log();
			exit(1);
		}
		sleep_ms(50);
	}
	fprintf(stderr, "recd did not answer within 20 s\n");
	dump_log();
	exit(1);
}

/* recd's exit status (128 + signal when killed), or -1 if it is still
 * running after secs seconds. */
static inline int wait_recd_exit(int secs)
{
	for (int i = 0; i < secs * 20; i++) {
		int st;
		if (waitpid(recd_pid, &st, WNOHANG) == recd_pid) {
			recd_pid = -1;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		sleep_ms(50);
	}
	return -1;
}

/* Runs recctl on the scratch store: "ARGS" after `recctl -q -d STATE`; the
 * test ends if it fails. */
static inline void recctl_ok(const char *args)
{
	char cmd[16384];
	snprintf(cmd, sizeof cmd, "'%s' -q -d '%s' %s", recctl_path, state, args);
	if (system(cmd) != 0) {
		fprintf(stderr, "preparing the store failed: %s\n", cmd);
		exit(1);
	}
}

#endif
