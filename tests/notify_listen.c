/* notify_listen.c: a fake service manager's notification socket for the
 * tests.  Binds SOCKET (a path, or "@name" for an abstract socket), then
 * appends each datagram to OUT, one line per "VAR=value" line:
 *     <datagram number> TAB <ms since start> TAB <sender pid> TAB <line>
 * The first line, "0 TAB 0 TAB 0 TAB LISTENING", says the socket is bound.
 * Exits after LIMIT seconds (default 60) at the latest, so a test that
 * forgets it cannot hang; SIGTERM ends it sooner. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa;
	socklen_t salen;
	long long start, limit_ms;
	unsigned seq = 0;
	int fd, out, one = 1;
	size_t n;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: notify_listen SOCKET OUT [LIMIT_SECONDS]\n");
		return 2;
	}
	limit_ms = (argc == 4 ? atoll(argv[3]) : 60) * 1000;
	n = strlen(argv[1]);
	if (n == 0 || n >= sizeof sa.sun_path) {
		fprintf(stderr, "notify_listen: bad socket name\n");
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, argv[1], n);
	if (argv[1][0] == '@')
		sa.sun_path[0] = '\0';
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (argv[1][0] != '@'));

	out = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (out < 0 || fd < 0) {
		perror("notify_listen");
		return 1;
	}
	/* The sender's pid, as systemd checks it for NotifyAccess=main. */
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, salen) < 0) {
		perror("notify_listen: bind");
		return 1;
	}
	dprintf(out, "0\t0\t0\tLISTENING\n");
	start = now_ms();

	for (;;) {
		char buf[4096 + 1];
		union {
			struct cmsghdr h;
			char space[CMSG_SPACE(sizeof(struct ucred))];
		} cm;
		struct iovec iov = { buf, sizeof buf - 1 };
		struct msghdr mh;
		struct pollfd pfd = { fd, POLLIN, 0 };
		long long left = limit_ms - (now_ms() - start);
		pid_t pid = 0;
		ssize_t got;

		if (left <= 0)
			return 0;
		if (poll(&pfd, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
			continue;
		memset(&mh, 0, sizeof mh);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cm.space;
		mh.msg_controllen = sizeof cm.space;
		got = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			perror("notify_listen: recvmsg");
			return 1;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred uc;
				memcpy(&uc, CMSG_DATA(c), sizeof uc);
				pid = uc.pid;
			}
		}
		buf[got] = '\0';
		seq++;
		long long ms = now_ms() - start;
		if (mh.msg_flags & MSG_TRUNC)
			dprintf(out, "%u\t%lld\t%d\tTRUNCATED\n", seq, ms, (int)pid);
		for (char *line = buf, *nl; *line; line = nl + 1) {
			nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			dprintf(out, "%u\t%lld\t%d\t%s\n", seq, ms, (int)pid, line);
			if (!nl)
				break;
		}
	}
}
