# ledger (issue 3): reserve+commit pairs/s vs a plain-SQLite baseline in the same run.
add_executable(bench_ledger ${CMAKE_CURRENT_LIST_DIR}/bench_ledger.c)
target_link_libraries(bench_ledger PRIVATE cm_ledger)
