# plugin: the media engine of the reference host, the plugin ABI and the end-to-end jobs.
cm_add_test(test_plugin_media SOURCES test_plugin_media.c LIBS cm_media)
if(TARGET creditmeter_plugin)
  # End-to-end: the real cm-pipeline binary and the plugin it loads, on the samples.
  cm_add_test(test_plugin_billing SOURCES test_plugin_billing.c LIBS cm_ledger cm_probe)
  add_dependencies(test_plugin_billing cm-pipeline creditmeter_plugin)
endif()
