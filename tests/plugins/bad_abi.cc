// A plugin built for another ABI major: needle must refuse it, naming the file.
#include "needle/abi.h"

namespace {
const needle_plugin_vtable kVtable = {sizeof(needle_plugin_vtable)};
const needle_plugin_descriptor kDesc = {
    sizeof(needle_plugin_descriptor), NEEDLE_ABI_MAJOR + 98, 0, NEEDLE_KIND_SINK, "badabi",
    "0.0.1", "built for ABI 99", "wip", nullptr, 0, sizeof(needle_config_key), 0, &kVtable};
}  // namespace

extern "C" __attribute__((visibility("default"))) const needle_plugin_descriptor*
needle_plugin_entry(void) {
  return &kDesc;
}
