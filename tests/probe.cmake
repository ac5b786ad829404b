# SPDX-License-Identifier: MIT
# The probe's tests. Each links the static cm_probe library.
foreach(t test_probe_samples test_probe_errors test_probe_lying test_probe_cli test_probe_api
          test_probe_walk test_probe_oracle test_probe_guard test_probe_flv_walk)
  cm_add_test(${t} SOURCES ${t}.c LIBS cm_probe Threads::Threads)
endforeach()
# test_probe_cli runs CM_BIN_PROBE ($<TARGET_FILE:cm-probe>, from cm_add_test).

# The packaging matrix (tests/packaging/make-matrix.sh: every packaging ffmpeg and mkvmerge
# write, cut, joined and byte-edited files, and a manifest), made once into the build tree
# by a fixture step and reused while the script is unchanged; then every sample and every
# matrix file is probed with the fast path and with the oracle (full_scan).
set(CM_MATRIX_DIR ${CMAKE_CURRENT_BINARY_DIR}/matrix)
add_test(NAME probe_matrix
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/packaging/make-matrix.sh ${CM_MATRIX_DIR})
set_tests_properties(probe_matrix PROPERTIES FIXTURES_SETUP probe_matrix TIMEOUT 600)
cm_add_test(test_probe_differential SOURCES test_probe_differential.c LIBS cm_probe Threads::Threads)
target_compile_definitions(test_probe_differential PRIVATE CM_MATRIX_DIR="${CM_MATRIX_DIR}")
set_tests_properties(test_probe_differential PROPERTIES FIXTURES_REQUIRED probe_matrix)
