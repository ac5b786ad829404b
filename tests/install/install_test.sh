#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# install_test.sh: creditmeter installs, and programs outside the tree build and run
# against the installed copy only. Run by ctest (tests/install/install.cmake).
#
#   install_test.sh installed BUILD_DIR SRC_DIR WORK_DIR CC "FLAGS"
#     `cmake --install BUILD_DIR --prefix /opt/creditmeter` with DESTDIR=WORK_DIR/stage,
#     then checks the installed files and builds, outside the tree (in WORK_DIR) and with
#     FLAGS (the sanitizer flags the tree was built with, if any):
#       - consumer.c with `pkg-config --cflags --libs creditmeter-probe creditmeter-ledger`
#       - consumer.c with CMake find_package(creditmeter REQUIRED) (CMAKE_PREFIX_PATH)
#       - own_names.c (its own cm_run, cm_fail, ...) against the shared libraries and
#         against the static archives
#     and runs each (probe the sample, a temporary SQLite ledger).
#
#   install_test.sh subdirectory SRC_DIR WORK_DIR CC
#     a parent project add_subdirectory()s creditmeter (configure only): see below.
#
#   install_test.sh without-postgres SRC_DIR WORK_DIR CC
#     configures and builds a second, small, unsanitized tree: the libraries, the plugin
#     and the CLIs with -DCM_WITH_POSTGRES=OFF -DCM_BUILD_PIPELINE=OFF, no tests; installs
#     it into WORK_DIR/stage (the Python tests use that install); checks that nothing
#     links libpq, that a postgresql:// location fails with "unsupported" in the library
#     and in cm-ledger, and that SQLite works. Then configures (only) a probe-only tree
#     (-DCM_BUILD_LEDGER=OFF) and checks that it never looked for SQLite.
set -euo pipefail
mode=$1
shift
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=/opt/creditmeter
fail() {
    echo "install_test: FAIL: $*" >&2
    exit 1
}
step() { echo "install_test: $*"; }

case $mode in
installed)
    BUILD=$1 SRC=$2 WORK=$3 CC=$4 FLAGS=${5:-}
    SAMPLE=$SRC/samples/clip-40s.mp4
    rm -rf "$WORK" && mkdir -p "$WORK"
    STAGE=$WORK/stage
    ROOT=$STAGE$PREFIX
    DESTDIR=$STAGE cmake --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log"
    LIBDIR=$(ls -d "$ROOT"/lib*/ | head -n 1)
    LIBDIR=${LIBDIR%/}
    step "installed into DESTDIR=$STAGE prefix $PREFIX"
    for f in include/creditmeter/cm_probe.h include/creditmeter/cm_ledger.h \
        include/creditmeter/creditmeter_plugin.h include/creditmeter/cm_version.h; do
        [[ -f $ROOT/$f ]] || fail "$f is not installed"
    done
    for f in libcreditmeter-probe.so.0 libcreditmeter-ledger.so.0 libcreditmeter-probe.so \
        libcreditmeter-ledger.so libcreditmeter-probe.a libcreditmeter-ledger.a \
        creditmeter/libcreditmeter_plugin.so pkgconfig/creditmeter-probe.pc \
        pkgconfig/creditmeter-ledger.pc cmake/creditmeter/creditmeterConfig.cmake \
        cmake/creditmeter/creditmeterConfigVersion.cmake; do
        [[ -e $LIBDIR/$f ]] || fail "$LIBDIR/$f is not installed"
    done
    for b in cm-probe cm-ledger; do
        [[ -x $ROOT/bin/$b ]] || fail "bin/$b is not installed"
        [[ -f $ROOT/share/man/man1/$b.1 ]] || fail "share/man/man1/$b.1 is not installed"
    done
    [[ -f $ROOT/share/doc/creditmeter/LICENSE ]] || fail "the LICENSE is not installed"
    grep -q "^prefix=$PREFIX\$" "$LIBDIR/pkgconfig/creditmeter-probe.pc" ||
        fail "creditmeter-probe.pc does not name the prefix $PREFIX"
    # Nothing of the build or source tree leaks into the installed package files.
    if grep -rlE "$BUILD|$SRC" "$LIBDIR/pkgconfig" "$LIBDIR/cmake"; then
        fail "installed package files refer to the build or source tree"
    fi

    # The .pc files name the prefix; the staged copy lives below DESTDIR.
    export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
    pc() { pkg-config --define-variable=prefix="$ROOT" "$@"; }
    export LD_LIBRARY_PATH=$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    # shellcheck disable=SC2086
    read -r -a flags <<<"$FLAGS"

    step "consumer with pkg-config: $(pc --cflags --libs creditmeter-probe creditmeter-ledger)"
    mkdir -p "$WORK/pc"
    cp "$HERE/consumer.c" "$WORK/pc/"
    # shellcheck disable=SC2046
    "$CC" -std=c11 -Wall -Wextra -Werror "${flags[@]}" -o "$WORK/pc/consumer" "$WORK/pc/consumer.c" \
        $(pc --cflags --libs creditmeter-probe creditmeter-ledger)
    readelf -d "$WORK/pc/consumer" | grep -q 'NEEDED.*libcreditmeter-ledger.so.0' ||
        fail "the pkg-config consumer does not link libcreditmeter-ledger.so.0"
    "$WORK/pc/consumer" "$SAMPLE" "$WORK/pc/ledger.db"

    step "consumer with CMake find_package(creditmeter)"
    mkdir -p "$WORK/cmake/src"
    cp "$HERE/consumer.c" "$HERE/cmake_consumer/CMakeLists.txt" "$WORK/cmake/src/"
    cmake -S "$WORK/cmake/src" -B "$WORK/cmake/build" -DCMAKE_PREFIX_PATH="$ROOT" \
        -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="$FLAGS -Wall -Wextra -Werror" \
        -DCMAKE_EXE_LINKER_FLAGS="$FLAGS" >"$WORK/cmake/configure.log" ||
        { cat "$WORK/cmake/configure.log"; fail "find_package(creditmeter) failed"; }
    cmake --build "$WORK/cmake/build" >"$WORK/cmake/build.log" ||
        { cat "$WORK/cmake/build.log"; fail "the CMake consumer does not build"; }
    readelf -d "$WORK/cmake/build/consumer" | grep -q 'NEEDED.*libcreditmeter-probe.so.0' ||
        fail "the CMake consumer does not link libcreditmeter-probe.so.0"
    "$WORK/cmake/build/consumer" "$SAMPLE" "$WORK/cmake/ledger.db"

    step "a program with its own cm_run, cm_fail, ... (shared libraries)"
    mkdir -p "$WORK/own"
    cp "$HERE/own_names.c" "$WORK/own/"
    # shellcheck disable=SC2046
    "$CC" -std=c11 -Wall -Wextra -Werror "${flags[@]}" -o "$WORK/own/own_shared" \
        "$WORK/own/own_names.c" $(pc --cflags --libs creditmeter-ledger)
    "$WORK/own/own_shared" "$WORK/own/shared.db"
    step "a program with its own cm_run, cm_fail, ... (static archives)"
    # shellcheck disable=SC2046
    "$CC" -std=c11 -Wall -Wextra -Werror "${flags[@]}" -o "$WORK/own/own_static" \
        "$WORK/own/own_names.c" $(pc --cflags creditmeter-ledger) \
        "$LIBDIR/libcreditmeter-ledger.a" \
        $(pc --libs $(pc --print-requires-private creditmeter-ledger)) -lpthread
    if readelf -d "$WORK/own/own_static" | grep -q 'libcreditmeter'; then
        fail "the static link still needs a creditmeter shared library"
    fi
    "$WORK/own/own_static" "$WORK/own/static.db"
    step "ok"
    ;;

without-postgres)
    SRC=$1 WORK=$2 CC=$3
    BUILD=$WORK/build
    STAGE=$WORK/stage
    ROOT=$STAGE$PREFIX
    # The build directory is kept between runs (incremental); the install is fresh.
    rm -rf "$STAGE" "$WORK/probe-only" "$WORK/check"
    mkdir -p "$WORK/check"
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$CC" \
        -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCM_WITH_POSTGRES=OFF -DCM_BUILD_PIPELINE=OFF \
        -DCM_BUILD_TESTS=OFF -DCM_BUILD_BENCH=OFF -DCM_SANITIZE=OFF -DCM_FUZZ=OFF \
        -DCM_WERROR=ON >"$WORK/configure.log" || { cat "$WORK/configure.log"; fail "configure"; }
    if grep -q '^LIBPQ_FOUND' "$BUILD/CMakeCache.txt"; then
        fail "CM_WITH_POSTGRES=OFF still looked for libpq"
    fi
    cmake --build "$BUILD" -j2 >"$WORK/build.log" || { tail -n 30 "$WORK/build.log"; fail "build"; }
    DESTDIR=$STAGE cmake --install "$BUILD" >"$WORK/install.log"
    LIBDIR=$(ls -d "$ROOT"/lib*/ | head -n 1)
    LIBDIR=${LIBDIR%/}
    step "built and installed without PostgreSQL into $ROOT"
    for f in "$LIBDIR"/libcreditmeter-ledger.so.0 "$LIBDIR"/creditmeter/libcreditmeter_plugin.so \
        "$ROOT"/bin/cm-ledger; do
        if readelf -d "$f" | grep -q 'NEEDED.*libpq'; then
            fail "$f links libpq"
        fi
    done
    [[ ! -e $ROOT/bin/cm-pipeline ]] || fail "CM_BUILD_PIPELINE=OFF still installed cm-pipeline"
    grep -q '^Requires.private: sqlite3$' "$LIBDIR/pkgconfig/creditmeter-ledger.pc" ||
        fail "creditmeter-ledger.pc: Requires.private is not just sqlite3"

    export LD_LIBRARY_PATH=$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    cat >"$WORK/check/unsupported.c" <<'C'
#include <creditmeter/cm_ledger.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = "postgresql://localhost/creditmeter";
    cm_ledger *l = NULL;
    int rc = cm_ledger_open(&l, &cfg);
    if (rc != CM_LEDGER_E_UNSUPPORTED || l || strcmp(cm_ledger_err_name(rc), "unsupported") ||
        !strstr(cm_ledger_errmsg(NULL), "without PostgreSQL")) {
        fprintf(stderr, "postgresql:// gave %d %s: %s\n", rc, cm_ledger_err_name(rc),
                cm_ledger_errmsg(NULL));
        return 1;
    }
    cfg.location = argc > 1 ? argv[1] : "x.db";
    cfg.create = 1;
    rc = cm_ledger_open(&l, &cfg);
    if (rc == CM_LEDGER_OK)
        rc = cm_ledger_workspace_create(l, "ws", "owner", NULL);
    cm_ledger_close(l);
    if (rc != CM_LEDGER_OK) {
        fprintf(stderr, "sqlite: %s\n", cm_ledger_err_name(rc));
        return 1;
    }
    printf("unsupported: %s\n", cm_ledger_errmsg(NULL));
    return 0;
}
C
    "$CC" -std=c11 -Wall -Wextra -Werror -I"$ROOT/include" -o "$WORK/check/unsupported" \
        "$WORK/check/unsupported.c" -L"$LIBDIR" -lcreditmeter-ledger
    "$WORK/check/unsupported" "$WORK/check/ok.db"
    rc=0
    "$ROOT/bin/cm-ledger" --ledger postgresql://localhost/x check >"$WORK/check/cli.out" 2>&1 || rc=$?
    [[ $rc -eq 1 ]] && grep -q 'unsupported' "$WORK/check/cli.out" ||
        { cat "$WORK/check/cli.out"; fail "cm-ledger on postgresql:// exited $rc, expected 1 unsupported"; }
    step "cm-ledger: $(cat "$WORK/check/cli.out")"

    step "a probe-only tree (CM_BUILD_LEDGER=OFF) does not look for SQLite"
    cmake -S "$SRC" -B "$WORK/probe-only" -DCMAKE_C_COMPILER="$CC" -DCM_BUILD_LEDGER=OFF \
        -DCM_BUILD_TESTS=OFF -DCM_BUILD_BENCH=OFF >"$WORK/probe-only.log" ||
        { cat "$WORK/probe-only.log"; fail "probe-only configure"; }
    if grep -qi 'sqlite' "$WORK/probe-only/CMakeCache.txt"; then
        fail "a probe-only configure looked for SQLite"
    fi
    rm -rf "$WORK/probe-only"
    step "ok"
    ;;
subdirectory)
    # A parent project that vendors creditmeter with add_subdirectory: its build type is
    # kept (empty here), cmocka is not looked for, no test is added, and the targets
    # creditmeter::probe and creditmeter::ledger exist. Configure only.
    SRC=$1 WORK=$2 CC=$3
    rm -rf "$WORK" && mkdir -p "$WORK/src"
    cat >"$WORK/src/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(parent LANGUAGES C)
enable_testing()
add_subdirectory("$SRC" creditmeter)
foreach(t creditmeter::probe creditmeter::ledger)
  if(NOT TARGET \${t})
    message(FATAL_ERROR "no target \${t}")
  endif()
endforeach()
add_executable(app app.c)
target_link_libraries(app PRIVATE creditmeter::probe)
file(WRITE \${CMAKE_BINARY_DIR}/build-type.txt "[\${CMAKE_BUILD_TYPE}]")
CMAKE
    printf '#include <creditmeter/cm_probe.h>\nint main(void) { return cm_probe_version() == 0; }\n' \
        >"$WORK/src/app.c"
    cmake -S "$WORK/src" -B "$WORK/build" -DCMAKE_C_COMPILER="$CC" >"$WORK/configure.log" 2>&1 ||
        { cat "$WORK/configure.log"; fail "a parent project cannot add_subdirectory creditmeter"; }
    [[ $(cat "$WORK/build/build-type.txt") == "[]" ]] ||
        fail "creditmeter forced the parent's build type: $(cat "$WORK/build/build-type.txt")"
    if grep -qi '^CMOCKA' "$WORK/build/CMakeCache.txt"; then
        fail "creditmeter looked for cmocka in a parent project"
    fi
    if [[ -n $(cd "$WORK/build" && ctest -N | sed -n 's/^Total Tests: //p' | grep -v '^0$') ]]; then
        fail "creditmeter added tests to a parent project"
    fi
    # The app includes <creditmeter/cm_probe.h> as after an install, and builds.
    cmake --build "$WORK/build" --target app -j2 >"$WORK/build.log" 2>&1 ||
        { tail -n 20 "$WORK/build.log"; fail "the parent's app does not build"; }
    rm -rf "$WORK"
    step "ok: add_subdirectory keeps the parent's build type, needs no cmocka, adds no test"
    ;;
*)
    fail "unknown mode $mode"
    ;;
esac
