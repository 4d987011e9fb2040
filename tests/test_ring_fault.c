/* test_ring_fault.c: recd's request rings under faults, end to end.  Starts
 * the recd binary on a scratch store with two tiny trained models and checks:
 * a client SIGKILLed with pipelined requests unanswered is reclaimed (client
 * count and recd's open descriptors back where they were) while another
 * client is served; model versions switched back and forth under steady load
 * from several connections lose no request, and once the last switch is
 * answered every new request is served by the final version; recd SIGKILLed
 * under a connected client gives that client a prompt, clear error, a
 * connect while recd is down fails clearly, and a restarted recd replaces
 * the stale socket and serves again. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "recd/recd.h"
#include "tests/recd_harness.h"
#include "tests/test.h"

static const char *user = "U00001";

static struct recd_conn *connect_ok(void)
{
	return connect_ok_timeout(10000);
}

/* recd's open descriptors. */
static int recd_fds(void)
{
	char path[64];
	struct dirent *d;
	int n = 0;
	snprintf(path, sizeof path, "/proc/%ld/fd", (long)recd_pid);
	DIR *dir = opendir(path);
	CHECK(dir);
	while ((d = readdir(dir)))
		if (d->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

static uint32_t recd_clients(struct recd_conn *c)
{
	struct recd_stats s;
	CHECK_OK(recd_stats(c, &s));
	return s.clients;
}

/* --- 1. a client killed with requests in flight -------------------------------------- */

static void test_client_killed(struct recd_conn *good)
{
	uint32_t clients0 = recd_clients(good);
	int fds0 = recd_fds(), sent = 0, p[2];
	CHECK_OK(pipe(p));

	pid_t kid = fork();
	CHECK(kid >= 0);
	if (kid == 0) {
		/* Connects, pipelines recommends until the ring is full (or 2000
		 * are in), reports how many, and waits to be killed, reading
		 * nothing. */
		struct recd_conn *c = NULL;
		int n = 0;
		close(p[0]);
		if (recd_connect(&c, sock_path, NULL, 0) < 0)
			_exit(1);
		recd_set_timeout(c, 0);
		while (n < 2000 && recd_send_recommend(c, user, 20, NULL, NULL) == 0)
			n++;
		if (write(p[1], &n, sizeof n) != (ssize_t)sizeof n)
			_exit(2);
		for (;;)
			pause();
	}
	close(p[1]);
	CHECK(read(p[0], &sent, sizeof sent) == (ssize_t)sizeof sent);
	close(p[0]);
	CHECK(sent > 100);
	/* While it is connected, recd holds its region, doorbell and socket. */
	CHECK_OK(recd_ping(good));
	CHECK_EQ(recd_clients(good), clients0 + 1);
	int fds1 = recd_fds();
	CHECK(fds1 >= fds0 + 2);
	CHECK_OK(kill(kid, SIGKILL));
	int st;
	CHECK(waitpid(kid, &st, 0) == kid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	/* The other client is served throughout, and the killed one's slot and
	 * descriptors come back (recd may still be answering into its ring). */
	uint32_t clients = 0;
	int fds = 0;
	double t0 = now_s();
	for (int i = 0; i < 250; i++) {
		struct recd_item items[5];
		struct recd_result res;
		CHECK_EQ(recd_recommend(good, user, 5, NULL, items, NULL, &res), 5);
		clients = recd_clients(good);
		fds = recd_fds();
		if (clients == clients0 && fds == fds0)
			break;
		sleep_ms(20);
	}
	if (clients != clients0 || fds != fds0) {
		fprintf(stderr, "after the kill: %u clients (was %u), %d fds (was %d, %d with the client)\n",
		        clients, clients0, fds, fds0, fds1);
		dump_log();
		CHECK(0);
	}
	fprintf(stderr, "client killed with %d pipelined recommends unread: reclaimed in %.3f s "
	        "(%u clients, %d fds; %d while connected)\n", sent, now_s() - t0, clients, fds, fds1);
	/* A new client gets the slot and is served. */
	struct recd_conn *c = connect_ok();
	CHECK_OK(recd_ping(c));
	recd_close(c);
}

/* --- 2. model versions switched under load ------------------------------------------ */

static int stop_load, final_set;
static uint32_t final_version;

struct loader {
	pthread_t th;
	unsigned long ok, failed, after_final, wrong_after_final, seen[3];
	char err[600];
};

static void *load(void *arg)
{
	struct loader *l = arg;
	struct recd_conn *c = NULL;
	char err[512];
	if (recd_connect(&c, sock_path, err, sizeof err) < 0) {
		snprintf(l->err, sizeof l->err, "connect: %s", err);
		l->failed++;
		return NULL;
	}
	recd_set_timeout(c, 10000);
	while (!__atomic_load_n(&stop_load, __ATOMIC_ACQUIRE)) {
		struct recd_item items[10];
		struct recd_result res;
		/* Read before sending: a request sent after the last switch was
		 * answered must see the final version. */
		int fin = __atomic_load_n(&final_set, __ATOMIC_ACQUIRE);
		int r = recd_recommend(c, user, 10, NULL, items, NULL, &res);
		if (r != 10) {
			if (!l->failed)
				snprintf(l->err, sizeof l->err, "recommend: %d %s: %s", r, recd_strerror(r),
				         recd_conn_error(c));
			l->failed++;
			continue;
		}
		l->ok++;
		l->seen[res.version < 3 ? res.version : 0]++;
		if (fin) {
			l->after_final++;
			if (res.version != final_version)
				l->wrong_after_final++;
		}
	}
	recd_close(c);
	return NULL;
}

static void test_model_swap(struct recd_conn *c)
{
	enum { NT = 3, SWAPS = 8 };
	struct loader l[NT];
	uint32_t v = 0;
	struct recd_stats s;

	memset(l, 0, sizeof l);
	CHECK_OK(recd_model_use(c, 1, &v));
	CHECK_EQ(v, 1);
	CHECK_OK(recd_stats(c, &s));
	uint64_t recs0 = s.recommends;
	for (int i = 0; i < NT; i++)
		CHECK(pthread_create(&l[i].th, NULL, load, &l[i]) == 0);
	sleep_ms(200);
	final_version = SWAPS % 2 ? 2 : 1;   /* odd switches go to 2, even to 1 */
	for (int i = 1; i <= SWAPS; i++) {
		uint32_t want = i % 2 ? 2 : 1;
		CHECK_OK(recd_model_use(c, want, &v));
		CHECK_EQ(v, want);
		if (i == SWAPS)
			__atomic_store_n(&final_set, 1, __ATOMIC_RELEASE);
		sleep_ms(220);
	}
	__atomic_store_n(&stop_load, 1, __ATOMIC_RELEASE);
	unsigned long ok = 0, failed = 0, after = 0, wrong = 0, seen1 = 0, seen2 = 0, seen0 = 0;
	for (int i = 0; i < NT; i++) {
		CHECK(pthread_join(l[i].th, NULL) == 0);
		if (l[i].failed)
			fprintf(stderr, "load thread %d: %lu failed, first: %s\n", i, l[i].failed, l[i].err);
		ok += l[i].ok;
		failed += l[i].failed;
		after += l[i].after_final;
		wrong += l[i].wrong_after_final;
		seen0 += l[i].seen[0];
		seen1 += l[i].seen[1];
		seen2 += l[i].seen[2];
		/* Every connection was served all along. */
		CHECK(l[i].ok > 10);
	}
	fprintf(stderr, "%d model switches under %d clients: %lu recommends answered (%lu by version 1, "
	        "%lu by version 2), %lu failed; %lu after the last switch, %lu not by version %u\n",
	        SWAPS, NT, ok, seen1, seen2, failed, after, wrong, final_version);
	CHECK_EQ(failed, 0);
	CHECK_EQ(seen0, 0);
	CHECK(seen1 > 0 && seen2 > 0);
	CHECK(after > 0);
	CHECK_EQ(wrong, 0);
	CHECK_OK(recd_stats(c, &s));
	CHECK_EQ(s.model_version, final_version);
	CHECK(s.recommends - recs0 >= ok);
	struct recd_item items[10];
	struct recd_result res;
	CHECK_EQ(recd_recommend(c, user, 10, NULL, items, NULL, &res), 10);
	CHECK_EQ(res.version, final_version);
}

/* --- 3. recd killed and restarted ----------------------------------------------------- */

static void test_recd_killed(void)
{
	struct recd_conn *c = connect_ok(), *x = NULL;
	struct recd_item items[10];
	struct recd_result res;
	char err[600];
	uint32_t v = 0;
	int st, r;

	CHECK_OK(recd_ping(c));
	CHECK_OK(recd_model_use(c, 0, &v));
	CHECK_EQ(v, 2);
	CHECK_OK(kill(recd_pid, SIGKILL));
	CHECK(waitpid(recd_pid, &st, 0) == recd_pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	recd_pid = -1;

	/* The connected client's next call fails promptly (well within its
	 * 10 s timeout), saying recd went away. */
	double t0 = now_s();
	r = recd_recommend(c, user, 10, NULL, items, NULL, &res);
	double took = now_s() - t0;
	fprintf(stderr, "call on a connection whose recd was killed: %d (%s: %s) after %.3f s\n", r,
	        recd_strerror(r), recd_conn_error(c), took);
	CHECK_EQ(r, -ECONNRESET);
	CHECK(took < 2.0);
	CHECK(strstr(recd_strerror(r), "recd") != NULL);
	CHECK(strstr(recd_conn_error(c), "recd") != NULL);
	/* And it stays failed, at once, rather than hanging. */
	t0 = now_s();
	r = recd_ping(c);
	if (r != -ECONNRESET)
		fprintf(stderr, "the next call: %d (%s: %s)\n", r, recd_strerror(r), recd_conn_error(c));
	CHECK_EQ(r, -ECONNRESET);
	CHECK(strstr(recd_conn_error(c), "recd closed the connection") != NULL);
	CHECK(now_s() - t0 < 2.0);
	recd_close(c);

	/* A connect while recd is down: refused, naming the socket (left
	 * behind, stale, by the killed recd). */
	struct stat sb;
	CHECK_OK(stat(sock_path, &sb));
	t0 = now_s();
	err[0] = '\0';
	r = recd_connect(&x, sock_path, err, sizeof err);
	fprintf(stderr, "connect while recd is down: %d (%s: %s)\n", r, recd_strerror(r), err);
	CHECK_EQ(r, -ECONNREFUSED);
	CHECK(x == NULL);
	CHECK(now_s() - t0 < 2.0);
	CHECK(strstr(recd_strerror(r), "recd is not running") != NULL);
	CHECK(strstr(err, sock_path) != NULL);

	/* Restarted on the same socket path: the stale socket is replaced, and
	 * the model version chosen before the kill is still served. */
	start_recd();
	c = connect_ok();
	CHECK_OK(recd_ping(c));
	CHECK_EQ(recd_recommend(c, user, 10, NULL, items, NULL, &res), 10);
	CHECK_EQ(res.version, 2);
	struct recd_stats s;
	CHECK_OK(recd_stats(c, &s));
	CHECK_EQ(s.pid, recd_pid);
	CHECK_EQ(s.clients, 1);
	recd_close(c);
}

int main(void)
{
	harness_init();

	/* A tiny store and two models (versions 1 and 2). */
	char args[4400];
	snprintf(args, sizeof args, "generate --seed 3 --users 60 --items 40 --events-per-user 12 --import '%s/data' >/dev/null", tmp);
	recctl_ok(args);
	recctl_ok("train --dim 16 --blocks 1 --heads 1 --maxlen 16 --epochs 2 --eval-every 0 --threads 1 -q >/dev/null");
	recctl_ok("train --dim 8 --blocks 1 --heads 1 --maxlen 16 --epochs 1 --eval-every 0 --threads 1 -q >/dev/null");
	write_conf_with(NULL);
	start_recd();
	CHECK(log_has("serving model version 2"));

	struct recd_conn *c = connect_ok();
	CHECK_OK(recd_ping(c));
	test_client_killed(c);
	test_model_swap(c);
	recd_close(c);
	test_recd_killed();
	kill_recd();
	CHECK(waitpid(recd_pid, NULL, 0) == recd_pid);
	recd_pid = -1;
	test_rmtree(tmp);
	return 0;
}
