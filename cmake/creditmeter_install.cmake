# SPDX-License-Identifier: MIT
# The installable creditmeter: shared libraries built from the same objects as the
# static ones the tests link, installed archives with internal names localized, the
# headers under include/creditmeter/, the plugin under $libdir/creditmeter/, the CLIs,
# pkg-config files and a CMake package (creditmeter::probe, creditmeter::ledger).
#
# Included by the top-level CMakeLists.txt after the modules: every rule here finds
# what it installs by target name (cm_probe, cm_ledger, creditmeter_plugin, cm-probe,
# cm-ledger, cm-pipeline), wherever the module's directory defines it.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(CM_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/creditmeter)
set(CM_INSTALL_PLUGINDIR ${CMAKE_INSTALL_LIBDIR}/creditmeter)
set(CM_LIB_OUTPUT_DIR ${PROJECT_BINARY_DIR}/lib)

# cm_shared_library(STATIC_TARGET NAME SHORT HEADER MAP)
# Makes lib<NAME>.so.<major> (target <STATIC_TARGET>_shared, alias creditmeter::<SHORT>)
# from the objects of STATIC_TARGET: one compilation, two libraries. MAP is the
# linker version script that exports only the public names (and versions them).
# Also builds lib<NAME>.a for installation: the same objects partially linked into one
# object whose hidden (internal) symbols are made local, so a program that links the
# archive may define names of its own (cm_run, cm_fail) without a clash.
function(cm_shared_library static name short header map)
  set(shared ${static}_shared)
  # Internals hidden at compile time; the public functions carry CM_*_EXTERN.
  set_target_properties(${static} PROPERTIES C_VISIBILITY_PRESET hidden)
  # The build tree's include/creditmeter/ holds the public header too, so that a parent
  # project (add_subdirectory) includes <creditmeter/...> exactly as after an install.
  get_filename_component(header_name ${header} NAME)
  configure_file(${header} ${CM_GEN_INCLUDE_DIR}/${header_name} COPYONLY)

  add_library(${shared} SHARED $<TARGET_OBJECTS:${static}>)
  add_library(creditmeter::${short} ALIAS ${shared})
  get_target_property(deps ${static} LINK_LIBRARIES)
  target_link_libraries(${shared} PRIVATE ${deps})
  target_include_directories(${shared} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  set_target_properties(${shared} PROPERTIES
    OUTPUT_NAME ${name}
    EXPORT_NAME ${short}
    VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR}
    LIBRARY_OUTPUT_DIRECTORY ${CM_LIB_OUTPUT_DIR}
    LINK_DEPENDS ${map})
  target_link_options(${shared} PRIVATE -Wl,--version-script=${map} -Wl,-z,defs)

  # The objects of OBJECT libraries the static one links (cm_common) go in the archive.
  set(objs $<TARGET_OBJECTS:${static}>)
  foreach(dep IN LISTS deps)
    if(TARGET ${dep})
      get_target_property(dep_type ${dep} TYPE)
      if(dep_type STREQUAL "OBJECT_LIBRARY")
        list(APPEND objs $<TARGET_OBJECTS:${dep}>)
      endif()
    endif()
  endforeach()

  set(archive ${CM_LIB_OUTPUT_DIR}/static/lib${name}.a)
  set(merged ${CMAKE_CURRENT_BINARY_DIR}/CMakeFiles/${static}_merged.o)
  add_custom_command(OUTPUT ${archive}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CM_LIB_OUTPUT_DIR}/static
    COMMAND ${CMAKE_COMMAND} -E rm -f ${archive}
    COMMAND ${CMAKE_LINKER} -r -o ${merged} ${objs}
    COMMAND ${CMAKE_OBJCOPY} --localize-hidden ${merged}
    COMMAND ${CMAKE_AR} rcs ${archive} ${merged}
    DEPENDS ${static} ${objs}
    COMMAND_EXPAND_LISTS VERBATIM
    COMMENT "Archive lib${name}.a with its internal symbols local")
  add_custom_target(${static}_archive ALL DEPENDS ${archive})

  if(CM_INSTALL)
    install(TARGETS ${shared} EXPORT creditmeterTargets
      LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
        NAMELINK_COMPONENT development
      INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
    install(FILES ${archive} DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)
    install(FILES ${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/creditmeter
      COMPONENT development)
    # The .pc file is written at install time, so that `cmake --install --prefix P`
    # gets P in it (DESTDIR stages below it, as usual).
    set(pc_in ${PROJECT_SOURCE_DIR}/cmake/${name}.pc.in)
    set(pc_tmp ${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc)
    install(CODE "
      set(CM_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
      set(CM_PC_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
      set(CM_PC_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
      set(PROJECT_VERSION \"${PROJECT_VERSION}\")
      set(CM_PC_REQUIRES_PRIVATE \"${CM_PC_REQUIRES_PRIVATE_${short}}\")
      foreach(v LIBDIR INCLUDEDIR)
        if(NOT IS_ABSOLUTE \"\${CM_PC_\${v}}\")
          set(CM_PC_\${v} \"\\\${prefix}/\${CM_PC_\${v}}\")
        endif()
      endforeach()
      configure_file(\"${pc_in}\" \"${pc_tmp}\" @ONLY)" COMPONENT development)
    install(FILES ${pc_tmp} DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
      COMPONENT development)
  endif()
endfunction()

# Generated headers: include/creditmeter/ in the build tree (in-tree code includes
# "cm_version.h" from there; consumers <creditmeter/cm_version.h>).
set(CM_GEN_INCLUDE_DIR ${PROJECT_BINARY_DIR}/include/creditmeter)
configure_file(${PROJECT_SOURCE_DIR}/cmake/cm_version.h.in ${CM_GEN_INCLUDE_DIR}/cm_version.h
  @ONLY)

# The version functions live in their own files, added here (the root project is what
# generates cm_version.h; tests/fuzz builds the probe standalone without them).
if(TARGET cm_probe)
  target_sources(cm_probe PRIVATE ${PROJECT_SOURCE_DIR}/probe/probe_version.c)
  target_include_directories(cm_probe PUBLIC $<BUILD_INTERFACE:${CM_GEN_INCLUDE_DIR}>)
endif()
if(TARGET cm_ledger)
  target_sources(cm_ledger PRIVATE ${PROJECT_SOURCE_DIR}/ledger/ledger_version.c)
  target_include_directories(cm_ledger PUBLIC $<BUILD_INTERFACE:${CM_GEN_INCLUDE_DIR}>)
endif()
if(TARGET creditmeter_plugin)
  target_include_directories(creditmeter_plugin PRIVATE ${CM_GEN_INCLUDE_DIR})
  get_target_property(_cm_plugin_dir creditmeter_plugin SOURCE_DIR)
  configure_file(${_cm_plugin_dir}/creditmeter_plugin.h
    ${CM_GEN_INCLUDE_DIR}/creditmeter_plugin.h COPYONLY)
endif()
foreach(cli cm-probe cm-ledger cm-pipeline)
  if(TARGET ${cli})
    target_include_directories(${cli} PRIVATE ${CM_GEN_INCLUDE_DIR})
    # The manual: man/<cli>.1.in with the version filled in (tests/install checks it
    # against the program's --help and --version).
    configure_file(${PROJECT_SOURCE_DIR}/man/${cli}.1.in ${PROJECT_BINARY_DIR}/man/${cli}.1
      @ONLY)
  endif()
endforeach()

set(CM_PC_REQUIRES_PRIVATE_probe "libavformat libavcodec libavutil")
set(CM_PC_REQUIRES_PRIVATE_ledger "sqlite3")
if(CM_WITH_POSTGRES)
  string(APPEND CM_PC_REQUIRES_PRIVATE_ledger " libpq")
endif()

# libFuzzer builds (CM_FUZZ) instrument every object for the harnesses only: no
# shared libraries there.
if(CM_FUZZ)
  return()
endif()
if(TARGET cm_probe)
  cm_shared_library(cm_probe creditmeter-probe probe
    ${PROJECT_SOURCE_DIR}/probe/cm_probe.h ${PROJECT_SOURCE_DIR}/cmake/probe.map)
endif()
if(TARGET cm_ledger)
  cm_shared_library(cm_ledger creditmeter-ledger ledger
    ${PROJECT_SOURCE_DIR}/ledger/cm_ledger.h ${PROJECT_SOURCE_DIR}/cmake/ledger.map)
endif()

if(NOT CM_INSTALL)
  return()
endif()

install(FILES ${CM_GEN_INCLUDE_DIR}/cm_version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/creditmeter COMPONENT development)
foreach(cli cm-probe cm-ledger cm-pipeline)
  if(TARGET ${cli})
    install(TARGETS ${cli} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
    install(FILES ${PROJECT_BINARY_DIR}/man/${cli}.1
      DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)
  endif()
endforeach()
if(TARGET creditmeter_plugin)
  install(TARGETS creditmeter_plugin
    LIBRARY DESTINATION ${CM_INSTALL_PLUGINDIR} COMPONENT runtime)
  install(FILES ${_cm_plugin_dir}/creditmeter_plugin.h
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/creditmeter COMPONENT development)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/CHANGELOG.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)

# The CMake package: find_package(creditmeter [0.2] REQUIRED [COMPONENTS probe ledger]).
install(EXPORT creditmeterTargets NAMESPACE creditmeter::
  DESTINATION ${CM_INSTALL_CMAKEDIR} FILE creditmeterTargets.cmake COMPONENT development)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/creditmeterConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/creditmeterConfig.cmake
  INSTALL_DESTINATION ${CM_INSTALL_CMAKEDIR} PATH_VARS CM_INSTALL_PLUGINDIR)
# 0.x: a minor release may break the API (semver), so only the same minor matches.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/creditmeterConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/creditmeterConfig.cmake
  ${PROJECT_BINARY_DIR}/cmake/creditmeterConfigVersion.cmake
  DESTINATION ${CM_INSTALL_CMAKEDIR} COMPONENT development)
