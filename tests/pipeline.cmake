# SPDX-License-Identifier: MIT
# pipeline: the media engine of the reference host cm-pipeline (CM_BUILD_PIPELINE).
# The end-to-end jobs that run cm-pipeline with the plugin are in plugin.cmake.
cm_add_test(test_plugin_media SOURCES test_plugin_media.c LIBS cm_media)
