/* bench_ipc.c: recd's request ring against a plain Unix-socket
 * request/response, side by side on the same machine.
 *
 *   bench/ipc_bin SOCKET [-n ROUNDTRIPS] [-t SECONDS] [-s CLIENTS]
 *
 * 1. ping round trips through the ring (librecd, recd at SOCKET): p50, p99;
 * 2. pipelined pings through the ring: windows of 256 sent, then read;
 * 3. the same two with a forked echo server on a SOCK_SEQPACKET Unix socket
 *    (16-byte requests and 24-byte answers, what a ping carries), the
 *    reference a plain socket protocol would give;
 * 4. with -s N > 0: N client threads doing round trips at once (ring only).
 * (Recommendations through the ring: bench/bench_serve.c, bench/run serve.)
 * Prints a human summary, then one JSON object as the last line. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "recd/recd.h"

#define WINDOW 256

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void die(const char *what, int r, struct recd_conn *c)
{
	fprintf(stderr, "bench_ipc: %s: %s (%s)\n", what, recd_strerror(r), c ? recd_conn_error(c) : "");
	exit(1);
}

/* --- the ring ----------------------------------------------------------------- */

static void ring_rtt(const char *sock, long n, double *p50, double *p99)
{
	struct recd_conn *c;
	char err[600];
	double *v = malloc((size_t)n * sizeof *v);
	int r;
	if (!v || (r = recd_connect(&c, sock, err, sizeof err)) < 0) {
		fprintf(stderr, "bench_ipc: connect: %s\n", err);
		exit(1);
	}
	for (long i = 0; i < n / 10; i++)   /* warm up */
		if ((r = recd_ping(c)) < 0)
			die("ping", r, c);
	for (long i = 0; i < n; i++) {
		double t0 = now_us();
		if ((r = recd_ping(c)) < 0)
			die("ping", r, c);
		v[i] = now_us() - t0;
	}
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	*p50 = pct(v, (size_t)n, 0.5);
	*p99 = pct(v, (size_t)n, 0.99);
	free(v);
	recd_close(c);
}

static double ring_pipelined(const char *sock, double secs)
{
	struct recd_conn *c;
	char err[600];
	long done = 0;
	int r;
	if ((r = recd_connect(&c, sock, err, sizeof err)) < 0) {
		fprintf(stderr, "bench_ipc: connect: %s\n", err);
		exit(1);
	}
	double t0 = now_us(), t;
	do {
		for (int i = 0; i < WINDOW; i++)
			if ((r = recd_send_ping(c, NULL)) < 0)
				die("send", r, c);
		for (int i = 0; i < WINDOW; i++) {
			struct recd_reply *rep;
			if ((r = recd_receive(c, 10000, &rep)) < 0)
				die("receive", r, c);
			recd_reply_free(rep);
		}
		done += WINDOW;
		t = now_us();
	} while (t - t0 < secs * 1e6);
	recd_close(c);
	return (double)done / ((t - t0) / 1e6);
}

struct thr {
	const char *sock;
	long n;
	double *v;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	struct recd_conn *c;
	char err[600];
	int r;
	if ((r = recd_connect(&c, t->sock, err, sizeof err)) < 0) {
		fprintf(stderr, "bench_ipc: connect: %s\n", err);
		exit(1);
	}
	for (long i = 0; i < t->n; i++) {
		double t0 = now_us();
		if ((r = recd_ping(c)) < 0)
			die("ping", r, c);
		t->v[i] = now_us() - t0;
	}
	recd_close(c);
	return NULL;
}

/* --- the Unix-socket reference --------------------------------------------------- */

static void echo_server(int lfd)
{
	int fd = accept(lfd, NULL, NULL);
	char in[64], out[24];
	memset(out, 0, sizeof out);
	if (fd < 0)
		_exit(1);
	for (;;) {
		ssize_t n = recv(fd, in, sizeof in, 0);
		if (n <= 0)
			_exit(0);
		memcpy(out + 8, in + 8, 8);   /* echo the request ID, as recd does */
		if (send(fd, out, sizeof out, MSG_NOSIGNAL) != (ssize_t)sizeof out)
			_exit(0);
	}
}

static int sock_start(pid_t *pid, char *path, size_t len)
{
	struct sockaddr_un sa;
	int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), fd;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "/tmp/recd-bench-%ld.sock", (long)getpid());
	snprintf(path, len, "%s", sa.sun_path);
	unlink(path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1) < 0) {
		perror("bench_ipc: echo socket");
		exit(1);
	}
	if ((*pid = fork()) == 0)
		echo_server(lfd);
	close(lfd);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("bench_ipc: connect to the echo server");
		exit(1);
	}
	unlink(path);
	return fd;
}

static void sock_roundtrip(int fd, uint64_t id)
{
	char req[16], rep[64];
	memset(req, 0, sizeof req);
	memcpy(req + 8, &id, 8);
	if (send(fd, req, sizeof req, 0) != (ssize_t)sizeof req || recv(fd, rep, sizeof rep, 0) != 24) {
		perror("bench_ipc: echo");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	long n = 20000, nthreads = 0;
	double secs = 1.0, r50, r99, s50, s99;
	int c;

	while ((c = getopt(argc, argv, "n:t:s:")) != -1) {
		switch (c) {
		case 'n': n = atol(optarg); break;
		case 't': secs = atof(optarg); break;
		case 's': nthreads = atol(optarg); break;
		default:
			fprintf(stderr, "usage: %s SOCKET [-n ROUNDTRIPS] [-t SECONDS] [-s CLIENTS]\n", argv[0]);
			return 2;
		}
	}
	if (optind != argc - 1 || n < 100 || secs <= 0 || nthreads < 0 || nthreads > 256) {
		fprintf(stderr, "usage: %s SOCKET [-n ROUNDTRIPS>=100] [-t SECONDS] [-s CLIENTS<=256]\n", argv[0]);
		return 2;
	}
	const char *sock = argv[optind];
	signal(SIGPIPE, SIG_IGN);

	ring_rtt(sock, n, &r50, &r99);
	double rthr = ring_pipelined(sock, secs);

	char path[128];
	pid_t pid;
	int fd = sock_start(&pid, path, sizeof path);
	double *v = malloc((size_t)n * sizeof *v);
	for (long i = 0; i < n / 10; i++)
		sock_roundtrip(fd, (uint64_t)i);
	for (long i = 0; i < n; i++) {
		double t0 = now_us();
		sock_roundtrip(fd, (uint64_t)i);
		v[i] = now_us() - t0;
	}
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	s50 = pct(v, (size_t)n, 0.5);
	s99 = pct(v, (size_t)n, 0.99);
	long done = 0;
	double t0 = now_us(), t;
	do {
		char req[16], rep[64];
		memset(req, 0, sizeof req);
		for (int i = 0; i < WINDOW; i++)
			if (send(fd, req, sizeof req, 0) != (ssize_t)sizeof req) {
				perror("bench_ipc: send");
				return 1;
			}
		for (int i = 0; i < WINDOW; i++)
			if (recv(fd, rep, sizeof rep, 0) != 24) {
				perror("bench_ipc: recv");
				return 1;
			}
		done += WINDOW;
		t = now_us();
	} while (t - t0 < secs * 1e6);
	double sthr = (double)done / ((t - t0) / 1e6);
	close(fd);
	waitpid(pid, NULL, 0);

	double m50 = 0, m99 = 0;
	if (nthreads) {
		pthread_t th[256];
		struct thr ts[256];
		long per = n / nthreads > 100 ? n / nthreads : 100;
		double *all = malloc((size_t)(per * nthreads) * sizeof *all);
		for (long i = 0; i < nthreads; i++) {
			ts[i].sock = sock;
			ts[i].n = per;
			ts[i].v = all + i * per;
			pthread_create(&th[i], NULL, thr_main, &ts[i]);
		}
		for (long i = 0; i < nthreads; i++)
			pthread_join(th[i], NULL);
		qsort(all, (size_t)(per * nthreads), sizeof *all, cmp_double);
		m50 = pct(all, (size_t)(per * nthreads), 0.5);
		m99 = pct(all, (size_t)(per * nthreads), 0.99);
		free(all);
	}

	printf("ping round trip, %ld each:  ring p50 %.1f us  p99 %.1f us   |  unix socket p50 %.1f us  p99 %.1f us\n",
	       n, r50, r99, s50, s99);
	printf("pipelined (windows of %d):   ring %.0f req/s             |  unix socket %.0f req/s\n",
	       WINDOW, rthr, sthr);
	printf("ring / socket: round trip p50 %.2fx the time, pipelined %.2fx the rate\n", r50 / s50, rthr / sthr);
	if (nthreads)
		printf("%ld client threads at once: ring p50 %.1f us  p99 %.1f us\n", nthreads, m50, m99);
	printf("{\"bench\":\"ipc\",\"roundtrips\":%ld,\"ring_ping_p50_us\":%.2f,\"ring_ping_p99_us\":%.2f,"
	       "\"uds_ping_p50_us\":%.2f,\"uds_ping_p99_us\":%.2f,\"ping_p50_ratio\":%.3f,"
	       "\"ring_pipelined_msgs_per_s\":%.0f,\"uds_pipelined_msgs_per_s\":%.0f,\"pipelined_ratio\":%.3f,"
	       "\"clients\":%ld,\"multi_rtt_p50_us\":%.2f,\"multi_rtt_p99_us\":%.2f}\n",
	       n, r50, r99, s50, s99, r50 / s50, rthr, sthr, rthr / sthr, nthreads, m50, m99);
	free(v);
	return 0;
}
