file(REMOVE_RECURSE
  "CMakeFiles/sedge_sdk_objects.dir/src/client.c.o"
  "CMakeFiles/sedge_sdk_objects.dir/src/client.c.o.d"
  "CMakeFiles/sedge_sdk_objects.dir/src/frame.c.o"
  "CMakeFiles/sedge_sdk_objects.dir/src/frame.c.o.d"
  "CMakeFiles/sedge_sdk_objects.dir/src/json.c.o"
  "CMakeFiles/sedge_sdk_objects.dir/src/json.c.o.d"
  "CMakeFiles/sedge_sdk_objects.dir/src/requests.c.o"
  "CMakeFiles/sedge_sdk_objects.dir/src/requests.c.o.d"
  "CMakeFiles/sedge_sdk_objects.dir/src/run.c.o"
  "CMakeFiles/sedge_sdk_objects.dir/src/run.c.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/sedge_sdk_objects.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
