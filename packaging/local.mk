# packaging/local.mk: what packaging/ adds to the build: the systemd unit,
# sysusers and tmpfiles entries, and the default recd.conf.
#
# recd.service is made from recd.service.in here rather than by configure, so
# that it carries make's $(sbindir) and a prefix given to make install (or
# distcheck's) reaches it, as the GNU Coding Standards ask.
systemdunit_DATA = packaging/recd.service
CLEANFILES += packaging/recd.service
EXTRA_DIST += packaging/recd.service.in packaging/recd.sysusers packaging/recd.tmpfiles \
	packaging/recd.conf

packaging/recd.service: $(srcdir)/packaging/recd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) packaging && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' $(srcdir)/packaging/recd.service.in >$@.tmp && \
	mv $@.tmp $@

# systemd-sysusers and systemd-tmpfiles read only *.conf files, named after
# the package: recd.sysusers and recd.tmpfiles install as recd.conf in their
# directories, which automake's _DATA cannot rename.
install-data-local: install-recd-sysusers-tmpfiles
uninstall-local: uninstall-recd-sysusers-tmpfiles
install-recd-sysusers-tmpfiles:
	$(MKDIR_P) '$(DESTDIR)$(sysusersdir)' '$(DESTDIR)$(tmpfilesdir)'
	$(INSTALL_DATA) $(srcdir)/packaging/recd.sysusers '$(DESTDIR)$(sysusersdir)/recd.conf'
	$(INSTALL_DATA) $(srcdir)/packaging/recd.tmpfiles '$(DESTDIR)$(tmpfilesdir)/recd.conf'
uninstall-recd-sysusers-tmpfiles:
	rm -f '$(DESTDIR)$(sysusersdir)/recd.conf' '$(DESTDIR)$(tmpfilesdir)/recd.conf'

# The default recd.conf goes to $(sysconfdir)/recd/ only when there is none:
# a configuration someone edited is theirs (a Debian package gets the same
# from dpkg, which treats files under /etc as conffiles).  Uninstalling
# removes it only while it is unchanged.
recdconfdir = $(sysconfdir)/recd
install-data-local: install-recd-conf
uninstall-local: uninstall-recd-conf
install-recd-conf:
	$(MKDIR_P) '$(DESTDIR)$(recdconfdir)'
	@if test -e '$(DESTDIR)$(recdconfdir)/recd.conf'; then \
		echo "Keeping the existing $(DESTDIR)$(recdconfdir)/recd.conf"; \
	else \
		echo " $(INSTALL_DATA) $(srcdir)/packaging/recd.conf '$(DESTDIR)$(recdconfdir)/recd.conf'"; \
		$(INSTALL_DATA) $(srcdir)/packaging/recd.conf '$(DESTDIR)$(recdconfdir)/recd.conf'; \
	fi
uninstall-recd-conf:
	@f='$(DESTDIR)$(recdconfdir)/recd.conf'; \
	if test -f "$$f" && cmp -s "$$f" $(srcdir)/packaging/recd.conf; then \
		echo " rm -f $$f"; rm -f "$$f"; \
		rmdir '$(DESTDIR)$(recdconfdir)' 2>/dev/null || :; \
	elif test -f "$$f"; then \
		echo "Keeping $$f: it differs from the default"; \
	fi
.PHONY: install-recd-sysusers-tmpfiles uninstall-recd-sysusers-tmpfiles install-recd-conf uninstall-recd-conf

# systemd-analyze verify on the unit, and every man page rendered without warnings.
TESTS += tests/packaging_verify.sh
EXTRA_DIST += tests/packaging_verify.sh
