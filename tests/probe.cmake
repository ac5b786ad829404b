# The probe's tests. Each links the static cm_probe library.
foreach(t test_probe_samples test_probe_errors test_probe_lying test_probe_cli test_probe_api
          test_probe_walk test_probe_oracle)
  cm_add_test(${t} SOURCES ${t}.c LIBS cm_probe Threads::Threads)
endforeach()
set_tests_properties(test_probe_cli PROPERTIES ENVIRONMENT "CM_PROBE_BIN=$<TARGET_FILE:cm-probe>")
