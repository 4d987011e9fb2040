/* log.c: priority-prefixed log lines on standard error (see log.h). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"

#define LOG_LINE_MAX 2048   /* longer messages are cut, never split */

static int log_level = LOG_INFO;
static int log_tty;

void recd_log_set_level(int level)
{
	log_level = level;
}

int recd_log_level(void)
{
	return log_level;
}

void recd_log_init(void)
{
	log_tty = isatty(STDERR_FILENO) == 1;
}

static const char *log_word(int prio)
{
	switch (prio) {
	case LOG_EMERG: case LOG_ALERT: case LOG_CRIT: case LOG_ERR:
		return "error: ";
	case LOG_WARNING:
		return "warning: ";
	default:
		return "";
	}
}

void recd_log(int prio, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	va_list ap;
	int n, m, saved = errno;

	if (prio > log_level)
		return;
	if (log_tty)
		n = snprintf(line, sizeof line, "recd: %s", log_word(prio));
	else
		n = snprintf(line, sizeof line, "<%d>", prio);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	/* One write per line, so lines from a later second thread cannot interleave;
	 * a failed write to stderr has nowhere better to be reported. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nothing to do */
	}
	errno = saved;
}
