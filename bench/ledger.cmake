# SPDX-License-Identifier: MIT
# ledger (issue 3): reserve+commit pairs/s vs a plain-SQLite baseline in the same run.
add_executable(bench_ledger ${CMAKE_CURRENT_LIST_DIR}/bench_ledger.c)
target_link_libraries(bench_ledger PRIVATE cm_ledger)
# ledger on PostgreSQL (issue 6): 1, 2 and 8 client processes against one server, beside
# SQLite; run it through bench/ledger_pg.sh, which starts and stops a throwaway server.
add_executable(bench_ledger_pg ${CMAKE_CURRENT_LIST_DIR}/bench_ledger_pg.c)
target_link_libraries(bench_ledger_pg PRIVATE cm_ledger)
# lease renewals (issue 15): cm_ledger_renew_many (one transaction per keepalive tick)
# beside one cm_ledger_renew per job, in the same run.
add_executable(bench_ledger_renew ${CMAKE_CURRENT_LIST_DIR}/bench_ledger_renew.c)
target_link_libraries(bench_ledger_renew PRIVATE cm_ledger)
