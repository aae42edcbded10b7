# needle_add_plugin(<kind> <name> SOURCES <file>... [BPF <bpf-name>] [LIBRARIES <lib>...])
#
# Builds needle-<kind>-<name>.so with hidden visibility into <build>/lib/needle/plugins (the
# install layout), linking the SDK and, with BPF, the embedded object of needle_add_bpf_object.
include_guard(GLOBAL)

function(needle_add_plugin kind name)
  cmake_parse_arguments(arg "" "BPF" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT kind MATCHES "^(source|enricher|sink)$")
    message(FATAL_ERROR "needle_add_plugin: kind must be source, enricher or sink, not ${kind}")
  endif()
  set(target needle-${kind}-${name})
  add_library(${target} MODULE ${arg_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY "${NEEDLE_PLUGIN_OUTPUT_DIR}")
  if(TARGET Needle::sdk)
    target_link_libraries(${target} PRIVATE Needle::sdk)
  else()
    target_link_libraries(${target} PRIVATE needle_sdk)
  endif()
  if(arg_BPF)
    target_link_libraries(${target} PRIVATE ${arg_BPF}_bpf)
  endif()
  if(arg_LIBRARIES)
    target_link_libraries(${target} PRIVATE ${arg_LIBRARIES})
  endif()
  if(COMMAND needle_warnings)
    needle_warnings(${target})
  endif()
  target_link_options(${target} PRIVATE "LINKER:--no-undefined" "LINKER:-z,defs")
  if(NEEDLE_INSTALL_PLUGINS)
    install(TARGETS ${target} LIBRARY DESTINATION "${NEEDLE_PLUGIN_INSTALL_DIR}"
            COMPONENT runtime)
  endif()
endfunction()
