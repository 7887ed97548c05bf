
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/sdk/c/src/client.c" "sdk/c/CMakeFiles/sedge_sdk_objects.dir/src/client.c.o" "gcc" "sdk/c/CMakeFiles/sedge_sdk_objects.dir/src/client.c.o.d"
  "/work/main/sdk/c/src/frame.c" "sdk/c/CMakeFiles/sedge_sdk_objects.dir/src/frame.c.o" "gcc" "sdk/c/CMakeFiles/sedge_sdk_objects.dir/src/frame.c.o.d"
  "/work/main/sdk/c/src/json.c" "sdk/c/CMakeFiles/sedge_sdk_objects.dir/src/json.c.o" "gcc" "sdk/c/CMakeFiles/sedge_sdk_objects.dir/src/json.c.o.d"
  "/work/main/sdk/c/src/requests.c" "sdk/c/CMakeFiles/sedge_sdk_objects.dir/src/requests.c.o" "gcc" "sdk/c/CMakeFiles/sedge_sdk_objects.dir/src/requests.c.o.d"
  "/work/main/sdk/c/src/run.c" "sdk/c/CMakeFiles/sedge_sdk_objects.dir/src/run.c.o" "gcc" "sdk/c/CMakeFiles/sedge_sdk_objects.dir/src/run.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
