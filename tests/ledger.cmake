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
  test_ledger_cli)
foreach(t IN LISTS CM_LEDGER_TESTS)
  cm_add_test(${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/${t}.c LIBS cm_ledger)
  set_tests_properties(${t} PROPERTIES LABELS ledger TIMEOUT 120)
endforeach()
# The CLI tests run the real binary.
add_dependencies(test_ledger_cli cm-ledger)
