# SPDX-License-Identifier: MIT
# torture (issue 5): N processes x M jobs against one ledger with random SIGKILLs,
# lapsing leases, expiring plan periods, plan changes, add-ons and refunds, on a virtual
# clock; then every balance re-derived three ways. Included by tests/CMakeLists.txt
# (after ledger.cmake, whose PostgreSQL fixture the _pg run uses). The short run is the
# CI default; the soak is one command in tests/torture/README.md.
add_executable(torture
  ${CMAKE_CURRENT_LIST_DIR}/torture.c
  ${CMAKE_CURRENT_LIST_DIR}/torture_worker.c
  ${CMAKE_CURRENT_LIST_DIR}/torture_verify.c)
target_link_libraries(torture PRIVATE cm_ledger SQLite::SQLite3) # libpq comes with cm_ledger
target_include_directories(torture PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..) # test_proc.h
target_compile_definitions(torture PRIVATE CM_LEDGER_CLI="$<TARGET_FILE:cm-ledger>")
add_dependencies(torture cm-ledger)

add_test(NAME torture COMMAND torture --dir ${CMAKE_CURRENT_BINARY_DIR}/tmp)
set_tests_properties(torture PROPERTIES LABELS "ledger;torture" TIMEOUT 300)

if(CM_PG_INITDB)
  add_test(NAME torture_pg COMMAND torture --dir ${CMAKE_CURRENT_BINARY_DIR}/tmp
           --ledger ${CM_PG_TEST_URI})
  set_tests_properties(torture_pg PROPERTIES FIXTURES_REQUIRED ledger_pg
    LABELS "ledger;pg;torture" TIMEOUT 300)
  # Issue 16: the torture through a failover (its own primary and synchronous standby;
  # the primary SIGKILLed 2 s into a 5 s run, the standby promoted). The long version is
  # one command in tests/torture/README.md.
  add_test(NAME torture_pg_failover
           COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/../pg/failover.sh $<TARGET_FILE:torture> 5 3 2)
  set_tests_properties(torture_pg_failover PROPERTIES SKIP_RETURN_CODE 77
    LABELS "ledger;pg;torture" TIMEOUT 300)
endif()
