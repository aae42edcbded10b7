# Read by cpack once per generator (CPACK_PROJECT_CONFIG_FILE in cmake/NeedlePackaging.cmake).
if(CPACK_GENERATOR STREQUAL "DEB")
  # CPackDeb puts CPACK_PACKAGE_DESCRIPTION_SUMMARY in front of each component's description,
  # whose first line already is that package's own synopsis (lintian:
  # description-synopsis-is-duplicated). The RPMs take their summaries from
  # CPACK_RPM_<component>_PACKAGE_SUMMARY instead.
  unset(CPACK_PACKAGE_DESCRIPTION_SUMMARY)
endif()
