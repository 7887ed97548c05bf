file(REMOVE_RECURSE
  "CMakeFiles/sedge_functions.dir/src/functions/cgroup.c.o"
  "CMakeFiles/sedge_functions.dir/src/functions/cgroup.c.o.d"
  "CMakeFiles/sedge_functions.dir/src/functions/devices.c.o"
  "CMakeFiles/sedge_functions.dir/src/functions/devices.c.o.d"
  "CMakeFiles/sedge_functions.dir/src/functions/ipc.c.o"
  "CMakeFiles/sedge_functions.dir/src/functions/ipc.c.o.d"
  "CMakeFiles/sedge_functions.dir/src/functions/launch.c.o"
  "CMakeFiles/sedge_functions.dir/src/functions/launch.c.o.d"
  "CMakeFiles/sedge_functions.dir/src/functions/logfile.c.o"
  "CMakeFiles/sedge_functions.dir/src/functions/logfile.c.o.d"
  "CMakeFiles/sedge_functions.dir/src/functions/program.c.o"
  "CMakeFiles/sedge_functions.dir/src/functions/program.c.o.d"
  "CMakeFiles/sedge_functions.dir/src/functions/runner.c.o"
  "CMakeFiles/sedge_functions.dir/src/functions/runner.c.o.d"
  "CMakeFiles/sedge_functions.dir/src/functions/sharedns.c.o"
  "CMakeFiles/sedge_functions.dir/src/functions/sharedns.c.o.d"
  "CMakeFiles/sedge_functions.dir/src/functions/spawn.c.o"
  "CMakeFiles/sedge_functions.dir/src/functions/spawn.c.o.d"
  "CMakeFiles/sedge_functions.dir/src/functions/spec.c.o"
  "CMakeFiles/sedge_functions.dir/src/functions/spec.c.o.d"
  "CMakeFiles/sedge_functions.dir/src/functions/status.c.o"
  "CMakeFiles/sedge_functions.dir/src/functions/status.c.o.d"
  "libsedge_functions.a"
  "libsedge_functions.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_functions.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
