# tenant_guard: PGXS build of a C++ extension.
# docs/development.md ("Building a C++ extension with PGXS") says why each
# override below is needed.

EXTENSION = tenant_guard
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = tenant_guard
OBJS = \
	src/module.o \
	src/pg/boundary.o \
	src/pg/context.o \
	src/pg/context_fmgr.o \
	src/pg/guard.o \
	src/pg/guard_fmgr.o \
	src/pg/selftest_fmgr.o \
	src/pg/hooks.o \
	src/pg/lifecycle_fmgr.o \
	src/pg/as_owner.o \
	src/pg/spi.o \
	src/pg/shared_fmgr.o \
	src/pg/grid_fmgr.o \
	src/core/claims.o \
	src/core/jwt.o \
	src/core/keyfile.o \
	src/core/encoding.o \
	src/core/token_text.o \
	src/pg/audit.o \
	src/pg/audit_fmgr.o \
	src/pg/audit_hash.o \
	src/pg/audit_chain.o \
	src/pg/audit_writer.o \
	src/pg/audit_relinfo.o \
	src/pg/audit_records.o \
	src/pg/audit_rowjson.o \
	src/pg/audit_images.o \
	src/pg/audit_verify.o \
	src/core/audit.o
# Column encryption
OBJS += src/pg/crypto.o src/pg/crypto_fmgr.o src/pg/crypto_keys.o src/core/aead.o src/core/envelope.o src/core/masterkey.o
OBJS += src/pg/support.o src/pg/support_fmgr.o
# The way in and out: DROP EXTENSION refusal, maintenance context
OBJS += src/pg/adoption_fmgr.o
# Key sets (JWKS) for signed mode
OBJS += src/core/jwks.o src/pg/keyset.o
# Citus clusters (never linked to Citus)
OBJS += src/pg/citus.o src/pg/citus_keys.o src/core/forwarded_keys.o
# Row-level security policies: the tenant context evaluated once per query
OBJS += src/pg/planner.o

# Released versions are frozen: src/sql/tenant_guard--0.1.0.sql never changes.
# The upgrade script to the next version is assembled from one fragment per
# feature in src/sql/<version>/ (sorted by file name), so features developed
# side by side do not edit the same file. CREATE EXTENSION installs 0.1.0 and
# then runs the upgrade chain, so a fresh install and an upgraded install are
# the same objects by construction.
DATA = $(wildcard src/sql/$(EXTENSION)--*.sql)
UPGRADE_0_2_0 = $(sort $(wildcard src/sql/0.2.0/*.sql))
# The next version is built as a pre-release (default_version in the control
# file, e.g. 0.2.0-dev): a database that installed an unreleased build then has
# an update path to the release (a 0.2.0-dev--0.2.0 script), instead of
# claiming the release's version with other objects.
DATA_built = $(EXTENSION)--0.1.0--$(EXTVERSION).sql

# pg_regress: every sql/*.sql file, in the order of the schedule file.
REGRESS = $(shell sed -n 's/^test: *//p' schedule)
REGRESS_OPTS = --load-extension=$(EXTENSION)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)

# No LLVM bitcode: clang-14's bitcode pass would compile our C++17 as C++14.
override with_llvm = no
# Rebuild objects when headers change.
override autodepend = yes

PG_CPPFLAGS += -Isrc -isystem $(shell $(PG_CONFIG) --includedir-server)
PG_CXXFLAGS += -std=c++17 -Wall -Wextra -Wno-unused-parameter
SHLIB_LINK  += -lcrypto -lsodium -lstdc++

include $(PGXS)

# After the include, so PGXS's 'all' stays the default goal.
# report()'s help text for each lint rule and attack-grid vector comes from
# the docs (src/sql/report_help.awk), so a finding's fix is the documented one.
REPORT_HELP_DOCS = docs/lint.md docs/attack-grid.md
$(EXTENSION)--0.1.0--$(EXTVERSION).sql: $(UPGRADE_0_2_0) src/sql/report_help.awk $(REPORT_HELP_DOCS) Makefile $(EXTENSION).control
	{ printf '%s\n' '-- Generated from src/sql/0.2.0/*.sql by the Makefile; do not edit.' \
	    '\echo Use "ALTER EXTENSION $(EXTENSION) UPDATE" to load this file. \quit'; \
	  for f in $(UPGRADE_0_2_0); do printf '\n-- ---- %s ----\n' "$$f"; cat "$$f"; done; \
	  printf '\n-- ---- %s ----\n' 'src/sql/report_help.awk $(REPORT_HELP_DOCS)'; \
	  awk -f src/sql/report_help.awk $(REPORT_HELP_DOCS); } > $@ || { rm -f $@; exit 1; }
