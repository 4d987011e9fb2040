/* librecd.c: the library's version and error helpers (see recd.h). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "recd/recd.h"

const char *recd_version(void)
{
	return PACKAGE_VERSION;
}

const char *recd_strerror(int err)
{
	/* Codes whose generic text would mislead a recd user. */
	switch (err) {
	case 0:             return "success";
	case -EPROTO:       return "protocol or schema version mismatch";
	case -ENOKEY:       return "the user-ID pseudonymisation key is missing";
	case -ECONNREFUSED: return "recd is not running (connection refused)";
	case -EAGAIN:       return "recd is busy: try again";
	default:
		break;
	}
	if (err < 0 && err > -4096)
		return strerror(-err);  /* glibc's table is static and thread-safe for known codes */
	return "unknown error";
}
