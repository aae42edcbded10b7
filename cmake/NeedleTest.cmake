# needle_add_test(<name> SOURCES <file>... [LIBRARIES <lib>...] [LABELS <label>...])
# One GoogleTest executable registered with ctest; tests are discovered per TEST().
include_guard(GLOBAL)

function(needle_add_test name)
  cmake_parse_arguments(arg "" "TIMEOUT" "SOURCES;LIBRARIES;LABELS" ${ARGN})
  find_package(GTest REQUIRED)
  find_package(Boost 1.74 REQUIRED)
  include(GoogleTest)
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE GTest::gtest GTest::gtest_main ${arg_LIBRARIES})
  needle_warnings(${name})
  # Where the tests find the build and source trees (an environment variable of the same name
  # overrides it).
  target_compile_definitions(${name} PRIVATE NEEDLE_BUILD_DIR_DEFAULT="${CMAKE_BINARY_DIR}"
                                             NEEDLE_SOURCE_DIR_DEFAULT="${CMAKE_SOURCE_DIR}")
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/tests")
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 300)
  endif()
  if("unit" IN_LIST arg_LABELS)
    set_property(GLOBAL APPEND PROPERTY NEEDLE_UNIT_TESTS ${name})
  endif()
  gtest_discover_tests(${name}
    PROPERTIES LABELS "${arg_LABELS}" TIMEOUT ${arg_TIMEOUT}
    DISCOVERY_TIMEOUT 60)
endfunction()
