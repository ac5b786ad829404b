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
