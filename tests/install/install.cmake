# SPDX-License-Identifier: MIT
# Installing creditmeter (issue 14): the shared libraries export exactly their public
# headers, and programs outside the tree build and run against an install.
foreach(_cm_lib probe ledger)
  if(TARGET cm_${_cm_lib}_shared)
    string(TOUPPER ${_cm_lib} _cm_upper)
    add_test(NAME test_install_${_cm_lib}_exports_exactly_its_header
      COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/check_exports.sh
        $<TARGET_FILE:cm_${_cm_lib}_shared>
        ${PROJECT_SOURCE_DIR}/${_cm_lib}/cm_${_cm_lib}.h
        cm_${_cm_lib}_ libcreditmeter-${_cm_lib}.so.${PROJECT_VERSION_MAJOR}
        CREDITMETER_${_cm_upper}_${PROJECT_VERSION_MAJOR})
    set_tests_properties(test_install_${_cm_lib}_exports_exactly_its_header PROPERTIES
      LABELS install)
  endif()
endforeach()

# Each CLI's manual documents every option and command of its --help, and its version.
foreach(_cm_cli cm-probe cm-ledger cm-pipeline)
  if(TARGET ${_cm_cli})
    string(REPLACE "-" "_" _cm_cli_id ${_cm_cli})
    add_test(NAME test_install_${_cm_cli_id}_manual_documents_every_option
      COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/check_manpage.sh $<TARGET_FILE:${_cm_cli}>
        ${PROJECT_BINARY_DIR}/man/${_cm_cli}.1)
    set_tests_properties(test_install_${_cm_cli_id}_manual_documents_every_option PROPERTIES
      LABELS install)
  endif()
endforeach()

if(TARGET cm_probe_shared AND TARGET cm_ledger_shared AND TARGET creditmeter_plugin)
  # The consumers are built with the flags the tree was built with (the sanitizers'
  # runtime must come first in a program that loads sanitized libraries).
  string(JOIN " " _cm_consumer_flags ${CM_SAN_FLAGS})
  add_test(NAME test_install_consumers_build_and_run_outside_the_tree
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/install_test.sh installed
      ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/install-work
      ${CMAKE_C_COMPILER} "${_cm_consumer_flags}")
  set_tests_properties(test_install_consumers_build_and_run_outside_the_tree PROPERTIES
    LABELS install TIMEOUT 300 RESOURCE_LOCK cm_install_tree)
endif()

# A second, small, unsanitized build of the libraries, the plugin and the CLIs without
# libpq, installed; the fixture of the Python tests (which load unsanitized libraries).
add_test(NAME test_install_without_postgres_refuses_postgresql_as_unsupported
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/install_test.sh without-postgres
    ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/install-nopg ${CMAKE_C_COMPILER})
set_tests_properties(test_install_without_postgres_refuses_postgresql_as_unsupported
  PROPERTIES LABELS install TIMEOUT 600 FIXTURES_SETUP cm_install_nopg)
set(CM_INSTALL_NOPG_ROOT ${CMAKE_CURRENT_BINARY_DIR}/install-nopg/stage/opt/creditmeter)

# The Python package's tests (python/tests), against that install. Debian's python3
# first: its python3-setuptools and python3-wheel are what `pip install ./python` uses.
find_program(CM_PYTHON3 python3 HINTS /usr/bin NO_DEFAULT_PATH)
if(NOT CM_PYTHON3)
  find_program(CM_PYTHON3 python3)
endif()
if(CM_PYTHON3)
  foreach(_cm_py probe ledger meter packaging example)
    add_test(NAME test_python_${_cm_py}
      COMMAND ${CM_PYTHON3} -m unittest -v test_${_cm_py}
      WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/python/tests)
    set_tests_properties(test_python_${_cm_py} PROPERTIES
      LABELS "install;python" TIMEOUT 300 FIXTURES_REQUIRED cm_install_nopg
      ENVIRONMENT "PYTHONPATH=${PROJECT_SOURCE_DIR}/python;PYTHONDONTWRITEBYTECODE=1;CM_TEST_INSTALL_ROOT=${CM_INSTALL_NOPG_ROOT};CM_TEST_WITH_POSTGRES=0;CM_SAMPLES_DIR=${PROJECT_SOURCE_DIR}/samples;CC=${CMAKE_C_COMPILER}")
  endforeach()
else()
  message(STATUS "install: no python3: the Python package's tests are skipped")
endif()

# A parent project that add_subdirectory()s creditmeter (configure, and build a probe app).
add_test(NAME test_install_add_subdirectory_keeps_the_parents_build_type_and_needs_no_cmocka
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/install_test.sh subdirectory
    ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/install-subdir ${CMAKE_C_COMPILER})
set_tests_properties(test_install_add_subdirectory_keeps_the_parents_build_type_and_needs_no_cmocka
  PROPERTIES LABELS install TIMEOUT 300)
