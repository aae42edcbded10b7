# needle_add_bpf_object(<name> SOURCE <file.bpf.c> [INCLUDES <dir>...] [DEPENDS <file>...])
#
# Compiles a CO-RE BPF object with clang against a vmlinux.h generated at build time from the
# running kernel's BTF, and wraps it in a static library `<name>_bpf` that exports the bytes as
# `needle_bpf_<name>` / `needle_bpf_<name>_end` (see needle/bpf_object.h). Everything generated
# lives in the build tree. Headers come from INCLUDES and NEEDLE_BPF_INCLUDE_DIRS (set by needle's
# top-level CMakeLists.txt in tree, and by NeedleConfig.cmake to the installed SDK out of tree).
include_guard(GLOBAL)

# The object is embedded by an assembler file (.incbin): a project built against the installed
# SDK may not have enabled ASM itself (needle's own tree has).
get_property(_needle_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
if(NOT "ASM" IN_LIST _needle_languages)
  enable_language(ASM)
endif()

find_program(NEEDLE_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(NEEDLE_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
set(NEEDLE_VMLINUX_BTF "/sys/kernel/btf/vmlinux" CACHE FILEPATH "BTF used to generate vmlinux.h")

function(_needle_vmlinux_target)
  if(TARGET needle_vmlinux_h)
    return()
  endif()
  set(dir "${CMAKE_BINARY_DIR}/generated/bpf")
  add_custom_command(
    OUTPUT "${dir}/vmlinux.h"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${dir}"
    COMMAND ${NEEDLE_BPFTOOL} btf dump file ${NEEDLE_VMLINUX_BTF} format c > "${dir}/vmlinux.h.tmp"
    COMMAND ${CMAKE_COMMAND} -E rename "${dir}/vmlinux.h.tmp" "${dir}/vmlinux.h"
    COMMENT "Generating vmlinux.h from ${NEEDLE_VMLINUX_BTF}"
    VERBATIM)
  add_custom_target(needle_vmlinux_h DEPENDS "${dir}/vmlinux.h")
  set_property(GLOBAL PROPERTY NEEDLE_VMLINUX_DIR "${dir}")
endfunction()

function(needle_add_bpf_object name)
  cmake_parse_arguments(arg "" "SOURCE" "INCLUDES;DEPENDS" ${ARGN})
  if(NOT arg_SOURCE)
    message(FATAL_ERROR "needle_add_bpf_object(${name}): SOURCE is required")
  endif()
  _needle_vmlinux_target()
  get_property(vmlinux_dir GLOBAL PROPERTY NEEDLE_VMLINUX_DIR)
  get_filename_component(src "${arg_SOURCE}" ABSOLUTE)
  set(out_dir "${CMAKE_BINARY_DIR}/generated/bpf")
  set(obj "${out_dir}/${name}.bpf.o")
  set(asm "${out_dir}/${name}.bpf.S")
  set(inc_flags "-I${vmlinux_dir}")
  foreach(dir IN LISTS arg_INCLUDES NEEDLE_BPF_INCLUDE_DIRS)
    list(APPEND inc_flags "-I${dir}")
  endforeach()
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    set(target_arch x86)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
    set(target_arch arm64)
  else()
    set(target_arch ${CMAKE_SYSTEM_PROCESSOR})
  endif()
  add_custom_command(
    OUTPUT "${obj}"
    COMMAND ${NEEDLE_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${target_arch} -Wall -Werror
            -Wno-unused-function ${inc_flags} -c "${src}" -o "${obj}"
    DEPENDS "${src}" needle_vmlinux_h "${vmlinux_dir}/vmlinux.h" ${arg_DEPENDS}
    IMPLICIT_DEPENDS C "${src}"
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)
  file(WRITE "${asm}.in"
       ".section .rodata\n"
       ".balign 8\n"
       ".global needle_bpf_${name}\n"
       ".hidden needle_bpf_${name}\n"
       "needle_bpf_${name}:\n"
       ".incbin \"${obj}\"\n"
       ".global needle_bpf_${name}_end\n"
       ".hidden needle_bpf_${name}_end\n"
       "needle_bpf_${name}_end:\n"
       ".section .note.GNU-stack,\"\",@progbits\n")
  configure_file("${asm}.in" "${asm}" COPYONLY)
  set_source_files_properties("${asm}" PROPERTIES OBJECT_DEPENDS "${obj}")
  add_library(${name}_bpf STATIC "${asm}")
  set_target_properties(${name}_bpf PROPERTIES POSITION_INDEPENDENT_CODE ON LINKER_LANGUAGE C)
  add_custom_target(${name}_bpf_obj DEPENDS "${obj}")
  add_dependencies(${name}_bpf ${name}_bpf_obj)
endfunction()
