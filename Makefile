# libwebhook — GNU make build.  The meson.build beside it builds the same
# sources (lib/sources.txt) and the same tests (tests/tests.txt).
#
#   make            library, examples, tests
#   make check      build everything and run every test
#   make demo       chat-server demo delivering signed webhooks to a receiver
#   make bench      benchmarks against a local nginx; writes bench/RESULTS.md
#   make deps       install the Debian packages the build needs (as root)
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin
PCDIR   ?= $(LIBDIR)/pkgconfig
B       ?= build
CC      ?= cc
CFLAGS  ?= -O2 -g
WERROR  ?= -Werror
SAN     ?=

VERSION := $(shell sed -n 's/^\#define WH_VERSION_STRING "\(.*\)"/\1/p' include/webhook/webhook.h)
MAJOR   := $(shell sed -n 's/^\#define WH_VERSION_MAJOR \([0-9]*\)/\1/p' include/webhook/webhook.h)
SONAME  := libwebhook.so.$(MAJOR)

LIB_SRCS  := $(addprefix lib/,$(shell grep -v '^\#' lib/sources.txt))
# the test doubles (manual clock, scripted transport): libwebhook-test.a only
TEST_LIB_SRCS := $(addprefix lib/,$(shell grep -v '^\#' lib/test_sources.txt))
TEST_NAMES := $(shell grep -v '^\#' tests/tests.txt)
TEST_SUPPORT := tests/support/harness.c tests/support/http_receiver.c
EXAMPLES  := receiver chat_demo minimal
TOOLS     := whsend

# Debian packages: build + tests + meson.  `make deps` installs them.
DEB_PKGS := build-essential pkg-config libcurl4-openssl-dev libmbedtls-dev \
            libcjson-dev libmicrohttpd-dev meson ninja-build python3 openssl \
            libsqlite3-dev libhiredis-dev redis-server libssl-dev
PKGS     := libcurl libcjson sqlite3 hiredis
# HMAC-SHA256 backend: openssl (libcrypto, which libcurl already loads; its
# SHA-256 uses the CPU's SHA extensions: 2-4x faster signing, see
# bench/RESULTS.md) by default; WH_HMAC=mbedtls selects Mbed TLS (CI runs the
# sanitizer pass with it, so both are tested).  Use a separate B= per backend.
# Mbed TLS stays linked either way (RSA signing).
WH_HMAC  ?= openssl
TEST_PKGS := libmicrohttpd

WARNINGS := -Wall -Wextra -Wpedantic $(WERROR) -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-unused-parameter
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARNINGS) $(CFLAGS) $(SAN) -Iinclude
LIB_CFLAGS  = $(BASE_CFLAGS) -DBUILDING_WH -fPIC -fvisibility=hidden \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIB_LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lmbedcrypto
PC_REQUIRES :=
ifeq ($(WH_HMAC),openssl)
LIB_CFLAGS += -DWH_HMAC_OPENSSL
LIB_LIBS   += -lcrypto
PC_REQUIRES := libcrypto
endif
MHD_CFLAGS  = $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
MHD_LIBS    = $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

LIB_OBJS := $(patsubst lib/%.c,$(B)/lib/%.o,$(LIB_SRCS))
TEST_LIB_OBJS := $(patsubst lib/%.c,$(B)/lib/%.o,$(TEST_LIB_SRCS))
STATIC   := $(B)/libwebhook.a
TEST_STATIC := $(B)/libwebhook-test.a
SHARED   := $(B)/libwebhook.so.$(VERSION)
TEST_BINS := $(addprefix $(B)/tests/,$(TEST_NAMES))
EXAMPLE_BINS := $(addprefix $(B)/bin/,$(EXAMPLES) $(TOOLS))
DEPS_OK  := $(B)/.deps-ok

.PHONY: all check demo deps install uninstall clean lib examples tests bench bench-deps
all: lib examples tests
lib: $(STATIC) $(SHARED) $(TEST_STATIC) $(B)/libwebhook.pc
examples: $(EXAMPLE_BINS)
tests: $(TEST_BINS)

# ---- dependencies ----------------------------------------------------------
# Installs what is missing when run as root; otherwise stops with the exact
# command to run.
deps:
	@missing=""; \
	for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all present"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	else \
	  echo "deps: missing packages:$$missing"; \
	  echo "deps: run:  sudo apt-get install -y$$missing"; exit 1; \
	fi

$(DEPS_OK): Makefile
	@$(MAKE) --no-print-directory deps
	@mkdir -p $(B) && touch $@

# ---- library ----------------------------------------------------------------
HEADERS := $(wildcard include/webhook/*.h)
$(B)/lib/%.o: lib/%.c lib/internal.h lib/engine.h lib/config.h lib/ds.h $(HEADERS) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(STATIC): $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(TEST_STATIC): $(TEST_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(SHARED): $(LIB_OBJS) lib/libwebhook.map
	$(CC) -shared $(SAN) -Wl,-soname,$(SONAME) -Wl,--version-script=lib/libwebhook.map \
	  -o $@ $(LIB_OBJS) $(LIB_LIBS)
	ln -sf libwebhook.so.$(VERSION) $(B)/$(SONAME)
	ln -sf $(SONAME) $(B)/libwebhook.so

$(B)/libwebhook.pc: pkgconfig/libwebhook.pc.in include/webhook/webhook.h
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@HMAC_REQUIRES@|$(PC_REQUIRES)|' $< > $@

# ---- examples and tests (linked statically against the library) ------------
$(B)/bin/%: examples/%.c $(STATIC) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(MHD_CFLAGS) $< -o $@ $(STATIC) $(LIB_LIBS) $(MHD_LIBS) -lm

$(B)/bin/%: tools/%.c $(STATIC) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -DWH_WHSEND_MHD $(MHD_CFLAGS) $< -o $@ $(STATIC) $(LIB_LIBS) $(MHD_LIBS) -lpthread -lm

$(B)/tests/%: tests/%.c $(TEST_SUPPORT) tests/support/harness.h tests/support/http_receiver.h $(STATIC) $(TEST_STATIC) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -Ilib -Itests/support $(MHD_CFLAGS) $< $(TEST_SUPPORT) -o $@ \
	  $(TEST_STATIC) $(STATIC) $(LIB_LIBS) $(MHD_LIBS) -lm

check: all
	@WH_BIN=$(abspath $(B)/bin) sh tests/run.sh $(TEST_BINS)

demo: $(B)/bin/receiver $(B)/bin/chat_demo
	@sh examples/demo.sh $(B)/bin

# ---- benchmarks (bench/) ---------------------------------------------------------
# nginx + wrk from the distribution; the same install-or-print rule as deps.
BENCH_PKGS := nginx wrk python3 libssl-dev
BENCH_BINS := $(B)/bench/whbench $(B)/bench/ref_curl $(B)/bin/whsend $(B)/bench/whbench-openssl \
              $(B)/bench/whbench-mbedtls

bench-deps:
	@missing=""; \
	for p in $(BENCH_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "bench-deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	else \
	  echo "bench-deps: missing packages:$$missing"; \
	  echo "bench-deps: run:  sudo apt-get install -y$$missing"; exit 1; \
	fi

$(B)/bench/whbench: bench/whbench.c $(STATIC) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -DWH_BENCH_HMAC='"$(WH_HMAC)"' $< -o $@ $(STATIC) $(LIB_LIBS) -lm

# the same benchmark against the library built with each HMAC backend
.PRECIOUS: $(B)/hmac-%/libwebhook.a
$(B)/hmac-%/libwebhook.a: $(LIB_SRCS) lib/internal.h lib/engine.h lib/config.h lib/ds.h $(HEADERS)
	@$(MAKE) --no-print-directory B=$(B)/hmac-$* WH_HMAC=$* $@

$(B)/bench/whbench-%: bench/whbench.c $(B)/hmac-%/libwebhook.a | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -DWH_BENCH_HMAC='"$*"' $< -o $@ $(B)/hmac-$*/libwebhook.a $(LIB_LIBS) -lcrypto -lm

$(B)/bench/ref_curl: bench/ref_curl.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $< -o $@ $(shell pkg-config --libs libcurl 2>/dev/null) -lmbedcrypto

bench: bench-deps
	@$(MAKE) --no-print-directory $(BENCH_BINS)
	python3 bench/run.py $(B)

# ---- install ------------------------------------------------------------------
install: lib $(B)/bin/whsend
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR)/webhook $(DESTDIR)$(PCDIR) $(DESTDIR)$(BINDIR)
	install -m 644 $(HEADERS) $(DESTDIR)$(INCDIR)/webhook/
	install -m 644 $(STATIC) $(TEST_STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libwebhook.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libwebhook.so
	# generated here so that it always carries this install's PREFIX
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@HMAC_REQUIRES@|$(PC_REQUIRES)|' \
	    pkgconfig/libwebhook.pc.in > $(DESTDIR)$(PCDIR)/libwebhook.pc
	install -m 755 $(B)/bin/whsend $(DESTDIR)$(BINDIR)/

uninstall:
	rm -rf $(DESTDIR)$(INCDIR)/webhook \
	  $(DESTDIR)$(LIBDIR)/libwebhook.* $(DESTDIR)$(PCDIR)/libwebhook.pc $(DESTDIR)$(BINDIR)/whsend

clean:
	rm -rf $(B) build-*
