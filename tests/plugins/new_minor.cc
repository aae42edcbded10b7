// A plugin built for a newer minor than this needle: refused (it may call slots we lack).
#include "needle/abi.h"

namespace {
const needle_plugin_vtable kVtable = {sizeof(needle_plugin_vtable)};
const needle_plugin_descriptor kDesc = {
    sizeof(needle_plugin_descriptor), NEEDLE_ABI_MAJOR, NEEDLE_ABI_MINOR + 1, NEEDLE_KIND_SINK,
    "newminor", "0.0.1", "built for a newer minor", "wip", nullptr, 0, sizeof(needle_config_key),
    0, &kVtable};
}  // namespace

extern "C" __attribute__((visibility("default"))) const needle_plugin_descriptor*
needle_plugin_entry(void) {
  return &kDesc;
}
