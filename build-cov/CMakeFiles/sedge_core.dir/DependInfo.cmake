
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/core/admin.c" "CMakeFiles/sedge_core.dir/src/core/admin.c.o" "gcc" "CMakeFiles/sedge_core.dir/src/core/admin.c.o.d"
  "/work/main/src/core/config.c" "CMakeFiles/sedge_core.dir/src/core/config.c.o" "gcc" "CMakeFiles/sedge_core.dir/src/core/config.c.o.d"
  "/work/main/src/core/core.c" "CMakeFiles/sedge_core.dir/src/core/core.c.o" "gcc" "CMakeFiles/sedge_core.dir/src/core/core.c.o.d"
  "/work/main/src/core/jobs.c" "CMakeFiles/sedge_core.dir/src/core/jobs.c.o" "gcc" "CMakeFiles/sedge_core.dir/src/core/jobs.c.o.d"
  "/work/main/src/core/shadow_sync.c" "CMakeFiles/sedge_core.dir/src/core/shadow_sync.c.o" "gcc" "CMakeFiles/sedge_core.dir/src/core/shadow_sync.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/main/build-cov/CMakeFiles/sedge_base.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_mqtt.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_store.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_pki.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_group.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_router.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_broker.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_shadow.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_deploy.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_uplink.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_functions.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_routing.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
