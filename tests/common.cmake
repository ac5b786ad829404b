# SPDX-License-Identifier: MIT
# common/'s tests: the shared text helper (strict UTF-8, JSON escaping).
cm_add_test(test_common_text SOURCES test_common_text.c LIBS cm_common)
