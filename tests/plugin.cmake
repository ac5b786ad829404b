# SPDX-License-Identifier: MIT
# plugin: the plugin ABI and the end-to-end jobs (the host's engine: pipeline.cmake).

# The end-to-end tests run the reference host (CM_BUILD_PIPELINE).
if(TARGET creditmeter_plugin AND TARGET cm-pipeline)
  # A plugin of a future ABI major, for the host's refusal test (a fixture, not a test).
  add_library(test_plugin_fake_abi2 MODULE ${CMAKE_CURRENT_LIST_DIR}/test_plugin_fake_abi2.c)
  set_target_properties(test_plugin_fake_abi2 PROPERTIES C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  target_include_directories(test_plugin_fake_abi2 PRIVATE ${PROJECT_SOURCE_DIR}/plugin)

  # End-to-end: the real cm-pipeline binary with the plugin it loads, and the real
  # cm-ledger CLI, on the samples. cm_ledger/cm_probe are linked only for their
  # headers' numbers and names (hold states, probe error names).
  set(CM_PLUGIN_E2E_DEPS cm-pipeline creditmeter_plugin cm-ledger)
  cm_add_test(test_plugin_abi SOURCES test_plugin_abi.c LIBS ${CMAKE_DL_LIBS} Threads::Threads)
  target_include_directories(test_plugin_abi PRIVATE ${PROJECT_SOURCE_DIR}/plugin)
  add_dependencies(test_plugin_abi ${CM_PLUGIN_E2E_DEPS} test_plugin_fake_abi2)
  foreach(t billing lapse output concurrent)
    cm_add_test(test_plugin_${t} SOURCES test_plugin_${t}.c LIBS cm_ledger cm_probe)
    add_dependencies(test_plugin_${t} ${CM_PLUGIN_E2E_DEPS})
  endforeach()
endif()

# issue 15: keepalive batching, log records, metrics, ping, creation, cm-pipeline's options.
if(TARGET creditmeter_plugin AND TARGET cm-pipeline)
  cm_add_test(test_plugin_ops SOURCES test_plugin_ops.c
    LIBS ${CMAKE_DL_LIBS} Threads::Threads SQLite::SQLite3)
  target_include_directories(test_plugin_ops PRIVATE ${PROJECT_SOURCE_DIR}/plugin)
  add_dependencies(test_plugin_ops ${CM_PLUGIN_E2E_DEPS})
endif()

# issue 16: the handle's pool of ledger connections, on SQLite and (with the ledger's
# throwaway server, tests/ledger.cmake) on PostgreSQL.
if(TARGET creditmeter_plugin AND TARGET cm-pipeline)
  set(_cm_pool_libs ${CMAKE_DL_LIBS} Threads::Threads SQLite::SQLite3)
  if(TARGET PkgConfig::LIBPQ)
    list(APPEND _cm_pool_libs PkgConfig::LIBPQ)
  endif()
  cm_add_test(test_plugin_pool SOURCES test_plugin_pool.c LIBS ${_cm_pool_libs})
  target_include_directories(test_plugin_pool PRIVATE ${PROJECT_SOURCE_DIR}/plugin)
  if(TARGET PkgConfig::LIBPQ)
    target_compile_definitions(test_plugin_pool PRIVATE CM_TEST_HAVE_LIBPQ=1)
  endif()
  add_dependencies(test_plugin_pool ${CM_PLUGIN_E2E_DEPS})
  set_tests_properties(test_plugin_pool PROPERTIES LABELS plugin TIMEOUT 180)
  if(CM_PG_INITDB AND TARGET PkgConfig::LIBPQ)
    add_test(NAME test_plugin_pool_pg COMMAND test_plugin_pool)
    set_tests_properties(test_plugin_pool_pg PROPERTIES FIXTURES_REQUIRED ledger_pg
      LABELS "plugin;pg" TIMEOUT 180
      ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=stdout;CM_TEST_LEDGER_DB=${CM_PG_TEST_URI}")
  endif()
endif()
