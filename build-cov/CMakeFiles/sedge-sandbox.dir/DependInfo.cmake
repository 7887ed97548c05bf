
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/sandbox/confine.c" "CMakeFiles/sedge-sandbox.dir/src/sandbox/confine.c.o" "gcc" "CMakeFiles/sedge-sandbox.dir/src/sandbox/confine.c.o.d"
  "/work/main/src/sandbox/main.c" "CMakeFiles/sedge-sandbox.dir/src/sandbox/main.c.o" "gcc" "CMakeFiles/sedge-sandbox.dir/src/sandbox/main.c.o.d"
  "/work/main/src/sandbox/options.c" "CMakeFiles/sedge-sandbox.dir/src/sandbox/options.c.o" "gcc" "CMakeFiles/sedge-sandbox.dir/src/sandbox/options.c.o.d"
  "/work/main/src/sandbox/root.c" "CMakeFiles/sedge-sandbox.dir/src/sandbox/root.c.o" "gcc" "CMakeFiles/sedge-sandbox.dir/src/sandbox/root.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
