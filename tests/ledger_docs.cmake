# SPDX-License-Identifier: MIT
# cm-ledger's command table against the docs: README.md's and ledger/README.md's command
# lists, the manual's entries, and the per-command help (tests/check_ledger_commands.py).
find_package(Python3 COMPONENTS Interpreter REQUIRED)
add_test(NAME test_ledger_docs_list_every_command_of_the_table
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/check_ledger_commands.py
          $<TARGET_FILE:cm-ledger> ${PROJECT_SOURCE_DIR}/README.md
          ${PROJECT_SOURCE_DIR}/ledger/README.md ${PROJECT_SOURCE_DIR}/man/cm-ledger.1.in)
set_tests_properties(test_ledger_docs_list_every_command_of_the_table PROPERTIES
  LABELS ledger TIMEOUT 60)
