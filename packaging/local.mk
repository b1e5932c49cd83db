# packaging/: what `make install` puts on a system, and the .deb and .rpm
# built from this tree (`make deb`, `make rpm`).

dist_man_MANS = docs/healsync.8 docs/healsync.conf.5

# The journal catalog: `journalctl -x` explains every MESSAGE_ID. systemd
# reads /usr/lib/systemd/catalog whatever its unit directory is.
catalogdir = $(prefix)/lib/systemd/catalog
dist_catalog_DATA = packaging/systemd/healsync.catalog

# Group adm may read the state folder (an ACL; the file says why).
tmpfilesdir = $(prefix)/lib/tmpfiles.d

# Both packages install it where bash-completion looks it up by name.
bashcompletiondir = $(datadir)/bash-completion/completions
dist_bashcompletion_DATA = packaging/bash-completion/healsync

systemdsystemunit_DATA = packaging/systemd/healsync.service
CLEANFILES += packaging/systemd/healsync.service
packaging/systemd/healsync.service: $(srcdir)/packaging/systemd/healsync.service.in Makefile
	$(MKDIR_P) packaging/systemd
	sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
		$(srcdir)/packaging/systemd/healsync.service.in >$@.tmp && mv $@.tmp $@

# sysusers.d wants *.conf; the sample configuration is never overwritten.
install-data-local:
	$(MKDIR_P) '$(DESTDIR)$(sysusersdir)' '$(DESTDIR)$(sysconfdir)/healsync' \
		'$(DESTDIR)$(tmpfilesdir)'
	$(INSTALL_DATA) $(srcdir)/packaging/systemd/healsync.sysusers \
		'$(DESTDIR)$(sysusersdir)/healsync.conf'
	$(INSTALL_DATA) $(srcdir)/packaging/systemd/healsync.tmpfiles \
		'$(DESTDIR)$(tmpfilesdir)/healsync.conf'
	test -e '$(DESTDIR)$(sysconfdir)/healsync/healsync.conf' || \
		$(INSTALL_DATA) $(srcdir)/conf/healsync.conf '$(DESTDIR)$(sysconfdir)/healsync/healsync.conf'
uninstall-local:
	rm -f '$(DESTDIR)$(sysusersdir)/healsync.conf' '$(DESTDIR)$(tmpfilesdir)/healsync.conf' \
		'$(DESTDIR)$(sysconfdir)/healsync/healsync.conf'

AM_DISTCHECK_CONFIGURE_FLAGS = \
	--with-systemdsystemunitdir='$${dc_install_base}/lib/systemd/system' \
	--with-sysusersdir='$${dc_install_base}/lib/sysusers.d'

EXTRA_DIST += packaging/systemd/healsync.service.in packaging/systemd/healsync.sysusers \
	packaging/systemd/healsync.tmpfiles \
	packaging/deb/changelog packaging/deb/control packaging/deb/copyright \
	packaging/deb/rules packaging/deb/source/format packaging/deb/healsync.postinst \
	packaging/deb/healsync.postrm packaging/deb/healsync.prerm \
	packaging/deb/healsync.lintian-overrides packaging/deb/docs \
	packaging/rpm/healsync.spec packaging/rpm/healsync.rpmlintrc \
	packaging/check-files

# Packages, from the dist tarball, so they hold exactly what a release does.
deb: dist
	rm -rf pkg-deb && $(MKDIR_P) pkg-deb
	tar -C pkg-deb -xzf $(PACKAGE)-$(VERSION).tar.gz
	cp -R pkg-deb/$(PACKAGE)-$(VERSION)/packaging/deb pkg-deb/$(PACKAGE)-$(VERSION)/debian
	cd pkg-deb/$(PACKAGE)-$(VERSION) && dpkg-buildpackage -us -uc -b >../build.log 2>&1 || \
		{ tail -n 40 ../build.log; exit 1; }
	mv pkg-deb/*.deb .
	@ls -1 *.deb

rpm: dist
	rm -rf pkg-rpm && $(MKDIR_P) pkg-rpm/SOURCES
	cp $(PACKAGE)-$(VERSION).tar.gz pkg-rpm/SOURCES/
	rpmbuild --define "_topdir $(abs_builddir)/pkg-rpm" --define "_hs_version $(VERSION)" \
		--nodeps -bb $(srcdir)/packaging/rpm/healsync.spec >pkg-rpm/build.log 2>&1 || \
		{ tail -n 40 pkg-rpm/build.log; exit 1; }
	mv pkg-rpm/RPMS/*/*.rpm .
	@ls -1 *.rpm
.PHONY: deb rpm
