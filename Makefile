# tenant_guard: PGXS build of a C++ extension.
# docs/development.md ("Building a C++ extension with PGXS") says why each
# override below is needed.

EXTENSION = tenant_guard
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = tenant_guard
OBJS = \
	src/module.o \
	src/pg/boundary.o \
	src/pg/guc.o \
	src/pg/context_fmgr.o \
	src/pg/guard_fmgr.o \
	src/pg/selftest_fmgr.o \
	src/pg/hooks.o \
	src/pg/lifecycle_fmgr.o \
	src/pg/as_owner.o \
	src/core/claims.o \
	src/core/jwt.o \
	src/core/keyfile.o \
	src/core/encoding.o \
	src/core/token_text.o \
	src/pg/audit_guc.o \
	src/pg/audit_fmgr.o \
	src/core/audit.o
# Column encryption
OBJS += src/pg/crypto_guc.o src/pg/crypto_fmgr.o src/core/aead.o src/core/envelope.o src/core/masterkey.o
OBJS += src/pg/support_fmgr.o
# Citus clusters (never linked to Citus)
OBJS += src/pg/citus.o

# Released versions are frozen: src/sql/tenant_guard--0.1.0.sql never changes.
# The upgrade script to the next version is assembled from one fragment per
# feature in src/sql/<version>/ (sorted by file name), so features developed
# side by side do not edit the same file. CREATE EXTENSION installs 0.1.0 and
# then runs the upgrade chain, so a fresh install and an upgraded install are
# the same objects by construction.
DATA = $(wildcard src/sql/$(EXTENSION)--*.sql)
UPGRADE_0_2_0 = $(sort $(wildcard src/sql/0.2.0/*.sql))
DATA_built = $(EXTENSION)--0.1.0--0.2.0.sql

# pg_regress: every sql/*.sql file, in the order of the schedule file.
REGRESS = $(shell sed -n 's/^test: *//p' schedule)
REGRESS_OPTS = --load-extension=$(EXTENSION)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)

# No LLVM bitcode: clang-14's bitcode pass would compile our C++17 as C++14.
override with_llvm = no
# Rebuild objects when headers change.
override autodepend = yes

PG_CPPFLAGS += -Isrc -isystem $(shell $(PG_CONFIG) --includedir-server) -DTG_VERSION=\"$(EXTVERSION)\"
PG_CXXFLAGS += -std=c++17 -Wall -Wextra -Wno-unused-parameter
SHLIB_LINK  += -lcrypto -lsodium -lstdc++

include $(PGXS)

# After the include, so PGXS's 'all' stays the default goal.
$(EXTENSION)--0.1.0--0.2.0.sql: $(UPGRADE_0_2_0) Makefile
	{ printf '%s\n' '-- Generated from src/sql/0.2.0/*.sql by the Makefile; do not edit.' \
	    '\echo Use "ALTER EXTENSION $(EXTENSION) UPDATE" to load this file. \quit'; \
	  for f in $(UPGRADE_0_2_0); do printf '\n-- ---- %s ----\n' "$$f"; cat "$$f"; done; } > $@
