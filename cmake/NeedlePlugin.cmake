# needle_add_plugin(<kind> <name> SOURCES <file>... [BPF <bpf-name>] [LIBRARIES <lib>...])
#
# Builds needle-<kind>-<name>.so with hidden visibility into <build>/lib/needle/plugins (the
# install layout), linking the SDK and, with BPF, the embedded object of needle_add_bpf_object.
#
# Used in needle's own tree and, installed by needle-dev, by plugins built out of tree
# (find_package(Needle)). Variables read at each call (the caller's scope):
#   NEEDLE_PLUGIN_OUTPUT_DIR   where the .so lands (default <build>/lib/needle/plugins)
#   NEEDLE_INSTALL_PLUGINS     add an install() rule (default ON)
#   NEEDLE_PLUGIN_INSTALL_DIR  its destination (default lib/needle/plugins under the prefix)
include_guard(GLOBAL)

function(needle_add_plugin kind name)
  cmake_parse_arguments(arg "" "BPF" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT kind MATCHES "^(source|enricher|sink)$")
    message(FATAL_ERROR "needle_add_plugin: kind must be source, enricher or sink, not ${kind}")
  endif()
  set(target needle-${kind}-${name})
  set(output_dir "${NEEDLE_PLUGIN_OUTPUT_DIR}")
  if(NOT output_dir)
    set(output_dir "${CMAKE_BINARY_DIR}/lib/needle/plugins")
  endif()
  set(install_dir "${NEEDLE_PLUGIN_INSTALL_DIR}")
  if(NOT install_dir)
    set(install_dir "lib/needle/plugins")
  endif()
  set(install_plugin ON)
  if(DEFINED NEEDLE_INSTALL_PLUGINS AND NOT NEEDLE_INSTALL_PLUGINS)
    set(install_plugin OFF)
  endif()
  add_library(${target} MODULE ${arg_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY "${output_dir}")
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
  if(install_plugin)
    install(TARGETS ${target} LIBRARY DESTINATION "${install_dir}" COMPONENT runtime)
  endif()
endfunction()
