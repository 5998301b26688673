################################################################################
#
# rcron
#
################################################################################

# Release tarballs: rcron-$(RCRON_VERSION).tar.gz. Set RCRON_SITE to where they are
# published; a development build uses a checkout instead (local.mk, see dist/README.md):
#     RCRON_OVERRIDE_SRCDIR = /path/to/rcron
RCRON_VERSION = 0.1.0
RCRON_SITE = https://example.invalid/rcron/releases/download/v$(RCRON_VERSION)
RCRON_LICENSE = MIT
RCRON_LICENSE_FILES = LICENSE

# Cargo features (Cargo.toml): etcd is a default feature, tls needs it.
ifeq ($(BR2_PACKAGE_RCRON_ETCD),y)
RCRON_CARGO_FEATURES = etcd
ifeq ($(BR2_PACKAGE_RCRON_TLS),y)
RCRON_CARGO_FEATURES += tls
endif
endif
RCRON_CARGO_BUILD_OPTS = --no-default-features \
	$(if $(RCRON_CARGO_FEATURES),--features $(subst $(space),$(comma),$(strip $(RCRON_CARGO_FEATURES))))

# The cargo infrastructure's default build (cargo build --release for
# $(RUSTC_TARGET_NAME)) is kept; the install is ours: the binary goes to /usr/sbin, with
# the rcrond link (invoked as rcrond, the binary is the daemon), the example config (a
# rootfs overlay, copied after the packages, replaces it with the nodes' own), the man
# pages and the init script.
RCRON_BIN = $(@D)/target/$(RUSTC_TARGET_NAME)/$(if $(BR2_ENABLE_DEBUG),debug,release)/rcron

define RCRON_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(RCRON_BIN) $(TARGET_DIR)/usr/sbin/rcron
	ln -sf rcron $(TARGET_DIR)/usr/sbin/rcrond
	$(INSTALL) -D -m 0644 $(@D)/rootfs/etc/rcron/rcron.conf \
		$(TARGET_DIR)/etc/rcron/rcron.conf
	$(INSTALL) -D -m 0644 $(@D)/man/rcron.8 \
		$(TARGET_DIR)/usr/share/man/man8/rcron.8
	$(INSTALL) -D -m 0644 $(@D)/man/rcron.conf.5 \
		$(TARGET_DIR)/usr/share/man/man5/rcron.conf.5
endef

define RCRON_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(RCRON_PKGDIR)/S90rcron \
		$(TARGET_DIR)/etc/init.d/S90rcron
endef

define RCRON_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/dist/systemd/rcron.service \
		$(TARGET_DIR)/usr/lib/systemd/system/rcron.service
endef

$(eval $(cargo-package))
