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
#
# Optional parts, each detected with pkg-config (1 when found, else 0);
# set to 0 to leave one out, to 1 to require it:
#   WITH_CURL=    libcurl transport (the engine's default transport)
#   WITH_SQLITE=  SQLite queue
#   WITH_REDIS=   Redis Streams queue (hiredis)
#   WITH_MHD=     libmicrohttpd: the example receiver and the tests' receivers
#   WITH_TLS=     OpenSSL libssl: https:// in the lean transport
#   WITH_CARES=   c-ares: host names in the lean transport
#   WITH_UV=      libuv: the libuv adapter's tests and examples/libuv_server
#   WITH_EVENT=   libevent: the libevent adapter's tests
# (the adapters themselves are header-only: include/webhook/adapters/)
# A backend left out is not compiled; its constructor returns
# WH_E_UNSUPPORTED (lib/backends.c), and its tests are reported as skipped.
# Use a separate B= directory per combination.

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

# ---- optional parts (pkg-config; no package manager is asked here) ----------
have_pkg = $(shell pkg-config --exists $(1) 2>/dev/null && echo 1 || echo 0)
# parts left out by the user (WITH_X=0 given): their Debian packages are not
# asked for by the preflight
OFF_BY_USER := $(foreach v,CURL SQLITE REDIS MHD TLS CARES UV EVENT,$(if $(filter-out undefined,$(origin WITH_$(v))),$(if $(filter 0,$(WITH_$(v))),$(v))))
ifeq ($(origin WITH_CURL),undefined)
WITH_CURL := $(call have_pkg,libcurl)
endif
ifeq ($(origin WITH_SQLITE),undefined)
WITH_SQLITE := $(call have_pkg,sqlite3)
endif
ifeq ($(origin WITH_REDIS),undefined)
WITH_REDIS := $(call have_pkg,hiredis)
endif
ifeq ($(origin WITH_MHD),undefined)
WITH_MHD := $(call have_pkg,libmicrohttpd)
endif
ifeq ($(origin WITH_TLS),undefined)
WITH_TLS := $(call have_pkg,libssl)
endif
ifeq ($(origin WITH_CARES),undefined)
WITH_CARES := $(call have_pkg,libcares)
endif
ifeq ($(origin WITH_UV),undefined)
WITH_UV := $(call have_pkg,libuv)
endif
ifeq ($(origin WITH_EVENT),undefined)
WITH_EVENT := $(call have_pkg,libevent)
endif
# WITH_X=1 given: the package must be there
$(foreach p,CURL:libcurl SQLITE:sqlite3 REDIS:hiredis MHD:libmicrohttpd TLS:libssl CARES:libcares UV:libuv EVENT:libevent,$(if $(filter 1,$(WITH_$(word 1,$(subst :, ,$(p))))),$(if $(filter 0,$(call have_pkg,$(word 2,$(subst :, ,$(p))))),$(error WITH_$(word 1,$(subst :, ,$(p)))=1 but pkg-config does not find $(word 2,$(subst :, ,$(p)))))))
# the tags of lib/sources.txt and tests/tests.txt this build has
HAVE :=
OPT_PKGS :=
ifeq ($(WITH_CURL),1)
HAVE += curl
OPT_PKGS += libcurl
endif
ifeq ($(WITH_SQLITE),1)
HAVE += sqlite
OPT_PKGS += sqlite3
endif
ifeq ($(WITH_REDIS),1)
HAVE += redis
OPT_PKGS += hiredis
endif
ifeq ($(WITH_MHD),1)
HAVE += mhd
endif
ifeq ($(WITH_TLS),1)
HAVE += tls
# libssl's .pc names libcrypto only as private: the lean transport calls it
# directly, whichever HMAC backend is chosen
OPT_PKGS += libssl libcrypto
endif
ifeq ($(WITH_CARES),1)
HAVE += cares
OPT_PKGS += libcares
endif
# the loop libraries: linked into tests and examples only (never the library)
LOOP_PKGS :=
ifeq ($(WITH_UV),1)
HAVE += uv
LOOP_PKGS += libuv
endif
ifeq ($(WITH_EVENT),1)
HAVE += event
LOOP_PKGS += libevent
endif
# Lines of lib/sources.txt and tests/tests.txt: a name, then the tags it
# needs.  Prints the names whose tags are all in $(HAVE) ($(1) = file).
built_from = $(shell awk -v have=" $(strip $(HAVE)) " '!/^\#/ && NF { ok = 1; for (i = 2; i <= NF; i++) if (index(have, " " $$i " ") == 0) ok = 0; if (ok) print $$1 }' $(1))
# "skip=NAME:built without TAG[,TAG]" for each test left out
skipped_from = $(shell awk -v have=" $(strip $(HAVE)) " '!/^\#/ && NF { m = ""; for (i = 2; i <= NF; i++) if (index(have, " " $$i " ") == 0) m = m (m == "" ? "" : ",") $$i; if (m != "") print "skip=" $$1 ":built_without_" m }' $(1))

LIB_SRCS  := $(addprefix lib/,$(call built_from,lib/sources.txt))
# the test doubles (manual clock, scripted transport): libwebhook-test.a only
TEST_LIB_SRCS := $(addprefix lib/,$(shell grep -v '^\#' lib/test_sources.txt))
TEST_NAMES := $(call built_from,tests/tests.txt)
TEST_SKIPS := $(call skipped_from,tests/tests.txt)
TEST_SUPPORT := tests/support/harness.c tests/support/fixture.c
ifeq ($(WITH_MHD),1)
TEST_SUPPORT += tests/support/http_receiver.c
EXAMPLES  := receiver chat_demo minimal game_loop poll_loop
else
EXAMPLES  := chat_demo minimal game_loop poll_loop
endif
ifeq ($(WITH_UV),1)
EXAMPLES  += libuv_server
endif
TOOLS     := whsend
# whsend --metrics serves over libmicrohttpd when the build has it
ifeq ($(WITH_MHD),1)
WHSEND_MHD_CFLAGS = -DWH_WHSEND_MHD $(MHD_CFLAGS)
WHSEND_MHD_LIBS = $(MHD_LIBS)
endif

# Debian packages: build + tests + meson.  `make deps` installs them.
# DEB_LATER: installed by `make deps` for the event-loop adapters' tests and
# examples; optional (WITH_UV, WITH_EVENT), so the preflight does not ask.
DEB_LATER := libuv1-dev libevent-dev
DEB_PKGS := build-essential pkg-config libcurl4-openssl-dev libmbedtls-dev \
            libcjson-dev libmicrohttpd-dev meson ninja-build python3 openssl \
            libsqlite3-dev libhiredis-dev redis-server libssl-dev libc-ares-dev \
            $(DEB_LATER) $(DEB_BINDINGS)
PKGS     := libcjson $(OPT_PKGS)
DEB_CURL   := libcurl4-openssl-dev
DEB_SQLITE := libsqlite3-dev
DEB_REDIS  := libhiredis-dev redis-server
DEB_MHD    := libmicrohttpd-dev
DEB_TLS    := libssl-dev
DEB_CARES  := libc-ares-dev
PREFLIGHT_PKGS := $(filter-out $(DEB_LATER) $(foreach v,$(OFF_BY_USER),$(DEB_$(v))),$(DEB_PKGS))
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
HAVE_DEFS   := $(if $(filter curl,$(HAVE)),-DWH_HAVE_CURL) \
               $(if $(filter sqlite,$(HAVE)),-DWH_HAVE_SQLITE) \
               $(if $(filter redis,$(HAVE)),-DWH_HAVE_REDIS) \
               $(if $(filter tls,$(HAVE)),-DWH_HAVE_LEAN_TLS) \
               $(if $(filter cares,$(HAVE)),-DWH_HAVE_CARES)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LIB_CFLAGS  = $(BASE_CFLAGS) -DBUILDING_WH -fPIC -fvisibility=hidden $(HAVE_DEFS) \
              $(PKG_CFLAGS)
LIB_LIBS    = $(PKG_LIBS) -lmbedcrypto
# Requires.private of libwebhook.pc: only what this build links
PC_REQUIRES := $(PKGS)
ifeq ($(WH_HMAC),openssl)
LIB_CFLAGS += -DWH_HMAC_OPENSSL
ifeq ($(filter libcrypto,$(PKGS)),)
LIB_LIBS   += -lcrypto
PC_REQUIRES += libcrypto
endif
endif
MHD_CFLAGS  = $(shell pkg-config --cflags $(TEST_PKGS) $(LOOP_PKGS) 2>/dev/null) \
              $(if $(filter uv,$(HAVE)),-DWH_HAVE_UV) $(if $(filter event,$(HAVE)),-DWH_HAVE_EVENT)
MHD_LIBS    = $(shell pkg-config --libs $(TEST_PKGS) $(LOOP_PKGS) 2>/dev/null) -lpthread

LIB_OBJS := $(patsubst lib/%.c,$(B)/lib/%.o,$(LIB_SRCS))
TEST_LIB_OBJS := $(patsubst lib/%.c,$(B)/lib/%.o,$(TEST_LIB_SRCS))
STATIC   := $(B)/libwebhook.a
TEST_STATIC := $(B)/libwebhook-test.a
SHARED   := $(B)/libwebhook.so.$(VERSION)
TEST_C    := $(filter-out %.sh,$(TEST_NAMES))
TEST_SH   := $(filter %.sh,$(TEST_NAMES))
TEST_BINS := $(addprefix $(B)/tests/,$(TEST_C))
EXAMPLE_BINS := $(addprefix $(B)/bin/,$(EXAMPLES) $(TOOLS))

.PHONY: all check check-run demo deps preflight install uninstall clean lib examples tests bench bench-deps
all: lib examples tests
lib: $(STATIC) $(SHARED) $(TEST_STATIC) $(B)/libwebhook.pc $(B)/libwebhook-test.pc
examples: $(EXAMPLE_BINS)
tests: $(TEST_BINS)

# ---- dependencies ----------------------------------------------------------
# Debian packages.  Installs what is missing when run as root; otherwise
# stops with the exact command to run.  Compile rules never ask the package
# manager: `make` needs only a compiler, pkg-config and the packages found.
# `make check` and `make demo` run `preflight` first: the same check for
# DEB_PKGS on a Debian system (dpkg-query present), nothing elsewhere.
deps:
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "deps: not a Debian system; install the equivalents of: $(DEB_PKGS)"; exit 1; fi
	@$(MAKE) --no-print-directory preflight PREFLIGHT_NAME=deps PREFLIGHT_PKGS='$(DEB_PKGS)'

PREFLIGHT_NAME ?= preflight
preflight:
	@command -v dpkg-query >/dev/null 2>&1 || exit 0; \
	missing=""; \
	for p in $(PREFLIGHT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "$(PREFLIGHT_NAME): all packages present"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "$(PREFLIGHT_NAME): installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	else \
	  echo "$(PREFLIGHT_NAME): missing packages:$$missing"; \
	  echo "$(PREFLIGHT_NAME): run:  sudo apt-get install -y$$missing"; exit 1; \
	fi

# ---- library ----------------------------------------------------------------
HEADERS := $(wildcard include/webhook/*.h)
ADAPTER_HEADERS := $(wildcard include/webhook/adapters/*.h)
$(B)/lib/%.o: lib/%.c lib/internal.h lib/engine.h lib/config.h lib/ds.h $(HEADERS) $(B)/.config
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

PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@REQUIRES_PRIVATE@|$(strip $(PC_REQUIRES))|'
# rebuilt when the set of optional parts changes
$(B)/.config: FORCE
	@mkdir -p $(B)
	@echo '$(HAVE) $(WH_HMAC)' | cmp -s - $@ || echo '$(HAVE) $(WH_HMAC)' > $@
.PHONY: FORCE
FORCE:

$(B)/libwebhook.pc: pkgconfig/libwebhook.pc.in include/webhook/webhook.h $(B)/.config
	@mkdir -p $(B)
	$(PC_SED) $< > $@

$(B)/libwebhook-test.pc: pkgconfig/libwebhook-test.pc.in include/webhook/webhook.h
	@mkdir -p $(B)
	$(PC_SED) $< > $@

# ---- examples and tests (linked statically against the library) ------------
$(B)/bin/%: examples/%.c $(ADAPTER_HEADERS) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(MHD_CFLAGS) $< -o $@ $(STATIC) $(LIB_LIBS) $(MHD_LIBS) -lm

$(B)/bin/%: tools/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(WHSEND_MHD_CFLAGS) $< -o $@ $(STATIC) $(LIB_LIBS) $(WHSEND_MHD_LIBS) -lpthread -lm

$(B)/tests/%: tests/%.c $(TEST_SUPPORT) $(wildcard tests/support/*.h) $(ADAPTER_HEADERS) $(STATIC) $(TEST_STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -Ilib -Itests/support $(MHD_CFLAGS) $< $(TEST_SUPPORT) -o $@ \
	  $(TEST_STATIC) $(STATIC) $(LIB_LIBS) $(MHD_LIBS) -lm

# the shell tests (tests/test_*.sh, listed in tests/tests.txt) read WH_BUILD,
# WH_SOURCE_DIR and CC; WH_PARTS names the optional parts built
# (a second make, so that what the preflight installed is detected)
check: preflight
	@$(MAKE) --no-print-directory check-run
check-run: all
	@WH_BIN=$(abspath $(B)/bin) WH_BUILD=$(abspath $(B)) WH_SOURCE_DIR=$(CURDIR) CC='$(CC)' \
	  WH_PARTS='$(strip $(HAVE))' WH_TEST_CFLAGS='$(SAN)' \
	  sh tests/run.sh $(TEST_BINS) $(addprefix tests/,$(TEST_SH)) $(TEST_SKIPS) $(BINDING_TESTS)

demo: preflight
	@$(MAKE) --no-print-directory $(B)/bin/receiver $(B)/bin/chat_demo
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

$(B)/bench/whbench: bench/whbench.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -DWH_BENCH_HMAC='"$(WH_HMAC)"' $< -o $@ $(STATIC) $(LIB_LIBS) -lm

# the same benchmark against the library built with each HMAC backend
.PRECIOUS: $(B)/hmac-%/libwebhook.a
$(B)/hmac-%/libwebhook.a: $(LIB_SRCS) lib/internal.h lib/engine.h lib/config.h lib/ds.h $(HEADERS)
	@$(MAKE) --no-print-directory B=$(B)/hmac-$* WH_HMAC=$* $@

$(B)/bench/whbench-%: bench/whbench.c $(B)/hmac-%/libwebhook.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -DWH_BENCH_HMAC='"$*"' $< -o $@ $(B)/hmac-$*/libwebhook.a $(LIB_LIBS) -lcrypto -lm

# the host-loop integrations (libuv adapter, 1 ms wh_poll timer, wh_fd,
# wh_tick, emit_any_thread); needs libuv
$(B)/bench/loop_bench: bench/loop_bench.c $(ADAPTER_HEADERS) $(STATIC) $(TEST_STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(MHD_CFLAGS) $< -o $@ $(TEST_STATIC) $(STATIC) $(LIB_LIBS) $(MHD_LIBS) -lm

$(B)/bench/ref_curl: bench/ref_curl.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $< -o $@ $(shell pkg-config --libs libcurl 2>/dev/null) -lmbedcrypto

bench: bench-deps
	@$(MAKE) --no-print-directory $(BENCH_BINS) $(if $(filter uv,$(HAVE)),$(B)/bench/loop_bench) $(BINDING_BUILD)
	python3 bench/run.py $(B)
	$(if $(filter uv,$(HAVE)),python3 bench/loop_run.py $(B),@echo "bench: built without libuv: bench/loop_run.py skipped")

# ---- language bindings (bindings/python, bindings/node) ---------------------
# `make python`: the CPython extension libwebhook._native, linked with the
# static library, plus the package's .py/.pyi files, in $(B)/python (so
# PYTHONPATH=$(B)/python python3 -c 'import libwebhook' works).  PYTHON is the
# interpreter it is built for (Debian's, which has python3-pytest for the
# tests; any CPython >= 3.8 whose headers exist works).
# `make node`: the N-API addon bindings/node/build/libwebhook.node, built
# with the C compiler against Node's headers (NODE_INC; no node-gyp, no
# download).  Both link libwebhook.a with its symbols kept private.
PYTHON   ?= $(firstword $(wildcard /usr/bin/python3) python3)
NODE_INC ?= /usr/include/node
DEB_BINDINGS := python3-dev python3-pytest python3-aiohttp python3-setuptools \
                python3-venv nodejs $(if $(wildcard $(NODE_INC)/node_api.h),,libnode-dev)
BIND_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes \
              -Wmissing-prototypes -Wno-unused-parameter -Wno-cast-function-type \
              $(CFLAGS) $(SAN) -fPIC -shared -Iinclude
BIND_LIBS   = $(STATIC) $(LIB_LIBS) -lm -Wl,--exclude-libs,ALL
PY_DIR   := $(B)/python/libwebhook
PY_FILES := $(addprefix $(PY_DIR)/,__init__.py _native.pyi py.typed)
NODE_ADDON := bindings/node/build/libwebhook.node
.PHONY: python node
python: $(PY_DIR)/.built
$(PY_DIR)/.built: bindings/python/src/_native.c $(wildcard bindings/python/libwebhook/*) $(STATIC) $(HEADERS)
	@mkdir -p $(PY_DIR)
	$(CC) $(BIND_CFLAGS) $$($(PYTHON) -c 'import sysconfig; print("-I" + sysconfig.get_paths()["include"])') \
	  bindings/python/src/_native.c -o $(PY_DIR)/_native$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))') \
	  $(BIND_LIBS)
	cp bindings/python/libwebhook/__init__.py bindings/python/libwebhook/_native.pyi \
	  bindings/python/libwebhook/py.typed $(PY_DIR)/
	@touch $@
node: $(NODE_ADDON)
$(NODE_ADDON): bindings/node/src/addon.c $(STATIC) $(HEADERS) $(wildcard include/webhook/adapters/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BIND_CFLAGS) -I$(NODE_INC) $< -o $@ $(BIND_LIBS)
# built by `make check` when the interpreter / Node headers are there; the
# test scripts report themselves as skipped otherwise
BINDING_BUILD := $(if $(shell $(PYTHON) -c 'import sysconfig,os; print(os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) or "")' 2>/dev/null),python) \
                 $(if $(wildcard $(NODE_INC)/node_api.h),node)
BINDING_TESTS := tests/test_node.sh tests/test_python.sh
# a sanitizer build (SAN=...) cannot be loaded into python3 or node (the
# ASan runtime must come first): its bindings are reported as skipped
ifneq ($(strip $(SAN)),)
BINDING_BUILD :=
BINDING_TESTS := skip=test_python.sh:built_with_SAN skip=test_node.sh:built_with_SAN
endif
export PYTHON
# (a prerequisite list is expanded when its rule is read: this line comes
# after BINDING_BUILD is set)
check-run: $(BINDING_BUILD)

# ---- install ------------------------------------------------------------------
install: lib $(B)/bin/whsend
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR)/webhook $(DESTDIR)$(INCDIR)/webhook/adapters \
	  $(DESTDIR)$(PCDIR) $(DESTDIR)$(BINDIR)
	install -m 644 $(HEADERS) $(DESTDIR)$(INCDIR)/webhook/
	install -m 644 $(ADAPTER_HEADERS) $(DESTDIR)$(INCDIR)/webhook/adapters/
	install -m 644 $(STATIC) $(TEST_STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libwebhook.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libwebhook.so
	# generated here so that it always carries this install's PREFIX
	$(PC_SED) pkgconfig/libwebhook.pc.in > $(DESTDIR)$(PCDIR)/libwebhook.pc
	$(PC_SED) pkgconfig/libwebhook-test.pc.in > $(DESTDIR)$(PCDIR)/libwebhook-test.pc
	install -m 755 $(B)/bin/whsend $(DESTDIR)$(BINDIR)/

uninstall:
	rm -rf $(DESTDIR)$(INCDIR)/webhook \
	  $(DESTDIR)$(LIBDIR)/libwebhook.* $(DESTDIR)$(LIBDIR)/libwebhook-test.a \
	  $(DESTDIR)$(PCDIR)/libwebhook.pc $(DESTDIR)$(PCDIR)/libwebhook-test.pc $(DESTDIR)$(BINDIR)/whsend

clean:
	rm -rf $(B) build-*

# ---- fuzzing (tests/fuzz/) ---------------------------------------------------------
# libFuzzer targets, built with clang against the library sources compiled
# with -fsanitize=fuzzer-no-link,address,undefined (in $(B)/fuzz).
#   make fuzz FUZZ_SECONDS=N   build, then run each target N seconds (default
#                              60) on its seed corpus tests/fuzz/corpus/<name>
#                              with tests/fuzz/webhook.dict; fails on any crash,
#                              leak, undefined behaviour or timeout.  New inputs
#                              go to $(B)/fuzz/corpus/<name>, reproducers to
#                              $(B)/fuzz/crashes/<name>/ (replay one: run the
#                              target binary with the file as argument).
# The packages are checked here only (not by `make deps`).
FUZZ_PKGS    := clang libclang-rt-14-dev
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FZ           := $(B)/fuzz
FUZZ_NAMES   := $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_LIB_OBJS := $(patsubst lib/%.c,$(FZ)/lib/%.o,$(LIB_SRCS) $(TEST_LIB_SRCS))

.PHONY: fuzz fuzz-deps fuzz-build
fuzz-deps:
	@missing=""; \
	for p in $(FUZZ_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "fuzz-deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	else \
	  echo "fuzz-deps: missing packages:$$missing"; \
	  echo "fuzz-deps: run:  sudo apt-get install -y$$missing"; exit 1; \
	fi

$(FZ)/lib/%.o: lib/%.c lib/internal.h lib/engine.h lib/config.h lib/ds.h $(HEADERS) $(B)/.config
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(LIB_CFLAGS) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(FZ)/libwebhook-fuzz.a: $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(FZ)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FZ)/libwebhook-fuzz.a tools/whsend.c
	$(FUZZ_CC) $(BASE_CFLAGS) -Ilib -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer $< -o $@ \
	  $(FZ)/libwebhook-fuzz.a $(LIB_LIBS) -lm

fuzz-build: fuzz-deps
	@$(MAKE) --no-print-directory $(addprefix $(FZ)/,$(FUZZ_NAMES))

fuzz: fuzz-build
	@pass=0; fail=0; \
	for t in $(FUZZ_NAMES); do \
	  mkdir -p $(FZ)/corpus/$$t $(FZ)/crashes/$$t; \
	  if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	     $(FZ)/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 \
	       -max_len=8192 -dict=tests/fuzz/webhook.dict -print_final_stats=1 \
	       -artifact_prefix=$(FZ)/crashes/$$t/ $(FZ)/corpus/$$t tests/fuzz/corpus/$$t \
	       > $(FZ)/$$t.log 2>&1; then \
	    echo "ok   - fuzz $$t ($(FUZZ_SECONDS) s, $$(sed -n 's/^stat::number_of_executed_units: *//p' $(FZ)/$$t.log) runs)"; \
	    pass=$$((pass + 1)); \
	  else \
	    echo "FAIL - fuzz $$t (reproducer in $(FZ)/crashes/$$t/, log $(FZ)/$$t.log)"; \
	    grep -E 'ERROR|SUMMARY|check failed|==[0-9]+==|#[0-9]+ ' $(FZ)/$$t.log | head -n 30; \
	    fail=$$((fail + 1)); \
	  fi; \
	done; \
	echo "$$pass passed, $$fail failed"; [ $$fail -eq 0 ]
