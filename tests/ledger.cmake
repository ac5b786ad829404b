# SPDX-License-Identifier: MIT
# ledger (issue 3): cmocka programs, one per behaviour family.
set(CM_LEDGER_TESTS
  test_ledger_time
  test_ledger_workspaces
  test_ledger_plans
  test_ledger_holds
  test_ledger_refunds
  test_ledger_errors
  test_ledger_concurrency
  test_ledger_crash
  test_ledger_cli
  test_ledger_cli_ops
  test_ledger_strict
  test_ledger_text
  test_ledger_ops
  test_ledger_fleet
  test_ledger_roundtrips)
foreach(t IN LISTS CM_LEDGER_TESTS)
  cm_add_test(${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/${t}.c LIBS cm_ledger)
  set_tests_properties(${t} PROPERTIES LABELS ledger TIMEOUT 120)
endforeach()
# The CLI tests run the real binary.
add_dependencies(test_ledger_cli cm-ledger)
add_dependencies(test_ledger_cli_ops cm-ledger)
add_dependencies(test_ledger_fleet cm-ledger)

# PostgreSQL (issue 6): the same programs again, each test on a fresh schema of one
# throwaway local server (tests/pg/pg_server.sh) that a fixture starts before and stops
# after them. Several test programs (and, in the concurrency and crash tests, several
# processes) share that server at once, standing in for several machines.
set(CM_PG_INITDB "")
file(GLOB _cm_pg_initdb /usr/lib/postgresql/*/bin/initdb)
if(_cm_pg_initdb)
  list(GET _cm_pg_initdb 0 CM_PG_INITDB)
else()
  find_program(_cm_pg_config pg_config)
  if(_cm_pg_config)
    execute_process(COMMAND ${_cm_pg_config} --bindir OUTPUT_VARIABLE _cm_pg_bindir
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(EXISTS "${_cm_pg_bindir}/initdb")
      set(CM_PG_INITDB "${_cm_pg_bindir}/initdb")
    endif()
  endif()
endif()

if(CM_PG_INITDB)
  # A short socket directory (Unix socket paths are limited to ~107 bytes), one per
  # build tree so that two builds can test at once.
  string(MD5 _cm_pg_hash "${CMAKE_CURRENT_BINARY_DIR}")
  string(SUBSTRING "${_cm_pg_hash}" 0 10 _cm_pg_hash)
  set(CM_PG_TEST_DIR "/tmp/cm-pg-test-${_cm_pg_hash}")
  set(CM_PG_TEST_URI "postgresql:///creditmeter?host=${CM_PG_TEST_DIR}&port=5432&user=postgres")
  set(_cm_pg_sh ${CMAKE_CURRENT_LIST_DIR}/pg/pg_server.sh)
  add_test(NAME ledger_pg_server_start COMMAND sh ${_cm_pg_sh} start ${CM_PG_TEST_DIR} 5432)
  set_tests_properties(ledger_pg_server_start PROPERTIES FIXTURES_SETUP ledger_pg
    LABELS "ledger;pg" TIMEOUT 120 ENVIRONMENT "CM_PG_FSYNC=off")
  add_test(NAME ledger_pg_server_stop COMMAND sh ${_cm_pg_sh} stop ${CM_PG_TEST_DIR})
  set_tests_properties(ledger_pg_server_stop PROPERTIES FIXTURES_CLEANUP ledger_pg
    LABELS "ledger;pg" TIMEOUT 120)
  foreach(t IN LISTS CM_LEDGER_TESTS)
    add_test(NAME ${t}_pg COMMAND ${t})
    set_tests_properties(${t}_pg PROPERTIES FIXTURES_REQUIRED ledger_pg LABELS "ledger;pg"
      TIMEOUT 120
      ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=stdout;CM_TEST_LEDGER_DB=${CM_PG_TEST_URI}")
  endforeach()
else()
  message(STATUS "ledger: no PostgreSQL server binaries (initdb) found: "
                 "the ledger's PostgreSQL tests will be skipped")
  add_test(NAME ledger_pg_skipped COMMAND sh -c
    "echo 'no PostgreSQL server binaries (initdb) found: the ledger PostgreSQL tests are skipped (install the postgresql package)'; exit 77")
  set_tests_properties(ledger_pg_skipped PROPERTIES SKIP_RETURN_CODE 77 LABELS "ledger;pg")
endif()
