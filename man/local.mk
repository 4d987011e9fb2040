# man/: the manual pages.  recd(8) and recd.conf(5) come with daemon/.
dist_man_MANS += man/recctl.1
