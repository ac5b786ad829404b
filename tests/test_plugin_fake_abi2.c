/* SPDX-License-Identifier: MIT */
/*
 * test_plugin_fake_abi2.c - a fixture, not a test: a plugin module of a future ABI
 * major (2.0). Hosts built against 1.x must refuse it with a clear message.
 */
#include "creditmeter_plugin.h"

static const cm_plugin_api fake_api = {
    .abi_major = 2,
    .abi_minor = 0,
    .struct_size = sizeof(cm_plugin_api),
    .version = "2.0.0-fake",
};

CM_PLUGIN_EXPORT const cm_plugin_api *cm_plugin_entry(uint32_t host_abi_major,
                                                      uint32_t host_abi_minor)
{
    (void)host_abi_major; /* a badly behaved plugin: answers every host */
    (void)host_abi_minor;
    return &fake_api;
}
