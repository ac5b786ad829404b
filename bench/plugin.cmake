# SPDX-License-Identifier: MIT
# plugin (issue 4): time inside the plugin's hooks as a share of real transcode jobs
# over the samples, against the same jobs without the plugin, in the same run.
if(TARGET creditmeter_plugin AND TARGET cm_media)
  add_executable(bench_plugin ${CMAKE_CURRENT_LIST_DIR}/bench_plugin.c)
  # The plugin's public header as a host sees it (pipeline/ copies it to the build tree's
  # include/creditmeter/); the plugin itself found by target.
  target_include_directories(bench_plugin PRIVATE ${PROJECT_BINARY_DIR}/include/creditmeter)
  target_link_libraries(bench_plugin PRIVATE cm_media cm_ledger ${CMAKE_DL_LIBS})
  target_compile_definitions(bench_plugin PRIVATE
    CM_SAMPLES_DIR="${PROJECT_SOURCE_DIR}/samples"
    CM_BIN_PLUGIN="$<TARGET_FILE:creditmeter_plugin>")
  add_dependencies(bench_plugin creditmeter_plugin)
endif()

# issue 12: the cost of the input binding's fingerprint, against reading the same bytes.
add_executable(bench_fingerprint ${CMAKE_CURRENT_LIST_DIR}/bench_fingerprint.c)

# issue 15: lease renewals/s for a handle's keepalive, one transaction per tick
# (cm_ledger_renew_many) beside one per job (cm_ledger_renew), in the same run.
add_executable(bench_keepalive ${CMAKE_CURRENT_LIST_DIR}/bench_keepalive.c)
target_link_libraries(bench_keepalive PRIVATE cm_ledger)

# issue 16: jobs/s through one plugin handle from 1-8 threads on PostgreSQL, a pool of 4
# ledger connections beside a pool of 1 (the handle's one connection before ABI 1.3).
if(TARGET creditmeter_plugin AND CM_WITH_POSTGRES AND TARGET PkgConfig::LIBPQ)
  add_executable(bench_plugin_pool ${CMAKE_CURRENT_LIST_DIR}/bench_plugin_pool.c)
  target_include_directories(bench_plugin_pool PRIVATE ${PROJECT_SOURCE_DIR}/plugin)
  target_link_libraries(bench_plugin_pool PRIVATE cm_ledger PkgConfig::LIBPQ Threads::Threads
    ${CMAKE_DL_LIBS})
  target_compile_definitions(bench_plugin_pool PRIVATE
    CM_SAMPLES_DIR="${PROJECT_SOURCE_DIR}/samples"
    CM_BIN_PLUGIN="$<TARGET_FILE:creditmeter_plugin>")
  add_dependencies(bench_plugin_pool creditmeter_plugin)
endif()
