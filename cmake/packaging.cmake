# SPDX-License-Identifier: Apache-2.0
# packaging.cmake: the Debian package, smpost_<version>_<arch>.deb, built by
# CPack from the install rules of cmake/install.cmake:
#   scripts/package.sh [BUILD_DIR]     (configures for /usr, builds, runs cpack)
# Configure with -DCMAKE_INSTALL_PREFIX=/usr: the binaries, the units and the
# example configuration name the paths of the prefix they were configured
# for, so a package made for another prefix would look in the wrong place.
#
# Runtime dependencies come from dpkg-shlibdeps (the libraries the binaries
# link); /etc/smpost/*.env are conffiles (an upgrade keeps local edits); the
# units are installed but not enabled (the settings need editing first:
# docs/operations.md, "Installing and running under systemd").
# tests/acceptance/package_deb.sh checks the result with lintian.

set(SMPOST_PACKAGE_MAINTAINER "smpost maintainers <smpost-maintainers@example.org>" CACHE STRING
    "Maintainer field of the Debian package: Name <email>")

if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "packaging: CMAKE_INSTALL_PREFIX is ${CMAKE_INSTALL_PREFIX}; the Debian package "
                 "wants /usr (scripts/package.sh configures it so)")
endif()

# The package's /usr/share/doc/smpost: copyright (machine-readable, from
# NOTICE) and changelog.gz (the package is native: its version has no
# Debian revision). Written at configure time into the build tree.
set(smpost_deb_dir ${PROJECT_BINARY_DIR}/deb)
file(READ ${PROJECT_SOURCE_DIR}/NOTICE smpost_notice)
string(REGEX MATCH "Copyright ([^\n]*)" _ "${smpost_notice}")
set(SMPOST_COPYRIGHT "${CMAKE_MATCH_1}")
# NOTICE as the Comment field: every line indented, empty lines as " ."
string(REGEX REPLACE "\n+$" "" smpost_notice "${smpost_notice}")
string(REPLACE "\n" ";" smpost_notice_lines "${smpost_notice}")
set(SMPOST_NOTICE_COMMENT "")
foreach(line IN LISTS smpost_notice_lines)
  if(line STREQUAL "")
    set(line ".")
  endif()
  string(APPEND SMPOST_NOTICE_COMMENT " ${line}\n")
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/deb/copyright.in ${smpost_deb_dir}/copyright @ONLY)

# The Debian changelog entry of this version, dated as the release
# (SMPOST_RELEASE_DATE, cmake/install.cmake).
execute_process(COMMAND date -u -R -d "${SMPOST_RELEASE_DATE} 00:00:00"
                OUTPUT_VARIABLE SMPOST_RELEASE_DATE_RFC2822 OUTPUT_STRIP_TRAILING_WHITESPACE)
configure_file(${PROJECT_SOURCE_DIR}/cmake/deb/changelog.in ${smpost_deb_dir}/changelog @ONLY)
# gzip -n: no name or time stamp in the header, so the file is reproducible
execute_process(COMMAND gzip -9nf ${smpost_deb_dir}/changelog RESULT_VARIABLE smpost_gzip_rc)
if(NOT smpost_gzip_rc EQUAL 0)
  message(FATAL_ERROR "packaging: gzip failed on ${smpost_deb_dir}/changelog")
endif()
install(FILES ${smpost_deb_dir}/copyright ${smpost_deb_dir}/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Lintian's overrides, each with its reason (cmake/deb/lintian-overrides)
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr") # the package's prefix; elsewhere no lintian reads it
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/deb/lintian-overrides
          DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides RENAME smpost)
endif()

# Maintainer scripts: systemd rereads the units on install and removal;
# removal stops the services first. Nothing is enabled or started.
set(smpost_units "smpost-command-api.service smpost-query-api.service")
foreach(script postinst prerm postrm)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/deb/${script}.in ${smpost_deb_dir}/${script} @ONLY
                 FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                                  WORLD_READ WORLD_EXECUTE)
endforeach()
file(WRITE ${smpost_deb_dir}/conffiles
     "${CMAKE_INSTALL_FULL_SYSCONFDIR}/smpost/command-api.env\n"
     "${CMAKE_INSTALL_FULL_SYSCONFDIR}/smpost/query-api.env\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME smpost)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${SMPOST_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "CQRS and event-sourcing social-media backend")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${SMPOST_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# the extended description; CPack puts the summary above it
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
"smpost stores posts, likes and comments as events and serves them from a
read model. command-api accepts commands and keeps the events (SQLite or
MongoDB), publishing them to Kafka; query-api projects them into a read
model (SQLite or SQL Server) and answers queries. Both serve their OpenAPI
document and Swagger UI.
.
This package holds both services with systemd units and example settings
in /etc/smpost, smpost-devbroker (a local Kafka broker for trying it out)
and smpost-token (a JWT minting tool for tests).")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${smpost_deb_dir}/conffiles ${smpost_deb_dir}/postinst ${smpost_deb_dir}/prerm
    ${smpost_deb_dir}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
