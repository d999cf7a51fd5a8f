# trafficagg: PGXS build.  `make && make install`, then `make installcheck`
# (pg_regress against a temporary instance with the library preloaded, then
# the TAP tests in t/).  PG_CONFIG may be overridden; WERROR=1 (warnings as
# errors) and ASSERTS=1 (assertions compiled in) are described below.

EXTENSION    = trafficagg
EXTVERSION   = 0.7.0
MODULE_big   = trafficagg
OBJS         = extension/trafficagg.o \
               extension/datums.o \
               extension/consume.o \
               extension/event.o \
               extension/window.o \
               extension/catalog.o \
               extension/ingest.o \
               extension/batch.o \
               extension/store.o \
               extension/sketch_area.o \
               extension/sketch.o \
               extension/value_area.o \
               extension/hll.o \
               extension/latency.o \
               extension/source.o \
               extension/recovery.o \
               extension/deadletter.o \
               extension/flush.o \
               extension/request.o \
               extension/status.o \
               extension/sqlfuncs.o \
               extension/digest.o \
               extension/groupcommit.o \
               extension/worker.o
DATA_built   = extension/$(EXTENSION)--$(EXTVERSION).sql
# earlier versions' install scripts and the upgrade scripts from them
DATA         = $(wildcard extension/versions/$(EXTENSION)--*.sql)
SHLIB_LINK   = -lrdkafka -ljansson
PG_CPPFLAGS  = -Wextra -Wno-unused-parameter -Wno-sign-compare \
               -Wno-missing-field-initializers -Wno-cast-function-type
ifdef WERROR
PG_CPPFLAGS += -Werror
endif
# ASSERTS=1 compiles the extension's own Assert()s (and those in the server
# headers' inline code) in, although the Debian server is built without
# --enable-cassert: CI's second pass (`scripts/test.sh --asserts`).  make does
# not track flags: `make clean` when switching between ASSERTS=1 and not.
ifdef ASSERTS
PG_CPPFLAGS += -DUSE_ASSERT_CHECKING
endif

REGRESS      = event_validation windows watermark flush views status aggregates privileges \
               sketches upgrade hardening mapping union
REGRESS_OPTS = --temp-config=$(srcdir)/test/regress.conf --temp-instance=tmp_check_regress
TAP_TESTS    = 1
EXTRA_CLEAN  = tmp_check_regress producer/node_modules/.cache installcheck.log

# no LLVM bitcode: nothing here benefits from JIT inlining
override with_llvm = no

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object depends on the headers
$(OBJS): $(wildcard extension/*.h)

extension/$(EXTENSION)--$(EXTVERSION).sql: extension/$(EXTENSION).sql
	cp $< $@

