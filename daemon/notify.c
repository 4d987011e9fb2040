/* notify.c: sd_notify(3) messages to the service manager.  With libsystemd
 * (HAVE_SYSTEMD) its sd_notify() sends them; without it a built-in sender
 * speaks the same protocol, which sd_notify(3) documents as stable: one
 * datagram of "VAR=value" lines to the AF_UNIX socket named by $NOTIFY_SOCKET,
 * a path or, with a leading '@', an abstract name.  The built-in one exists so
 * that a --enable-systemd=no build still works under Type=notify and passes
 * the same tests; it does not do libsystemd's vsock: addresses. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#else
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#endif

#include "daemon/notify.h"

#ifdef HAVE_SYSTEMD

const char *notify_backend(void)
{
	return "libsystemd";
}

static int notify_send(const char *msg)
{
	/* unset_environment = 0: every later reload and stop needs the socket too. */
	int r = sd_notify(0, msg);
	return r < 0 ? r : 0;
}

int notify_watchdog_enabled(uint64_t *usec)
{
	uint64_t u;
	int r = sd_watchdog_enabled(0, &u);
	if (r > 0)
		*usec = u;
	return r;
}

#else /* !HAVE_SYSTEMD */

const char *notify_backend(void)
{
	return "built-in";
}

static int notify_send(const char *msg)
{
	const char *e = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	size_t n, len = strlen(msg);
	int fd, r = 0;

	if (!e || !*e)
		return 0;
	n = strlen(e);
	if ((e[0] != '/' && e[0] != '@') || n >= sizeof sa.sun_path)
		return -EINVAL;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, e, n);
	if (e[0] == '@')
		sa.sun_path[0] = '\0';   /* abstract: the name's length is the address's */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, msg, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int notify_env_u64(const char *name, uint64_t *out)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (!s)
		return 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 1;
}

/* sd_watchdog_enabled(3) without libsystemd. */
int notify_watchdog_enabled(uint64_t *usec)
{
	uint64_t u, pid;
	int r;

	if ((r = notify_env_u64("WATCHDOG_USEC", &u)) <= 0)
		return r;
	if (u == 0)
		return -EINVAL;
	if ((r = notify_env_u64("WATCHDOG_PID", &pid)) < 0)
		return r;
	if (r > 0 && pid != (uint64_t)getpid())
		return 0;
	*usec = u;
	return 1;
}

#endif /* HAVE_SYSTEMD */

/* One STATUS= line: a newline in the text would start another variable. */
static void notify_clean(char *dst, size_t size, const char *s)
{
	size_t i;
	for (i = 0; s[i] && i + 1 < size; i++)
		dst[i] = (s[i] == '\n' || s[i] == '\r') ? ' ' : s[i];
	dst[i] = '\0';
}

int notify_ready(const char *status)
{
	char msg[NOTIFY_STATUS_MAX + 32], text[NOTIFY_STATUS_MAX + 1];
	notify_clean(text, sizeof text, status);
	snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", text);
	return notify_send(msg);
}

int notify_status(const char *status)
{
	char msg[NOTIFY_STATUS_MAX + 32], text[NOTIFY_STATUS_MAX + 1];
	notify_clean(text, sizeof text, status);
	snprintf(msg, sizeof msg, "STATUS=%s", text);
	return notify_send(msg);
}

int notify_reloading(void)
{
	/* systemd >= 253 (Type=notify-reload) wants to know when the reload
	 * began, on CLOCK_MONOTONIC, so it can tell a READY=1 that answers this
	 * reload from an older one; older systemd ignores the extra line. */
	struct timespec ts;
	char msg[64];
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return -errno;
	snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
	         (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
	return notify_send(msg);
}

int notify_stopping(void)
{
	return notify_send("STOPPING=1");
}

int notify_watchdog(void)
{
	return notify_send("WATCHDOG=1");
}
