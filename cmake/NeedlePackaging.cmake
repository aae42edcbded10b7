# Packaging: install rules for what is not a build target (config, systemd unit, man page, SDK
# headers, the CMake package `Needle`) and CPack settings for two packages per format:
#
#   component runtime -> needle            (DEB and RPM)
#   component dev     -> needle-dev (DEB), needle-devel (RPM)
#
# Build them from a configured and built tree (see packaging/README.md):
#   cpack --config <build>/CPackConfig.cmake -G "DEB;RPM" -B <out>
#
# Layout: the prefix is /usr; plugins go to the literal /usr/lib/needle/plugins (needle looks in
# <dir of its binary>/../lib/needle/plugins, so no multiarch folder), the config to
# /etc/needle/needle.toml (a conffile, %config(noreplace) in the RPM), the unit to
# /usr/lib/systemd/system. Included once, at the end of the top-level CMakeLists.txt.
include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

set(NEEDLE_PACKAGE_CONTACT "Needle maintainers <needle-maintainers@example.org>"
    CACHE STRING "Maintainer field of the DEB and RPM packages")
set(NEEDLE_PACKAGE_RELEASE "1" CACHE STRING "Debian revision / RPM release of the packages")

set(NEEDLE_PACKAGING_DIR "${PROJECT_SOURCE_DIR}/packaging")
set(NEEDLE_PACKAGING_OUT "${PROJECT_BINARY_DIR}/packaging")
set(NEEDLE_CMAKE_PACKAGE_DIR "lib/cmake/Needle")
set(NEEDLE_UNIT_DIR "lib/systemd/system")

# The ABI version, for NeedleConfig.cmake (abi.h is the one place it is written).
file(STRINGS "${PROJECT_SOURCE_DIR}/sdk/include/needle/abi.h" _needle_abi_lines
     REGEX "^#define NEEDLE_ABI_(MAJOR|MINOR) ")
foreach(_line IN LISTS _needle_abi_lines)
  if(_line MATCHES "NEEDLE_ABI_(MAJOR|MINOR) ([0-9]+)")
    set(NEEDLE_ABI_${CMAKE_MATCH_1} "${CMAKE_MATCH_2}")
  endif()
endforeach()

# --- runtime: the daemon (core/), the plugins (needle_add_plugin) and these --------------------

install(FILES "${PROJECT_SOURCE_DIR}/configs/needle.toml" DESTINATION /etc/needle
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ COMPONENT runtime)
install(FILES "${NEEDLE_PACKAGING_DIR}/needle.logrotate" DESTINATION /etc/logrotate.d
        RENAME needle COMPONENT runtime)
install(FILES "${NEEDLE_PACKAGING_DIR}/needle.service" DESTINATION "${NEEDLE_UNIT_DIR}"
        COMPONENT runtime)

# Debian wants man pages and changelogs compressed with gzip -9n (no name, no time stamp), and
# a changelog whose newest entry names the package's version.
set(NEEDLE_DEB_VERSION "${PROJECT_VERSION}-${NEEDLE_PACKAGE_RELEASE}")
configure_file("${NEEDLE_PACKAGING_DIR}/changelog.in" "${NEEDLE_PACKAGING_OUT}/changelog" @ONLY)
add_custom_command(
  OUTPUT "${NEEDLE_PACKAGING_OUT}/needle.8.gz" "${NEEDLE_PACKAGING_OUT}/changelog.Debian.gz"
  COMMAND gzip -9n -c "${NEEDLE_PACKAGING_DIR}/needle.8" > "${NEEDLE_PACKAGING_OUT}/needle.8.gz"
  COMMAND gzip -9n -c "${NEEDLE_PACKAGING_OUT}/changelog" >
          "${NEEDLE_PACKAGING_OUT}/changelog.Debian.gz"
  DEPENDS "${NEEDLE_PACKAGING_DIR}/needle.8" "${NEEDLE_PACKAGING_OUT}/changelog"
  COMMENT "Compressing the man page and the changelog"
  VERBATIM)
add_custom_target(needle_package_docs ALL
  DEPENDS "${NEEDLE_PACKAGING_OUT}/needle.8.gz" "${NEEDLE_PACKAGING_OUT}/changelog.Debian.gz")
install(FILES "${NEEDLE_PACKAGING_OUT}/needle.8.gz" DESTINATION share/man/man8
        COMPONENT runtime)
foreach(_pkg IN ITEMS needle needle-dev)
  if(_pkg STREQUAL "needle")
    set(_component runtime)
  else()
    set(_component dev)
  endif()
  install(FILES "${NEEDLE_PACKAGING_DIR}/copyright"
                "${NEEDLE_PACKAGING_OUT}/changelog.Debian.gz"
          DESTINATION "share/doc/${_pkg}" COMPONENT ${_component})
  # Each tag lintian reports and we keep, with the reason (packaging/README.md lists them too).
  install(FILES "${NEEDLE_PACKAGING_DIR}/lintian/${_pkg}" DESTINATION share/lintian/overrides
          COMPONENT ${_component})
endforeach()

# --- dev: the SDK as a CMake package -------------------------------------------------------------

# The SDK is the whole folder: every public header is part of it, so new ones ship without an
# edit here (the one place the project installs by pattern rather than by list).
install(DIRECTORY "${PROJECT_SOURCE_DIR}/sdk/include/needle" DESTINATION include
        COMPONENT dev FILES_MATCHING PATTERN "*.h")
set_target_properties(needle_sdk PROPERTIES EXPORT_NAME sdk)
install(TARGETS needle_sdk EXPORT NeedleTargets COMPONENT dev)
install(EXPORT NeedleTargets NAMESPACE Needle:: FILE NeedleTargets.cmake
        DESTINATION "${NEEDLE_CMAKE_PACKAGE_DIR}" COMPONENT dev)
set(NEEDLE_INSTALL_INCLUDEDIR include)
set(NEEDLE_INSTALL_PLUGINDIR "${NEEDLE_PLUGIN_INSTALL_DIR}")
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/NeedleConfig.cmake.in"
  "${NEEDLE_PACKAGING_OUT}/NeedleConfig.cmake"
  INSTALL_DESTINATION "${NEEDLE_CMAKE_PACKAGE_DIR}"
  PATH_VARS NEEDLE_INSTALL_INCLUDEDIR NEEDLE_INSTALL_PLUGINDIR)
# 0.x releases: a plugin's SDK and the daemon must also agree on the ABI, which needle checks
# when it loads the plugin; the package version only says which SDK features exist.
write_basic_package_version_file("${NEEDLE_PACKAGING_OUT}/NeedleConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}" COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES "${NEEDLE_PACKAGING_OUT}/NeedleConfig.cmake"
              "${NEEDLE_PACKAGING_OUT}/NeedleConfigVersion.cmake"
              "${PROJECT_SOURCE_DIR}/cmake/NeedleBpf.cmake"
              "${PROJECT_SOURCE_DIR}/cmake/NeedlePlugin.cmake"
        DESTINATION "${NEEDLE_CMAKE_PACKAGE_DIR}" COMPONENT dev)
# The plugin guide and the out-of-tree example, for newcomers reading the installed SDK.
install(FILES "${PROJECT_SOURCE_DIR}/docs/plugin-guide.md" DESTINATION share/doc/needle-dev
        COMPONENT dev)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/sdk/examples/" DESTINATION share/doc/needle-dev/examples
        COMPONENT dev)

# --- CPack ---------------------------------------------------------------------------------------

set(CPACK_PACKAGE_NAME needle)
set(CPACK_PACKAGE_VENDOR "Needle")
set(CPACK_PACKAGE_CONTACT "${NEEDLE_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_COMPONENTS_GROUPING IGNORE)
set(CPACK_VERBATIM_VARIABLES ON)
set(CPACK_PROJECT_CONFIG_FILE "${NEEDLE_PACKAGING_DIR}/cpack_options.cmake")

set(CPACK_COMPONENT_RUNTIME_DISPLAY_NAME "needle")
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
  "runtime security sensor for Linux on eBPF\n"
  "Needle watches what processes do on a host (executions, forks, exits and, as\n"
  "sources land, file, network and inter-process activity) with eBPF programs,\n"
  "enriches every event with process and container context, and delivers it to\n"
  "files, stdout, syslog, HTTP, Fluent Forward or NATS JetStream. Every drop is\n"
  "counted and reported downstream as a needle.gap event.\n"
  "\n"
  "This package holds the daemon, its plugins, the default configuration and a\n"
  "hardened systemd unit.")
set(CPACK_COMPONENT_DEV_DISPLAY_NAME "needle-dev")
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "plugin SDK for the Needle runtime security sensor\n"
  "Headers of the versioned C plugin ABI and its header-only C++ layer, the\n"
  "kernel-side headers for a plugin's own BPF object, and the CMake package\n"
  "Needle (target Needle::sdk, functions needle_add_plugin() and\n"
  "needle_add_bpf_object()) for building source, enricher and sink plugins\n"
  "out of tree.")
# CPACK_COMPONENT_*_DESCRIPTION is joined as a list: make it one string again.
string(JOIN "" CPACK_COMPONENT_RUNTIME_DESCRIPTION ${CPACK_COMPONENT_RUNTIME_DESCRIPTION})
string(JOIN "" CPACK_COMPONENT_DEV_DESCRIPTION ${CPACK_COMPONENT_DEV_DESCRIPTION})

# DEB
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE "${NEEDLE_PACKAGE_RELEASE}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME needle)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_RECOMMENDS "logrotate")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
  "${NEEDLE_PACKAGING_DIR}/deb/conffiles"
  "${NEEDLE_PACKAGING_DIR}/deb/postinst"
  "${NEEDLE_PACKAGING_DIR}/deb/prerm"
  "${NEEDLE_PACKAGING_DIR}/deb/postrm")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME needle-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_DEV_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "clang, libbpf-dev, bpftool")
set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS "cmake (>= 3.25), needle (= ${NEEDLE_DEB_VERSION})")

# RPM (rpmbuild from Debian's rpm package here: a format check, since the automatic library
# requirements carry Debian's library names).
set(CPACK_RPM_COMPONENT_INSTALL ON)
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_RELEASE "${NEEDLE_PACKAGE_RELEASE}")
set(CPACK_RPM_PACKAGE_LICENSE "see /usr/share/doc/needle/copyright")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_AUTOREQ ON)
set(CPACK_RPM_RUNTIME_PACKAGE_NAME needle)
set(CPACK_RPM_RUNTIME_PACKAGE_SUMMARY "Runtime security sensor for Linux on eBPF")
set(CPACK_RPM_RUNTIME_USER_FILELIST
  "%config(noreplace) /etc/needle/needle.toml"
  "%config(noreplace) /etc/logrotate.d/needle"
  "%exclude /usr/share/lintian/overrides/needle")
set(CPACK_RPM_RUNTIME_POST_INSTALL_SCRIPT_FILE "${NEEDLE_PACKAGING_DIR}/rpm/post")
set(CPACK_RPM_RUNTIME_PRE_UNINSTALL_SCRIPT_FILE "${NEEDLE_PACKAGING_DIR}/rpm/preun")
set(CPACK_RPM_RUNTIME_POST_UNINSTALL_SCRIPT_FILE "${NEEDLE_PACKAGING_DIR}/rpm/postun")
set(CPACK_RPM_DEV_PACKAGE_NAME needle-devel)
set(CPACK_RPM_DEV_PACKAGE_SUMMARY "Plugin SDK for the Needle runtime security sensor")
set(CPACK_RPM_DEV_PACKAGE_ARCHITECTURE noarch)
set(CPACK_RPM_DEV_USER_FILELIST "%exclude /usr/share/lintian/overrides/needle-dev")
set(CPACK_RPM_DEV_PACKAGE_REQUIRES "clang, libbpf-devel, bpftool")
set(CPACK_RPM_DEV_PACKAGE_SUGGESTS "needle = ${PROJECT_VERSION}")
# Folders other packages own: the packages own only /etc/needle, /usr/lib/needle,
# /usr/include/needle, /usr/lib/cmake/Needle and their doc folders.
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
  /etc/logrotate.d /usr/lib/systemd /usr/lib/systemd/system /usr/share/man /usr/share/man/man8
  /usr/lib/cmake /usr/include /usr/share/doc /usr/share/lintian /usr/share/lintian/overrides)

include(CPack)
