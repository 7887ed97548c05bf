file(REMOVE_RECURSE
  "../../test-functions/probe"
  "../../test-functions/probe.pdb"
  "CMakeFiles/test_function_probe.dir/probe.c.o"
  "CMakeFiles/test_function_probe.dir/probe.c.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_function_probe.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
