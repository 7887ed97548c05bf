
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/functions/cgroup.c" "CMakeFiles/sedge_functions.dir/src/functions/cgroup.c.o" "gcc" "CMakeFiles/sedge_functions.dir/src/functions/cgroup.c.o.d"
  "/work/main/src/functions/devices.c" "CMakeFiles/sedge_functions.dir/src/functions/devices.c.o" "gcc" "CMakeFiles/sedge_functions.dir/src/functions/devices.c.o.d"
  "/work/main/src/functions/ipc.c" "CMakeFiles/sedge_functions.dir/src/functions/ipc.c.o" "gcc" "CMakeFiles/sedge_functions.dir/src/functions/ipc.c.o.d"
  "/work/main/src/functions/launch.c" "CMakeFiles/sedge_functions.dir/src/functions/launch.c.o" "gcc" "CMakeFiles/sedge_functions.dir/src/functions/launch.c.o.d"
  "/work/main/src/functions/logfile.c" "CMakeFiles/sedge_functions.dir/src/functions/logfile.c.o" "gcc" "CMakeFiles/sedge_functions.dir/src/functions/logfile.c.o.d"
  "/work/main/src/functions/program.c" "CMakeFiles/sedge_functions.dir/src/functions/program.c.o" "gcc" "CMakeFiles/sedge_functions.dir/src/functions/program.c.o.d"
  "/work/main/src/functions/runner.c" "CMakeFiles/sedge_functions.dir/src/functions/runner.c.o" "gcc" "CMakeFiles/sedge_functions.dir/src/functions/runner.c.o.d"
  "/work/main/src/functions/sharedns.c" "CMakeFiles/sedge_functions.dir/src/functions/sharedns.c.o" "gcc" "CMakeFiles/sedge_functions.dir/src/functions/sharedns.c.o.d"
  "/work/main/src/functions/spawn.c" "CMakeFiles/sedge_functions.dir/src/functions/spawn.c.o" "gcc" "CMakeFiles/sedge_functions.dir/src/functions/spawn.c.o.d"
  "/work/main/src/functions/spec.c" "CMakeFiles/sedge_functions.dir/src/functions/spec.c.o" "gcc" "CMakeFiles/sedge_functions.dir/src/functions/spec.c.o.d"
  "/work/main/src/functions/status.c" "CMakeFiles/sedge_functions.dir/src/functions/status.c.o" "gcc" "CMakeFiles/sedge_functions.dir/src/functions/status.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/main/build-cov/CMakeFiles/sedge_base.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_group.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_shadow.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_mqtt.dir/DependInfo.cmake"
  "/work/main/build-cov/CMakeFiles/sedge_store.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
