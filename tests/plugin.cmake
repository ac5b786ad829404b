# plugin: the media engine of the reference host, the plugin ABI and the end-to-end jobs.
cm_add_test(test_plugin_media SOURCES test_plugin_media.c LIBS cm_media)
