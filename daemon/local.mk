# daemon/local.mk: recd, the daemon.
